using System.Text.Json;
using Hangfire;
using LambdaService.Api.Datasets;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Measurements;
using LambdaService.Api.Models;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Jobs;

/// <summary>
/// Runs one measurement in a sandbox process. Execution is idempotent per job id: the job record is claimed
/// with a fresh run token (status running, attempts + 1), every write afterwards is conditioned on that
/// token, and a record already final is left alone — so a Hangfire job delivered twice (after a crash, its
/// invisibility timeout) stores its result exactly once. Hangfire never retries (a crash counts as an
/// attempt here, and a job fails after <see cref="JobsOptions.MaxAttempts"/>).
/// </summary>
public sealed class MeasurementJob(
    MetadataStore store, ArtifactStore artifacts, SandboxProcess sandbox, JobQueue queue, IOptions<JobsOptions> options, IOptions<LimitsOptions> limits,
    ILogger<MeasurementJob> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Runs the job (Hangfire entry point).</summary>
    [AutomaticRetry(Attempts = 0)]
    public async Task RunAsync(string jobId, CancellationToken cancellationToken)
    {
        var claim = Claim(jobId);
        if (claim is null) return;
        var (job, token) = claim.Value;
        logger.LogInformation("Measurement {JobId} attempt {Attempt} started", jobId, job.Attempts);

        var model = store.Read(db => db.Find<ModelRecord>(job.ModelId));
        var dataset = store.Read(db => db.Find<DatasetRecord>(job.DatasetId));
        if (model is null || dataset is null)
        {
            Finish(jobId, token, JobStatus.Failed, null, Problem(409, "Input deleted", "the model or dataset was deleted before the job ran; upload it again and resubmit.", "modelId"));
            return;
        }
        var spec = new RunnerSpec("measure", artifacts.PathOf(model.Sha256), artifacts.PathOf(dataset.Sha256), dataset.LabelColumn,
            limits.Value.MaxDecompressedBytes, JsonSerializer.Deserialize<MeasurementRequest>(job.RequestJson, Json)!);
        var o = options.Value;
        var sandboxLimits = new SandboxLimits(TimeSpan.FromSeconds(o.TimeLimitSeconds), (long)o.MemoryLimitMb << 20);

        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var canceledByUser = false;
        var lastProgress = 0.0;
        var watcher = Task.Run(async () =>
        {
            while (!run.IsCancellationRequested)
            {
                var status = store.Write(db =>
                {
                    db.Execute("UPDATE jobs SET HeartbeatAt = ?, Progress = ? WHERE Id = ? AND RunToken = ? AND Status = ?",
                        DateTime.UtcNow, Volatile.Read(ref lastProgress), jobId, token, JobStatus.Running);
                    return db.ExecuteScalar<string>("SELECT Status FROM jobs WHERE Id = ?", jobId);
                });
                if (status == JobStatus.Canceled)
                {
                    canceledByUser = true;
                    await run.CancelAsync();
                    return;
                }
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250), run.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }, CancellationToken.None);

        SandboxOutcome outcome;
        try
        {
            outcome = await sandbox.RunAsync(spec, sandboxLimits, p => Volatile.Write(ref lastProgress, p), run.Token);
        }
        finally
        {
            await run.CancelAsync();
            await watcher;
        }

        switch (outcome)
        {
            case SandboxOutcome.Succeeded s:
                Finish(jobId, token, JobStatus.Succeeded, s.ResultJson, null);
                break;
            case SandboxOutcome.UserError u:
                Finish(jobId, token, JobStatus.Failed, null, Problem(422, "The model or data cannot be measured", u.Error.Detail, u.Error.Field));
                break;
            case SandboxOutcome.Canceled when canceledByUser:
                logger.LogInformation("Measurement {JobId} canceled", jobId);
                break;
            case SandboxOutcome.Canceled:
                // The server is shutting down: leave the job running; its heartbeat stops and recovery runs it again.
                logger.LogWarning("Measurement {JobId} interrupted by shutdown; it will be resumed", jobId);
                break;
            case SandboxOutcome.Crashed c when job.Attempts < o.MaxAttempts:
                logger.LogWarning("Measurement {JobId} attempt {Attempt} crashed: {Cause}; trying again", jobId, job.Attempts, c.Describe());
                var requeued = store.Write(db => db.Execute(
                    "UPDATE jobs SET Status = ?, RunToken = NULL, ErrorJson = ? WHERE Id = ? AND RunToken = ? AND Status = ?",
                    JobStatus.Queued, Problem(500, "The sandbox process crashed", c.Describe(), null), jobId, token, JobStatus.Running));
                if (requeued == 1) queue.Enqueue(job);
                break;
            default:
                Finish(jobId, token, JobStatus.Failed, null, Problem(500, TitleOf(outcome), outcome.Describe(), null));
                break;
        }
    }

    private (JobRecord Job, string Token)? Claim(string jobId)
    {
        var stale = DateTime.UtcNow.AddSeconds(-options.Value.StaleAfterSeconds);
        var maxAttempts = options.Value.MaxAttempts;
        return store.Write<(JobRecord, string)?>(db =>
        {
            var job = db.Find<JobRecord>(jobId);
            if (job is null || JobStatus.IsFinal(job.Status)) return null;
            if (job.Status == JobStatus.Running && job.HeartbeatAt > stale) return null;   // someone else runs it
            if (job.Attempts >= maxAttempts)
            {
                job.Status = JobStatus.Failed;
                job.FinishedAt = DateTime.UtcNow;
                job.ErrorJson = Problem(500, "Too many attempts",
                    $"the job was started {job.Attempts} times without finishing (its sandbox crashed or the service stopped mid-run); it is not retried again."
                    + (job.ErrorJson is null ? "" : " Last error: " + JsonSerializer.Deserialize<ProblemDetails>(job.ErrorJson, Json)?.Detail), null);
                db.Update(job);
                return null;
            }
            var token = Guid.NewGuid().ToString("N");
            job.Status = JobStatus.Running;
            job.Attempts++;
            job.RunToken = token;
            job.StartedAt ??= DateTime.UtcNow;
            job.HeartbeatAt = DateTime.UtcNow;
            db.Update(job);
            return (job, token);
        });
    }

    private void Finish(string jobId, string token, string status, string? resultJson, string? errorJson)
    {
        var updated = store.Write(db => db.Execute(
            "UPDATE jobs SET Status = ?, ResultJson = ?, ErrorJson = ?, Progress = ?, FinishedAt = ?, RunToken = NULL WHERE Id = ? AND RunToken = ? AND Status = ?",
            status, resultJson, errorJson, status == JobStatus.Succeeded ? 1.0 : 0.0, DateTime.UtcNow, jobId, token, JobStatus.Running));
        logger.LogInformation("Measurement {JobId} finished as {Status} (stored: {Stored})", jobId, status, updated == 1);
    }

    private static string TitleOf(SandboxOutcome outcome) => outcome switch
    {
        SandboxOutcome.TimedOut => "Time limit exceeded",
        SandboxOutcome.MemoryExceeded => "Memory limit exceeded",
        SandboxOutcome.Crashed => "The sandbox process crashed",
        _ => "The job failed",
    };

    internal static string Problem(int status, string title, string detail, string? field)
    {
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail };
        if (field is not null) problem.Extensions["field"] = field;
        return JsonSerializer.Serialize(problem, Json);
    }
}
