using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.Postgres;

/// <summary>
/// Metrics in a deployment of several nodes: a worker node (no HTTP API) serves <c>/metrics</c> on <c>Metrics:WorkerPort</c>
/// with the durations of the jobs it ran, while every node reports the same job counts read from the shared database.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkerMetricsTests(SharedPostgres postgres, TestFilesFixture files) : IClassFixture<TestFilesFixture>
{
    [Fact]
    public async Task A_worker_node_serves_its_job_durations_and_every_node_the_cluster_wide_job_counts()
    {
        using var cluster = new Cluster(postgres.NewDatabase());
        var api = cluster.StartApi();
        var port = ServiceProcess.FreePort();
        cluster.StartWorker("metrics-worker", settings: new() { ["Metrics__WorkerPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var client = api.Client();

        var model = await ApiClient.UploadId(client, "v1/models", files.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", files.Files.Csv);
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 8 });
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(2));
        Assert.True(job["status"]!.GetValue<string>() == "succeeded", job.ToJsonString());
        Assert.Equal("metrics-worker", job["node"]!.GetValue<string>());

        var worker = await PrometheusText.Scrape(new Uri($"http://127.0.0.1:{port}/"));
        var apiNode = await PrometheusText.Scrape(api.BaseAddress);
        (string, string)[] succeeded = [("kind", "measure"), ("queue", "cpu"), ("outcome", "succeeded")];
        // The attempt ran on the worker: its duration is there, not on the API node.
        Assert.Equal(1, PrometheusText.Value(worker, "lambdaservice_job_duration_seconds_count", succeeded));
        Assert.Equal(0, PrometheusText.Value(apiNode, "lambdaservice_job_duration_seconds_count", succeeded));
        // The upload came through the API node.
        Assert.Equal(new FileInfo(files.Files.Onnx).Length, PrometheusText.Value(apiNode, "lambdaservice_upload_bytes_total", ("kind", "model")));
        Assert.Equal(0, PrometheusText.Value(worker, "lambdaservice_upload_bytes_total", ("kind", "model")));
        // Both read the same job counts from PostgreSQL.
        foreach (var node in new[] { worker, apiNode })
        {
            Assert.Equal(1, PrometheusText.Value(node, "lambdaservice_jobs", ("kind", "measure"), ("queue", "cpu"), ("status", "succeeded")));
            Assert.Equal(0, PrometheusText.Value(node, "lambdaservice_jobs", ("kind", "measure"), ("queue", "gpu"), ("status", "queued")));
            Assert.Equal(1, PrometheusText.Value(node, "lambdaservice_database_up"));
        }
    }
}
