using Hangfire;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace LambdaService.Api.Health;

/// <summary>Health of the service.</summary>
public sealed record HealthResponse(string Status, IReadOnlyDictionary<string, string> Checks);

/// <summary><c>/healthz</c> (liveness) and <c>/readyz</c> (storage reachable and writable with room to spare, a worker present); no API key needed.</summary>
public static class HealthEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", Live).WithName("Live").WithSummary("Liveness: the process answers.").WithTags("Health").AllowAnonymous();
        app.MapGet("/readyz", Ready).WithName("Ready").WithSummary("Readiness: storage is reachable and writable with free space above Storage:MinFreeMb, and a job worker is present.").WithTags("Health").AllowAnonymous();
        return app;
    }

    /// <summary>GET /healthz.</summary>
    public static Ok<HealthResponse> Live() => TypedResults.Ok(new HealthResponse("ok", new Dictionary<string, string>()));

    /// <summary>GET /readyz.</summary>
    public static Results<Ok<HealthResponse>, ProblemHttpResult> Ready(MetadataStore store, StorageSpace space, JobStorage jobs)
    {
        var checks = new Dictionary<string, string>();
        // The database answers, and the data folder can take writes: free space at or above Storage:MinFreeMb, a probe file written.
        checks["storage"] = !store.IsReachable() ? "unreachable" : space.NotReady() ?? "ok";
        try
        {
            var servers = jobs.GetMonitoringApi().Servers();
            var alive = servers.Count(s => s.Heartbeat is { } h && h > DateTime.UtcNow.AddMinutes(-1));
            checks["workers"] = alive > 0 ? $"{alive} server(s)" : "none";
        }
        catch (Exception e) when (e is InvalidOperationException or IOException || MetadataStore.Unavailable(e))
        {
            checks["workers"] = "unknown: " + e.Message;
        }
        var ready = checks["storage"] == "ok" && checks["workers"].EndsWith("server(s)", StringComparison.Ordinal);
        return ready
            ? TypedResults.Ok(new HealthResponse("ready", checks))
            : TypedResults.Problem(title: "Not ready", statusCode: 503,
                detail: string.Join("; ", checks.Select(c => $"{c.Key}: {c.Value}")) + ". Start a worker (the worker verb), or check the database and the data folder (free space, Storage:MinFreeMb, permissions).",
                extensions: new Dictionary<string, object?> { ["checks"] = checks });
    }
}
