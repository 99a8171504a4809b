using Hangfire;
using Hangfire.States;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace LambdaService.Api.Jobs;

/// <summary>Puts jobs (measurements and training runs) on Hangfire's queue and remembers the Hangfire id on the job record.</summary>
public sealed class JobQueue(IBackgroundJobClient client, MetadataStore store)
{
    /// <summary>Enqueues the job with this id on its record's queue.</summary>
    public void Enqueue(JobRecord job)
    {
        var hangfireId = client.Create<SandboxJob>(j => j.RunAsync(job.Id, CancellationToken.None), new EnqueuedState(job.Queue));
        store.Write(db => db.Execute("UPDATE jobs SET HangfireJobId = ?, EnqueuedAt = ? WHERE Id = ?", hangfireId, DateTime.UtcNow, job.Id));
    }

    /// <summary>
    /// Hands the job to Hangfire to be enqueued on its record's queue after <paramref name="delay"/> (a scheduled job holds no
    /// worker meanwhile; <see cref="JobRecovery"/> leaves a job whose Hangfire job is scheduled alone).
    /// </summary>
    public void Schedule(JobRecord job, TimeSpan delay)
    {
        var hangfireId = client.Schedule<SandboxJob>(job.Queue, j => j.RunAsync(job.Id, CancellationToken.None), delay);
        store.Write(db => db.Execute("UPDATE jobs SET HangfireJobId = ?, EnqueuedAt = ? WHERE Id = ?", hangfireId, DateTime.UtcNow, job.Id));
    }

    /// <summary>A 400 naming <c>queue</c> when a request names a queue that is not in <see cref="JobsOptions.AvailableQueues"/>.</summary>
    public static ProblemHttpResult? Check(string? queue, JobsOptions options)
    {
        if (queue is null || options.EffectiveAvailableQueues.Contains(queue, StringComparer.Ordinal)) return null;
        return Problems.Field(400, "queue", $"queue '{queue}' is not known; use one of {string.Join(", ", options.EffectiveAvailableQueues)} (Jobs:AvailableQueues), or leave it out for '{options.DefaultQueue}'.");
    }
}
