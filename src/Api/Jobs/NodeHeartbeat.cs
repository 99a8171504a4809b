using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Jobs;

/// <summary>What this process is: <c>api</c>, <c>worker</c> or <c>api+worker</c>, and whether it runs jobs.</summary>
public sealed record NodeRole(string Role, bool RunsJobs);

/// <summary>
/// Writes this node's row in <c>nodes</c> (name, role, queues, workers, process id) at start and then every third of
/// <see cref="JobsOptions.StaleAfterSeconds"/>, so that <c>GET /v1/nodes</c> shows which nodes are alive. A database that is
/// away, full or read-only is waited out.
/// </summary>
public sealed class NodeHeartbeat(MetadataStore store, NodeRole role, IOptions<JobsOptions> options, ILogger<NodeHeartbeat> logger) : BackgroundService
{
    private readonly DateTime _started = DateTime.UtcNow;

    /// <summary>Writes the row once.</summary>
    public void Beat()
    {
        var o = options.Value;
        var record = new NodeRecord
        {
            Id = $"{o.NodeName}/{role.Role}",
            Name = o.NodeName,
            Role = role.Role,
            Queues = role.RunsJobs ? string.Join(",", o.EffectiveQueues) : "",
            WorkerCount = role.RunsJobs ? o.WorkerCount : 0,
            ProcessId = Environment.ProcessId,
            StartedAt = _started,
            HeartbeatAt = DateTime.UtcNow,
        };
        store.Write(db =>
        {
            if (db.Execute("UPDATE nodes SET Name = ?, Role = ?, Queues = ?, WorkerCount = ?, ProcessId = ?, StartedAt = ?, HeartbeatAt = ? WHERE Id = ?",
                    record.Name, record.Role, record.Queues, record.WorkerCount, record.ProcessId, record.StartedAt, record.HeartbeatAt, record.Id) == 0)
            {
                db.InsertIfAbsent(record);
            }
        });
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromSeconds(Math.Clamp(options.Value.StaleAfterSeconds / 3.0, 1, 10));
        var announced = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                Beat();
                if (!announced)
                {
                    announced = true;
                    logger.LogInformation("Node {Node} is up as {Role}: queues {Queues}, {Workers} job workers, storage {Storage}", options.Value.NodeName, role.Role,
                        role.RunsJobs ? string.Join(",", options.Value.EffectiveQueues) : "none", role.RunsJobs ? options.Value.WorkerCount : 0, store.Path);
                }
            }
            catch (Exception e) when (StorageErrors.Classify(e) is var failure and not StorageFailure.None)
            {
                // Away, full or read-only: waited out like a database that is away, rather than ending the host.
                logger.LogWarning("Node heartbeat not written: the database is {Failure} ({Error})", failure.ToString().ToLowerInvariant(), e.Message);
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
