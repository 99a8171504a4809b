using Hangfire;
using LambdaService.Api.Storage;
using Npgsql;
using SQLite;

namespace LambdaService.Api.Tests;

/// <summary>The exceptions the store's writers throw on a full, read-only or absent store, as they arrive, and what they are taken for.</summary>
public class StorageErrorsTests
{
    [Theory]
    [InlineData(28)]    // ENOSPC
    [InlineData(122)]   // EDQUOT
    public void An_io_error_for_no_space_or_an_exhausted_quota_is_a_full_store(int errno) =>
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(new IOException("No space left on device : '/data/tmp/x'", errno)));

    [Fact]
    public void An_io_error_on_a_read_only_file_system_is_a_read_only_store() =>
        Assert.Equal(StorageFailure.ReadOnly, StorageErrors.Classify(new IOException("Read-only file system : '/data/tmp/x'", 30)));

    [Fact]
    public void Other_io_errors_and_ordinary_exceptions_are_not_storage_failures()
    {
        Assert.Equal(StorageFailure.None, StorageErrors.Classify(new IOException("Broken pipe", 32)));
        Assert.Equal(StorageFailure.None, StorageErrors.Classify(new InvalidOperationException("no")));
        Assert.Equal(StorageFailure.None, StorageErrors.Classify(SQLiteException.New(SQLite3.Result.Constraint, "UNIQUE constraint failed: models.Id")));
    }

    [Fact]
    public void Sqlite_full_and_readonly_results_are_a_full_and_a_read_only_store()
    {
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(SQLiteException.New(SQLite3.Result.Full, "database or disk is full")));
        Assert.Equal(StorageFailure.ReadOnly, StorageErrors.Classify(SQLiteException.New(SQLite3.Result.ReadOnly, "attempt to write a readonly database")));
        // Reported as a generic error with SQLite's own text.
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(SQLiteException.New(SQLite3.Result.Error, "database or disk is full")));
    }

    [Fact]
    public void Hangfire_wrapping_a_full_sqlite_queue_is_a_full_store_however_deep_the_cause()
    {
        var full = SQLiteException.New(SQLite3.Result.Full, "database or disk is full");
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(new BackgroundJobClientException("Background job creation failed. See inner exception for details.", full)));
        var nested = new AggregateException(new TimeoutException("first"), new InvalidOperationException("wrapped", new BackgroundJobClientException("failed", full)));
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(nested));
    }

    [Fact]
    public void A_database_that_is_away_is_unavailable_unless_a_cause_says_full()
    {
        Assert.Equal(StorageFailure.Unavailable, StorageErrors.Classify(SQLiteException.New(SQLite3.Result.Busy, "database is locked")));
        Assert.Equal(StorageFailure.Unavailable, StorageErrors.Classify(new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01")));
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(new AggregateException(
            SQLiteException.New(SQLite3.Result.Busy, "database is locked"), new IOException("No space left on device", 28))));
    }

    [Fact]
    public void Postgres_disk_full_and_read_only_transactions_are_a_full_and_a_read_only_store()
    {
        Assert.Equal(StorageFailure.Full, StorageErrors.Classify(new PostgresException("could not extend file", "ERROR", "ERROR", PostgresErrorCodes.DiskFull)));
        Assert.Equal(StorageFailure.ReadOnly, StorageErrors.Classify(new PostgresException("cannot execute INSERT in a read-only transaction", "ERROR", "ERROR",
            PostgresErrorCodes.ReadOnlySqlTransaction)));
    }

    [Fact]
    public void A_full_store_answers_507_and_a_read_only_or_absent_one_503_each_with_a_retry_after()
    {
        Assert.Equal(507, StorageErrors.StatusOf(StorageFailure.Full));
        Assert.Equal(503, StorageErrors.StatusOf(StorageFailure.ReadOnly));
        Assert.Equal(503, StorageErrors.StatusOf(StorageFailure.Unavailable));
        Assert.True(StorageErrors.RetryAfterOf(StorageFailure.Full) > 0 && StorageErrors.RetryAfterOf(StorageFailure.ReadOnly) > 0);
    }
}
