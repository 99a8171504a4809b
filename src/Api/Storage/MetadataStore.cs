using LambdaService.Api.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using SQLite;

namespace LambdaService.Api.Storage;

/// <summary>
/// The service's records. Embedded mode (<c>Storage:Provider</c> <c>sqlite</c>, the default): one SQLite file
/// (<c>{Storage:Root}/metadata.db</c>, WAL mode) shared by the HTTP process and worker processes on the same storage.
/// PostgreSQL mode (<c>postgres</c>, connection string <c>ConnectionStrings:Postgres</c>): the same tables in one database
/// shared by every node; the schema is created or migrated (tables and missing columns added) at first use, under an
/// advisory lock so that nodes starting together do not race. Every query is scoped by tenant where records belong to one.
/// </summary>
public sealed class MetadataStore : IDisposable
{
    /// <summary>The record classes, one table each.</summary>
    public static readonly Type[] RecordTypes =
        [typeof(ModelRecord), typeof(DatasetRecord), typeof(JobRecord), typeof(SweepRecord), typeof(IdempotencyRecord), typeof(ApiKeyRecord),
         typeof(JobAttemptRecord), typeof(NodeRecord)];

    private readonly SQLiteConnection? _sqlite;
    private readonly Lock _gate = new();
    private readonly NpgsqlDataSource? _postgres;
    private volatile bool _schemaReady;

    public MetadataStore(IOptions<StorageOptions> options)
    {
        var storage = options.Value;
        if (storage.IsPostgres)
        {
            _postgres = NpgsqlDataSource.Create(storage.PostgresConnectionString!);
            Path = "postgres";
            return;
        }
        var root = storage.FullRoot;
        Directory.CreateDirectory(root);
        Path = System.IO.Path.Combine(root, "metadata.db");
        _sqlite = new SQLiteConnection(Path, SQLiteOpenFlags.ReadWrite | SQLiteOpenFlags.Create | SQLiteOpenFlags.FullMutex, storeDateTimeAsTicks: true);
        _sqlite.BusyTimeout = TimeSpan.FromSeconds(10);
        _sqlite.ExecuteScalar<string>("PRAGMA journal_mode=WAL");
        foreach (var type in RecordTypes) _sqlite.CreateTable(type);
    }

    /// <summary>The database file (embedded mode), or <c>postgres</c>.</summary>
    public string Path { get; }

    /// <summary>The PostgreSQL data source in PostgreSQL mode, else null.</summary>
    public NpgsqlDataSource? Postgres => _postgres;

    /// <summary>Runs <paramref name="action"/> on the database (no transaction).</summary>
    public T Read<T>(Func<IDb, T> action)
    {
        if (_postgres is null)
        {
            lock (_gate) return action(new SqliteDb(_sqlite!));
        }
        EnsureSchema();
        using var connection = _postgres.OpenConnection();
        return action(new PostgresDb(connection, null));
    }

    /// <summary>Runs <paramref name="action"/> in one transaction (committed when it returns, rolled back when it throws).</summary>
    public void Write(Action<IDb> action) => Write(db =>
    {
        action(db);
        return 0;
    });

    /// <summary>Runs <paramref name="action"/> in one transaction (committed when it returns, rolled back when it throws); returns its value.</summary>
    public T Write<T>(Func<IDb, T> action)
    {
        if (_postgres is null)
        {
            lock (_gate)
            {
                T result = default!;
                _sqlite!.RunInTransaction(() => result = action(new SqliteDb(_sqlite)));
                return result;
            }
        }
        EnsureSchema();
        using var connection = _postgres.OpenConnection();
        using var transaction = connection.BeginTransaction();
        var value = action(new PostgresDb(connection, transaction));
        transaction.Commit();
        return value;
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
    public static bool ArtifactUnused(IDb db, string sha256, string recordId) =>
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
        catch (Exception e) when (e is SQLiteException || Unavailable(e))
        {
            return false;
        }
    }

    /// <summary>Whether <paramref name="e"/> means the database cannot be reached now (down, restarting, out of connections), not a bad statement.</summary>
    public static bool Unavailable(Exception e) => e switch
    {
        SQLiteException s => s.Result is SQLite3.Result.Busy or SQLite3.Result.Locked or SQLite3.Result.CannotOpen or SQLite3.Result.IOError,
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal)
            || p.SqlState == PostgresErrorCodes.TooManyConnections || p.SqlState == PostgresErrorCodes.CannotConnectNow,
        NpgsqlException n => n.IsTransient || n.InnerException is System.Net.Sockets.SocketException or IOException or TimeoutException,
        System.Net.Sockets.SocketException => true,
        _ => e.InnerException is { } inner && Unavailable(inner),
    };

    /// <summary>Creates the tables, adds missing columns and indexes (PostgreSQL mode), once per process; nothing in embedded mode.</summary>
    public void EnsureSchema()
    {
        if (_schemaReady || _postgres is null) return;
        lock (_gate)
        {
            if (_schemaReady) return;
            using var connection = _postgres!.OpenConnection();
            using var transaction = connection.BeginTransaction();
            void Run(string sql)
            {
                using var command = new NpgsqlCommand(sql, connection, transaction);
                command.ExecuteNonQuery();
            }
            Run("SELECT pg_advisory_xact_lock(7261903)");   // one migrating node at a time
            foreach (var type in RecordTypes)
            {
                var table = RecordTable.Of(type);
                Run($"CREATE TABLE IF NOT EXISTS {table.Name} ({table.Key.Name} text PRIMARY KEY)");
                foreach (var column in table.Columns.Where(c => c != table.Key))
                {
                    Run($"ALTER TABLE {table.Name} ADD COLUMN IF NOT EXISTS {column.Name} {PostgresDb.ColumnType(column.PropertyType)}");
                }
                foreach (var column in table.Indexed)
                {
                    Run($"CREATE INDEX IF NOT EXISTS ix_{table.Name}_{column.Name.ToLowerInvariant()} ON {table.Name} ({column.Name})");
                }
            }
            foreach (var sql in PostgresSchema.Extra) Run(sql);
            transaction.Commit();
            _schemaReady = true;
        }
    }

    public void Dispose()
    {
        _sqlite?.Dispose();
        _postgres?.Dispose();
    }
}

/// <summary>Tables of the PostgreSQL mode that are not records: stored content and rate-limit windows.</summary>
internal static class PostgresSchema
{
    public static readonly string[] Extra =
    [
        "CREATE TABLE IF NOT EXISTS artifact_blobs (sha256 text PRIMARY KEY, size_bytes bigint NOT NULL, chunks integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS artifact_chunks (sha256 text NOT NULL, seq integer NOT NULL, data bytea NOT NULL, PRIMARY KEY (sha256, seq))",
        "CREATE TABLE IF NOT EXISTS rate_windows (partition_key text NOT NULL, window_start timestamptz NOT NULL, hits integer NOT NULL, PRIMARY KEY (partition_key, window_start))",
    ];
}
