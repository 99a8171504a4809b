using System.Text.RegularExpressions;

namespace LambdaService.Api.Tests.Architecture;

/// <summary>
/// <c>src/Api/Jobs/JobStore.cs</c> owns every write of the jobs table and of its attempt log (<c>job_attempts</c>): no other source
/// file under <c>src/</c> holds an <c>INSERT INTO</c>, <c>UPDATE</c> or <c>DELETE FROM</c> of those tables, in any casing or quoting,
/// nor a typed write (<c>Insert&lt;JobRecord&gt;</c>, <c>Delete&lt;JobRecord&gt;</c>, …) or a new attempt record.
/// </summary>
/// <remarks>
/// A write through the generic record methods with an inferred type (<c>db.Insert(job)</c>) names no table and no type, so a text
/// check cannot see it; that is what <c>JobStore.Add</c> is for.
/// </remarks>
public class JobsTableOwnershipTests
{
    private static readonly string[] Owners = ["src/Api/Jobs/JobStore.cs"];

    /// <summary>An optional quote around an identifier as it appears in C# source: <c>"</c> (escaped or not), <c>`</c>, <c>[ ]</c>.</summary>
    private const string Quote = @"(?:\\?[""`\[\]])?";

    /// <summary>White space as it appears in C# source: blanks, line breaks, or their escapes inside a string literal.</summary>
    private const string Space = @"(?:\s|\\[nrt])+";

    private static readonly Regex SqlWrite = new(
        $@"\b(?:INSERT{Space}INTO|UPDATE|DELETE{Space}FROM){Space}{Quote}(?:public{Quote}\.{Quote})?(?:jobs|job_attempts){Quote}(?![\w.])",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static readonly Regex TypedWrite = new(@"\b(?:Insert|InsertIfAbsent|Update|Delete)\s*<\s*(?:JobRecord|JobAttemptRecord)\s*>|\bnew\s+JobAttemptRecord\b",
        RegexOptions.CultureInvariant);

    /// <summary>The writes of the jobs table in <paramref name="text"/>.</summary>
    private static IEnumerable<string> Writes(string text) => SqlWrite.Matches(text).Concat(TypedWrite.Matches(text)).Select(m => m.Value);

    [Fact]
    public void No_source_file_outside_JobStore_writes_the_jobs_table()
    {
        var files = RepositorySources.CSharpFilesUnderSrc();
        Assert.Contains(Owners[0], files);
        var offenders = files.Where(f => !Owners.Contains(f))
            .SelectMany(f => Writes(File.ReadAllText(Path.Combine(RepositorySources.Root, f))).Select(w => $"{f}: {w}"))
            .ToList();
        Assert.True(offenders.Count == 0, "jobs-table writes outside JobStore:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void JobStore_itself_holds_the_writes_the_check_looks_for()
    {
        var text = File.ReadAllText(Path.Combine(RepositorySources.Root, Owners[0]));
        Assert.Contains(Writes(text), w => w.StartsWith("UPDATE jobs", StringComparison.Ordinal));
        Assert.Contains(Writes(text), w => w.StartsWith("UPDATE job_attempts", StringComparison.Ordinal));
        Assert.Contains(Writes(text), w => w.StartsWith("DELETE FROM job_attempts", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("db.Execute(\"UPDATE jobs SET Status = ? WHERE Id = ?\", s, id)")]
    [InlineData("db.Execute(\"update jobs set status = 'failed'\")")]
    [InlineData("db.Execute(\"Update Jobs Set Progress = 1\")")]
    [InlineData("db.Execute(\"UPDATE \\\"jobs\\\" SET Status = ?\")")]
    [InlineData("db.Execute(\"UPDATE public.jobs SET Status = ?\")")]
    [InlineData("db.Execute(\"UPDATE `jobs` SET Status = ?\")")]
    [InlineData("db.Execute(\"UPDATE [jobs] SET Status = ?\")")]
    [InlineData("db.Execute(\"INSERT INTO jobs (Id) VALUES (?)\")")]
    [InlineData("db.Execute(\"insert   into\\n jobs(Id) values (?)\")")]
    [InlineData("db.Execute(\"DELETE FROM jobs WHERE Id = ?\")")]
    [InlineData("db.Execute(\"delete from \\\"job_attempts\\\" where JobId = ?\")")]
    [InlineData("db.Execute(\"UPDATE job_attempts SET Outcome = ?\")")]
    [InlineData("db.Delete<JobRecord>(id)")]
    [InlineData("db.Insert<JobRecord>(job)")]
    [InlineData("db.Update< JobRecord >(job)")]
    [InlineData("db.InsertIfAbsent(new JobAttemptRecord { Id = id })")]
    public void The_check_recognises_a_jobs_table_write_in_any_casing_and_quoting(string source) => Assert.NotEmpty(Writes(source));

    [Theory]
    [InlineData("db.Query<JobRecord>(\"SELECT * FROM jobs WHERE Id = ?\", id)")]
    [InlineData("db.ExecuteScalar<int>(\"SELECT COUNT(*) FROM jobs\")")]
    [InlineData("db.Execute(\"UPDATE models SET Name = ?\")")]
    [InlineData("db.Execute(\"DELETE FROM jobs_archive WHERE Id = ?\")")]
    [InlineData("db.Execute(\"UPDATE jobsummary SET x = 1\")")]
    [InlineData("db.Delete<ModelRecord>(id)")]
    [InlineData("var job = db.Find<JobRecord>(id);")]
    public void The_check_leaves_reads_and_other_tables_alone(string source) => Assert.Empty(Writes(source));
}
