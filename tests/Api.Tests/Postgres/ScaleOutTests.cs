using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.Postgres;

/// <summary>
/// The PostgreSQL deployment end to end: real API and worker processes on a real PostgreSQL server, each node with its own
/// empty data folder, so everything a worker reads (uploads, exports, records, the queue) comes through the database.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ScaleOutTests(SharedPostgres postgres, TestFilesFixture files) : IClassFixture<TestFilesFixture>
{
    private readonly TestFiles _files = files.Files;

    private static readonly object Training = new
    {
        dataset = new { builtin = "two-moons", samples = 300, labelNoise = 0.1 },
        model = new { hidden = new[] { 8, 8 } },
        method = "crr",
        crr = new { scale = 0.01, orders = new { min = 2, max = 3 } },
        epochs = 3,
        seed = 5,
        measure = new { maxPoints = 16, bootstrapResamples = 20 },
    };

    private static readonly object Sweep = new
    {
        @base = new { dataset = new { samples = 200, labelNoise = 0.3 }, model = new { hidden = new[] { 8 } }, epochs = 2, measure = new { maxPoints = 16, bootstrapResamples = 10 } },
        grid = new Dictionary<string, object[]> { ["method"] = ["baseline", "crr"] },
        seeds = 2,
    };

    /// <summary>Upload, measure, train, measure the export, sweep: the numbers a client reads.</summary>
    private async Task<Outcome> Flow(HttpClient client)
    {
        var model = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var data = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var measurement = await ApiClient.SubmitId(client, new { modelId = model, datasetId = data, maxPoints = 40, directions = 3, seed = 11 });
        var measured = await ApiClient.WaitFor(client, measurement, TimeSpan.FromMinutes(2));
        Assert.True(measured["status"]!.GetValue<string>() == "succeeded", measured.ToJsonString());

        var run = await Accepted(await ApiClient.Post(client, "v1/training-runs", Training));
        var trained = await ApiClient.WaitUntil(client, $"v1/training-runs/{run}", TimeSpan.FromMinutes(3), ApiClient.IsFinal);
        Assert.True(trained["status"]!.GetValue<string>() == "succeeded", trained.ToJsonString());
        var onnxModel = trained["models"]!["onnx"]!.GetValue<string>();
        var download = await client.GetAsync($"v1/training-runs/{run}/model?format=onnx");
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        var downloaded = await download.Content.ReadAsByteArrayAsync();
        var registered = await ApiClient.Get(client, $"v1/models/{onnxModel}");
        Assert.Equal(registered["sha256"]!.GetValue<string>(), Convert.ToHexStringLower(SHA256.HashData(downloaded)));
        var exportMeasurement = await ApiClient.SubmitId(client, new { modelId = onnxModel, datasetId = data, maxPoints = 24, seed = 2 });
        var exportMeasured = await ApiClient.WaitFor(client, exportMeasurement, TimeSpan.FromMinutes(2));
        Assert.True(exportMeasured["status"]!.GetValue<string>() == "succeeded", exportMeasured.ToJsonString());

        var sweep = await Accepted(await ApiClient.Post(client, "v1/sweeps", Sweep));
        var swept = await ApiClient.WaitUntil(client, $"v1/sweeps/{sweep}", TimeSpan.FromMinutes(4),
            s => s["summary"]!["status"]!.GetValue<string>() is "succeeded" or "failed" or "canceled");
        Assert.True(swept["summary"]!["status"]!.GetValue<string>() == "succeeded", swept.ToJsonString());
        return new Outcome(measured, trained, exportMeasured, swept);
    }

    private sealed record Outcome(JsonNode Measurement, JsonNode Training, JsonNode ExportMeasurement, JsonNode Sweep);

    private static async Task<string> Accepted(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    /// <summary>The result numbers that must not depend on where the job ran (times and ids do).</summary>
    private static IEnumerable<(string Name, double Value)> Numbers(Outcome o)
    {
        IEnumerable<(string, double)> Lambda(string name, JsonNode result) =>
            new[] { ("lambda", result["lambda"]!), ("intercept", result["intercept"]!), ("r2", result["r2"]!) }
                .Select(x => ($"{name}.{x.Item1}", x.Item2.GetValue<double>()))
                .Concat(result["orders"]!.AsArray().Select((order, i) => ($"{name}.orders[{i}].logNorm", order!["logNorm"]!.GetValue<double>())));
        foreach (var x in Lambda("measurement", o.Measurement["result"]!)) yield return x;
        foreach (var x in Lambda("export", o.ExportMeasurement["result"]!)) yield return x;
        var t = o.Training["result"]!;
        foreach (var key in new[] { "testError", "testAccuracy", "ece", "finalTrainLoss" }) yield return ($"training.{key}", t[key]!.GetValue<double>());
        yield return ("training.lambda.lambda", t["lambda"]!["lambda"]!.GetValue<double>());
        foreach (var (epoch, i) in t["history"]!.AsArray().Select((e, i) => (e!, i))) yield return ($"training.history[{i}].trainLoss", epoch["trainLoss"]!.GetValue<double>());
        foreach (var (cell, i) in o.Sweep["summary"]!["cells"]!.AsArray().Select((c, i) => (c!, i)))
        {
            yield return ($"sweep.cells[{i}].testError.mean", cell["metrics"]!["testError"]!["mean"]!.GetValue<double>());
            yield return ($"sweep.cells[{i}].lambda.mean", cell["metrics"]!["lambda"]!["mean"]!.GetValue<double>());
        }
    }

    [Fact]
    public async Task One_api_and_two_workers_sharing_only_the_database_give_the_embedded_modes_results()
    {
        Outcome embedded;
        using (var single = new ServiceProcess())
        using (var client = single.Client())
        {
            embedded = await Flow(client);
        }

        using var cluster = new Cluster(postgres.NewDatabase());
        var api = cluster.StartApi();
        var a = cluster.StartWorker("worker-a");
        var b = cluster.StartWorker("worker-b");
        using var apiClient = api.Client();
        var scaled = await Flow(apiClient);

        // The same seed gives the same numbers: the same code on the same CPU, so equal to rounding (1e-9 relative).
        var expected = Numbers(embedded).ToList();
        var actual = Numbers(scaled).ToList();
        Assert.Equal(expected.Select(x => x.Name), actual.Select(x => x.Name));
        foreach (var ((name, e), (_, v)) in expected.Zip(actual)) Assert.True(Math.Abs(e - v) <= 1e-9 * Math.Max(1, Math.Abs(e)), $"{name}: embedded {e}, PostgreSQL mode {v}");

        // The jobs ran on the workers, never on the API node, and say so.
        foreach (var job in new[] { scaled.Measurement, scaled.Training, scaled.ExportMeasurement })
        {
            Assert.Contains(job["node"]!.GetValue<string>(), new[] { "worker-a", "worker-b" });
            var log = job["attemptLog"]!.AsArray();
            Assert.Single(log);
            Assert.Equal((job["node"]!.GetValue<string>(), "succeeded"), (log[0]!["node"]!.GetValue<string>(), log[0]!["outcome"]!.GetValue<string>()));
        }
        var runs = await ApiClient.Get(apiClient, $"v1/training-runs?sweepId={scaled.Sweep["id"]!.GetValue<string>()}");
        Assert.All(runs["items"]!.AsArray(), r => Assert.Contains(r!["node"]!.GetValue<string>(), new[] { "worker-a", "worker-b" }));

        // The nodes' heartbeats.
        var nodes = (await ApiClient.Get(apiClient, "v1/nodes")).AsArray();
        Assert.Equal(["api-1/api", "worker-a/worker", "worker-b/worker"],
            nodes.Select(n => $"{n!["name"]!.GetValue<string>()}/{n["role"]!.GetValue<string>()}").Order().ToArray());
        Assert.All(nodes, n => Assert.True(n!["alive"]!.GetValue<bool>()));
        Assert.Equal(0, nodes.Single(n => n!["role"]!.GetValue<string>() == "api")!["workerCount"]!.GetValue<int>());

        // Nothing of the uploads or exports was written into a worker's folder by anyone but that worker's own cache, and the API
        // node's folder has no sandbox runs at all.
        Assert.False(Directory.Exists(Path.Combine(api.DataRoot, "sandbox")) && Directory.EnumerateFileSystemEntries(Path.Combine(api.DataRoot, "sandbox")).Any());
        Assert.False(File.Exists(Path.Combine(a.DataRoot, "metadata.db")) || File.Exists(Path.Combine(b.DataRoot, "metadata.db")));
    }

    [Fact]
    public async Task A_queue_named_in_a_request_is_checked_and_only_workers_on_that_queue_run_it()
    {
        using var cluster = new Cluster(postgres.NewDatabase());
        var api = cluster.StartApi();
        using var client = api.Client();
        var model = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var data = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);

        var bad = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId = model, datasetId = data, queue = "gpus" }), HttpStatusCode.BadRequest);
        Assert.Equal("queue", bad.GetProperty("field").GetString());

        cluster.Settings["Jobs__Queues__0"] = "cpu";
        var cpuWorker = cluster.StartWorker("cpu-node");
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = data, maxPoints = 8, queue = "gpu" });
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Equal("queued", (await ApiClient.Get(client, $"v1/measurements/{id}"))["status"]!.GetValue<string>());

        cluster.Settings["Jobs__Queues__0"] = "gpu";
        cluster.StartWorker("gpu-node");
        var done = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.Equal(("succeeded", "gpu-node", "gpu"), (done["status"]!.GetValue<string>(), done["node"]!.GetValue<string>(), done["queue"]!.GetValue<string>()));
        GC.KeepAlive(cpuWorker);
    }

    [Fact]
    public async Task A_training_run_whose_worker_is_killed_is_finished_once_by_the_other_worker()
    {
        using var cluster = new Cluster(postgres.NewDatabase(), new() { ["Jobs__StaleAfterSeconds"] = "3", ["Jobs__MaxAttempts"] = "3" });
        var api = cluster.StartApi();
        var workers = new Dictionary<string, ServiceProcess> { ["worker-a"] = cluster.StartWorker("worker-a"), ["worker-b"] = cluster.StartWorker("worker-b") };
        using var client = api.Client();
        var run = await Accepted(await ApiClient.Post(client, "v1/training-runs", new
        {
            dataset = new { builtin = "two-moons", samples = 800 },
            model = new { hidden = new[] { 16, 16 } },
            epochs = 150,
            seed = 3,
            measure = new { maxPoints = 16, bootstrapResamples = 10 },
        }));
        var running = await ApiClient.WaitUntil(client, $"v1/training-runs/{run}", TimeSpan.FromMinutes(1),
            r => ApiClient.IsFinal(r) || (r["status"]!.GetValue<string>() == "running" && r["current"] is JsonObject));
        Assert.Equal("running", running["status"]!.GetValue<string>());
        var first = running["node"]!.GetValue<string>();
        Cluster.KillWithSandboxes(workers[first]);
        var survivor = workers.Keys.Single(k => k != first);

        var done = await ApiClient.WaitUntil(client, $"v1/training-runs/{run}", TimeSpan.FromMinutes(3), ApiClient.IsFinal);
        Assert.True(done["status"]!.GetValue<string>() == "succeeded", done.ToJsonString());
        Assert.Equal(2, done["attempts"]!.GetValue<int>());
        Assert.Equal(survivor, done["node"]!.GetValue<string>());
        var log = done["attemptLog"]!.AsArray().Select(a => (a!["attempt"]!.GetValue<int>(), a["node"]!.GetValue<string>(), a["outcome"]!.GetValue<string>())).ToList();
        Assert.Equal([(1, first, "lost"), (2, survivor, "succeeded")], log);

        // Exactly one result: one pair of registered exports, both named after the run.
        var models = (await ApiClient.Get(client, "v1/models?pageSize=100"))["items"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()).Order().ToArray();
        Assert.Equal([$"{run}.onnx", $"{run}.pt"], models);
        await Task.Delay(TimeSpan.FromSeconds(4));
        var again = await ApiClient.Get(client, $"v1/training-runs/{run}");
        Assert.Equal((2, "succeeded"), (again["attempts"]!.GetValue<int>(), again["status"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_job_that_crashes_every_sandbox_after_loading_fails_after_the_configured_attempts_whichever_nodes_ran_it()
    {
        // A fake runner that loads, starts the computation and segfaults: a crash in the computation is retried (one while loading is not).
        var runner = Path.Combine(_files.Folder, "segv-after-load-" + Guid.NewGuid().ToString("N") + ".sh");
        File.WriteAllText(runner, "#!/bin/bash\necho '{\"phase\":\"load\"}'\necho '{\"phase\":\"run\"}'\necho 'fake kernel: bad access' >&2\nkill -SEGV $$\n");
        using var cluster = new Cluster(postgres.NewDatabase(), new() { ["Jobs__MaxAttempts"] = "3", ["Jobs__RunnerCommand"] = "bash " + runner });
        var api = cluster.StartApi();
        cluster.StartWorker("worker-a");
        cluster.StartWorker("worker-b");
        using var client = api.Client();
        var model = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var data = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = data, maxPoints = 8 });
        var done = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(2));
        Assert.Equal(("failed", 3), (done["status"]!.GetValue<string>(), done["attempts"]!.GetValue<int>()));
        var outcomes = done["attemptLog"]!.AsArray().Select(a => a!["outcome"]!.GetValue<string>()).ToArray();
        Assert.Equal(["crashed", "crashed", "failed"], outcomes);
        Assert.Contains("SIGSEGV", done["error"]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_running_cap_per_tenant_holds_across_worker_nodes_while_another_tenant_takes_the_free_node()
    {
        using var runner = new GatedRunner();
        using var cluster = new Cluster(postgres.NewDatabase(), new() { ["Jobs__MaxRunningPerTenant"] = "1", ["Jobs__RunnerCommand"] = runner.Command });
        var api = cluster.StartApi();
        var workers = new[] { cluster.StartWorker("worker-a"), cluster.StartWorker("worker-b") };
        using var a = api.Client(ServiceProcess.KeyA);
        using var b = api.Client(ServiceProcess.KeyB);
        var (modelA, dataA) = (await ApiClient.UploadId(a, "v1/models", _files.Onnx), await ApiClient.UploadId(a, "v1/datasets", _files.Csv));
        var (modelB, dataB) = (await ApiClient.UploadId(b, "v1/models", _files.Onnx), await ApiClient.UploadId(b, "v1/datasets", _files.Csv));

        var first = await ApiClient.SubmitId(a, new { modelId = modelA, datasetId = dataA, maxPoints = 21 });
        var firstNode = (await ApiClient.WaitFor(a, first, TimeSpan.FromSeconds(30), "running"))["node"]!.GetValue<string>();
        var second = await ApiClient.SubmitId(a, new { modelId = modelA, datasetId = dataA, maxPoints = 22 });
        // The other node is free, yet it leaves tenant A's second job queued: the cap counts A's jobs on every node.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!workers.Any(w => w.Log.Contains($"Job {second} waits: tenant tenant-a has 1 jobs running", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, "no worker deferred the second job:\n" + string.Join("\n", workers.Select(w => w.Log)));
            await Task.Delay(100);
        }
        var other = await ApiClient.SubmitId(b, new { modelId = modelB, datasetId = dataB, maxPoints = 23 });
        var otherNode = (await ApiClient.WaitFor(b, other, TimeSpan.FromSeconds(30), "running"))["node"]!.GetValue<string>();
        Assert.NotEqual(firstNode, otherNode);
        Assert.Equal("queued", (await ApiClient.Get(a, $"v1/measurements/{second}"))["status"]!.GetValue<string>());

        runner.Release(21);
        runner.Release(23);
        var resumed = await ApiClient.WaitFor(a, second, TimeSpan.FromSeconds(60), "running");
        Assert.Equal(1, resumed["attempts"]!.GetValue<int>());
        runner.Release(22);
        foreach (var (client, id) in new[] { (a, first), (a, second), (b, other) })
        {
            Assert.Equal("failed", (await ApiClient.WaitFor(client, id, TimeSpan.FromSeconds(60)))["status"]!.GetValue<string>());
        }
        Assert.All(workers, w => Assert.DoesNotContain("Exception", w.Log, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_same_idempotency_key_sent_to_two_api_processes_at_once_creates_one_job()
    {
        using var cluster = new Cluster(postgres.NewDatabase());
        var first = cluster.StartApi("api-1");
        var second = cluster.StartApi("api-2");
        using var one = first.Client();
        using var two = second.Client();
        var model = await ApiClient.UploadId(one, "v1/models", _files.Onnx);
        var data = await ApiClient.UploadId(two, "v1/datasets", _files.Csv);
        var body = new { modelId = model, datasetId = data, maxPoints = 8 };

        for (var k = 0; k < 10; k++)
        {
            var key = $"pipeline-step-{k}";
            var responses = await Task.WhenAll(ApiClient.Submit(one, body, key), ApiClient.Submit(two, body, key));
            var ids = new List<string>();
            foreach (var r in responses)
            {
                var text = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.Accepted, text);
                ids.Add(JsonNode.Parse(text)!["id"]!.GetValue<string>());
            }
            Assert.Equal(ids[0], ids[1]);
        }
        var listed = await ApiClient.Get(two, "v1/measurements?pageSize=100");
        Assert.Equal(10, listed["total"]!.GetValue<int>());

        // The same key with another body is refused on either process.
        var mismatch = await ApiClient.Problem(await ApiClient.Submit(two, body with { maxPoints = 9 }, "pipeline-step-0"), HttpStatusCode.UnprocessableEntity);
        Assert.Equal("Idempotency-Key", mismatch.GetProperty("field").GetString());
    }

    [Fact]
    public async Task Two_api_processes_share_one_rate_limit_per_key()
    {
        using var cluster = new Cluster(postgres.NewDatabase(), new() { ["Limits__RequestsPerMinute"] = "10" });
        var first = cluster.StartApi("api-1");
        var second = cluster.StartApi("api-2");
        using var one = first.Client();
        using var two = second.Client();
        using var otherTenant = first.Client(ServiceProcess.KeyB);
        // The windows are whole minutes: start early in one, so that all 14 requests fall into it.
        while (DateTime.UtcNow.Second > 40) await Task.Delay(500);

        var codes = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 7; i++)
        {
            foreach (var client in new[] { one, two })
            {
                var response = await client.GetAsync("v1/models");
                codes.Add(response.StatusCode);
                if (response.StatusCode == HttpStatusCode.TooManyRequests) refused ??= response;
            }
        }
        // 10 allowed in the minute across both processes (each alone would have allowed 7 of its 7), then 429.
        Assert.Equal(10, codes.Count(c => c == HttpStatusCode.OK));
        Assert.Equal(4, codes.Count(c => c == HttpStatusCode.TooManyRequests));
        var problem = await ApiClient.Problem(refused!, HttpStatusCode.TooManyRequests);
        Assert.Equal("X-Api-Key", problem.GetProperty("field").GetString());
        var wait = refused!.Headers.RetryAfter!.Delta!.Value;
        Assert.InRange(wait.TotalSeconds, 1, 60);
        // Another key has its own budget.
        Assert.Equal(HttpStatusCode.OK, (await otherTenant.GetAsync("v1/models")).StatusCode);
    }
}
