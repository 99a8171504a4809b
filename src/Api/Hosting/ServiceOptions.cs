using LambdaService.Api.Contracts;
namespace LambdaService.Api.Hosting;

/// <summary>Where the service keeps its files (section <c>Storage</c>).</summary>
public sealed class StorageOptions
{
    /// <summary>The data folder: metadata, job storage and the artifact store (default <c>data</c> under the working directory).</summary>
    public string Root { get; set; } = "data";

    /// <summary>The root as an absolute path.</summary>
    public string FullRoot => Path.GetFullPath(Root);

    /// <summary>
    /// Free space (MiB) the file system under <see cref="Root"/> must keep: below it <c>/readyz</c> reports storage not ready and new
    /// uploads and submissions are refused with 507 before anything is written (default 256; 0 turns the floor off, and then only a
    /// write that fails is refused).
    /// </summary>
    public long MinFreeMb { get; set; } = 256;

    /// <summary>
    /// <c>sqlite</c> (default: records and queue in SQLite files under <see cref="Root"/>, artifacts in its folder) or
    /// <c>postgres</c> (records, queue and artifacts in the PostgreSQL database of <c>ConnectionStrings:Postgres</c>, shared by
    /// every node; <see cref="Root"/> is then this node's cache and scratch folder).
    /// </summary>
    public string Provider { get; set; } = SqliteProvider;

    /// <summary>The connection string of the PostgreSQL mode (from <c>ConnectionStrings:Postgres</c>).</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>Whether this is the PostgreSQL mode.</summary>
    public bool IsPostgres => string.Equals(Provider, PostgresProvider, StringComparison.OrdinalIgnoreCase);

    public const string SqliteProvider = "sqlite";
    public const string PostgresProvider = "postgres";

    /// <summary>Throws a clear error for an unknown provider or a PostgreSQL mode without a connection string.</summary>
    public void Validate()
    {
        if (!string.Equals(Provider, SqliteProvider, StringComparison.OrdinalIgnoreCase) && !IsPostgres)
        {
            throw new InvalidOperationException($"Storage:Provider is '{Provider}'; use '{SqliteProvider}' (the default) or '{PostgresProvider}'.");
        }
        if (MinFreeMb < 0) throw new InvalidOperationException($"Storage:MinFreeMb is {MinFreeMb}; use 0 (no floor) or a positive number of MiB.");
        if (IsPostgres && string.IsNullOrWhiteSpace(PostgresConnectionString))
        {
            throw new InvalidOperationException("Storage:Provider is 'postgres' but ConnectionStrings:Postgres is empty; set it (environment variable ConnectionStrings__Postgres), e.g. 'Host=db;Username=lambda;Password=…;Database=lambda'.");
        }
    }
}

/// <summary>Prometheus metrics (section <c>Metrics</c>).</summary>
public sealed class MetricsOptions
{
    /// <summary>Whether the HTTP service serves <c>/metrics</c> (default true; no API key is asked, and nothing in it names a tenant).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The port on which a <c>worker</c> node (which serves no HTTP API) serves <c>/metrics</c> on all interfaces; 0 (the default)
    /// serves none. The HTTP service ignores it: it serves <c>/metrics</c> on its own address.
    /// </summary>
    public int WorkerPort { get; set; }
}

/// <summary>The queues of a deployment that configures none (<see cref="JobsOptions.StandardQueues"/>); a deployment may name others.</summary>
public enum StandardQueue
{
    /// <summary>Jobs for CPU nodes (the default queue).</summary>
    Cpu,

    /// <summary>Jobs for nodes with a CUDA device.</summary>
    Gpu,
}

/// <summary>Background jobs (section <c>Jobs</c>).</summary>
public sealed class JobsOptions
{
    /// <summary>Wall-clock limit of one sandbox run of a measurement (15 minutes: a measurement that takes longer holds a worker others wait for).</summary>
    public int TimeLimitSeconds { get; set; } = 900;

    /// <summary>Wall-clock limit of one sandbox run of a training run (an hour: training several epochs and measuring along the way takes longer).</summary>
    public int TrainingTimeLimitSeconds { get; set; } = 3600;

    /// <summary>The time limit of a job of <paramref name="kind"/> (<see cref="Storage.JobRecord.TrainKind"/> or a measurement).</summary>
    public TimeSpan TimeLimitOf(string kind) =>
        TimeSpan.FromSeconds(kind == Storage.JobRecord.TrainKind ? TrainingTimeLimitSeconds : TimeLimitSeconds);

    /// <summary>
    /// The most jobs of one tenant that run at once, counted over every node in the jobs table (0, the default: half of
    /// <see cref="WorkerCount"/>, at least 1). A tenant's further jobs stay queued until one of its running jobs ends, while
    /// other tenants' jobs take the free workers.
    /// </summary>
    public int MaxRunningPerTenant { get; set; }

    /// <summary><see cref="MaxRunningPerTenant"/> in effect.</summary>
    /// <summary>
    /// Native threads of one sandboxed job: libtorch's and ONNX Runtime's intra-op pools (0, the default: the machine's cores divided
    /// by <see cref="WorkerCount"/>, at least 1, so that the jobs running at once share the cores without oversubscribing them).
    /// </summary>
    public int ThreadsPerJob { get; set; }

    /// <summary><see cref="ThreadsPerJob"/> in effect.</summary>
    public int EffectiveThreadsPerJob => ThreadsPerJob > 0 ? ThreadsPerJob : Math.Max(1, Environment.ProcessorCount / Math.Max(1, WorkerCount));

    public int EffectiveMaxRunningPerTenant => MaxRunningPerTenant > 0 ? MaxRunningPerTenant : Math.Max(1, WorkerCount / 2);

    /// <summary>Resident-memory limit of one sandbox process.</summary>
    public int MemoryLimitMb { get; set; } = 8192;

    /// <summary>
    /// Attempts per job (a crashed sandbox or a node that died mid-run counts one) before it fails. An attempt interrupted by a
    /// graceful shutdown does not count, and a model that cannot be loaded fails at its first attempt.
    /// </summary>
    public int MaxAttempts { get; set; } = 2;

    /// <summary>Hangfire workers in this process (0: this process runs no jobs, an API-only node).</summary>
    public int WorkerCount { get; set; } = 2;

    /// <summary>This node's name, shown on the jobs it runs (default: the host name).</summary>
    public string NodeName { get; set; } = Environment.MachineName;

    /// <summary>The queues of a deployment that configures none: the words of <see cref="StandardQueue"/>.</summary>
    public static readonly string[] StandardQueues = [.. ClosedSet.Words<StandardQueue>()];

    /// <summary>
    /// Queues this process takes jobs from, in priority order (empty: <c>cpu</c>, <c>gpu</c>). Empty by default rather than
    /// preset, because configuration binding appends to a preset array: <c>Jobs__Queues__0=gpu</c> alone makes a gpu-only worker.
    /// </summary>
    public string[] Queues { get; set; } = [];

    /// <summary>Queues a request may name (<c>queue</c>; empty: <c>cpu</c>, <c>gpu</c>); a name outside this list is a 400, not a job no worker ever takes.</summary>
    public string[] AvailableQueues { get; set; } = [];

    /// <summary><see cref="Queues"/> in effect.</summary>
    public string[] EffectiveQueues => Queues.Length > 0 ? [.. Queues.Distinct()] : StandardQueues;

    /// <summary><see cref="AvailableQueues"/> in effect.</summary>
    public string[] EffectiveAvailableQueues => AvailableQueues.Length > 0 ? [.. AvailableQueues.Distinct()] : StandardQueues;

    /// <summary>Queue new measurements and training runs go to when the request names none.</summary>
    public string DefaultQueue { get; set; } = "cpu";

    /// <summary>How often Hangfire polls its queue.</summary>
    public int QueuePollMilliseconds { get; set; } = 500;

    /// <summary>A running job whose heartbeat is older than this is taken to be orphaned (its process died) and is run again.</summary>
    public int StaleAfterSeconds { get; set; } = 30;

    /// <summary>Command that starts a sandbox (default: this executable's own <c>runner</c> verb).</summary>
    public string? RunnerCommand { get; set; }
}

/// <summary>Service-wide defaults of measurements (section <c>Measurement</c>).</summary>
public sealed class MeasurementDefaultsOptions
{
    /// <summary>
    /// Memory one pass of a derivative engine may take when a request names no <c>memoryBudgetMb</c> (0, the default: an eighth of
    /// <see cref="JobsOptions.MemoryLimitMb"/>, so 1024 MiB at the default 8 GiB limit). The engines split a measurement's lines into
    /// passes under it (README, Memory per pass), so a job's peak memory does not grow with points × directions.
    /// </summary>
    public double MemoryBudgetMb { get; set; }

    /// <summary>The share of the job's memory limit the default budget takes.</summary>
    public const int ShareOfJobMemory = 8;

    /// <summary><see cref="MemoryBudgetMb"/> in effect under <paramref name="jobs"/>.</summary>
    public double EffectiveMemoryBudgetMb(JobsOptions jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        return MemoryBudgetMb > 0 ? MemoryBudgetMb : Math.Max(1, jobs.MemoryLimitMb / (double)ShareOfJobMemory);
    }

    /// <summary>Refuses at start-up a default budget that is not a positive number of MiB or does not fit in the job's memory limit.</summary>
    public void Validate(JobsOptions jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        if (MemoryBudgetMb < 0 || !double.IsFinite(MemoryBudgetMb))
        {
            throw new InvalidOperationException($"Measurement:MemoryBudgetMb must be a positive number of MiB (or 0 for an eighth of Jobs:MemoryLimitMb); got {MemoryBudgetMb}.");
        }
        if (MemoryBudgetMb >= jobs.MemoryLimitMb)
        {
            throw new InvalidOperationException(
                $"Measurement:MemoryBudgetMb ({MemoryBudgetMb} MiB) must be below Jobs:MemoryLimitMb ({jobs.MemoryLimitMb} MiB): a pass that takes the whole limit gets its sandbox stopped.");
        }
    }
}

/// <summary>What the OpenAPI document says about the deployment (section <c>OpenApi</c>).</summary>
public sealed class OpenApiDocumentOptions
{
    /// <summary>The licence name in <c>info.license</c>.</summary>
    public string LicenseName { get; set; } = "Proprietary";

    /// <summary>Its SPDX identifier (a <c>LicenseRef-</c> for a licence outside the SPDX list); used when <see cref="LicenseUrl"/> is not set.</summary>
    public string LicenseIdentifier { get; set; } = "LicenseRef-Proprietary";

    /// <summary>A URL of the licence text, instead of the identifier.</summary>
    public string? LicenseUrl { get; set; }
}

/// <summary>Request limits (section <c>Limits</c>).</summary>
public sealed class LimitsOptions
{
    /// <summary>Largest model upload.</summary>
    public long MaxModelBytes { get; set; } = 512L << 20;

    /// <summary>Largest dataset upload.</summary>
    public long MaxDatasetBytes { get; set; } = 512L << 20;

    /// <summary>Largest size a dataset may decompress to.</summary>
    public long MaxDecompressedBytes { get; set; } = 1L << 30;

    /// <summary>Largest JSON request body (default 1 MiB); a larger one is a 413 naming <c>body</c> before anything is read or stored.</summary>
    public long MaxJsonBytes { get; set; } = 1L << 20;

    /// <summary>Longest name a client may give (a sweep's <c>name</c>, an upload's <c>name</c>).</summary>
    public const int MaxNameLength = 200;

    /// <summary>Most training runs one sweep may create.</summary>
    public int MaxSweepRuns { get; set; } = 1000;

    /// <summary>Requests per minute per API key (0 = unlimited).</summary>
    public int RequestsPerMinute { get; set; } = 600;
}
