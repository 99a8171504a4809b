using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace LambdaService.Api.Jobs;

/// <summary>One attempt at a job.</summary>
public sealed record JobAttempt(
    [property: System.ComponentModel.Description("1 for the first start.")] int Attempt,
    [property: System.ComponentModel.Description("The node that ran it (Jobs:NodeName).")] string Node,
    DateTime StartedAt,
    DateTime? FinishedAt,
    [property: System.ComponentModel.Description("succeeded, failed, canceled, crashed (tried again), lost (its node stopped sending heartbeats), interrupted (its node shut down gracefully; not counted in attempts, the job went back on its queue at once); null while running.")] string? Outcome);

/// <summary>Tenant-scoped reads of job records (their writes are <see cref="JobStore"/>'s), shared by measurements and training runs.</summary>
public static class JobRecords
{
    /// <summary>The caller's job of <paramref name="kind"/> with this id, or null (another tenant's is null too).</summary>
    public static JobRecord? Find(MetadataStore store, string tenant, string id, string kind) =>
        store.Read(db => db.Query<JobRecord>("SELECT * FROM jobs WHERE Id = ? AND Tenant = ? AND Kind = ?", id, tenant, kind).FirstOrDefault());

    /// <summary>The attempts at a job, first first (the caller has checked that the job is theirs).</summary>
    public static IReadOnlyList<JobAttempt> AttemptLog(MetadataStore store, string jobId) =>
        store.Read(db => db.Query<JobAttemptRecord>("SELECT * FROM job_attempts WHERE JobId = ? ORDER BY Attempt", jobId))
            .Select(a => new JobAttempt(a.Attempt, a.Node, Utc(a.StartedAt), Utc(a.FinishedAt), a.Outcome)).ToList();

    /// <summary>A page of the caller's jobs of <paramref name="kind"/>, newest first, optionally of one status.</summary>
    public static (List<JobRecord> Items, int Page, int PageSize, int Total) Page(MetadataStore store, string tenant, string kind, string? status, int page, int pageSize,
        string? sweepId = null)
    {
        (page, pageSize) = Paged<JobRecord>.Clamp(page, pageSize);
        var where = "WHERE Tenant = ? AND Kind = ?";
        var args = new List<object?> { tenant, kind };
        if (!string.IsNullOrEmpty(status))
        {
            where += " AND Status = ?";
            args.Add(status);
        }
        if (!string.IsNullOrEmpty(sweepId))
        {
            where += " AND SweepId = ?";
            args.Add(sweepId);
        }
        var (items, total) = store.Read(db => (
            db.Query<JobRecord>($"SELECT * FROM jobs {where} ORDER BY CreatedAt DESC, Id DESC LIMIT ? OFFSET ?", [.. args, pageSize, (page - 1) * pageSize]),
            db.ExecuteScalar<int>($"SELECT COUNT(*) FROM jobs {where}", [.. args])));
        return (items, page, pageSize, total);
    }

    /// <summary>
    /// Marks a queued or running job canceled (its job watcher then ends the sandbox within half a second). Returns
    /// the record afterwards and whether this call canceled it; null when there is no such job.
    /// </summary>
    public static (JobRecord Job, bool Canceled)? Cancel(MetadataStore store, string tenant, string id, string kind)
    {
        var canceled = JobStore.Cancel(store, tenant, id, kind);
        var job = Find(store, tenant, id, kind);
        return job is null ? null : (job, canceled);
    }

    /// <summary>A 400 naming <c>status</c> when a list is filtered by a word that is not a job state.</summary>
    public static ProblemHttpResult? CheckStatus(string? status) =>
        status is null || JobStatuses.TryParse(status, out _)
            ? null
            : Problems.Field(400, "status", $"status '{Clip(status)}' is not a job state; use one of {string.Join(", ", JobStatuses.Words)}, or leave it out for all.");

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    /// <summary>A time read from the database, marked as UTC.</summary>
    public static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);

    /// <summary>The same, for optional times.</summary>
    public static DateTime? Utc(DateTime? t) => t is { } v ? Utc(v) : null;
}
