using Npgsql;
using SQLite;

namespace LambdaService.Api.Storage;

/// <summary>What kind of storage failure an exception is.</summary>
public enum StorageFailure
{
    /// <summary>Not a storage failure.</summary>
    None,

    /// <summary>No space left: the disk or a quota is full (HTTP 507).</summary>
    Full,

    /// <summary>The store cannot be written: a read-only file system or database (HTTP 503).</summary>
    ReadOnly,

    /// <summary>The database cannot be reached just now (HTTP 503, <see cref="MetadataStore.Unavailable"/>).</summary>
    Unavailable,
}

/// <summary>
/// Recognises failures to write the store — a full disk or quota, a read-only file system or database, a database that is
/// away — wherever they come from: file I/O, SQLite (records in <c>metadata.db</c>, Hangfire's queue in <c>jobs.db</c>),
/// PostgreSQL, and Hangfire's wrappers around them (inner exceptions are inspected). The README's Errors bullet lists the
/// responses: 507 for <see cref="StorageFailure.Full"/>, 503 for the others.
/// </summary>
public static class StorageErrors
{
    /// <summary>errno values (Linux) that .NET puts in <see cref="Exception.HResult"/> of an <see cref="IOException"/>.</summary>
    private const int Enospc = 28, Erofs = 30, Edquot = 122;

    /// <summary>The same on Windows (ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL, ERROR_WRITE_PROTECT as HRESULTs).</summary>
    private const int HandleDiskFull = unchecked((int)0x80070027), DiskFull = unchecked((int)0x80070070), WriteProtect = unchecked((int)0x80070013);

    /// <summary>Seconds a client is asked to wait (<c>Retry-After</c>) after a full store: space comes back when an operator frees it.</summary>
    public const int FullRetryAfterSeconds = 60;

    /// <summary>Seconds a client is asked to wait after a read-only store or an unreachable database.</summary>
    public const int UnavailableRetryAfterSeconds = 5;

    /// <summary>The kind of storage failure <paramref name="e"/> is, looking through wrapping exceptions; the most specific wins.</summary>
    public static StorageFailure Classify(Exception e)
    {
        var found = StorageFailure.None;
        foreach (var inner in Chain(e))
        {
            var kind = Own(inner);
            if (kind is StorageFailure.Full or StorageFailure.ReadOnly) return kind;
            if (kind == StorageFailure.Unavailable) found = kind;
        }
        return found;
    }

    /// <summary>The HTTP status of a failure: 507 when full, else 503.</summary>
    public static int StatusOf(StorageFailure failure) => failure == StorageFailure.Full ? StatusCodes.Status507InsufficientStorage : StatusCodes.Status503ServiceUnavailable;

    /// <summary>The <c>Retry-After</c> seconds of a failure.</summary>
    public static int RetryAfterOf(StorageFailure failure) => failure == StorageFailure.Full ? FullRetryAfterSeconds : UnavailableRetryAfterSeconds;

    /// <summary>The exception, its inner exceptions and those of aggregates, depth first, each once.</summary>
    private static IEnumerable<Exception> Chain(Exception e)
    {
        var pending = new Stack<Exception>([e]);
        var seen = new HashSet<Exception>(ReferenceEqualityComparer.Instance);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            if (!seen.Add(current)) continue;
            yield return current;
            if (current is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.Reverse()) pending.Push(inner);
            }
            else if (current.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }

    private static StorageFailure Own(Exception e) => e switch
    {
        InsufficientStorageException => StorageFailure.Full,
        SQLiteException s => Sqlite(s),
        PostgresException { SqlState: PostgresErrorCodes.DiskFull } => StorageFailure.Full,
        PostgresException { SqlState: PostgresErrorCodes.ReadOnlySqlTransaction } => StorageFailure.ReadOnly,
        IOException { HResult: Enospc or Edquot or HandleDiskFull or DiskFull } => StorageFailure.Full,
        IOException { HResult: Erofs or WriteProtect } => StorageFailure.ReadOnly,
        _ when MetadataStore.Unavailable(e) => StorageFailure.Unavailable,
        _ => StorageFailure.None,
    };

    private static StorageFailure Sqlite(SQLiteException s)
    {
        // The primary result code (the low byte), so that extended codes such as SQLITE_READONLY_DBMOVED count too; the message
        // is the fallback for wrappers that report SQLITE_ERROR with SQLite's own text.
        var primary = (SQLite3.Result)((int)s.Result & 0xFF);
        if (primary == SQLite3.Result.Full || s.Message.Contains("database or disk is full", StringComparison.OrdinalIgnoreCase)) return StorageFailure.Full;
        if (primary == SQLite3.Result.ReadOnly || s.Message.Contains("readonly database", StringComparison.OrdinalIgnoreCase)) return StorageFailure.ReadOnly;
        return MetadataStore.Unavailable(s) ? StorageFailure.Unavailable : StorageFailure.None;
    }
}

/// <summary>
/// The file system under <c>Storage:Root</c> has less free space than <c>Storage:MinFreeMb</c>: a write is refused before it starts
/// (HTTP 507, <see cref="StorageSpace"/>).
/// </summary>
public sealed class InsufficientStorageException(string message) : IOException(message);
