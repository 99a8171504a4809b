using LambdaService.Api.Hosting;
using Microsoft.Extensions.Options;
using SQLite;

namespace LambdaService.Api.Storage;

/// <summary>
/// The service's records in one SQLite file (<c>{Storage:Root}/metadata.db</c>, WAL mode), shared by the
/// HTTP process and worker processes on the same storage. Every query is scoped by tenant where records
/// belong to one.
/// </summary>
public sealed class MetadataStore : IDisposable
{
    private readonly SQLiteConnection _db;
    private readonly Lock _gate = new();

    public MetadataStore(IOptions<StorageOptions> options)
    {
        var root = options.Value.FullRoot;
        Directory.CreateDirectory(root);
        Path = System.IO.Path.Combine(root, "metadata.db");
        _db = new SQLiteConnection(Path, SQLiteOpenFlags.ReadWrite | SQLiteOpenFlags.Create | SQLiteOpenFlags.FullMutex, storeDateTimeAsTicks: true);
        _db.BusyTimeout = TimeSpan.FromSeconds(10);
        _db.ExecuteScalar<string>("PRAGMA journal_mode=WAL");
        _db.CreateTable<ModelRecord>();
        _db.CreateTable<DatasetRecord>();
        _db.CreateTable<JobRecord>();
        _db.CreateTable<SweepRecord>();
        _db.CreateTable<IdempotencyRecord>();
        _db.CreateTable<ApiKeyRecord>();
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <summary>Runs <paramref name="action"/> under the store's lock.</summary>
    public T Read<T>(Func<SQLiteConnection, T> action)
    {
        lock (_gate) return action(_db);
    }

    /// <summary>Runs <paramref name="action"/> in one transaction under the store's lock.</summary>
    public T Write<T>(Func<SQLiteConnection, T> action)
    {
        lock (_gate)
        {
            T result = default!;
            _db.RunInTransaction(() => result = action(_db));
            return result;
        }
    }

    /// <summary>
    /// Whether no model or dataset record (of any tenant) still points at the stored content <paramref name="sha256"/>,
    /// no training run keeps it as its export, and no running job may still read the record <paramref name="recordId"/>'s
    /// file: then the file may be deleted. Call inside <see cref="Write{T}"/>, after deleting the record.
    /// </summary>
    /// <remarks>
    /// Queued jobs do not hold files: a job looks its inputs' records up when it starts and fails ("Input deleted") when
    /// one is gone. A running job may not have opened the file yet, so it is kept; the job releases it when it ends
    /// (<c>SandboxJob</c>). Before, queued jobs held files too and nothing released them afterwards.
    /// </remarks>
    public static bool ArtifactUnused(SQLiteConnection db, string sha256, string recordId) =>
        db.ExecuteScalar<int>("SELECT COUNT(*) FROM models WHERE Sha256 = ?", sha256) == 0
        && db.ExecuteScalar<int>("SELECT COUNT(*) FROM datasets WHERE Sha256 = ?", sha256) == 0
        && db.ExecuteScalar<int>("SELECT COUNT(*) FROM jobs WHERE OnnxSha256 = ? OR TorchScriptSha256 = ?", sha256, sha256) == 0
        && db.ExecuteScalar<int>("SELECT COUNT(*) FROM jobs WHERE (ModelId = ? OR DatasetId = ? OR TestDatasetId = ?) AND Status = 'running'",
            recordId, recordId, recordId) == 0;

    /// <summary>Whether the database answers.</summary>
    public bool IsReachable()
    {
        try
        {
            return Read(db => db.ExecuteScalar<int>("SELECT 1")) == 1;
        }
        catch (SQLiteException)
        {
            return false;
        }
    }

    public void Dispose() => _db.Dispose();
}
