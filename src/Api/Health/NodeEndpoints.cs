using System.ComponentModel;
using System.Security.Claims;
using LambdaService.Api.Auth;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Health;

/// <summary>A node of the deployment as its heartbeat last showed it.</summary>
public sealed record NodeResponse(
    [property: Description("Jobs:NodeName of the node.")] string Name,
    [property: Description("api, worker or api+worker.")] string Role,
    [property: Description("Queues its workers take jobs from (empty for an API-only node).")] IReadOnlyList<string> Queues,
    [property: Description("Job workers in the node.")] int WorkerCount,
    DateTime StartedAt,
    DateTime HeartbeatAt,
    [property: Description("Whether its last heartbeat is newer than Jobs:StaleAfterSeconds.")] bool Alive,
    [property: Description("Your jobs running there now.")] int RunningJobs);

/// <summary><c>/v1/nodes</c>: the API and worker nodes on this storage, with their heartbeats.</summary>
public static class NodeEndpoints
{
    /// <summary>Maps the endpoint.</summary>
    public static IEndpointRouteBuilder MapNodes(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/nodes").WithTags("Nodes").RequireAuthorization()
            .MapGet("/", List).WithName("ListNodes").WithSummary("The nodes serving the API or running jobs, alive ones first, with their queues and last heartbeat.");
        return app;
    }

    /// <summary>GET /v1/nodes.</summary>
    public static Ok<IReadOnlyList<NodeResponse>> List(ClaimsPrincipal user, MetadataStore store, IOptions<JobsOptions> options)
    {
        var tenant = user.Tenant();
        var alive = DateTime.UtcNow.AddSeconds(-options.Value.StaleAfterSeconds);
        var (nodes, running) = store.Read(db => (
            db.Query<NodeRecord>("SELECT * FROM nodes ORDER BY HeartbeatAt DESC, Id"),
            db.Query<JobRecord>("SELECT * FROM jobs WHERE Tenant = ? AND Status = ?", tenant, JobStatus.Running.Word())));
        IReadOnlyList<NodeResponse> list = nodes
            .Select(n => new NodeResponse(n.Name, n.Role, n.Queues.Split(',', StringSplitOptions.RemoveEmptyEntries), n.WorkerCount,
                JobRecords.Utc(n.StartedAt), JobRecords.Utc(n.HeartbeatAt), JobRecords.Utc(n.HeartbeatAt) > alive,
                n.WorkerCount == 0 ? 0 : running.Count(j => j.Node == n.Name)))
            .OrderByDescending(n => n.Alive).ToList();
        return TypedResults.Ok(list);
    }
}
