using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Options;
using Prometheus;

namespace LambdaService.Api.Hosting;

/// <summary>
/// The service's Prometheus metrics (prometheus-net, default registry, so the process and .NET runtime metrics come along):
/// <list type="bullet">
/// <item><c>lambdaservice_jobs{kind, queue, status}</c>: jobs as the database has them, counted at each scrape (every node and
/// tenant; the same numbers from every node of a cluster, so aggregate with <c>max</c>, not <c>sum</c>).</item>
/// <item><c>lambdaservice_database_up</c>: 1 when the last scrape could count the jobs, else 0.</item>
/// <item><c>lambdaservice_job_duration_seconds{kind, queue, outcome}</c>: sandbox run time of each attempt this node ran, by how
/// it ended (<c>succeeded</c>, <c>failed</c>, <c>canceled</c>, <c>crashed</c>, <c>timed-out</c>, <c>memory-exceeded</c>,
/// <c>interrupted</c>).</item>
/// <item><c>lambdaservice_sandbox_crashes_total{kind, queue}</c>: sandbox processes that died (a signal or an abnormal exit).</item>
/// <item><c>lambdaservice_uploads_total{kind}</c>, <c>lambdaservice_upload_bytes_total{kind}</c>: accepted uploads and their
/// bytes, <c>kind</c> = <c>model</c> or <c>dataset</c> (an <c>Idempotency-Key</c> replay counts nothing).</item>
/// <item><c>http_request_duration_seconds</c>, <c>http_requests_received_total</c>, <c>http_requests_in_progress</c>: per
/// endpoint, from prometheus-net's ASP.NET Core middleware.</item>
/// </list>
/// </summary>
public static class ServiceMetrics
{
    /// <summary>Upper bounds of the job duration buckets: 0.25 s doubling to about 68 minutes.</summary>
    public static readonly double[] DurationBuckets = Histogram.ExponentialBuckets(0.25, 2, 15);

    private static readonly Gauge Jobs = Metrics.CreateGauge("lambdaservice_jobs",
        "Jobs by kind, queue and status, counted in the database at each scrape (all nodes, all tenants).", "kind", "queue", "status");

    private static readonly Gauge DatabaseUp = Metrics.CreateGauge("lambdaservice_database_up",
        "1 when the last scrape could read the job records, 0 when the database did not answer.");

    private static readonly Histogram JobDuration = Metrics.CreateHistogram("lambdaservice_job_duration_seconds",
        "Sandbox run time of each job attempt on this node, by how the attempt ended.",
        new HistogramConfiguration { LabelNames = ["kind", "queue", "outcome"], Buckets = DurationBuckets });

    private static readonly Counter SandboxCrashes = Metrics.CreateCounter("lambdaservice_sandbox_crashes_total",
        "Sandbox processes of this node that died (a signal or an abnormal exit status).", "kind", "queue");

    private static readonly Counter Uploads = Metrics.CreateCounter("lambdaservice_uploads_total",
        "Accepted uploads on this node (kind: model or dataset).", "kind");

    private static readonly Counter UploadBytes = Metrics.CreateCounter("lambdaservice_upload_bytes_total",
        "Bytes of the accepted uploads on this node (kind: model or dataset).", "kind");

    private static readonly string[] Kinds = [JobRecord.MeasureKind, JobRecord.TrainKind];

    private static readonly IReadOnlyList<string> Statuses = JobStatuses.Words;

    private static int _registered;

    /// <summary>The word for how a sandbox run ended, as used in the <c>outcome</c> label and the attempt log.</summary>
    public static string OutcomeOf(SandboxOutcome outcome, bool canceledByUser) => outcome switch
    {
        SandboxOutcome.Succeeded => JobStatus.Succeeded.Word(),
        SandboxOutcome.UserError => JobStatus.Failed.Word(),
        SandboxOutcome.Crashed => "crashed",
        SandboxOutcome.TimedOut => "timed-out",
        SandboxOutcome.MemoryExceeded => "memory-exceeded",
        SandboxOutcome.Canceled when canceledByUser => JobStatus.Canceled.Word(),
        SandboxOutcome.Canceled => "interrupted",
        _ => JobStatus.Failed.Word(),
    };

    /// <summary>Records one finished sandbox run of a job attempt.</summary>
    public static void JobAttemptEnded(string kind, string queue, SandboxOutcome outcome, bool canceledByUser, TimeSpan elapsed)
    {
        JobDuration.WithLabels(kind, queue, OutcomeOf(outcome, canceledByUser)).Observe(elapsed.TotalSeconds);
        if (outcome is SandboxOutcome.Crashed) SandboxCrashes.WithLabels(kind, queue).Inc();
    }

    /// <summary>Records one accepted upload of <paramref name="bytes"/> bytes (<paramref name="kind"/>: <c>model</c> or <c>dataset</c>).</summary>
    public static void UploadAccepted(string kind, long bytes)
    {
        Uploads.WithLabels(kind).Inc();
        UploadBytes.WithLabels(kind).Inc(bytes);
    }

    /// <summary>
    /// Before each scrape, counts the jobs by kind, queue and status in the database (one grouped query). Every kind × status of
    /// every queue seen (and of <c>Jobs:AvailableQueues</c>) is written, zeros included, so that a status that empties drops to 0.
    /// Registered once per process.
    /// </summary>
    public static void CountJobsAtScrape(MetadataStore store, JobsOptions jobs, ILogger logger)
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        var queues = new HashSet<string>(jobs.EffectiveAvailableQueues, StringComparer.Ordinal);
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            List<JobRecord> rows;
            try
            {
                // A grouped count read into JobRecord's own columns: Attempts carries COUNT(*).
                rows = store.Read(db => db.Query<JobRecord>("SELECT Kind, Queue, Status, COUNT(*) AS Attempts FROM jobs GROUP BY Kind, Queue, Status"));
            }
            catch (Exception e) when (MetadataStore.Unavailable(e))
            {
                logger.LogWarning("Metrics: the jobs could not be counted, the database is unavailable ({Error})", e.Message);
                DatabaseUp.Set(0);
                return;
            }
            DatabaseUp.Set(1);
            var counts = rows.ToDictionary(r => (r.Kind, r.Queue, r.Status), r => r.Attempts);
            foreach (var row in rows) queues.Add(row.Queue);
            foreach (var kind in Kinds)
                foreach (var queue in queues)
                    foreach (var status in Statuses)
                        Jobs.WithLabels(kind, queue, status).Set(counts.GetValueOrDefault((kind, queue, status)));
        });
    }

    /// <summary>Request metrics per endpoint.</summary>
    public static WebApplication UseLambdaHttpMetrics(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value.Enabled) app.UseHttpMetrics();
        return app;
    }

    /// <summary><c>GET /metrics</c> in the Prometheus text format (no API key), unless <c>Metrics:Enabled</c> is false.</summary>
    public static WebApplication MapLambdaMetrics(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value.Enabled) return app;
        CountJobsAtScrape(app.Services.GetRequiredService<MetadataStore>(), app.Services.GetRequiredService<IOptions<JobsOptions>>().Value,
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ServiceMetrics)));
        app.MapMetrics("/metrics").ExcludeFromDescription();
        return app;
    }

    /// <summary>A worker node's <c>/metrics</c> on <c>Metrics:WorkerPort</c> (a small Kestrel server of its own), when that is above 0.</summary>
    public static IServiceCollection AddLambdaWorkerMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection("Metrics").Get<MetricsOptions>() ?? new MetricsOptions();
        if (options.WorkerPort <= 0) return services;
        if (options.WorkerPort > ushort.MaxValue) throw new InvalidOperationException($"Metrics:WorkerPort is {options.WorkerPort}; use a port from 1 to 65535, or 0 for none.");
        services.AddMetricServer(o => o.Port = (ushort)options.WorkerPort);
        services.AddHostedService<WorkerJobCounts>();
        return services;
    }

    /// <summary>Registers the job counts of a worker node's metrics once its services exist.</summary>
    private sealed class WorkerJobCounts(MetadataStore store, IOptions<JobsOptions> jobs, ILogger<WorkerJobCounts> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            CountJobsAtScrape(store, jobs.Value, logger);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
