using LambdaService.Api.Cli;
using Npgsql;

namespace LambdaService.Api.Tests.Postgres;

/// <summary>
/// The PostgreSQL server the suite shares: the one <c>.ci/run</c> started (<c>LAMBDASERVICE_TEST_POSTGRES</c>, a connection string
/// to its <c>postgres</c> database), else one this process starts for itself. Each test takes a new database of it.
/// </summary>
public sealed class SharedPostgres : IDisposable
{
    private readonly LocalPostgres? _own;
    private readonly string? _external;

    public SharedPostgres()
    {
        _external = Environment.GetEnvironmentVariable("LAMBDASERVICE_TEST_POSTGRES");
        if (string.IsNullOrEmpty(_external)) _own = new LocalPostgres();
    }

    /// <summary>A new empty database; returns its connection string.</summary>
    public string NewDatabase()
    {
        if (_own is not null) return _own.NewDatabase();
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        using (var connection = new NpgsqlConnection(_external))
        {
            connection.Open();
            using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            command.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(_external) { Database = name }.ConnectionString;
    }

    public void Dispose() => _own?.Dispose();
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<SharedPostgres>
{
    public const string Name = "PostgreSQL";
}
