using LambdaService.Measurement.Models;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// Which attempts count and which jobs wait, each against its own service process. Most of these jobs run a fake runner
/// (<see cref="Service.GatedRunner"/>) whose job ends when the test releases its gate.
/// </summary>
public sealed class JobSchedulingTests : IClassFixture<TestFilesFixture>, IDisposable
{
    private readonly TestFiles _files;
    private readonly GatedRunner _runner = new();

    public JobSchedulingTests(TestFilesFixture files) => _files = files.Files;

    private static async Task<(string Model, string Dataset)> Inputs(HttpClient client, TestFiles files) =>
        (await ApiClient.UploadId(client, "v1/models", files.Onnx), await ApiClient.UploadId(client, "v1/datasets", files.Csv));

    private static async Task WaitForLog(ServiceProcess service, string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!service.Log.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the service did not log '{text}' within {timeout}:\n{service.Log}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_tenant_at_its_running_cap_has_its_next_job_wait_while_another_tenants_job_runs_and_it_runs_when_the_first_ends()
    {
        using var service = new ServiceProcess(new Dictionary<string, string>
        {
            ["Jobs__MaxRunningPerTenant"] = "1",
            ["Jobs__WorkerCount"] = "2",
            ["Jobs__RunnerCommand"] = _runner.Command,
        });
        using var a = service.Client(ServiceProcess.KeyA);
        using var b = service.Client(ServiceProcess.KeyB);
        var (modelA, dataA) = await Inputs(a, _files);
        var (modelB, dataB) = await Inputs(b, _files);

        var first = await ApiClient.SubmitId(a, new { modelId = modelA, datasetId = dataA, maxPoints = 11 });
        await ApiClient.WaitFor(a, first, TimeSpan.FromSeconds(30), "running");
        var second = await ApiClient.SubmitId(a, new { modelId = modelA, datasetId = dataA, maxPoints = 12 });
        await WaitForLog(service, $"Job {second} waits: tenant tenant-a has 1 jobs running", TimeSpan.FromSeconds(30));
        var other = await ApiClient.SubmitId(b, new { modelId = modelB, datasetId = dataB, maxPoints = 13 });
        await ApiClient.WaitFor(b, other, TimeSpan.FromSeconds(30), "running");

        var waiting = await ApiClient.Get(a, $"v1/measurements/{second}");
        Assert.Equal("queued", waiting["status"]!.GetValue<string>());
        Assert.Equal(0, waiting["attempts"]!.GetValue<int>());
        Assert.Equal("running", (await ApiClient.Get(a, $"v1/measurements/{first}"))["status"]!.GetValue<string>());

        _runner.Release(11);
        Assert.Equal("failed", (await ApiClient.WaitFor(a, first, TimeSpan.FromSeconds(30)))["status"]!.GetValue<string>());
        var resumed = await ApiClient.WaitFor(a, second, TimeSpan.FromSeconds(30), "running");
        Assert.Equal(1, resumed["attempts"]!.GetValue<int>());
        Assert.Single(resumed["attemptLog"]!.AsArray());
        Assert.Equal("running", (await ApiClient.Get(b, $"v1/measurements/{other}"))["status"]!.GetValue<string>());

        _runner.Release(12);
        _runner.Release(13);
        Assert.Equal("failed", (await ApiClient.WaitFor(a, second, TimeSpan.FromSeconds(30)))["status"]!.GetValue<string>());
        Assert.Equal("failed", (await ApiClient.WaitFor(b, other, TimeSpan.FromSeconds(30)))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_job_interrupted_by_two_graceful_restarts_resumes_at_once_each_time_and_the_interruptions_do_not_count_as_attempts()
    {
        // Jobs:StaleAfterSeconds is far longer than the test may wait: the job resumes because it was put back, not because it went stale.
        using var service = new ServiceProcess(new Dictionary<string, string>
        {
            ["Jobs__StaleAfterSeconds"] = "300",
            ["Jobs__MaxAttempts"] = "2",
            ["Jobs__RunnerCommand"] = _runner.Command,
        });
        HttpClient client = service.Client();
        var (model, dataset) = await Inputs(client, _files);
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 17 });
        await ApiClient.WaitFor(client, id, TimeSpan.FromSeconds(30), "running");

        for (var restart = 1; restart <= 2; restart++)
        {
            service.Stop();
            service.Start();
            client.Dispose();
            client = service.Client();
            var starts = restart + 1;
            await ApiClient.WaitUntil(client, $"v1/measurements/{id}", TimeSpan.FromSeconds(45),
                job => job["status"]!.GetValue<string>() == "running" && job["attemptLog"]!.AsArray().Count == starts);
        }

        var running = await ApiClient.Get(client, $"v1/measurements/{id}");
        Assert.Equal(1, running["attempts"]!.GetValue<int>());
        var log = running["attemptLog"]!.AsArray();
        Assert.Equal(new string?[] { "interrupted", "interrupted", null }, log.Select(a => a!["outcome"]?.GetValue<string>()));
        Assert.Equal(new[] { 1, 2, 3 }, log.Select(a => a!["attempt"]!.GetValue<int>()));

        _runner.Release(17);
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromSeconds(30));
        client.Dispose();
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Equal("released by the test", job["error"]!["detail"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_sandbox_that_dies_while_loading_fails_once_with_422_while_one_that_dies_after_loading_is_retried()
    {
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Jobs__RunnerCommand"] = _runner.Command });
        using var client = service.Client();
        var (model, dataset) = await Inputs(client, _files);
        var loading = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 91 });
        var running = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 92 });

        var failedLoading = await ApiClient.WaitFor(client, loading, TimeSpan.FromSeconds(60));
        Assert.Equal("failed", failedLoading["status"]!.GetValue<string>());
        Assert.Equal(1, failedLoading["attempts"]!.GetValue<int>());
        var error = failedLoading["error"]!;
        Assert.Equal(422, error["status"]!.GetValue<int>());
        Assert.Equal("modelId", error["field"]!.GetValue<string>());
        Assert.Equal("The model could not be loaded", error["title"]!.GetValue<string>());
        Assert.Contains("died of SIGABRT (exit code 134) while loading it", error["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("fake loader: terminate called", error["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        var failedRunning = await ApiClient.WaitFor(client, running, TimeSpan.FromSeconds(60));
        Assert.Equal("failed", failedRunning["status"]!.GetValue<string>());
        Assert.Equal(2, failedRunning["attempts"]!.GetValue<int>());
        Assert.Equal(500, failedRunning["error"]!["status"]!.GetValue<int>());
        Assert.Contains("SIGSEGV", failedRunning["error"]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(new[] { "crashed", "failed" }, failedRunning["attemptLog"]!.AsArray().Select(a => a!["outcome"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_stored_onnx_model_whose_initializer_dims_do_not_match_its_data_fails_once_with_422_naming_the_cause()
    {
        using var service = new ServiceProcess();
        using var client = service.Client();
        var model = await ApiClient.Get(client, $"v1/models/{await ApiClient.UploadId(client, "v1/models", _files.Onnx)}");
        var dataset = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);

        // The stored file is replaced by a malformed one, as a file stored before the upload checked it would be: the first
        // weight keeps its 32 values but claims 16 × 3 of them.
        var malformed = OnnxModelBuilder.Mlp(
            [new float[16, 2], new float[16, 16], new float[2, 16]], [new float[16], new float[16], new float[2]]);
        malformed.Graph.Initializer[0].Dims[1] = 3;
        var sha = model["sha256"]!.GetValue<string>();
        var stored = Path.Combine(service.DataRoot, "artifacts", sha[..2], sha);
        File.Delete(stored);
        OnnxModelBuilder.Save(malformed, stored);

        var id = await ApiClient.SubmitId(client, new { modelId = model["id"]!.GetValue<string>(), datasetId = dataset, maxPoints = 8 });
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.True(job["status"]!.GetValue<string>() == "failed", job.ToJsonString());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        var error = job["error"]!;
        Assert.True(error["status"]!.GetValue<int>() == 422, error.ToJsonString());
        Assert.Equal("modelId", error["field"]!.GetValue<string>());
        // The runner's loader names the cause ("the model could not be loaded: ArgumentException: mismatched total size …"); a model
        // check of ModelFile that catches the mismatch earlier names the initializer instead. Either way it is the same one-attempt 422.
        Assert.Matches("^the model could not be loaded: .*mismatched total size|initializer", error["detail"]!.GetValue<string>());
        Assert.Equal(new[] { "failed" }, job["attemptLog"]!.AsArray().Select(a => a!["outcome"]!.GetValue<string>()));
    }

    public void Dispose() => _runner.Dispose();
}
