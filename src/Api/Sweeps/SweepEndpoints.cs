using System.ComponentModel;
using System.Security.Claims;
using System.Text.Json;
using LambdaService.Api.Auth;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs;
using LambdaService.Api.Models;
using LambdaService.Api.Plots;
using LambdaService.Api.Storage;
using LambdaService.Api.Training;
using LambdaService.Measurement;
using LambdaService.Training.Sweeps;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Sweeps;

/// <summary>A sweep was accepted: its runs are queued.</summary>
public sealed record SweepAccepted(string Id, [property: Description("queued")] string Status, [property: Description("Training runs created.")] int Runs);

/// <summary>A sweep, its progress and its statistics so far.</summary>
public sealed record SweepResponse(string Id, string Name, DateTime CreatedAt, SweepRequest Request, SweepSummary Summary);

/// <summary>A sweep in a list (no statistics).</summary>
public sealed record SweepListItem(string Id, string Name, DateTime CreatedAt, string Status, SweepCounts Counts);

/// <summary><c>/v1/sweeps</c>: a grid of training runs with per-cell statistics, the λ–error correlation and plots.</summary>
public static class SweepEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapSweeps(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sweeps").WithTags("Sweeps").RequireAuthorization();
        group.MapPost("/", Submit).WithName("SubmitSweep")
            .WithSummary("Run a grid of training runs (e.g. method × crr.scale × seed); each is its own job.");
        group.MapGet("/", List).WithName("ListSweeps").WithSummary("Your sweeps, newest first.");
        group.MapGet("/{id}", Get).WithName("GetSweep")
            .WithSummary("Progress, per-cell mean / sd / 95% interval of every metric, and the correlation of λ with test error.");
        group.MapDelete("/{id}", Cancel).WithName("CancelSweep").WithSummary("Cancel the sweep's queued and running runs.");
        group.MapGet("/{id}/plot", Plot).WithName("PlotSweep")
            .WithSummary("kind=scale: λ against CRR scale with 95% intervals; kind=error-lambda: test error against λ over all runs (svg or png).");
        return app;
    }

    /// <summary>POST /v1/sweeps.</summary>
    public static Results<AcceptedAtRoute<SweepAccepted>, ProblemHttpResult> Submit(
        SweepRequest request, [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user, MetadataStore store, JobQueue queue, Idempotency idempotency, StorageSpace space, IOptions<JobsOptions> jobs,
        IOptions<LimitsOptions> limits)
    {
        if (RequestLimits.CheckName(request.Name, "name") is { } longName) return longName;
        var tenant = user.Tenant();
        var body = JsonSerializer.Serialize(request, Json);
        var hash = Idempotency.HashOf(body);
        if (idempotency.Answer(tenant, idempotencyKey, "sweep", hash, id => Find(store, tenant, id),
                previous => TypedResults.AcceptedAtRoute(new SweepAccepted(previous.Id, "queued", RunsOf(store, previous.Id).Count), "GetSweep", new { id = previous.Id })) is { } answer)
        {
            return answer;
        }

        IReadOnlyList<SweepCellPlan> cells;
        try
        {
            cells = SweepPlan.Expand(request, limits.Value.MaxSweepRuns);
        }
        catch (MeasurementInputException e)
        {
            return Problems.From(e);
        }
        // Dataset ids, MNIST availability and the network's fit to the data are the same checks as for one run.
        foreach (var run in cells.SelectMany(c => c.Runs).DistinctBy(r => JsonSerializer.Serialize(r with { Seed = 0 }, Json)))
        {
            if (JobQueue.Check(run.Queue, jobs.Value) is { } badQueue) return badQueue;
            if (TrainingRunEndpoints.Validate(run, tenant, store) is { } problem) return problem;
        }
        space.EnsureRoom();

        var sweep = new SweepRecord
        {
            Id = Ids.New("swp"),
            Tenant = tenant,
            Name = DisplayNames.Clean(request.Name) ?? "sweep",
            RequestJson = body,
            CellsJson = JsonSerializer.Serialize(cells.Select(c => c.Parameters), Json),
            CreatedAt = DateTime.UtcNow,
        };
        // Creation times one tick apart keep the runs in grid order (cell, then seed) when listed.
        var order = 0;
        var records = cells.SelectMany((cell, index) => cell.Runs.Select(run => new JobRecord
        {
            Id = Ids.New("trn"),
            Tenant = tenant,
            Kind = JobRecord.TrainKind,
            RequestJson = JsonSerializer.Serialize(run, Json),
            DatasetId = run.Dataset?.DatasetId ?? "",
            TestDatasetId = run.Dataset?.TestDatasetId,
            SweepId = sweep.Id,
            SweepCell = index,
            CreatedAt = sweep.CreatedAt.AddTicks(order++),
            Queue = run.Queue ?? jobs.Value.DefaultQueue,
        })).ToList();
        var (created, existing) = idempotency.Create(tenant, idempotencyKey, "sweep", hash, sweep.Id, db =>
        {
            db.Insert(sweep);
            foreach (var record in records) JobStore.Add(db, record);
        });
        if (created != Idempotency.Lookup.New)
        {
            return Idempotency.Respond(created, existing, "sweep", id => Find(store, tenant, id),
                previous => TypedResults.AcceptedAtRoute(new SweepAccepted(previous.Id, "queued", RunsOf(store, previous.Id).Count), "GetSweep", new { id = previous.Id }))!;
        }
        queue.EnqueueNew(records, db =>
        {
            db.Delete<SweepRecord>(sweep.Id);
            Idempotency.Forget(db, idempotencyKey, sweep.Id);
        });
        return TypedResults.AcceptedAtRoute(new SweepAccepted(sweep.Id, JobStatus.Queued.Word(), records.Count), "GetSweep", new { id = sweep.Id });
    }

    /// <summary>GET /v1/sweeps/{id}.</summary>
    public static Results<Ok<SweepResponse>, ProblemHttpResult> Get(string id, ClaimsPrincipal user, MetadataStore store)
    {
        var sweep = Find(store, user.Tenant(), id);
        return sweep is null ? Problems.NotFound("sweep", id) : TypedResults.Ok(ToResponse(sweep, store));
    }

    /// <summary>GET /v1/sweeps.</summary>
    public static Ok<Paged<SweepListItem>> List(ClaimsPrincipal user, MetadataStore store, int page = 1, int pageSize = 20)
    {
        var tenant = user.Tenant();
        (page, pageSize) = Paged<SweepListItem>.Clamp(page, pageSize);
        var (items, total) = store.Read(db => (
            db.Query<SweepRecord>("SELECT * FROM sweeps WHERE Tenant = ? ORDER BY CreatedAt DESC, Id DESC LIMIT ? OFFSET ?", tenant, pageSize, (page - 1) * pageSize),
            db.ExecuteScalar<int>("SELECT COUNT(*) FROM sweeps WHERE Tenant = ?", tenant)));
        var list = items.Select(s =>
        {
            var runs = RunsOf(store, s.Id);
            var summary = SweepReport.Build([], runs.Select(r => r with { ResultJson = null }).ToList());
            return new SweepListItem(s.Id, s.Name, JobRecords.Utc(s.CreatedAt), summary.Status, summary.Counts);
        }).ToList();
        return TypedResults.Ok(new Paged<SweepListItem>(list, page, pageSize, total));
    }

    /// <summary>DELETE /v1/sweeps/{id}.</summary>
    public static Results<Ok<SweepResponse>, ProblemHttpResult> Cancel(string id, ClaimsPrincipal user, MetadataStore store)
    {
        var tenant = user.Tenant();
        var sweep = Find(store, tenant, id);
        if (sweep is null) return Problems.NotFound("sweep", id);
        var canceled = JobStore.CancelSweep(store, tenant, id);
        return canceled > 0
            ? TypedResults.Ok(ToResponse(sweep, store))
            : Problems.Field(409, "id", "every run of the sweep has already finished; there is nothing to cancel.");
    }

    /// <summary>GET /v1/sweeps/{id}/plot?kind=scale|error-lambda&amp;format=svg|png.</summary>
    public static Results<FileContentHttpResult, ProblemHttpResult> Plot(string id, ClaimsPrincipal user, MetadataStore store,
        [Description("scale (λ against CRR scale; default) or error-lambda (test error against λ).")] string? kind = null,
        [Description("svg (default) or png.")] string? format = null, [Description("Pixels, 100–4000 (default 800).")] int? width = null,
        [Description("Pixels, 100–4000 (default 500).")] int? height = null)
    {
        if (kind is not (null or "scale" or "error-lambda")) return Problems.Field(400, "kind", $"kind '{kind}' is not known; use scale or error-lambda.");
        if (PlotResponses.TryParse(format, width, height, out var plotFormat, out var w, out var h) is { } bad) return bad;
        var sweep = Find(store, user.Tenant(), id);
        if (sweep is null) return Problems.NotFound("sweep", id);
        var runs = RunsOf(store, sweep.Id);
        var response = ToResponse(sweep, runs);
        try
        {
            var bytes = kind == "error-lambda" ? ErrorLambdaPlot(response, runs, plotFormat, w, h) : ScalePlot(response, plotFormat, w, h);
            return bytes is null
                ? Problems.Field(409, "id", "no run of the sweep has succeeded with a measurable λ yet; the plot needs results.")
                : PlotResponses.File(bytes, plotFormat);
        }
        catch (ArgumentException e)
        {
            return Problems.Field(422, "kind", $"this sweep cannot be drawn as {kind ?? "scale"}: {e.Message}");
        }
    }

    /// <summary>
    /// λ (mean and 95% interval per cell) against the cell's CRR scale; cells whose method is not crr sit at scale 0
    /// (no penalty); one series per combination of the other factors.
    /// </summary>
    private static byte[]? ScalePlot(SweepResponse sweep, PlotFormat format, int width, int height)
    {
        var baseScale = sweep.Request.Base?.Crr?.Scale ?? new LambdaService.Training.CrrSettings().Scale;
        var baseMethod = sweep.Request.Base?.Method is { } method ? Contracts.ClosedSet.Word(method) : "baseline";
        var points = sweep.Summary.Cells.Where(c => c.Metrics.Lambda is { Count: > 0 }).Select(c =>
        {
            var method = c.Parameters.TryGetValue("method", out var m) ? m.GetString() : baseMethod;
            var scale = method != "crr" ? 0 : c.Parameters.TryGetValue("crr.scale", out var s) ? s.GetDouble() : baseScale;
            var label = SweepPlan.Label(c.Parameters, "method", "crr.scale");
            var lambda = c.Metrics.Lambda!;
            return (label, new ScalePoint(scale, lambda.Mean, lambda.Ci95));
        }).ToList();
        if (points.Count == 0) return null;
        var series = points.GroupBy(p => p.label).Select(g => new ScaleSeries(g.Key, g.Select(p => p.Item2).OrderBy(p => p.Scale).ToArray())).ToArray();
        return PlotRenderer.SweepScaleCurve(new ScaleCurveData(series, $"Sweep {sweep.Name}: λ against CRR scale"), format, width, height);
    }

    private static byte[]? ErrorLambdaPlot(SweepResponse sweep, IReadOnlyList<SweepRunState> states, PlotFormat format, int width, int height)
    {
        if (sweep.Summary.LambdaVsTestError is not { } c) return null;
        var runs = states.Where(r => r.Status == JobStatus.Succeeded.Word() && r.ResultJson is not null)
            .Select(r => SweepReport.Read(r.ResultJson!)).Where(m => double.IsFinite(m.Lambda) && double.IsFinite(m.TestError)).ToList();
        return PlotRenderer.SweepErrorVsLambda(new ErrorLambdaData(runs.Select(m => m.Lambda).ToArray(), runs.Select(m => m.TestError).ToArray(),
            c.Slope, c.Intercept, c.R, c.PValue, $"Sweep {sweep.Name}: test error against λ"), format, width, height);
    }

    internal static SweepRecord? Find(MetadataStore store, string tenant, string id) =>
        store.Read(db => db.Query<SweepRecord>("SELECT * FROM sweeps WHERE Id = ? AND Tenant = ?", id, tenant).FirstOrDefault());

    private static List<SweepRunState> RunsOf(MetadataStore store, string sweepId) => store.Read(db =>
        db.Query<JobRecord>("SELECT * FROM jobs WHERE SweepId = ? ORDER BY SweepCell, CreatedAt, Id", sweepId))
        .Select(j => new SweepRunState(j.SweepCell, j.Id, j.Status, j.ResultJson)).ToList();

    internal static SweepResponse ToResponse(SweepRecord sweep, MetadataStore store) => ToResponse(sweep, RunsOf(store, sweep.Id));

    private static SweepResponse ToResponse(SweepRecord sweep, IReadOnlyList<SweepRunState> runs)
    {
        var cells = JsonSerializer.Deserialize<List<Dictionary<string, JsonElement>>>(sweep.CellsJson, Json)!;
        var summary = SweepReport.Build(cells.Select(c => (IReadOnlyDictionary<string, JsonElement>)c).ToList(), runs);
        return new SweepResponse(sweep.Id, sweep.Name, JobRecords.Utc(sweep.CreatedAt), JsonSerializer.Deserialize<SweepRequest>(sweep.RequestJson, Json)!, summary);
    }
}
