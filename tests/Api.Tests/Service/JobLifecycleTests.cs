using System.Diagnostics;
using System.Net;

namespace LambdaService.Api.Tests.Service;

/// <summary>Cancel, crash, restart, workers and rate limits, each against its own service process.</summary>
public class JobLifecycleTests : IClassFixture<TestFilesFixture>
{
    private readonly TestFiles _files;

    public JobLifecycleTests(TestFilesFixture files) => _files = files.Files;

    /// <summary>
    /// A job that takes several seconds with little memory: finite differences on a 2-256-256-2 network,
    /// 120 points × 24 directions × 136 forward passes per line. The engine is named: `auto` now picks Taylor mode for
    /// this graph, which finishes in well under a second, too soon for a test to cancel or kill it while it runs.
    /// </summary>
    private static object SlowRequest(string model, string dataset) =>
        new { modelId = model, datasetId = dataset, directions = 24, maxPoints = 120, engine = "finite-difference" };

    /// <summary>Whether a sandbox of this service is alive: a runner process whose spec file lies in the service's data folder.</summary>
    internal static bool RunnerAlive(ServiceProcess service) =>
        Process.GetProcesses().Any(p =>
        {
            try
            {
                var cmdline = File.ReadAllText($"/proc/{p.Id}/cmdline");
                return cmdline.Contains("runner\0--spec", StringComparison.Ordinal) && cmdline.Contains(service.DataRoot, StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        });

    /// <summary>
    /// Waits until no sandbox of the service has been seen for <paramref name="quiet"/> (the job's watcher notices a
    /// cancel within half a second, and a sandbox may still be starting when the cancel lands), at most <paramref name="timeout"/>.
    /// </summary>
    internal static async Task<bool> NoRunnerFor(ServiceProcess service, TimeSpan quiet, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var lastSeen = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            if (RunnerAlive(service)) lastSeen = DateTime.UtcNow;
            else if (DateTime.UtcNow - lastSeen >= quiet) return true;
            await Task.Delay(100);
        }
        return false;
    }

    [Fact]
    public async Task Canceling_a_running_measurement_ends_its_sandbox_and_the_next_job_still_runs()
    {
        using var service = new ServiceProcess();
        using var client = service.Client();
        var slow = await ApiClient.UploadId(client, "v1/models", _files.SlowOnnx);
        var fast = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var id = await ApiClient.SubmitId(client, SlowRequest(slow, dataset));
        await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1), "running");
        var cancel = await client.DeleteAsync($"v1/measurements/{id}");
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromSeconds(5), "canceled");
        Assert.Null(job["result"]);
        Assert.True(await NoRunnerFor(service, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15)), "the sandbox process is still running after cancel");

        var next = await ApiClient.SubmitId(client, new { modelId = fast, datasetId = dataset, maxPoints = 8 });
        Assert.Equal("succeeded", (await ApiClient.WaitFor(client, next, TimeSpan.FromMinutes(1)))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_model_whose_second_derivative_libtorch_lacks_fails_once_with_one_line_naming_the_operator()
    {
        using var service = new ServiceProcess();
        using var client = service.Client();
        var cdist = await ApiClient.UploadId(client, "v1/models", _files.CdistTorchScript);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        // target logit keeps the model's three distances as logits; order 1 runs, order 2 needs aten::_cdist_backward's derivative.
        var id = await ApiClient.SubmitId(client, new { modelId = cdist, datasetId = dataset, target = "logit", engine = "autograd", maxPoints = 8 });
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());   // deterministic: not retried
        var error = job["error"]!;
        Assert.Equal(422, error["status"]!.GetValue<int>());
        Assert.Equal("engine", error["field"]!.GetValue<string>());
        var detail = error["detail"]!.GetValue<string>();
        Assert.StartsWith("libtorch has no derivative of aten::_cdist_backward, which nested autograd needs", detail, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', detail);
        Assert.DoesNotContain("terminate called", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_that_makes_libtorch_abort_while_loading_fails_only_its_job_once_with_422_naming_the_signal()
    {
        using var service = new ServiceProcess();
        using var client = service.Client();
        var broken = await ApiClient.UploadId(client, "v1/models", _files.Aborting);
        var good = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var id = await ApiClient.SubmitId(client, new { modelId = broken, datasetId = dataset, target = "logit" });
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());   // the same file would abort every attempt: not retried
        var error = job["error"]!;
        Assert.Equal(422, error["status"]!.GetValue<int>());
        Assert.Equal("modelId", error["field"]!.GetValue<string>());
        var detail = error["detail"]!.GetValue<string>();
        Assert.Contains("the model could not be loaded: the sandbox died of SIGABRT (exit code 134) while loading it", detail);
        Assert.Contains("terminate", detail);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("healthz")).StatusCode);
        var next = await ApiClient.SubmitId(client, new { modelId = good, datasetId = dataset, maxPoints = 8 });
        Assert.Equal("succeeded", (await ApiClient.WaitFor(client, next, TimeSpan.FromMinutes(1)))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_service_killed_mid_job_finishes_the_job_after_a_restart_and_stores_its_result_once()
    {
        using var service = new ServiceProcess();
        using var client = service.Client();
        var slow = await ApiClient.UploadId(client, "v1/models", _files.SlowOnnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var id = await ApiClient.SubmitId(client, SlowRequest(slow, dataset));
        await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1), "running");

        var killed = service.Pid;
        var sandboxFolder = Path.Combine(service.DataRoot, "sandbox");
        bool KilledServicesFolders() => Directory.Exists(sandboxFolder) && Directory.EnumerateDirectories(sandboxFolder).Any(d => d.Contains($"-{killed}@", StringComparison.Ordinal));
        // "running" is recorded when a worker claims the job, a moment before the sandbox's spec folder exists: kill only once it does.
        for (var folderDeadline = DateTime.UtcNow.AddSeconds(15); !KilledServicesFolders() && DateTime.UtcNow < folderDeadline;) await Task.Delay(50);
        service.KillHard();
        Assert.True(await NoRunnerFor(service, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15)), "the sandbox outlived its killed service");
        Assert.True(KilledServicesFolders(), "the killed attempt left no spec folder behind, so this test shows nothing about its removal");

        service.Start();
        using var again = service.Client();
        var job = await ApiClient.WaitFor(again, id, TimeSpan.FromMinutes(3));
        Assert.True(job["status"]!.GetValue<string>() == "succeeded", job.ToJsonString());
        Assert.Equal(2, job["attempts"]!.GetValue<int>());
        Assert.True(double.IsFinite(job["result"]!["lambda"]!.GetValue<double>()));
        var stored = service.Log.Split('\n').Count(l => l.Contains(id, StringComparison.Ordinal) && l.Contains("finished as succeeded (stored: True)", StringComparison.Ordinal));
        Assert.Equal(1, stored);
        // The recovery sweep of the restarted service removes the dead attempt's spec folder.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (KilledServicesFolders() && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.False(KilledServicesFolders(), "the killed attempt's spec folder is still there");
    }

    [Fact]
    public async Task A_worker_process_runs_the_jobs_of_a_service_that_runs_none_itself()
    {
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Jobs__RunServer"] = "false" });
        using var client = service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 8 });
        // Nothing on this storage runs jobs: the only node (this service, Jobs:RunServer false) registers 0 workers and no queue, so the
        // job can only wait; it is shown queued by the node list, not by sleeping and hoping no worker took it meanwhile.
        var nodes = (await ApiClient.Get(client, "v1/nodes")).AsArray();
        for (var deadline = DateTime.UtcNow.AddSeconds(15); nodes.Count == 0 && DateTime.UtcNow < deadline; nodes = (await ApiClient.Get(client, "v1/nodes")).AsArray())
        {
            await Task.Delay(100);   // the node's first heartbeat may land just after Kestrel answers
        }
        var node = Assert.Single(nodes);
        Assert.Equal(0, node!["workerCount"]!.GetValue<int>());
        Assert.Equal("queued", (await ApiClient.Get(client, $"v1/measurements/{id}"))["status"]!.GetValue<string>());

        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "LambdaService.Api.dll"));
        info.ArgumentList.Add("worker");
        info.Environment["Storage__Root"] = service.DataRoot;
        info.Environment["Jobs__QueuePollMilliseconds"] = "200";
        info.Environment["Auth__ApiKeys__0__Key"] = ServiceProcess.KeyA;
        info.Environment["Auth__ApiKeys__0__Tenant"] = "tenant-a";
        using var worker = Process.Start(info)!;
        worker.OutputDataReceived += (_, _) => { };
        worker.ErrorDataReceived += (_, _) => { };
        worker.BeginOutputReadLine();
        worker.BeginErrorReadLine();
        try
        {
            Assert.Equal("succeeded", (await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1)))["status"]!.GetValue<string>());
        }
        finally
        {
            worker.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_key_over_its_rate_limit_gets_429_with_retry_after()
    {
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Limits__RequestsPerMinute"] = "5" });
        using var client = service.Client();
        HttpResponseMessage last = null!;
        for (var i = 0; i < 7; i++) last = await client.GetAsync("v1/models");
        var problem = await ApiClient.Problem(last, HttpStatusCode.TooManyRequests);
        Assert.True(last.Headers.Contains("Retry-After"));
        Assert.Contains("Retry-After", problem.GetProperty("detail").GetString());
        using var other = service.Client(ServiceProcess.KeyB);
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("v1/models")).StatusCode);
    }
}

public sealed class TestFilesFixture : IDisposable
{
    public TestFiles Files { get; } = new();

    public void Dispose() => Files.Dispose();
}
