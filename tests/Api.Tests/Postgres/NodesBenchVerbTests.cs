using System.Text.Json;
using LambdaService.Api.Tests.Cli;
using Npgsql;

namespace LambdaService.Api.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class NodesBenchVerbTests(SharedPostgres postgres, CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void Bench_nodes_reports_latency_in_both_modes_and_throughput_with_one_and_two_workers()
    {
        // Tiny sizes: the point is that every phase runs against real nodes; the figures are for the README's full run.
        var server = new NpgsqlConnectionStringBuilder(postgres.NewDatabase()) { Database = "postgres" }.ConnectionString;
        var (code, stdout, stderr) = fixture.Run("bench-nodes", "--postgres", server, "--jobs", "3", "--latency-jobs", "2", "--json");
        Assert.True(code == 0, stderr + stdout);
        using var doc = JsonDocument.Parse(stdout);
        var latency = doc.RootElement.GetProperty("latency").EnumerateArray().ToList();
        Assert.Equal(2, latency.Count);
        Assert.StartsWith("embedded", latency[0].GetProperty("mode").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("PostgreSQL", latency[1].GetProperty("mode").GetString(), StringComparison.Ordinal);
        foreach (var row in latency) Assert.True(row.GetProperty("p50Ms").GetDouble() > 0 && row.GetProperty("p99Ms").GetDouble() >= row.GetProperty("p50Ms").GetDouble());
        var throughput = doc.RootElement.GetProperty("throughput").EnumerateArray().ToList();
        Assert.Equal([1, 2], throughput.Select(t => t.GetProperty("workerNodes").GetInt32()));
        Assert.All(throughput, t => Assert.Equal(3, t.GetProperty("jobs").GetInt32()));
        var ratio = doc.RootElement.GetProperty("twoNodesOverOne").GetDouble();
        Assert.Equal(throughput[1].GetProperty("jobsPerSecond").GetDouble() / throughput[0].GetProperty("jobsPerSecond").GetDouble(), ratio, 12);

        // The verb's database is gone afterwards.
        using var connection = new NpgsqlConnection(server);
        connection.Open();
        using var command = new NpgsqlCommand("SELECT COUNT(*) FROM pg_database WHERE datname LIKE 'lambda_bench_%'", connection);
        Assert.Equal(0L, command.ExecuteScalar());
    }
}
