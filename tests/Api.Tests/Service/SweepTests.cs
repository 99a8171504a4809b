using System.Net;
using System.Text.Json.Nodes;

namespace LambdaService.Api.Tests.Service;

/// <summary><c>/v1/sweeps</c> against the real service.</summary>
public class SweepTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private readonly ServiceProcess _service = fixture.Service;

    private static async Task<(string Id, int Runs)> Submit(HttpClient client, object body)
    {
        var response = await ApiClient.Post(client, "v1/sweeps", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, text);
        var json = JsonNode.Parse(text)!;
        return (json["id"]!.GetValue<string>(), json["runs"]!.GetValue<int>());
    }

    private static bool Final(JsonNode sweep) => sweep["summary"]!["status"]!.GetValue<string>() is "succeeded" or "failed" or "canceled";

    [Fact]
    public async Task A_sweep_runs_every_cell_and_seed_and_its_statistics_match_the_runs_own_results()
    {
        using var client = _service.Client();
        var (id, count) = await Submit(client, new
        {
            name = "noise-and-method",
            @base = new { dataset = new { samples = 200, labelNoise = 0.3 }, model = new { hidden = new[] { 8 } }, epochs = 2,
                measure = new { points = "all", maxPoints = 16, bootstrapResamples = 10 } },
            grid = new Dictionary<string, object[]> { ["method"] = ["baseline", "crr"], ["crr.scale"] = [0.01] },
            seeds = 2,
        });
        Assert.Equal(4, count);
        var sweep = await ApiClient.WaitUntil(client, $"v1/sweeps/{id}", TimeSpan.FromMinutes(3), Final);
        var summary = sweep["summary"]!;
        Assert.True(summary["status"]!.GetValue<string>() == "succeeded", sweep.ToJsonString());
        Assert.Equal(4, summary["counts"]!["succeeded"]!.GetValue<int>());

        // Independent of the service's statistics: fetch each run and compute means and Pearson r here.
        var lambdas = new List<double>();
        var errors = new List<double>();
        foreach (var cell in summary["cells"]!.AsArray())
        {
            var cellErrors = new List<double>();
            foreach (var runId in cell!["runs"]!.AsArray().Select(r => r!.GetValue<string>()))
            {
                var run = await ApiClient.Get(client, $"v1/training-runs/{runId}");
                Assert.Equal(cell["parameters"]!["method"]!.GetValue<string>(), run["request"]!["method"]!.GetValue<string>());
                var error = run["result"]!["testError"]!.GetValue<double>();
                cellErrors.Add(error);
                errors.Add(error);
                lambdas.Add(run["result"]!["lambda"]!["lambda"]!.GetValue<double>());
            }
            Assert.Equal(2, cellErrors.Count);
            Assert.Equal(cellErrors.Average(), cell["metrics"]!["testError"]!["mean"]!.GetValue<double>(), 1e-12);
        }
        var (mx, my) = (lambdas.Average(), errors.Average());
        var sxy = lambdas.Zip(errors).Sum(p => (p.First - mx) * (p.Second - my));
        var r = sxy / Math.Sqrt(lambdas.Sum(x => (x - mx) * (x - mx)) * errors.Sum(y => (y - my) * (y - my)));
        if (double.IsFinite(r))
        {
            Assert.Equal(r, summary["lambdaVsTestError"]!["r"]!.GetValue<double>(), 1e-9);
        }
        else
        {
            // All four test errors (or λs) equal: no correlation, and the service says why.
            Assert.Null(summary["lambdaVsTestError"]);
            Assert.NotNull(summary["correlationNote"]);
        }

        foreach (var kind in new[] { "scale", "error-lambda" })
        {
            var response = await client.GetAsync($"v1/sweeps/{id}/plot?kind={kind}&format=png");
            if (kind == "error-lambda" && summary["lambdaVsTestError"] is null)
            {
                await ApiClient.Problem(response, HttpStatusCode.Conflict);
                continue;
            }
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        }
        var svg = await client.GetAsync($"v1/sweeps/{id}/plot");
        Assert.Equal("image/svg+xml", svg.Content.Headers.ContentType?.MediaType);

        var list = await ApiClient.Get(client, "v1/sweeps");
        Assert.Contains(list["items"]!.AsArray(), s => s!["id"]!.GetValue<string>() == id && s["status"]!.GetValue<string>() == "succeeded");
        using var other = _service.Client(ServiceProcess.KeyB);
        await ApiClient.Problem(await other.GetAsync($"v1/sweeps/{id}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await other.DeleteAsync($"v1/sweeps/{id}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await client.DeleteAsync($"v1/sweeps/{id}"), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Canceling_a_sweep_cancels_its_queued_and_running_runs()
    {
        using var client = _service.Client();
        var (id, count) = await Submit(client, new { @base = new { epochs = 100_000 }, seeds = 3 });
        Assert.Equal(3, count);
        var canceled = await client.DeleteAsync($"v1/sweeps/{id}");
        Assert.Equal(HttpStatusCode.OK, canceled.StatusCode);
        var sweep = await ApiClient.Get(client, $"v1/sweeps/{id}");
        Assert.Equal("canceled", sweep["summary"]!["status"]!.GetValue<string>());
        Assert.Equal(3, sweep["summary"]!["counts"]!["canceled"]!.GetValue<int>());
        Assert.True(await JobLifecycleTests.NoRunnerFor(_service, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15)), "a sandbox is still running after cancel");
        await ApiClient.Problem(await client.GetAsync($"v1/sweeps/{id}/plot"), HttpStatusCode.Conflict);

        // The sweep's runs, and only those, under /v1/training-runs?sweepId= (each says which sweep queued it).
        var runs = await ApiClient.Get(client, $"v1/training-runs?sweepId={id}&pageSize=100");
        Assert.Equal(3, runs["total"]!.GetValue<int>());
        Assert.All(runs["items"]!.AsArray(), r =>
        {
            Assert.Equal(id, r!["sweepId"]!.GetValue<string>());
            Assert.Equal("canceled", r["status"]!.GetValue<string>());
        });
        var none = await ApiClient.Get(client, "v1/training-runs?sweepId=swp_unknown");
        Assert.Equal(0, none["total"]!.GetValue<int>());
        using var other = _service.Client(ServiceProcess.KeyB);
        Assert.Equal(0, (await ApiClient.Get(other, $"v1/training-runs?sweepId={id}"))["total"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_same_idempotency_key_and_body_return_the_same_sweep_and_a_different_body_is_refused()
    {
        using var client = _service.Client();
        var body = new { @base = new { epochs = 100_000 }, seeds = 2 };
        var first = await ApiClient.Post(client, "v1/sweeps", body, "sweep-key-1");
        var second = await ApiClient.Post(client, "v1/sweeps", body, "sweep-key-1");
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        var firstJson = JsonNode.Parse(await first.Content.ReadAsStringAsync())!;
        var secondJson = JsonNode.Parse(await second.Content.ReadAsStringAsync())!;
        var id = firstJson["id"]!.GetValue<string>();
        Assert.Equal(id, secondJson["id"]!.GetValue<string>());
        Assert.Equal(2, secondJson["runs"]!.GetValue<int>());
        Assert.Equal(2, (await ApiClient.Get(client, $"v1/training-runs?sweepId={id}"))["total"]!.GetValue<int>());   // queued once
        var other = await ApiClient.Post(client, "v1/sweeps", new { @base = new { epochs = 100_000 }, seeds = 3 }, "sweep-key-1");
        Assert.Equal("Idempotency-Key", (await ApiClient.Problem(other, HttpStatusCode.UnprocessableEntity)).GetProperty("field").GetString());
        // Keys are per tenant: the other tenant's first use of the same key creates its own sweep.
        using var otherTenant = _service.Client(ServiceProcess.KeyB);
        var theirs = await ApiClient.Post(otherTenant, "v1/sweeps", body, "sweep-key-1");
        Assert.Equal(HttpStatusCode.Accepted, theirs.StatusCode);
        var theirId = JsonNode.Parse(await theirs.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        Assert.NotEqual(id, theirId);
        Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"v1/sweeps/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await otherTenant.DeleteAsync($"v1/sweeps/{theirId}")).StatusCode);
        Assert.True(await JobLifecycleTests.NoRunnerFor(_service, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15)), "a sandbox is still running after cancel");
    }

    [Fact]
    public async Task A_sweep_that_cannot_run_is_refused_before_anything_is_queued()
    {
        using var client = _service.Client();
        var before = (await ApiClient.Get(client, "v1/sweeps?pageSize=100"))["total"]!.GetValue<int>();
        (object Body, string Field)[] cases =
        [
            (new { grid = new Dictionary<string, object[]> { ["crr.scal"] = [1] } }, "grid.crr.scal"),
            (new { grid = new Dictionary<string, object[]> { ["dataset.labelNoise"] = [0.1, 7] } }, "grid.dataset.labelNoise"),
            (new { @base = new { dataset = new { datasetId = "dst_missing" } } }, "dataset.datasetId"),
            (new { seeds = 5000 }, "grid"),
        ];
        foreach (var (body, field) in cases)
        {
            var problem = await ApiClient.Problem(await ApiClient.Post(client, "v1/sweeps", body), HttpStatusCode.BadRequest);
            Assert.Equal(field, problem.GetProperty("field").GetString());
        }
        Assert.Equal(before, (await ApiClient.Get(client, "v1/sweeps?pageSize=100"))["total"]!.GetValue<int>());
        await ApiClient.Problem(await client.GetAsync("v1/sweeps/swp_missing/plot?kind=histogram"), HttpStatusCode.BadRequest);
    }
}
