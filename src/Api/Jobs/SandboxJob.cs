using System.Text.Json;
using Hangfire;
using LambdaService.Api.Datasets;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Measurements;
using LambdaService.Api.Models;
using LambdaService.Api.Storage;
using LambdaService.Api.Training;
using LambdaService.Measurement.Models;
using LambdaService.Training.Export;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Jobs;

/// <summary>
/// Runs one job, a measurement or a training run, in a sandbox process. Execution is idempotent per job id: the job record is claimed
/// with a fresh run token (status running, attempts + 1), every write afterwards is conditioned on that
/// token, and a record already final is left alone — so a Hangfire job delivered twice (after a crash, its
/// invisibility timeout) stores its result exactly once. Hangfire never retries (a crash counts as an
/// attempt here, and a job fails after <see cref="JobsOptions.MaxAttempts"/>). An attempt a graceful shutdown interrupts does not count
/// and goes back on the queue at once; a sandbox that dies while loading the model fails the job without a retry (the same file would
/// kill the next attempt too); a tenant with <see cref="JobsOptions.EffectiveMaxRunningPerTenant"/> jobs running has its next job wait on the queue.
/// </summary>
/// <remarks>
/// A training run's sandbox writes the trained network as ONNX and TorchScript into a scratch folder of the store;
/// on success both files enter the artifact store and are registered as the tenant's models in the same
/// transaction that stores the result, so a run that was canceled meanwhile registers nothing.
/// </remarks>
public sealed class SandboxJob(
    MetadataStore store, ArtifactStore artifacts, SandboxProcess sandbox, JobQueue queue, IOptions<JobsOptions> options, IOptions<LimitsOptions> limits,
    ILogger<SandboxJob> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Runs the job (Hangfire entry point).</summary>
    [AutomaticRetry(Attempts = 0)]
    public async Task RunAsync(string jobId, CancellationToken cancellationToken)
    {
        var claim = Claim(jobId);
        if (claim is null) return;
        if (claim.Token is null)
        {
            Defer(claim.Job, claim.Running);
            return;
        }
        var (job, token) = (claim.Job, claim.Token);
        logger.LogInformation("Job {JobId} ({Kind}) attempt {Attempt} started", jobId, job.Kind, job.Starts);

        // Named with this process's owner tag, so that the recovery sweep of any node sharing the store can tell a dead attempt's leftover (LeftoverFolders).
        var exportDirectory = job.Kind == JobRecord.TrainKind ? artifacts.NewScratchDirectory(LeftoverFolders.TrainPrefix + LeftoverFolders.OwnerTag) : null;
        if (exportDirectory is not null) LeftoverFolders.Hold(exportDirectory);
        RunnerSpec? spec = null;
        try
        {
            spec = Spec(job, exportDirectory);
            if (spec is null)
            {
                Fail(job, token, Problem(409, "Input deleted",
                    "a model or dataset of the job was deleted before it ran; upload it again and resubmit.", job.Kind == JobRecord.TrainKind ? "dataset.datasetId" : "modelId"));
                return;
            }
            await RunAsync(job, token, spec, exportDirectory, cancellationToken);
        }
        finally
        {
            if (exportDirectory is not null)
            {
                if (Directory.Exists(exportDirectory)) Directory.Delete(exportDirectory, recursive: true);
                LeftoverFolders.Release(exportDirectory);
            }
            if (spec is not null) ReleaseInputs(spec, jobId);
            HandOver(job.Tenant, jobId);
        }
    }

    /// <summary>
    /// Leaves a job whose tenant has <see cref="JobsOptions.EffectiveMaxRunningPerTenant"/> jobs running on its queue without holding a
    /// worker: Hangfire delivers it again after a delay, and <see cref="HandOver"/> enqueues it at once when one of the tenant's jobs ends first.
    /// </summary>
    private void Defer(JobRecord job, int running)
    {
        var delay = TimeSpan.FromSeconds(Math.Max(5, options.Value.StaleAfterSeconds));
        logger.LogInformation("Job {JobId} waits: tenant {Tenant} has {Running} jobs running (Jobs:MaxRunningPerTenant {Cap}); it is tried again within {Delay}",
            job.Id, job.Tenant, running, options.Value.EffectiveMaxRunningPerTenant, delay);
        queue.Schedule(job, delay);
    }

    /// <summary>When a job of <paramref name="tenant"/> has ended, enqueues the tenant's oldest job that waits for its turn (<see cref="Defer"/>), if any.</summary>
    private void HandOver(string tenant, string endedJobId)
    {
        try
        {
            var next = JobStore.TakeDeferred(store, tenant);
            if (next is null) return;
            logger.LogInformation("Job {JobId} of tenant {Tenant} ended; its waiting job {NextJobId} is enqueued", endedJobId, tenant, next.Id);
            queue.Enqueue(next);
        }
        catch (Exception e) when (MetadataStore.Unavailable(e))
        {
            // The waiting job's own scheduled delivery (Defer) still comes.
            logger.LogWarning("Job {JobId}: the tenant's waiting jobs were not handed over, the database is unavailable ({Error})", endedJobId, e.Message);
        }
    }

    /// <summary>
    /// Deletes the stored files of this job's inputs that nothing refers to any more: a model or dataset deleted while the
    /// job ran was kept for it (<see cref="MetadataStore.ArtifactUnused"/>) and goes now.
    /// </summary>
    private void ReleaseInputs(RunnerSpec spec, string jobId)
    {
        var paths = new[] { spec.ModelPath, spec.DataPath, spec.Training?.TestDataPath };
        foreach (var sha in paths.OfType<string>().Select(Path.GetFileName).OfType<string>().Distinct())
        {
            var unused = store.Write(db => MetadataStore.ArtifactUnused(db, sha, ""));
            if (!unused) continue;
            artifacts.DeleteIfExists(sha);
            logger.LogInformation("Deleted stored content {Sha256}: its record was deleted while job {JobId} used it", sha, jobId);
        }
    }

    /// <summary>The runner's spec for <paramref name="job"/>, or null when an input record (or its stored content) has gone.</summary>
    private RunnerSpec? Spec(JobRecord job, string? exportDirectory)
    {
        try
        {
            return SpecOrNull(job, exportDirectory);
        }
        catch (ArtifactMissingException e)
        {
            logger.LogWarning("Job {JobId}: input content {Sha256} is no longer stored", job.Id, e.Sha256);
            return null;
        }
    }

    private RunnerSpec? SpecOrNull(JobRecord job, string? exportDirectory)
    {
        var maxBytes = limits.Value.MaxDecompressedBytes;
        if (job.Kind == JobRecord.TrainKind)
        {
            var body = JsonSerializer.Deserialize<TrainingRunRequest>(job.RequestJson, Json)!;
            DatasetRecord? train = null, test = null;
            if (!string.IsNullOrEmpty(job.DatasetId) && (train = store.Read(db => db.Find<DatasetRecord>(job.DatasetId))) is null) return null;
            if (!string.IsNullOrEmpty(job.TestDatasetId) && (test = store.Read(db => db.Find<DatasetRecord>(job.TestDatasetId))) is null) return null;
            return new RunnerSpec(JobRecord.TrainKind, null, train is null ? null : artifacts.Fetch(train.Sha256), train?.LabelColumn, maxBytes, null,
                new TrainingRunnerSpec(body.ToTrainingRequest(), test is null ? null : artifacts.Fetch(test.Sha256), test?.LabelColumn, exportDirectory!));
        }
        var model = store.Read(db => db.Find<ModelRecord>(job.ModelId));
        var dataset = store.Read(db => db.Find<DatasetRecord>(job.DatasetId));
        if (model is null || dataset is null) return null;
        return new RunnerSpec(JobRecord.MeasureKind, artifacts.Fetch(model.Sha256), artifacts.Fetch(dataset.Sha256), dataset.LabelColumn,
            maxBytes, JsonSerializer.Deserialize<MeasurementRequest>(job.RequestJson, Json)!);
    }

    private async Task RunAsync(JobRecord job, string token, RunnerSpec spec, string? exportDirectory, CancellationToken cancellationToken)
    {
        var jobId = job.Id;
        var o = options.Value;
        var sandboxLimits = new SandboxLimits(o.TimeLimitOf(job.Kind), (long)o.MemoryLimitMb << 20);

        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var canceledByUser = false;
        var lastProgress = 0.0;
        string? lastDetail = null;
        var watcher = Task.Run(async () =>
        {
            while (!run.IsCancellationRequested)
            {
                JobStatus? status = null;
                try
                {
                    status = JobStore.Heartbeat(store, jobId, token, Volatile.Read(ref lastProgress), Volatile.Read(ref lastDetail));
                }
                catch (Exception e) when (MetadataStore.Unavailable(e))
                {
                    // The database is away (restarting, a network blip): keep the sandbox running and try again. If it stays away past
                    // Jobs:StaleAfterSeconds another node may take the job over; this attempt's writes then no longer match its token.
                    logger.LogWarning("Job {JobId}: heartbeat not written, the database is unavailable ({Error})", jobId, e.Message);
                }
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
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            outcome = await sandbox.RunAsync(spec, sandboxLimits, report =>
            {
                Volatile.Write(ref lastProgress, report.Progress);
                if (report.Detail is not null) Volatile.Write(ref lastDetail, report.Detail);
            }, run.Token);
        }
        finally
        {
            await run.CancelAsync();
            await watcher;
        }
        ServiceMetrics.JobAttemptEnded(job.Kind, job.Queue, outcome, canceledByUser, elapsed.Elapsed);

        switch (outcome)
        {
            case SandboxOutcome.Succeeded s when job.Kind == JobRecord.TrainKind:
                await FinishTrainingAsync(job, token, s.ResultJson, exportDirectory!, Volatile.Read(ref lastDetail), cancellationToken);
                break;
            case SandboxOutcome.Succeeded s:
                Succeed(job, token, s.ResultJson);
                break;
            case SandboxOutcome.UserError u when job.Kind == JobRecord.TrainKind:
                Fail(job, token, Problem(StatusOf(u.Error), u.Error.Title ?? "The training run cannot use its data", u.Error.Detail, TrainingRunRequest.HttpField(u.Error.Field)));
                break;
            case SandboxOutcome.UserError u:
                Fail(job, token, Problem(StatusOf(u.Error), u.Error.Title ?? "The model or data cannot be measured", u.Error.Detail, MeasurementField(u.Error.Field)));
                break;
            case SandboxOutcome.Canceled when canceledByUser:
                logger.LogInformation("Job {JobId} canceled", jobId);
                Durably(() => JobStore.EndCanceled(store, job));
                break;
            case SandboxOutcome.Canceled:
                // The server is shutting down gracefully: not the job's fault. The attempt does not count toward Jobs:MaxAttempts, and the job goes
                // back on its queue at once, for another node or this one after its restart, instead of waiting Jobs:StaleAfterSeconds for recovery.
                logger.LogWarning("Job {JobId} interrupted by shutdown; it is back on its queue and the attempt does not count", jobId);
                try
                {
                    if (JobStore.RequeueInterrupted(store, job, token)) queue.Enqueue(job);
                }
                catch (Exception e) when (MetadataStore.Unavailable(e))
                {
                    // Still running without a heartbeat: recovery runs it again after Jobs:StaleAfterSeconds (and that attempt counts).
                    logger.LogWarning("Job {JobId}: the interruption was not recorded, the database is unavailable", jobId);
                }
                break;
            case SandboxOutcome.Crashed c when c.WhileLoading:
                // A native abort or fault inside the model's loader: the same file kills every attempt the same way (README, Jobs).
                logger.LogWarning("Job {JobId}: the sandbox died of {Signal} while loading the job's inputs; failed without a retry", jobId, c.Signal);
                var training = job.Kind == JobRecord.TrainKind;
                Fail(job, token, Problem(422, training ? "The training data could not be loaded" : "The model could not be loaded",
                    c.DescribeLoadFailure(training ? "the training data" : "the model"), training ? "dataset.datasetId" : "modelId"));
                break;
            case SandboxOutcome.Crashed { MissingDerivative: { } op } c:
                // libtorch lacks a derivative nested autograd asked for: deterministic, so one line naming the operator and no retry.
                logger.LogWarning("Job {JobId}: libtorch has no derivative of {Operator}; failed without a retry", jobId, op);
                var engineField = job.Kind == JobRecord.TrainKind ? "crr.engine" : "engine";
                Fail(job, token, Problem(422, "The engine cannot differentiate this model", c.DescribeMissingDerivative(engineField), engineField));
                break;
            case SandboxOutcome.Crashed c when job.Attempts < o.MaxAttempts:
                logger.LogWarning("Job {JobId} attempt {Attempt} crashed: {Cause}; trying again", jobId, job.Attempts, c.Describe());
                var requeued = Durably(() => JobStore.RequeueCrashed(store, job, token, Problem(500, "The sandbox process crashed", c.Describe(), null)));
                if (requeued) queue.Enqueue(job);
                break;
            default:
                Fail(job, token, Problem(500, TitleOf(outcome), outcome.Describe(), null));
                break;
        }
    }

    private JobStore.Claimed? Claim(string jobId)
    {
        var o = options.Value;
        return JobStore.Claim(store, jobId, new JobStore.ClaimRules(DateTime.UtcNow.AddSeconds(-o.StaleAfterSeconds), o.MaxAttempts, o.EffectiveMaxRunningPerTenant, o.NodeName));
    }

    private void Succeed(JobRecord job, string token, string resultJson) =>
        Log(job, JobStatus.Succeeded, Durably(() => JobStore.Succeed(store, job, token, resultJson)));

    private void Fail(JobRecord job, string token, string errorJson) =>
        Log(job, JobStatus.Failed, Durably(() => JobStore.Fail(store, job, token, errorJson)));

    private void Log(JobRecord job, JobStatus status, bool stored) =>
        logger.LogInformation("Job {JobId} finished as {Status} (stored: {Stored})", job.Id, status.Word(), stored);

    /// <summary>
    /// Runs a write that must not be lost (a result, a failure, a retry), waiting out a database that is away for up to two
    /// minutes. A write that still fails throws; the job then stays running without a heartbeat and recovery runs it again.
    /// </summary>
    private T Durably<T>(Func<T> write)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                return write();
            }
            catch (Exception e) when (MetadataStore.Unavailable(e) && DateTime.UtcNow < deadline)
            {
                logger.LogWarning("Database unavailable ({Error}); retrying a job's final write in {Delay}", e.Message, delay);
                Thread.Sleep(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    private void Durably(Action write) => Durably(() =>
    {
        write();
        return 0;
    });

    /// <summary>
    /// Commits the run's two exports to the artifact store and, in one transaction with the result (only while this
    /// attempt still owns the job), registers them as the tenant's models. The result JSON gains <c>models</c>.
    /// </summary>
    private async Task FinishTrainingAsync(JobRecord job, string token, string resultJson, string exportDirectory, string? lastDetail, CancellationToken cancellationToken)
    {
        var onnxFile = Path.Combine(exportDirectory, ModelExport.DefaultName + ".onnx");
        var torchScriptFile = Path.Combine(exportDirectory, ModelExport.DefaultName + ".pt");
        if (!File.Exists(onnxFile) || !File.Exists(torchScriptFile))
        {
            Fail(job, token, Problem(500, "The job failed", "the sandbox finished without writing the trained model's files.", null));
            return;
        }
        var onnx = await artifacts.AddFileAsync(onnxFile, cancellationToken);
        var torchScript = await artifacts.AddFileAsync(torchScriptFile, cancellationToken);
        var now = DateTime.UtcNow;
        var records = new[] { (onnx, "onnx", ".onnx"), (torchScript, "torchscript", ".pt") }.Select(x =>
        {
            var file = ModelFile.Open(x.Item1.Path);
            return new ModelRecord
            {
                Id = Ids.New("mdl"),
                Tenant = job.Tenant,
                Name = job.Id + x.Item3,
                Format = x.Item2,
                Sha256 = x.Item1.Sha256,
                SizeBytes = x.Item1.SizeBytes,
                InputsJson = JsonSerializer.Serialize(file.Inputs, Json),
                OutputsJson = JsonSerializer.Serialize(file.Outputs, Json),
                CreatedAt = now,
            };
        }).ToArray();
        var result = System.Text.Json.Nodes.JsonNode.Parse(resultJson)!.AsObject();
        result["models"] = new System.Text.Json.Nodes.JsonObject { ["onnx"] = records[0].Id, ["torchScript"] = records[1].Id };
        var stored = Durably(() => store.Write(db =>
        {
            if (JobStore.SucceedTraining(db, job, token, result.ToJsonString(Json), lastDetail, now, (records[0].Id, onnx.Sha256), (records[1].Id, torchScript.Sha256)))
            {
                db.Insert(records[0]);
                db.Insert(records[1]);
                return true;
            }
            // Canceled (or taken over) meanwhile: keep nothing of this attempt.
            foreach (var sha in new[] { onnx.Sha256, torchScript.Sha256 }.Distinct())
            {
                if (MetadataStore.ArtifactUnused(db, sha, "")) artifacts.DeleteIfExists(sha);
            }
            return false;
        }));
        logger.LogInformation("Training run {JobId} finished (stored: {Stored}); models {OnnxModelId}, {TorchScriptModelId}", job.Id, stored, records[0].Id, records[1].Id);
    }

    /// <summary>The request field of a measurement's input the runner names by its library name (<c>model</c>, <c>data</c>); other names as they are.</summary>
    private static string MeasurementField(string field) => field switch
    {
        "model" => "modelId",
        "data" => "datasetId",
        _ => field,
    };

    /// <summary>422 for what the request or its inputs got wrong; 503 when it asked for CUDA on a node without a device (the deployment cannot serve it here).</summary>
    private static int StatusOf(RunnerUserError error) => error.Title == ComputeDevice.UnavailableTitle ? 503 : 422;

    private static string TitleOf(SandboxOutcome outcome) => outcome switch
    {
        SandboxOutcome.TimedOut => "Time limit exceeded",
        SandboxOutcome.MemoryExceeded => "Memory limit exceeded",
        SandboxOutcome.Crashed => "The sandbox process crashed",
        _ => "The job failed",
    };

    private static string Problem(int status, string title, string detail, string? field) => JobStore.Problem(status, title, detail, field);
}
