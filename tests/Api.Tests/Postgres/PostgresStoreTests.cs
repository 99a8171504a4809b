using System.Security.Cryptography;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace LambdaService.Api.Tests.Postgres;

/// <summary>The records and the artifact store on a real PostgreSQL server, each test on a database of its own.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresStoreTests(SharedPostgres postgres) : IDisposable
{
    private readonly List<string> _folders = [];
    private readonly List<MetadataStore> _stores = [];

    /// <summary>Two nodes' artifact stores on one database, each with its own empty folder.</summary>
    private (ArtifactStore A, ArtifactStore B, IOptions<StorageOptions> OptionsB) TwoNodes(string connectionString)
    {
        var (optionsA, optionsB) = (Options(connectionString), Options(connectionString));
        var (metaA, metaB) = (new MetadataStore(optionsA), new MetadataStore(optionsB));
        _stores.AddRange([metaA, metaB]);
        return (new ArtifactStore(optionsA, metaA, NullLogger<ArtifactStore>.Instance), new ArtifactStore(optionsB, metaB, NullLogger<ArtifactStore>.Instance), optionsB);
    }

    private IOptions<StorageOptions> Options(string connectionString)
    {
        var folder = Path.Combine(Path.GetTempPath(), "lambdaservice-pgnode-" + Guid.NewGuid().ToString("N"));
        _folders.Add(folder);
        return Microsoft.Extensions.Options.Options.Create(new StorageOptions { Root = folder, Provider = "postgres", PostgresConnectionString = connectionString });
    }

    [Fact]
    public void Records_written_on_one_node_read_back_the_same_on_another_with_times_in_utc()
    {
        var db = postgres.NewDatabase();
        using var a = new MetadataStore(Options(db));
        using var b = new MetadataStore(Options(db));
        var created = new DateTime(2026, 12, 6, 18, 0, 0, DateTimeKind.Utc).AddTicks(1234560);   // microsecond precision: PostgreSQL keeps 1 µs
        var job = new JobRecord
        {
            Id = "msr_1", Tenant = "t", Status = "queued", Progress = 0.25, RequestJson = "{\"a\":1}", ModelId = "m", DatasetId = "d",
            CreatedAt = created, HeartbeatAt = null, Attempts = 2, Queue = "gpu", Node = null,
        };
        a.Write(d => d.Insert(job));
        a.Write(d => d.Insert(new DatasetRecord { Id = "ds_1", Tenant = "t", HasLabels = true, Classes = 3, Rows = 7, CreatedAt = created }));

        var read = b.Read(d => d.Find<JobRecord>("msr_1"))!;
        Assert.Equal(created, read.CreatedAt);
        Assert.Equal(DateTimeKind.Utc, read.CreatedAt.Kind);
        Assert.Null(read.HeartbeatAt);
        Assert.Equal((0.25, 2, "gpu", "{\"a\":1}"), (read.Progress, read.Attempts, read.Queue, read.RequestJson));
        Assert.True(b.Read(d => d.Find<DatasetRecord>("ds_1"))!.HasLabels);
        Assert.Null(b.Read(d => d.Find<JobRecord>("nope")));

        // Positional parameters, counts as int, conditional updates.
        Assert.Equal(1, b.Write(d => d.Execute("UPDATE jobs SET Status = ?, HeartbeatAt = ? WHERE Id = ? AND Status = ?", "running", created, "msr_1", "queued")));
        Assert.Equal(0, b.Write(d => d.Execute("UPDATE jobs SET Status = ? WHERE Id = ? AND Status = ?", "running", "msr_1", "queued")));
        Assert.Equal(1, a.Read(d => d.ExecuteScalar<int>("SELECT COUNT(*) FROM jobs WHERE Tenant = ? AND HeartbeatAt = ?", "t", created)));

        read.Node = "gpu-7";
        b.Write(d => d.Update(read));
        Assert.Equal("gpu-7", a.Read(d => d.Query<JobRecord>("SELECT * FROM jobs WHERE Node = ?", "gpu-7")).Single().Node);
        a.Write(d => d.Delete<JobRecord>("msr_1"));
        Assert.Empty(b.Read(d => d.Query<JobRecord>("SELECT * FROM jobs")));
    }

    [Fact]
    public void A_duplicate_key_is_refused_by_insert_if_absent_and_the_first_row_stays()
    {
        var db = postgres.NewDatabase();
        using var store = new MetadataStore(Options(db));
        Assert.True(store.Write(d => d.InsertIfAbsent(new IdempotencyRecord { TenantKey = "t/k", RequestHash = "first", ResourceId = "a", CreatedAt = DateTime.UtcNow })));
        Assert.False(store.Write(d => d.InsertIfAbsent(new IdempotencyRecord { TenantKey = "t/k", RequestHash = "second", ResourceId = "b", CreatedAt = DateTime.UtcNow })));
        Assert.Equal("first", store.Read(d => d.Find<IdempotencyRecord>("t/k"))!.RequestHash);
        Assert.Throws<PostgresException>(() => store.Write(d => d.Insert(new IdempotencyRecord { TenantKey = "t/k" })));
    }

    [Fact]
    public void The_schema_migrates_an_older_database_by_adding_the_missing_columns()
    {
        var db = postgres.NewDatabase();
        using (var connection = new NpgsqlConnection(db))
        {
            connection.Open();
            // The jobs table as an older version made it: no Node column, no job_attempts table.
            using var command = new NpgsqlCommand("CREATE TABLE jobs (id text PRIMARY KEY, tenant text, status text); INSERT INTO jobs VALUES ('old', 't', 'succeeded')", connection);
            command.ExecuteNonQuery();
        }
        using var store = new MetadataStore(Options(db));
        var old = store.Read(d => d.Find<JobRecord>("old"))!;
        Assert.Equal(("t", "succeeded", null), (old.Tenant, old.Status, old.Node));
        store.Write(d => d.Execute("UPDATE jobs SET Node = ? WHERE Id = ?", "n1", "old"));
        Assert.Equal("n1", store.Read(d => d.Find<JobRecord>("old"))!.Node);
        Assert.Empty(store.Read(d => d.Query<JobAttemptRecord>("SELECT * FROM job_attempts")));
    }

    [Fact]
    public async Task Content_stored_by_one_node_is_fetched_by_another_with_an_empty_folder_and_a_damaged_cache_is_replaced()
    {
        var db = postgres.NewDatabase();
        var (a, b, optionsB) = TwoNodes(db);

        // 2.5 chunks, so the last chunk is partial.
        var content = new byte[ArtifactStore.ChunkBytes * 5 / 2];
        new Random(3).NextBytes(content);
        var sha = Convert.ToHexStringLower(SHA256.HashData(content));
        var staged = await a.StageAsync(new MemoryStream(content), long.MaxValue, CancellationToken.None);
        var stored = await a.CommitAsync(staged, CancellationToken.None);
        Assert.Equal(sha, stored.Sha256);
        using (var connection = new NpgsqlConnection(db))
        {
            connection.Open();
            using var count = new NpgsqlCommand("SELECT COUNT(*), MAX(octet_length(data)) FROM artifact_chunks WHERE sha256 = $1", connection) { Parameters = { new() { Value = sha } } };
            using var reader = count.ExecuteReader();
            reader.Read();
            Assert.Equal((3L, ArtifactStore.ChunkBytes), (reader.GetInt64(0), reader.GetInt32(1)));
        }

        var path = b.Fetch(sha);
        Assert.StartsWith(optionsB.Value.FullRoot, path, StringComparison.Ordinal);
        Assert.Equal(content, await File.ReadAllBytesAsync(path));

        // A cached copy that no longer matches its name is downloaded again before anyone gets it.
        var damaged = (byte[])content.Clone();
        damaged[12345] ^= 0xff;
        await File.WriteAllBytesAsync(path, damaged);
        Assert.Equal(content, await File.ReadAllBytesAsync(b.Fetch(sha)));

        // The same content committed again (another node, another upload) is stored once.
        await b.CommitAsync(await b.StageAsync(new MemoryStream(content), long.MaxValue, CancellationToken.None), CancellationToken.None);
        b.DeleteIfExists(sha);
        Assert.False(File.Exists(path));
        Assert.Throws<ArtifactMissingException>(() => b.Fetch(sha));
        // Node A still had its copy; a delete by any node is final for all of them.
        Assert.True(File.Exists(stored.Path));
        Assert.Throws<ArtifactMissingException>(() => a.Fetch(sha));
        Assert.False(File.Exists(stored.Path));
    }

    [Fact]
    public async Task An_empty_file_round_trips_as_one_empty_chunk()
    {
        var (a, b, _) = TwoNodes(postgres.NewDatabase());
        var stored = await a.CommitAsync(await a.StageAsync(new MemoryStream([]), 10, CancellationToken.None), CancellationToken.None);
        // SHA-256 of the empty string (FIPS 180-2 test vector).
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", stored.Sha256);
        Assert.Empty(await File.ReadAllBytesAsync(b.Fetch(stored.Sha256)));
    }

    public void Dispose()
    {
        foreach (var store in _stores) store.Dispose();
        foreach (var folder in _folders.Where(Directory.Exists)) Directory.Delete(folder, recursive: true);
    }
}
