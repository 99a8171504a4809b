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
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Measurements;

/// <summary>A measurement was accepted and queued.</summary>
public sealed record MeasurementAccepted(string Id, [property: Description("queued")] string Status);

/// <summary>A measurement job and, once it has succeeded, its result.</summary>
public sealed record MeasurementResponse(
    string Id,
    [property: Description("queued, running, succeeded, failed or canceled.")] string Status,
    [property: Description("0 to 1.")] double Progress,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    [property: Description("Attempts that count toward Jobs:MaxAttempts: each start, except starts a graceful shutdown interrupted (attemptLog lists every start).")] int Attempts,
    [property: Description("The queue the job waits or waited on (cpu, gpu).")] string Queue,
    [property: Description("The node (Jobs:NodeName) that runs or last ran the job; null before it starts.")] string? Node,
    [property: Description("Every attempt: its node, start, end and outcome (succeeded, failed, canceled, crashed, lost, interrupted; null while it runs).")] IReadOnlyList<JobAttempt> AttemptLog,
    MeasurementRequest Request,
    [property: Description("The same JSON as the command line's measure --json: lambda, intercept, r2, ci95, orders, …")] JsonElement? Result,
    [property: Description("Why the job failed, as problem details.")] ProblemDetails? Error);

/// <summary><c>/v1/measurements</c>: submit, follow, list and cancel measurements.</summary>
public static class MeasurementEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapMeasurements(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/measurements").WithTags("Measurements").RequireAuthorization();
        group.MapPost("/", Submit).WithName("SubmitMeasurement").WithSummary("Measure λ of one of your models on one of your datasets (runs in the background).");
        group.MapGet("/", List).WithName("ListMeasurements").WithSummary("Your measurements, newest first.");
        group.MapGet("/{id}", Get).WithName("GetMeasurement").WithSummary("Status, progress and result of a measurement.");
        group.MapGet("/{id}/plot", Plot).WithName("PlotMeasurement")
            .WithSummary("The fit as a picture: log v_n against n with the fitted line and its 95% band (format svg or png).");
        group.MapDelete("/{id}", Cancel).WithName("CancelMeasurement").WithSummary("Cancel a queued or running measurement (its sandbox process is ended).");
        return app;
    }

    /// <summary>POST /v1/measurements.</summary>
    public static Results<AcceptedAtRoute<MeasurementAccepted>, ProblemHttpResult> Submit(
        MeasurementRequest request, [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user, MetadataStore store, ArtifactStore artifacts, JobQueue queue, Idempotency idempotency, StorageSpace space, IOptions<JobsOptions> jobs,
        IOptions<MeasurementDefaultsOptions> defaults)
    {
        var tenant = user.Tenant();
        var body = JsonSerializer.Serialize(request, Json);
        var hash = Idempotency.HashOf(body);
        if (idempotency.Answer(tenant, idempotencyKey, "measurement", hash, id => Find(store, tenant, id),
                previous => TypedResults.AcceptedAtRoute(new MeasurementAccepted(previous.Id, previous.Status), "GetMeasurement", new { id = previous.Id })) is { } answer)
        {
            return answer;
        }
        if (JobQueue.Check(request.Queue, jobs.Value) is { } badQueue) return badQueue;
        if (Validate(request, tenant, store, artifacts) is { } problem) return problem;
        if (request.MemoryBudgetMb >= jobs.Value.MemoryLimitMb)
        {
            return Problems.Field(400, "memoryBudgetMb",
                $"memoryBudgetMb {request.MemoryBudgetMb} MiB does not fit in a job's memory limit of {jobs.Value.MemoryLimitMb} MiB (Jobs:MemoryLimitMb): a pass that large gets its sandbox stopped. Leave it out for the service's default ({defaults.Value.EffectiveMemoryBudgetMb(jobs.Value)} MiB) or ask for less.");
        }
        space.EnsureRoom();
        // The service's default budget (Measurement:MemoryBudgetMb) is written into the stored request, so the job runs under the budget of
        // the node that accepted it and its result's config shows it; the Idempotency-Key hash stays that of the body as sent.
        var stored = request.MemoryBudgetMb is null ? request with { MemoryBudgetMb = defaults.Value.EffectiveMemoryBudgetMb(jobs.Value) } : request;

        var job = new JobRecord
        {
            Id = Ids.New("msr"),
            Tenant = tenant,
            RequestJson = JsonSerializer.Serialize(stored, Json),
            ModelId = request.ModelId,
            DatasetId = request.DatasetId,
            CreatedAt = DateTime.UtcNow,
            Queue = request.Queue ?? jobs.Value.DefaultQueue,
            Kind = JobRecord.MeasureKind,
        };
        var (created, existing) = idempotency.Create(tenant, idempotencyKey, "measurement", hash, job.Id, db => JobStore.Add(db, job));
        if (created != Idempotency.Lookup.New)
        {
            return Idempotency.Respond(created, existing, "measurement", id => Find(store, tenant, id),
                previous => TypedResults.AcceptedAtRoute(new MeasurementAccepted(previous.Id, previous.Status), "GetMeasurement", new { id = previous.Id }))!;
        }
        queue.EnqueueNew([job], db => Idempotency.Forget(db, idempotencyKey, job.Id));
        return TypedResults.AcceptedAtRoute(new MeasurementAccepted(job.Id, job.Status), "GetMeasurement", new { id = job.Id });
    }

    /// <summary>Everything that can be checked before a job is queued.</summary>
    internal static ProblemHttpResult? Validate(MeasurementRequest request, string tenant, MetadataStore store, ArtifactStore artifacts)
    {
        if (string.IsNullOrWhiteSpace(request.ModelId)) return Problems.Field(400, "modelId", "modelId is required: upload a model with POST /v1/models and pass its id.");
        if (string.IsNullOrWhiteSpace(request.DatasetId)) return Problems.Field(400, "datasetId", "datasetId is required: upload data with POST /v1/datasets and pass its id.");
        MeasurementOptions options;
        try
        {
            options = request.ToOptions();
        }
        catch (MeasurementInputException e)
        {
            return Problems.From(e);
        }
        var model = ModelRecords.Find(store, tenant, request.ModelId);
        if (model is null) return Problems.Field(400, "modelId", $"no model with id '{request.ModelId}' exists for this API key.");
        var dataset = DatasetRecords.Find(store, tenant, request.DatasetId);
        if (dataset is null) return Problems.Field(400, "datasetId", $"no dataset with id '{request.DatasetId}' exists for this API key.");

        if (!dataset.HasLabels)
        {
            if (options.Points == PointSelection.Pairs) return Problems.Field(400, "points", "points 'pairs' selects samples by label and the dataset has no labels; upload labels or use points all.");
            if (options.Labels == LabelSource.True) return Problems.Field(400, "labels", "labels 'true' needs a dataset with labels; upload labels or use labels predicted.");
        }
        // The ONNX graph, read from the store once and only when a check below needs it.
        Onnx.ModelProto? graph = null;
        IReadOnlyList<string>? unsupported = null;
        IReadOnlyList<string> Unsupported() => unsupported ??= OnnxJetImporter.UnknownOperators(graph ??= ModelFile.Open(artifacts.Fetch(model.Sha256)).Onnx!);
        if (!Measurement.Taylor.Layers.IsInput(options.At))
        {
            // A layer: known now from the file (ONNX) or refused (TorchScript is opaque); the exact engines only.
            if (options.Engine == EngineChoice.FiniteDifference) return Problems.From(Measurement.Taylor.Layers.NeedsExactEngine(options.At));
            if (model.Format != "onnx")
            {
                return Problems.Field(400, "at",
                    $"layer '{options.At}' cannot be found: a TorchScript model's structure is not readable here, so only 'input' is accepted. Upload the model as ONNX to measure at a layer.");
            }
            if (Unsupported().Count > 0)
            {
                return Problems.Field(400, "at",
                    $"layer '{options.At}' cannot be reached: the exact engines cannot import this ONNX graph (unsupported operators {string.Join("; ", Unsupported())}), so only 'input' is measured (with finite differences).");
            }
            var layers = OnnxJetImporter.LayerNames(graph!);
            if (!layers.Contains(options.At)) return Problems.From(Measurement.Taylor.Layers.NotALayer("at", options.At, layers, "this model"));
        }
        if (model.Format != "onnx" && options.Engine is EngineChoice.Auto or EngineChoice.Autograd)
        {
            // The operators nested autograd gets wrong or cannot differentiate (and would abort the sandbox on) are known from the code.
            try
            {
                using var archive = File.OpenRead(artifacts.Fetch(model.Sha256));
                TorchScriptOperators.RefuseAutograd(TorchScriptOperators.Find(archive), options.MaxOrder);
            }
            catch (MeasurementInputException e)
            {
                return Problems.From(e);
            }
        }
        if (model.Format == "onnx")
        {
            // The engine and runtime choice of the run (EngineResolution), with the graph's unknown operators read from the file now (only
            // where the answer can be a refusal): taylor or autograd on a graph they cannot import, or float32 where auto falls back, is refused here.
            try
            {
                EngineResolution.Check(ModelFormat.Onnx, options.Engine, options.Precision, Unsupported);
            }
            catch (MeasurementInputException e)
            {
                return Problems.From(e);
            }
            var response = ModelRecords.ToResponse(model);
            var output = response.Outputs.FirstOrDefault();
            var width = output?.Shape switch
            {
                [_] => 1L,
                [_, var c] => c,
                _ => -1L,
            };
            if (width == 1 && options.Target == "loss") return Problems.Field(400, "target", "the model has one output per sample (a scalar model): target loss needs a classifier; use target logit.");
            if (width == 1 && options.Points == PointSelection.Boundary) return Problems.Field(400, "points", "points 'boundary' needs a classifier; the model has one output per sample. Use points all.");
            if (width > 1 && dataset.HasLabels && dataset.Classes > width) return Problems.Field(400, "datasetId", $"the dataset has labels up to {dataset.Classes - 1} but the model has {width} classes.");
            if (width > 1 && options.Class >= width) return Problems.Field(400, "class", $"class {options.Class} does not exist: the model has {width} classes.");
            if (width > 1 && options.Pairs.Any(p => p.A >= width || p.B >= width)) return Problems.Field(400, "pairs", $"a class pair names a class the model does not have ({width} classes).");
            var input = response.Inputs.FirstOrDefault();
            var shape = JsonSerializer.Deserialize<int[]>(dataset.ShapeJson, Json)!;
            var sampleSize = (options.SampleShape ?? shape).Aggregate(1L, (a, b) => a * b);
            if (input is { Shape.Length: > 1 } && input.Shape.Skip(1).All(d => d > 0))
            {
                var expected = input.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
                if (expected != sampleSize)
                {
                    return Problems.Field(400, "datasetId",
                        $"the model takes samples of [{string.Join(",", input.Shape.Skip(1))}] ({expected} values) but the dataset's samples have {sampleSize} values.");
                }
            }
        }
        return null;
    }

    /// <summary>GET /v1/measurements/{id}.</summary>
    public static Results<Ok<MeasurementResponse>, ProblemHttpResult> Get(string id, ClaimsPrincipal user, MetadataStore store)
    {
        var job = Find(store, user.Tenant(), id);
        return job is null ? Problems.NotFound("measurement", id) : TypedResults.Ok(ToResponse(job, store));
    }

    /// <summary>GET /v1/measurements.</summary>
    public static Results<Ok<Paged<MeasurementResponse>>, ProblemHttpResult> List(ClaimsPrincipal user, MetadataStore store, string? status = null, int page = 1, int pageSize = 20)
    {
        if (JobRecords.CheckStatus(status) is { } badStatus) return badStatus;
        var (items, p, size, total) = JobRecords.Page(store, user.Tenant(), JobRecord.MeasureKind, status, page, pageSize);
        return TypedResults.Ok(new Paged<MeasurementResponse>(items.Select(j => ToResponse(j, store)).ToList(), p, size, total));
    }

    /// <summary>DELETE /v1/measurements/{id}.</summary>
    public static Results<Ok<MeasurementResponse>, ProblemHttpResult> Cancel(string id, ClaimsPrincipal user, MetadataStore store)
    {
        if (JobRecords.Cancel(store, user.Tenant(), id, JobRecord.MeasureKind) is not ({ } job, var canceled)) return Problems.NotFound("measurement", id);
        return canceled
            ? TypedResults.Ok(ToResponse(job, store))
            : Problems.Field(409, "id", $"the measurement has already {job.Status}; only queued or running measurements can be canceled.");
    }

    /// <summary>GET /v1/measurements/{id}/plot?format=svg|png&amp;width=&amp;height=.</summary>
    public static Results<FileContentHttpResult, ProblemHttpResult> Plot(string id, ClaimsPrincipal user, MetadataStore store,
        [Description("svg (default) or png.")] string? format = null, [Description("Pixels, 100–4000 (default 800).")] int? width = null,
        [Description("Pixels, 100–4000 (default 500).")] int? height = null)
    {
        if (PlotResponses.TryParse(format, width, height, out var plotFormat, out var w, out var h) is { } bad) return bad;
        var job = Find(store, user.Tenant(), id);
        if (job is null) return Problems.NotFound("measurement", id);
        if (job.State != JobStatus.Succeeded || job.ResultJson is null)
        {
            return Problems.Field(409, "id", $"the measurement is {job.Status}; its plot exists once it has succeeded.");
        }
        // The result as the sandbox wrote it (Jobs/Sandbox/RunnerVerb.cs): a MeasurementResult in the runner protocol's JSON, whose
        // non-finite numbers are the named literals NaN and ±Infinity.
        var result = JsonSerializer.Deserialize<MeasurementResult>(job.ResultJson, RunnerProtocol.Json)!;
        var data = new FitPlotData(
            result.Orders.Select(o => o.N).ToArray(),
            result.Orders.Select(o => o.LogNorm).ToArray(),
            result.Orders.Select(o => o.UsedInFit).ToArray(),
            result.Lambda, result.Intercept, result.Ci95, result.R2, $"Measurement {id}");
        try
        {
            return PlotResponses.File(PlotRenderer.MeasurementFit(data, plotFormat, w, h), plotFormat);
        }
        catch (ArgumentException e)
        {
            return Problems.Field(422, "id", $"this result cannot be drawn: {e.Message}");
        }
    }

    internal static JobRecord? Find(MetadataStore store, string tenant, string id) => JobRecords.Find(store, tenant, id, JobRecord.MeasureKind);

    internal static MeasurementResponse ToResponse(JobRecord j, MetadataStore store) => new(
        j.Id, j.Status, j.Progress, JobRecords.Utc(j.CreatedAt), JobRecords.Utc(j.StartedAt), JobRecords.Utc(j.FinishedAt), j.Attempts, j.Queue, j.Node, JobRecords.AttemptLog(store, j.Id),
        JsonSerializer.Deserialize<MeasurementRequest>(j.RequestJson, Json)!,
        j.State == JobStatus.Succeeded && j.ResultJson is not null ? JsonDocument.Parse(j.ResultJson).RootElement.Clone() : null,
        j.State == JobStatus.Failed && j.ErrorJson is not null ? JsonSerializer.Deserialize<ProblemDetails>(j.ErrorJson, Json) : null);
}
