namespace LambdaService.Api.Hosting;

/// <summary>Where the service keeps its files (section <c>Storage</c>).</summary>
public sealed class StorageOptions
{
    /// <summary>The data folder: metadata, job storage and the artifact store (default <c>data</c> under the working directory).</summary>
    public string Root { get; set; } = "data";

    /// <summary>The root as an absolute path.</summary>
    public string FullRoot => Path.GetFullPath(Root);
}

/// <summary>Background jobs (section <c>Jobs</c>).</summary>
public sealed class JobsOptions
{
    /// <summary>Wall-clock limit of one sandbox run.</summary>
    public int TimeLimitSeconds { get; set; } = 3600;

    /// <summary>Resident-memory limit of one sandbox process.</summary>
    public int MemoryLimitMb { get; set; } = 8192;

    /// <summary>Attempts per job (a crashed sandbox or a restarted service counts one) before it fails.</summary>
    public int MaxAttempts { get; set; } = 2;

    /// <summary>Hangfire workers in this process.</summary>
    public int WorkerCount { get; set; } = 2;

    /// <summary>Queues this process takes jobs from, in priority order.</summary>
    public string[] Queues { get; set; } = ["cpu", "gpu"];

    /// <summary>Queue new measurements go to.</summary>
    public string DefaultQueue { get; set; } = "cpu";

    /// <summary>How often Hangfire polls its queue.</summary>
    public int QueuePollMilliseconds { get; set; } = 500;

    /// <summary>A running job whose heartbeat is older than this is taken to be orphaned (its process died) and is run again.</summary>
    public int StaleAfterSeconds { get; set; } = 30;

    /// <summary>Command that starts a sandbox (default: this executable's own <c>runner</c> verb).</summary>
    public string? RunnerCommand { get; set; }
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

    /// <summary>Most training runs one sweep may create.</summary>
    public int MaxSweepRuns { get; set; } = 1000;

    /// <summary>Requests per minute per API key (0 = unlimited).</summary>
    public int RequestsPerMinute { get; set; } = 600;
}
