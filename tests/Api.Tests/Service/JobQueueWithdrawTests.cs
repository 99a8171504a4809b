using Hangfire;
using Hangfire.Storage.SQLite;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// The records on a disk with room, Hangfire's <c>jobs.db</c> on a tmpfs that is full: the job record and its key are inserted,
/// the enqueue fails, and both are withdrawn (deterministically the path that a full shared disk takes when the records' write
/// still fits and Hangfire's does not).
/// </summary>
public sealed class JobQueueWithdrawTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "lambdaservice-queue-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void A_job_that_hangfire_cannot_store_on_a_full_disk_is_withdrawn_with_its_idempotency_key()
    {
        using var disk = new SmallFileSystem(8);
        using var hangfire = new SQLiteStorage(Path.Combine(disk.Path, "jobs.db"), new SQLiteStorageOptions());
        using var metadata = new MetadataStore(Microsoft.Extensions.Options.Options.Create(new StorageOptions { Root = _root }));
        var idempotency = new Idempotency(metadata);
        var queue = new JobQueue(new BackgroundJobClient(hangfire), metadata, NullLogger<JobQueue>.Instance);
        disk.Fill();

        var job = new JobRecord { Id = "msr_withdrawn", Tenant = "t", Kind = JobRecord.MeasureKind, Status = "queued", CreatedAt = DateTime.UtcNow };
        var (created, _) = idempotency.Create("t", "key-1", "measurement", "hash", job.Id, db => JobStore.Add(db, job));
        Assert.Equal(Idempotency.Lookup.New, created);
        Assert.NotNull(metadata.Read(db => db.Find<JobRecord>(job.Id)));

        var failure = Assert.ThrowsAny<Exception>(() => queue.EnqueueNew([job], db => Idempotency.Forget(db, "key-1", job.Id)));
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(failure));
        Assert.Null(metadata.Read(db => db.Find<JobRecord>(job.Id)));
        Assert.Equal(0, metadata.Read(db => db.ExecuteScalar<int>("SELECT COUNT(*) FROM idempotency")));
        // The key is free again: the client's retry creates the job.
        Assert.Equal(Idempotency.Lookup.New, idempotency.Find("t", "key-1", "measurement", "hash").Result);
    }
}
