using Hangfire;
using Hangfire.States;
using LambdaService.Api.Storage;

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
}
