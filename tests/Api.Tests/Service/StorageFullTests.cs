using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using SQLite;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// The service with its data folder on a small tmpfs that the test fills: uploads and submissions answer 507 (or 503) problem
/// details naming <c>storage</c> with Retry-After, leave no job, key or file behind, <c>/readyz</c> says why storage is not ready,
/// and once the filler is deleted the same requests succeed and the job runs.
/// </summary>
public sealed class StorageFullTests : IDisposable
{
    private readonly TestFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public async Task On_a_full_disk_uploads_and_measurements_answer_507_and_leave_nothing_behind_and_succeed_once_space_is_back()
    {
        using var disk = new SmallFileSystem(16);
        // No floor: every write goes ahead until the kernel refuses it (ENOSPC, SQLITE_FULL).
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Storage__MinFreeMb"] = "0" }, dataRoot: disk.Path);
        using var client = service.Client();
        var modelId = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);
        var artifacts = disk.FilesUnder("artifacts");
        Assert.Equal(2, artifacts.Length);

        disk.Fill();
        Assert.Equal(0, disk.FreeBytes);

        var upload = await ApiClient.Upload(client, "v1/models", _files.TorchScript);
        AssertStorageProblem(await ApiClient.Problem(upload, HttpStatusCode.InsufficientStorage), upload);
        Assert.Empty(disk.FilesUnder("tmp"));
        Assert.Equal(artifacts, disk.FilesUnder("artifacts"));

        var request = new { modelId, datasetId, seed = 3, orders = new { min = 1, max = 4 } };
        foreach (var key in new[] { "full-disk-retry", null })
        {
            var submit = await ApiClient.Submit(client, request, key);
            Assert.True(submit.StatusCode is HttpStatusCode.InsufficientStorage or HttpStatusCode.ServiceUnavailable,
                $"{(int)submit.StatusCode}: {await submit.Content.ReadAsStringAsync()}\n{service.Log}");
            AssertStorageProblem(await ApiClient.Problem(submit, submit.StatusCode), submit);
        }
        // A training run and a sweep of three runs (one transaction, then three enqueues): refused the same way.
        foreach (var (path, body) in new (string, object)[] { ("v1/training-runs", new { epochs = 1 }), ("v1/sweeps", new { @base = new { epochs = 1 }, seeds = 3 }) })
        {
            var refused = await ApiClient.Post(client, path, body, "full-disk-" + path);
            Assert.True(refused.StatusCode is HttpStatusCode.InsufficientStorage or HttpStatusCode.ServiceUnavailable, $"{path}: {(int)refused.StatusCode}");
            AssertStorageProblem(await ApiClient.Problem(refused, refused.StatusCode), refused);
        }
        foreach (var path in new[] { "v1/measurements", "v1/training-runs", "v1/sweeps" })
        {
            Assert.Equal(0, (await ApiClient.Get(client, path))["total"]!.GetValue<int>());
        }

        var ready = await client.GetAsync("readyz");
        var readyBody = await ready.Content.ReadAsStringAsync();
        Assert.True(ready.StatusCode == HttpStatusCode.ServiceUnavailable, readyBody);
        Assert.Contains("full", JsonNode.Parse(readyBody)!["checks"]!["storage"]!.GetValue<string>(), StringComparison.Ordinal);

        disk.Free();
        // Nothing the refused requests wrote survived: no job or sweep record, no remembered key (so no job runs later, none is found by a key).
        Assert.Equal((0, 0, 0), CountRows(disk.Path));

        Assert.Equal(HttpStatusCode.Created, (await ApiClient.Upload(client, "v1/models", _files.TorchScript)).StatusCode);
        Assert.Equal(3, disk.FilesUnder("artifacts").Length);
        var accepted = await ApiClient.Submit(client, request, "full-disk-retry");
        var acceptedBody = await accepted.Content.ReadAsStringAsync();
        Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, acceptedBody);
        var job = await ApiClient.WaitFor(client, JsonNode.Parse(acceptedBody)!["id"]!.GetValue<string>(), TimeSpan.FromMinutes(2));
        Assert.True(job["status"]!.GetValue<string>() == "succeeded", job.ToJsonString());
        Assert.Equal(1, (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>());
        Assert.Empty(disk.FilesUnder("tmp"));
        await WaitReady(client);
    }

    [Fact]
    public async Task Below_Storage_MinFreeMb_uploads_and_submissions_are_refused_with_507_up_front_and_readyz_names_the_floor()
    {
        using var disk = new SmallFileSystem(24);
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Storage__MinFreeMb"] = "8" }, dataRoot: disk.Path);
        using var client = service.Client();
        await WaitReady(client);
        var modelId = await ApiClient.UploadId(client, "v1/models", _files.Onnx);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", _files.Csv);

        // Room for every write, but under the floor.
        disk.Fill(leaveBytes: 4L << 20);
        Assert.InRange(disk.FreeBytes, 1L << 20, 8L << 20);

        var upload = await ApiClient.Upload(client, "v1/datasets", _files.UnlabelledCsv);
        var uploadProblem = await ApiClient.Problem(upload, HttpStatusCode.InsufficientStorage);
        AssertStorageProblem(uploadProblem, upload);
        Assert.Contains("Storage:MinFreeMb", uploadProblem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var submit = await ApiClient.Submit(client, new { modelId, datasetId, seed = 3 }, "floor-retry");
        AssertStorageProblem(await ApiClient.Problem(submit, HttpStatusCode.InsufficientStorage), submit);
        var training = await ApiClient.Post(client, "v1/training-runs", new { epochs = 1 });
        AssertStorageProblem(await ApiClient.Problem(training, HttpStatusCode.InsufficientStorage), training);

        var ready = await client.GetAsync("readyz");
        var readyBody = await ready.Content.ReadAsStringAsync();
        Assert.True(ready.StatusCode == HttpStatusCode.ServiceUnavailable, readyBody);
        Assert.Contains("below the floor of 8 MiB (Storage:MinFreeMb)", JsonNode.Parse(readyBody)!["checks"]!["storage"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(disk.FilesUnder("tmp"));
        Assert.Equal(2, disk.FilesUnder("artifacts").Length);
        Assert.Equal((0, 0, 0), CountRows(disk.Path));

        disk.Free();
        await WaitReady(client);
        Assert.Equal(HttpStatusCode.Created, (await ApiClient.Upload(client, "v1/datasets", _files.UnlabelledCsv)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await ApiClient.Submit(client, new { modelId, datasetId, seed = 3 }, "floor-retry")).StatusCode);
    }

    /// <summary>A 507 or 503 problem that names <c>storage</c> (or <c>database</c>) and asks the client to retry later.</summary>
    private static void AssertStorageProblem(JsonElement problem, HttpResponseMessage response)
    {
        Assert.Contains(problem.GetProperty("field").GetString(), new[] { "storage", "database" });
        Assert.Contains("nothing was", problem.GetProperty("detail").GetString()!, StringComparison.OrdinalIgnoreCase);
        Assert.True(response.Headers.RetryAfter?.Delta is { TotalSeconds: > 0 }, $"no Retry-After on {(int)response.StatusCode}");
    }

    /// <summary>Job records, sweep records and remembered idempotency keys in the service's <c>metadata.db</c>.</summary>
    private static (int Jobs, int Sweeps, int Keys) CountRows(string root)
    {
        using var db = new SQLiteConnection(Path.Combine(root, "metadata.db"), SQLiteOpenFlags.ReadOnly);
        return (db.ExecuteScalar<int>("SELECT COUNT(*) FROM jobs"), db.ExecuteScalar<int>("SELECT COUNT(*) FROM sweeps"), db.ExecuteScalar<int>("SELECT COUNT(*) FROM idempotency"));
    }

    private static async Task WaitReady(HttpClient client)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string body;
        do
        {
            var response = await client.GetAsync("readyz");
            body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.OK) return;
            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail("/readyz did not become ready: " + body);
    }
}
