using SQLite;

namespace LambdaService.Api.Storage;

/// <summary>An uploaded model (table <c>models</c>).</summary>
[Table("models")]
public sealed class ModelRecord
{
    [PrimaryKey] public string Id { get; set; } = "";
    [Indexed] public string Tenant { get; set; } = "";
    public string Name { get; set; } = "";
    public string Format { get; set; } = "";
    public string Sha256 { get; set; } = "";
    public long SizeBytes { get; set; }
    public string InputsJson { get; set; } = "[]";
    public string OutputsJson { get; set; } = "[]";
    public DateTime CreatedAt { get; set; }
}

/// <summary>An uploaded dataset (table <c>datasets</c>).</summary>
[Table("datasets")]
public sealed class DatasetRecord
{
    [PrimaryKey] public string Id { get; set; } = "";
    [Indexed] public string Tenant { get; set; } = "";
    public string Name { get; set; } = "";
    public string Format { get; set; } = "";
    public string Sha256 { get; set; } = "";
    public long SizeBytes { get; set; }
    public int Rows { get; set; }
    public string ShapeJson { get; set; } = "[]";
    public bool HasLabels { get; set; }
    public int Classes { get; set; }
    public string? LabelColumn { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>A background job, a measurement (kind <c>measure</c>) or a training run (kind <c>train</c>) (table <c>jobs</c>).</summary>
[Table("jobs")]
public sealed class JobRecord
{
    /// <summary>Kind of a measurement.</summary>
    public const string MeasureKind = "measure";

    /// <summary>Kind of a training run.</summary>
    public const string TrainKind = "train";

    [PrimaryKey] public string Id { get; set; } = "";
    [Indexed] public string Tenant { get; set; } = "";
    public string Kind { get; set; } = MeasureKind;
    /// <summary>The word of the job's <see cref="JobStatus"/> (the column stays text, so existing databases read as before); see <see cref="State"/>.</summary>
    [Indexed] public string Status { get; set; } = "queued";

    /// <summary><see cref="Status"/> as the enum (read only: no column, and state changes go through <c>Jobs/JobStore.cs</c>).</summary>
    public JobStatus State => JobStatuses.Parse(Status);
    public double Progress { get; set; }
    public string RequestJson { get; set; } = "{}";
    public string ModelId { get; set; } = "";
    public string DatasetId { get; set; } = "";

    /// <summary>Training: the uploaded test set, if any.</summary>
    public string? TestDatasetId { get; set; }

    /// <summary>Training: the last progress detail (epoch, epochs, train loss, test error, λ) as JSON.</summary>
    public string? ProgressDetailJson { get; set; }

    /// <summary>Training: the registered ONNX export (model id and content hash; the file is kept while the run exists).</summary>
    public string? OnnxModelId { get; set; }
    public string? OnnxSha256 { get; set; }

    /// <summary>Training: the registered TorchScript export.</summary>
    public string? TorchScriptModelId { get; set; }
    public string? TorchScriptSha256 { get; set; }

    /// <summary>Training: the sweep this run belongs to, and its cell there.</summary>
    [Indexed] public string? SweepId { get; set; }
    public int SweepCell { get; set; }

    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public DateTime? HeartbeatAt { get; set; }
    public string? ResultJson { get; set; }
    public string? ErrorJson { get; set; }
    /// <summary>Attempts that count toward <c>Jobs:MaxAttempts</c>: every start except those a graceful shutdown interrupted.</summary>
    public int Attempts { get; set; }

    /// <summary>Every start of the job, interrupted ones included: the number of its latest <see cref="JobAttemptRecord"/> (0 on records older than this column, whose starts all counted: then <see cref="Attempts"/>).</summary>
    public int Starts { get; set; }

    /// <summary>When a claim last left the job queued because its tenant had <c>Jobs:MaxRunningPerTenant</c> jobs running; null otherwise.</summary>
    public DateTime? DeferredAt { get; set; }

    public string? RunToken { get; set; }
    public string? HangfireJobId { get; set; }
    public DateTime? EnqueuedAt { get; set; }
    public string Queue { get; set; } = "cpu";

    /// <summary>The node (<c>Jobs:NodeName</c>) that runs or last ran the job.</summary>
    public string? Node { get; set; }
}

/// <summary>One attempt at a job: which node ran it, when, and how it ended (table <c>job_attempts</c>).</summary>
[Table("job_attempts")]
public sealed class JobAttemptRecord
{
    /// <summary><c>{jobId}/{attempt}</c>.</summary>
    [PrimaryKey] public string Id { get; set; } = "";
    [Indexed] public string JobId { get; set; } = "";
    public int Attempt { get; set; }
    public string Node { get; set; } = "";
    public DateTime StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }

    /// <summary>null while running; then succeeded, failed, canceled, crashed (retried), lost (its node stopped heartbeating) or interrupted (its node shut down gracefully; not counted toward Jobs:MaxAttempts).</summary>
    public string? Outcome { get; set; }
}

/// <summary>A node that runs jobs or serves the API, with its last heartbeat (table <c>nodes</c>).</summary>
[Table("nodes")]
public sealed class NodeRecord
{
    /// <summary><c>{name}/{role}</c>: one row per node and role (an API and a worker on the same host are two rows).</summary>
    [PrimaryKey] public string Id { get; set; } = "";

    /// <summary><c>Jobs:NodeName</c>.</summary>
    public string Name { get; set; } = "";

    /// <summary><c>api</c>, <c>worker</c> or <c>api+worker</c>.</summary>
    public string Role { get; set; } = "";

    /// <summary>The queues its workers take jobs from, comma-separated (empty for an API-only node).</summary>
    public string Queues { get; set; } = "";
    public int WorkerCount { get; set; }
    public int ProcessId { get; set; }
    public DateTime StartedAt { get; set; }
    public DateTime HeartbeatAt { get; set; }
}

/// <summary>A sweep: its request and cells; its runs are job records with its id (table <c>sweeps</c>).</summary>
[Table("sweeps")]
public sealed class SweepRecord
{
    [PrimaryKey] public string Id { get; set; } = "";
    [Indexed] public string Tenant { get; set; } = "";
    public string Name { get; set; } = "";
    public string RequestJson { get; set; } = "{}";

    /// <summary>The cells' factor values, a JSON array of objects.</summary>
    public string CellsJson { get; set; } = "[]";
    public DateTime CreatedAt { get; set; }
}

/// <summary>
/// The states of a job: queued → running → succeeded | failed | canceled (a running job may go back to queued when its attempt
/// crashed, was lost or was interrupted). Stored in <see cref="JobRecord.Status"/> and written on the wire as the kebab-case word of
/// the name (<c>queued</c>, <c>running</c>, <c>succeeded</c>, <c>failed</c>, <c>canceled</c>), the naming policy of the
/// <c>JsonStringEnumConverter</c> registered in <c>Hosting/ServiceSetup.cs</c>. Only <c>Jobs/JobStore.cs</c> changes a job's state.
/// </summary>
public enum JobStatus
{
    /// <summary>Waiting on its queue (new, or back after a crashed, lost or interrupted attempt).</summary>
    Queued,

    /// <summary>Claimed by a worker, its sandbox running.</summary>
    Running,

    /// <summary>Finished with a result.</summary>
    Succeeded,

    /// <summary>Finished with an error.</summary>
    Failed,

    /// <summary>Canceled by its owner.</summary>
    Canceled,
}

/// <summary>The words of <see cref="JobStatus"/>, as stored in the jobs table and written on the wire.</summary>
public static class JobStatuses
{
    private static readonly Dictionary<string, JobStatus> ByWord = Enum.GetValues<JobStatus>().ToDictionary(Word, s => s, StringComparer.Ordinal);

    /// <summary>Every state's word, in the order a job goes through them.</summary>
    public static readonly IReadOnlyList<string> Words = [.. Enum.GetValues<JobStatus>().Select(Word)];

    /// <summary>The state's word: its name in kebab case, as <see cref="System.Text.Json.Serialization.JsonStringEnumConverter"/> writes it with <see cref="System.Text.Json.JsonNamingPolicy.KebabCaseLower"/>.</summary>
    public static string Word(this JobStatus status) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(status.ToString());

    /// <summary>The state whose word is <paramref name="word"/> (exact, lower case), if any.</summary>
    public static bool TryParse(string? word, out JobStatus status) => ByWord.TryGetValue(word ?? "", out status);

    /// <summary>The state whose word is <paramref name="word"/>; a word that is no state throws.</summary>
    public static JobStatus Parse(string word) =>
        TryParse(word, out var status) ? status : throw new FormatException($"'{word}' is not a job state; the states are {string.Join(", ", Words)}.");

    /// <summary>Whether a job in this state will not change any more.</summary>
    public static bool IsFinal(this JobStatus status) => status is JobStatus.Succeeded or JobStatus.Failed or JobStatus.Canceled;
}

/// <summary>A remembered <c>Idempotency-Key</c> (table <c>idempotency</c>).</summary>
[Table("idempotency")]
public sealed class IdempotencyRecord
{
    /// <summary><c>tenant/key</c>.</summary>
    [PrimaryKey] public string TenantKey { get; set; } = "";
    public string RequestHash { get; set; } = "";
    public string ResourceType { get; set; } = "";
    public string ResourceId { get; set; } = "";
    public DateTime CreatedAt { get; set; }
}

/// <summary>A generated API key, stored as its SHA-256 only (table <c>api_keys</c>).</summary>
[Table("api_keys")]
public sealed class ApiKeyRecord
{
    [PrimaryKey] public string KeyHash { get; set; } = "";
    public string Tenant { get; set; } = "";
    public DateTime CreatedAt { get; set; }
}
