using System.ComponentModel;
using System.Security.Claims;
using System.Text.Json;
using LambdaService.Api.Auth;
using LambdaService.Api.Datasets;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs;
using LambdaService.Api.Models;
using LambdaService.Api.Plots;
using LambdaService.Api.Storage;
using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Training;
using LambdaService.Training.Datasets;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Training;

/// <summary>A training run was accepted and queued.</summary>
public sealed record TrainingRunAccepted(string Id, [property: Description("queued")] string Status);

/// <summary>Where a running (or finished) training run is: its last finished epoch.</summary>
public sealed record EpochProgress(
    [property: Description("Epochs finished.")] int Epoch,
    [property: Description("Epochs in all.")] int Epochs,
    [property: Description("Mean training loss of the last epoch.")] double TrainLoss,
    [property: Description("Test error after the last epoch.")] double TestError,
    [property: Description("λ on the test set after the last epoch, when tracked (track.lambdaEvery).")] double? Lambda);

/// <summary>The trained network, registered as two of the caller's models.</summary>
public sealed record TrainedModels(
    [property: Description("Model id of the ONNX export (GET /v1/models/{id}; measurable at once).")] string Onnx,
    [property: Description("Model id of the TorchScript export.")] string TorchScript);

/// <summary>A training run and, once it has succeeded, its metrics and models.</summary>
public sealed record TrainingRunResponse(
    string Id,
    [property: Description("queued, running, succeeded, failed or canceled.")] string Status,
    [property: Description("0 to 1 (training takes 0.95, the final λ measurement the rest).")] double Progress,
    [property: Description("The last finished epoch's figures.")] EpochProgress? Current,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    [property: Description("Attempts that count toward Jobs:MaxAttempts: each start, except starts a graceful shutdown interrupted (attemptLog lists every start).")] int Attempts,
    [property: Description("The queue the job waits or waited on (cpu, gpu).")] string Queue,
    [property: Description("The node (Jobs:NodeName) that runs or last ran the job; null before it starts.")] string? Node,
    [property: Description("Every attempt: its node, start, end and outcome (succeeded, failed, canceled, crashed, lost, interrupted; null while it runs).")] IReadOnlyList<JobAttempt> AttemptLog,
    TrainingRunRequest Request,
    [property: Description("The sweep that queued this run (null for a run posted on its own); list a sweep's runs with ?sweepId=.")] string? SweepId,
    [property: Description("The same JSON as the command line's train --json: testAccuracy, testError, ece, hard20Accuracy, lambda, pairLambdas, trainingSeconds, history, config (resolved request, objective, versions), warnings, models.")] JsonElement? Result,
    [property: Description("The exported models, once the run has succeeded.")] TrainedModels? Models,
    [property: Description("Why the run failed, as problem details.")] ProblemDetails? Error);

/// <summary><c>/v1/training-runs</c>: train with baseline, CRR or SAM in the background; follow, list, cancel, download the model.</summary>
public static class TrainingRunEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapTrainingRuns(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/training-runs").WithTags("Training runs").RequireAuthorization();
        group.MapPost("/", Submit).WithName("SubmitTrainingRun")
            .WithSummary("Train a network with baseline, CRR or SAM on two-moons, mnist or your dataset (runs in the background).");
        group.MapGet("/", List).WithName("ListTrainingRuns").WithSummary("Your training runs, newest first; ?status= and ?sweepId= filter.");
        group.MapGet("/{id}", Get).WithName("GetTrainingRun").WithSummary("Status, current epoch and result of a training run.");
        group.MapDelete("/{id}", Cancel).WithName("CancelTrainingRun").WithSummary("Cancel a queued or running training run (its sandbox process is ended).");
        group.MapGet("/{id}/plot", Plot).WithName("PlotTrainingRun")
            .WithSummary("The run's history as a picture: test error (and train loss) per epoch, λ where it was measured (format svg or png).");
        group.MapGet("/{id}/model", DownloadModel).WithName("DownloadTrainedModel")
            .WithSummary("Download the trained network: format onnx (default) or torchscript.");
        return app;
    }

    /// <summary>POST /v1/training-runs.</summary>
    public static Results<AcceptedAtRoute<TrainingRunAccepted>, ProblemHttpResult> Submit(
        TrainingRunRequest request, [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user, MetadataStore store, JobQueue queue, Idempotency idempotency, StorageSpace space, IOptions<JobsOptions> jobs)
    {
        var tenant = user.Tenant();
        var body = JsonSerializer.Serialize(request, Json);
        var hash = Idempotency.HashOf(body);
        if (idempotency.Answer(tenant, idempotencyKey, "training-run", hash, id => JobRecords.Find(store, tenant, id, JobRecord.TrainKind),
                previous => TypedResults.AcceptedAtRoute(new TrainingRunAccepted(previous.Id, previous.Status), "GetTrainingRun", new { id = previous.Id })) is { } answer)
        {
            return answer;
        }
        if (JobQueue.Check(request.Queue, jobs.Value) is { } badQueue) return badQueue;
        if (Validate(request, tenant, store) is { } problem) return problem;
        space.EnsureRoom();

        var job = new JobRecord
        {
            Id = Ids.New("trn"),
            Tenant = tenant,
            Kind = JobRecord.TrainKind,
            RequestJson = body,
            DatasetId = request.Dataset?.DatasetId ?? "",
            TestDatasetId = request.Dataset?.TestDatasetId,
            CreatedAt = DateTime.UtcNow,
            Queue = request.Queue ?? jobs.Value.DefaultQueue,
        };
        var (created, existing) = idempotency.Create(tenant, idempotencyKey, "training-run", hash, job.Id, db => JobStore.Add(db, job));
        if (created != Idempotency.Lookup.New)
        {
            return Idempotency.Respond(created, existing, "training-run", id => JobRecords.Find(store, tenant, id, JobRecord.TrainKind),
                previous => TypedResults.AcceptedAtRoute(new TrainingRunAccepted(previous.Id, previous.Status), "GetTrainingRun", new { id = previous.Id }))!;
        }
        queue.EnqueueNew([job], db => Idempotency.Forget(db, idempotencyKey, job.Id));
        return TypedResults.AcceptedAtRoute(new TrainingRunAccepted(job.Id, job.Status), "GetTrainingRun", new { id = job.Id });
    }

    /// <summary>Everything that can be checked before a run is queued: the options, the datasets, the network against the samples.</summary>
    internal static ProblemHttpResult? Validate(TrainingRunRequest request, string tenant, MetadataStore store)
    {
        TrainingRequest resolved;
        try
        {
            resolved = request.ToTrainingRequest();
        }
        catch (MeasurementInputException e)
        {
            return Problems.From(e);
        }
        int[] sampleShape;
        int classes;
        switch (resolved.Data.Kind)
        {
            case "two-moons":
                (sampleShape, classes) = ([2], 2);
                break;
            case "mnist":
                if (!Mnist.IsAvailable())
                {
                    return Problems.Field(StatusCodes.Status503ServiceUnavailable, "dataset.builtin",
                        "this server has no MNIST cache; its operator must build it (see the README's MNIST section), or train on two-moons or your own dataset.",
                        "MNIST unavailable");
                }
                (sampleShape, classes) = ([1, Mnist.Side, Mnist.Side], Mnist.Classes);
                break;
            default:
                var train = DatasetRecords.Find(store, tenant, request.Dataset!.DatasetId!);
                if (train is null) return Problems.Field(400, "dataset.datasetId", $"no dataset with id '{request.Dataset.DatasetId}' exists for this API key; upload one with POST /v1/datasets.");
                if (!train.HasLabels) return Problems.Field(400, "dataset.datasetId", "the dataset has no labels; training needs labels (npz array y, or a label column in CSV).");
                sampleShape = JsonSerializer.Deserialize<int[]>(train.ShapeJson, Json)!;
                classes = Math.Max(2, train.Classes);
                if (request.Dataset.TestDatasetId is { } testId)
                {
                    var test = DatasetRecords.Find(store, tenant, testId);
                    if (test is null) return Problems.Field(400, "dataset.testDatasetId", $"no dataset with id '{testId}' exists for this API key; upload one with POST /v1/datasets.");
                    if (!test.HasLabels) return Problems.Field(400, "dataset.testDatasetId", "the test dataset has no labels; the test set needs labels to measure accuracy.");
                    var testShape = JsonSerializer.Deserialize<int[]>(test.ShapeJson, Json)!;
                    if (testShape.Aggregate(1L, (a, b) => a * b) != sampleShape.Aggregate(1L, (a, b) => a * b))
                    {
                        return Problems.Field(400, "dataset.testDatasetId",
                            $"test samples are [{string.Join(",", testShape)}] but training samples are [{string.Join(",", sampleShape)}]; both sets must hold samples of the same size.");
                    }
                    classes = Math.Max(classes, test.Classes);
                }
                break;
        }
        try
        {
            TrainingRun.CheckNetwork(resolved.Model, sampleShape, classes);
        }
        catch (MeasurementInputException e)
        {
            return Problems.Field(400, TrainingRunRequest.HttpField(e.Field), e.Message);
        }
        foreach (var pair in resolved.Measure.Pairs)
        {
            // Validate() has checked the pairs' syntax.
            if (ClassPair.TryParse(pair, out var a, out var b) && (a >= classes || b >= classes)) return Problems.Field(400, "track.pairs", $"pair {pair} names a class the data does not have (classes 0..{classes - 1}).");
        }
        return null;
    }

    /// <summary>GET /v1/training-runs/{id}.</summary>
    public static Results<Ok<TrainingRunResponse>, ProblemHttpResult> Get(string id, ClaimsPrincipal user, MetadataStore store)
    {
        var job = JobRecords.Find(store, user.Tenant(), id, JobRecord.TrainKind);
        return job is null ? Problems.NotFound("training-run", id) : TypedResults.Ok(ToResponse(job, store));
    }

    /// <summary>GET /v1/training-runs.</summary>
    public static Results<Ok<Paged<TrainingRunResponse>>, ProblemHttpResult> List(ClaimsPrincipal user, MetadataStore store, string? status = null, string? sweepId = null, int page = 1, int pageSize = 20)
    {
        if (JobRecords.CheckStatus(status) is { } badStatus) return badStatus;
        var (items, p, size, total) = JobRecords.Page(store, user.Tenant(), JobRecord.TrainKind, status, page, pageSize, sweepId);
        return TypedResults.Ok(new Paged<TrainingRunResponse>(items.Select(j => ToResponse(j, store)).ToList(), p, size, total));
    }

    /// <summary>DELETE /v1/training-runs/{id}.</summary>
    public static Results<Ok<TrainingRunResponse>, ProblemHttpResult> Cancel(string id, ClaimsPrincipal user, MetadataStore store)
    {
        if (JobRecords.Cancel(store, user.Tenant(), id, JobRecord.TrainKind) is not ({ } job, var canceled)) return Problems.NotFound("training-run", id);
        return canceled
            ? TypedResults.Ok(ToResponse(job, store))
            : Problems.Field(409, "id", $"the training run has already {job.Status}; only queued or running runs can be canceled.");
    }

    /// <summary>GET /v1/training-runs/{id}/model?format=onnx|torchscript.</summary>
    public static Results<PhysicalFileHttpResult, ProblemHttpResult> DownloadModel(string id, ClaimsPrincipal user, MetadataStore store, ArtifactStore artifacts,
        [Description("onnx (default) or torchscript.")] string? format = null)
    {
        format ??= "onnx";
        if (format is not ("onnx" or "torchscript")) return Problems.Field(400, "format", $"format '{format}' is not known; use onnx or torchscript.");
        var job = JobRecords.Find(store, user.Tenant(), id, JobRecord.TrainKind);
        if (job is null) return Problems.NotFound("training-run", id);
        var sha = format == "onnx" ? job.OnnxSha256 : job.TorchScriptSha256;
        if (job.State != JobStatus.Succeeded || sha is null)
        {
            return Problems.Field(409, "id", $"the training run is {job.Status}; its model can be downloaded once it has succeeded.");
        }
        string path;
        try
        {
            path = artifacts.Fetch(sha);
        }
        catch (ArtifactMissingException)
        {
            return Problems.Field(404, "id", "the model file is no longer in the store.");
        }
        if (!File.Exists(path)) return Problems.Field(404, "id", "the model file is no longer in the store.");
        return TypedResults.PhysicalFile(path, "application/octet-stream", format == "onnx" ? $"{job.Id}.onnx" : $"{job.Id}.pt");
    }

    /// <summary>GET /v1/training-runs/{id}/plot?format=svg|png&amp;width=&amp;height=.</summary>
    public static Results<FileContentHttpResult, ProblemHttpResult> Plot(string id, ClaimsPrincipal user, MetadataStore store,
        [Description("svg (default) or png.")] string? format = null, [Description("Pixels, 100–4000 (default 800).")] int? width = null,
        [Description("Pixels, 100–4000 (default 500).")] int? height = null)
    {
        if (PlotResponses.TryParse(format, width, height, out var plotFormat, out var w, out var h) is { } bad) return bad;
        var job = JobRecords.Find(store, user.Tenant(), id, JobRecord.TrainKind);
        if (job is null) return Problems.NotFound("training-run", id);
        if (job.State != JobStatus.Succeeded || job.ResultJson is null)
        {
            return Problems.Field(409, "id", $"the training run is {job.Status}; its plot exists once it has succeeded.");
        }
        using var document = JsonDocument.Parse(job.ResultJson);
        var history = document.RootElement.GetProperty("history").EnumerateArray().ToArray();
        var data = new RunHistoryData(
            history.Select(e => e.GetProperty("epoch").GetInt32()).ToArray(),
            history.Select(e => ResultNumbers.Number(e.GetProperty("testError"))).ToArray(),
            history.Select(e => e.TryGetProperty("lambda", out var l) && l.ValueKind != JsonValueKind.Null ? ResultNumbers.Number(l) : (double?)null).ToArray(),
            history.Select(e => ResultNumbers.Number(e.GetProperty("trainLoss"))).ToArray(),
            HistoryTitle(document.RootElement, JsonSerializer.Deserialize<TrainingRunRequest>(job.RequestJson, Json)!, store, user.Tenant()),
            history.Select(e => e.TryGetProperty("monitorLambda", out var m) && m.ValueKind != JsonValueKind.Null ? ResultNumbers.Number(m) : (double?)null).ToArray(),
            Band(document.RootElement));
        try
        {
            return PlotResponses.File(PlotRenderer.RunHistory(data, plotFormat, w, h), plotFormat);
        }
        catch (ArgumentException e)
        {
            return Problems.Field(422, "id", $"this run's history cannot be drawn: {e.Message}");
        }
    }

    /// <summary>
    /// A history plot's title: what was trained and how it ended, e.g. <c>CRR on Two Moons (30% label noise) — test error 12.5%,
    /// λ = 1.23</c> (λ of the final measurement, else the last tracked one; left out when neither exists).
    /// </summary>
    internal static string HistoryTitle(JsonElement result, TrainingRunRequest request, MetadataStore store, string tenant)
    {
        var method = result.GetProperty("method").GetString() switch
        {
            "baseline" => "Baseline",
            "crr-target" => "CRR holding λ in a band",
            { } m => m.ToUpperInvariant(),
            null => "Training",
        };
        var d = request.Dataset;
        string dataset;
        if (d?.DatasetId is { } datasetId)
        {
            var name = store.Read(db => db.Query<DatasetRecord>("SELECT * FROM datasets WHERE Id = ? AND Tenant = ?", datasetId, tenant).FirstOrDefault())?.Name;
            dataset = $"dataset {(name is null ? datasetId : "'" + name + "'")}";
        }
        else
        {
            dataset = d?.Builtin == BuiltinDataset.Mnist ? "MNIST" : "Two Moons";
        }
        if (d?.LabelNoise is > 0 and var noise) dataset += string.Create(System.Globalization.CultureInfo.InvariantCulture, $" ({noise:0.#%} label noise)");
        var title = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{method} on {dataset} — test error {ResultNumbers.Number(result.GetProperty("testError")):0.0%}");
        double? lambda = result.TryGetProperty("lambda", out var measured) && measured.ValueKind == JsonValueKind.Object
            ? ResultNumbers.Number(measured.GetProperty("lambda"))
            : result.GetProperty("history").EnumerateArray()
                .Select(e => e.TryGetProperty("lambda", out var l) && l.ValueKind != JsonValueKind.Null ? ResultNumbers.Number(l) : (double?)null)
                .LastOrDefault(l => l.HasValue);
        return lambda is { } v && double.IsFinite(v) ? title + string.Create(System.Globalization.CultureInfo.InvariantCulture, $", λ = {v:0.###}") : title;
    }

    /// <summary>The band of a crr-target run from its resolved request (<c>config.request.crr.target</c>), else null.</summary>
    private static double[]? Band(JsonElement result) =>
        result.TryGetProperty("config", out var config) && config.TryGetProperty("request", out var request) && request.TryGetProperty("crr", out var crr)
        && crr.TryGetProperty("target", out var target) && target.ValueKind == JsonValueKind.Object
            ? [ResultNumbers.Number(target.GetProperty("min")), ResultNumbers.Number(target.GetProperty("max"))]
            : null;

    internal static TrainingRunResponse ToResponse(JobRecord j, MetadataStore store) => new(
        j.Id, j.Status, j.Progress,
        j.ProgressDetailJson is null ? null : JsonSerializer.Deserialize<EpochProgress>(j.ProgressDetailJson, Json),
        JobRecords.Utc(j.CreatedAt), JobRecords.Utc(j.StartedAt), JobRecords.Utc(j.FinishedAt), j.Attempts, j.Queue, j.Node, JobRecords.AttemptLog(store, j.Id),
        JsonSerializer.Deserialize<TrainingRunRequest>(j.RequestJson, Json)!,
        j.SweepId,
        j.State == JobStatus.Succeeded && j.ResultJson is not null ? JsonDocument.Parse(j.ResultJson).RootElement.Clone() : null,
        j.State == JobStatus.Succeeded && j.OnnxModelId is not null && j.TorchScriptModelId is not null ? new TrainedModels(j.OnnxModelId, j.TorchScriptModelId) : null,
        j.State == JobStatus.Failed && j.ErrorJson is not null ? JsonSerializer.Deserialize<ProblemDetails>(j.ErrorJson, Json) : null);
}
