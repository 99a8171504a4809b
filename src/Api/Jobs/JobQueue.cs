using Hangfire;
using Hangfire.States;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace LambdaService.Api.Jobs;

/// <summary>Puts jobs (measurements and training runs) on Hangfire's queue and remembers the Hangfire id on the job record.</summary>
public sealed class JobQueue(IBackgroundJobClient client, MetadataStore store, ILogger<JobQueue> logger)
{
    /// <summary>Enqueues the job with this id on its record's queue.</summary>
    public void Enqueue(JobRecord job) => Enqueue(job, _ => { });

    /// <summary>
    /// Enqueues jobs whose records the caller has just inserted for a request. When one of them cannot be enqueued — Hangfire's
    /// storage (<c>jobs.db</c> on the same disk as the records, or the database) full, read-only or away — the request's records are
    /// withdrawn again before the exception goes on to become the request's answer (507 or 503, <see cref="StorageErrors"/>):
    /// <paramref name="withdraw"/> removes what the request wrote besides the job records (a sweep, its <c>Idempotency-Key</c>), in
    /// one transaction with the job records and their attempts, and the Hangfire jobs already created are deleted. Otherwise a
    /// request answered with an error would still leave a queued job that job recovery enqueues later, and a key pointing at it.
    /// </summary>
    public void EnqueueNew(IReadOnlyList<JobRecord> jobs, Action<IDb> withdraw)
    {
        var created = new List<string>();
        try
        {
            foreach (var job in jobs) Enqueue(job, created.Add);
        }
        catch (Exception e)
        {
            Withdraw(jobs, created, withdraw, e);
            throw;
        }
    }

    /// <summary>
    /// Hands the job to Hangfire to be enqueued on its record's queue after <paramref name="delay"/> (a scheduled job holds no
    /// worker meanwhile; <see cref="JobRecovery"/> leaves a job whose Hangfire job is scheduled alone).
    /// </summary>
    public void Schedule(JobRecord job, TimeSpan delay)
    {
        var hangfireId = client.Schedule<SandboxJob>(job.Queue, j => j.RunAsync(job.Id, CancellationToken.None), delay);
        JobStore.MarkEnqueued(store, job.Id, hangfireId);
    }

    /// <summary>A 400 naming <c>queue</c> when a request names a queue that is not in <see cref="JobsOptions.AvailableQueues"/>.</summary>
    public static ProblemHttpResult? Check(string? queue, JobsOptions options)
    {
        if (queue is null || options.EffectiveAvailableQueues.Contains(queue, StringComparer.Ordinal)) return null;
        return Problems.Field(400, "queue", $"queue '{queue}' is not known; use one of {string.Join(", ", options.EffectiveAvailableQueues)} (Jobs:AvailableQueues), or leave it out for '{options.DefaultQueue}'.");
    }

    private void Enqueue(JobRecord job, Action<string> created)
    {
        var hangfireId = client.Create<SandboxJob>(j => j.RunAsync(job.Id, CancellationToken.None), new EnqueuedState(job.Queue));
        created(hangfireId);
        JobStore.MarkEnqueued(store, job.Id, hangfireId);
    }

    private void Withdraw(IReadOnlyList<JobRecord> jobs, List<string> hangfireIds, Action<IDb> withdraw, Exception cause)
    {
        var ids = jobs.Select(j => j.Id).ToList();
        try
        {
            // The records first: a Hangfire job whose record is gone finds nothing to claim and ends at once (SandboxJob).
            store.Write(db =>
            {
                foreach (var id in ids) JobStore.Withdraw(db, id);
                withdraw(db);
            });
            logger.LogWarning(cause, "Jobs {JobIds} could not be enqueued ({Failure}); their records were withdrawn", ids, StorageErrors.Classify(cause));
        }
        catch (Exception e)
        {
            logger.LogError(e, "Jobs {JobIds} could not be enqueued ({Cause}) and their records could not be withdrawn; job recovery will enqueue them later",
                ids, cause.Message);
        }
        foreach (var hangfireId in hangfireIds)
        {
            try
            {
                client.Delete(hangfireId);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Hangfire job {HangfireJobId} of a withdrawn job could not be deleted; it will find no record and end", hangfireId);
            }
        }
    }
}
