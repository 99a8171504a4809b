using Hangfire;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Jobs;

/// <summary>
/// Finds jobs that lost their process (or their whole node) and runs them again, without waiting for Hangfire (whose fetched jobs
/// stay invisible for 30 minutes after a crash). Every few seconds, and at start:
/// a <em>running</em> job whose heartbeat is older than <see cref="JobsOptions.StaleAfterSeconds"/> is
/// re-enqueued (the claim counts the attempt); a <em>queued</em> job that was never handed to Hangfire, or
/// was handed over longer ago than that and still has not been claimed, is enqueued again. Running a job
/// twice is harmless: execution is idempotent per job id (<see cref="SandboxJob"/>). A job that waits for its tenant's turn
/// (<see cref="JobsOptions.MaxRunningPerTenant"/>) has a scheduled Hangfire job and is left alone, as is a job a graceful shutdown
/// put back on its queue. Each sweep also removes the scratch folders of dead attempts (<see cref="LeftoverFolders"/>).
/// </summary>
public sealed class JobRecovery(
    MetadataStore store, JobQueue queue, JobStorage hangfire, IOptions<JobsOptions> options, IOptions<StorageOptions> storage, ILogger<JobRecovery> logger)
    : BackgroundService
{
    /// <summary>Removes the sandbox and training scratch folders of attempts whose process is gone; returns how many.</summary>
    public int RemoveLeftovers()
    {
        var o = options.Value;
        var longest = TimeSpan.FromSeconds(Math.Max(o.TimeLimitSeconds, o.TrainingTimeLimitSeconds) + o.StaleAfterSeconds);
        var removed = LeftoverFolders.Remove(storage.Value.FullRoot, TimeSpan.FromSeconds(o.StaleAfterSeconds), longest);
        foreach (var path in removed) logger.LogInformation("Removed {Folder}: the job attempt that used it is gone", path);
        return removed.Count;
    }

    /// <summary>One sweep; returns the number of jobs enqueued again.</summary>
    public int Sweep()
    {
        var staleSeconds = options.Value.StaleAfterSeconds;
        var stale = DateTime.UtcNow.AddSeconds(-staleSeconds);
        var orphans = store.Read(db => db.Query<JobRecord>(
            "SELECT * FROM jobs WHERE (Status = ? AND (HeartbeatAt IS NULL OR HeartbeatAt < ?)) OR (Status = ? AND (EnqueuedAt IS NULL OR EnqueuedAt < ?) AND CreatedAt < ?)",
            JobStatus.Running.Word(), stale, JobStatus.Queued.Word(), stale, stale));
        var count = 0;
        foreach (var job in orphans)
        {
            if (job.State == JobStatus.Queued && job.HangfireJobId is not null && StillWaiting(job.HangfireJobId)) continue;
            if (job.State == JobStatus.Running)
            {
                // Hand the job back to the queue first, so that later sweeps (of this node or another) see it waiting and leave it;
                // the condition on the heartbeat makes one sweeper win when several nodes sweep at once.
                if (!JobStore.RequeueLost(store, job, stale)) continue;
            }
            else
            {
                // A queued job that no queue holds: the first sweeper to move its EnqueuedAt forward enqueues it.
                if (!JobStore.TakeOrphan(store, job.Id, stale)) continue;
            }
            count++;
            logger.LogWarning("Job {JobId} ({Status}, attempt {Attempts} on node {Node}) lost its worker; enqueuing it again", job.Id, job.Status, job.Attempts, job.Node);
            queue.Enqueue(job);
        }
        return count;
    }

    /// <summary>Whether Hangfire still holds the job in its queue (then it will be delivered; nothing to do).</summary>
    private bool StillWaiting(string hangfireJobId)
    {
        using var connection = hangfire.GetConnection();
        var state = connection.GetStateData(hangfireJobId)?.Name;
        return state is "Enqueued" or "Scheduled" or "Awaiting";
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromSeconds(Math.Clamp(options.Value.StaleAfterSeconds / 3.0, 1, 10));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                Sweep();
                RemoveLeftovers();
            }
            catch (Exception e) when (MetadataStore.Unavailable(e))
            {
                logger.LogWarning("Job recovery sweep skipped: the database is unavailable ({Error})", e.Message);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Job recovery sweep: the scratch folders could not be listed ({Error})", e.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Job recovery sweep failed");
            }
            try
            {
                await Task.Delay(period, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
