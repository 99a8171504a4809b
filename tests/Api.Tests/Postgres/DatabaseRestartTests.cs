using System.Net;
using LambdaService.Api.Cli;
using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.Postgres;

/// <summary>PostgreSQL itself restarting under the service: a server of this test's own, stopped and started again.</summary>
public sealed class DatabaseRestartTests(TestFilesFixture files) : IClassFixture<TestFilesFixture>
{
    private readonly TestFiles _files = files.Files;

    [Fact]
    public async Task Jobs_queued_before_a_database_restart_all_run_and_the_api_answers_503_while_it_is_down()
    {
        using var server = new LocalPostgres();
        using var cluster = new Cluster(server.NewDatabase());
        var api = cluster.StartApi();
        using var client = api.Client();
        var model = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var data = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await ApiClient.SubmitId(client, new { modelId = model, datasetId = data, maxPoints = 8, seed = i }));

        server.Stop();
        foreach (var path in new[] { $"v1/measurements/{ids[0]}", "v1/models" })
        {
            var problem = await ApiClient.Problem(await client.GetAsync(path), HttpStatusCode.ServiceUnavailable);
            Assert.Equal("database", problem.GetProperty("field").GetString());
        }
        var submit = await ApiClient.Submit(client, new { modelId = model, datasetId = data });
        Assert.Equal("database", (await ApiClient.Problem(submit, HttpStatusCode.ServiceUnavailable)).GetProperty("field").GetString());
        Assert.NotNull(submit.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("healthz")).StatusCode);

        server.Start();
        cluster.StartWorker("worker-a");
        foreach (var id in ids)
        {
            var done = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(2));
            Assert.True(done["status"]!.GetValue<string>() == "succeeded", done.ToJsonString());
        }
        Assert.Equal(3, (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>());
    }
}
