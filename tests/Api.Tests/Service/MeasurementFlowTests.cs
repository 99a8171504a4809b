using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LambdaService.Api.Cli;

namespace LambdaService.Api.Tests.Service;

/// <summary>Upload, measure, poll, result — against the real service on 127.0.0.1.</summary>
public class MeasurementFlowTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static double CliLambda(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(CliApp.Run(["measure", .. args, "--json"], stdout, stderr, CancellationToken.None) == 0, stderr.ToString());
        return JsonDocument.Parse(stdout.ToString()).RootElement.GetProperty("lambda").GetDouble();
    }

    [Fact]
    public async Task An_onnx_and_a_torchscript_model_measured_over_http_give_the_lambda_the_cli_gives()
    {
        using var client = fixture.Service.Client();
        var upload = await ApiClient.Upload(client, "v1/models", fixture.Files.Onnx, fields: new Dictionary<string, string> { ["name"] = "tanh-mlp" });
        Assert.Equal(HttpStatusCode.Created, upload.StatusCode);
        var model = JsonNode.Parse(await upload.Content.ReadAsStringAsync())!;
        Assert.Equal($"/v1/models/{model["id"]}", upload.Headers.Location!.ToString());
        Assert.Equal("onnx", model["format"]!.GetValue<string>());
        Assert.Equal("tanh-mlp", model["name"]!.GetValue<string>());
        Assert.Equal(64, model["sha256"]!.GetValue<string>().Length);
        Assert.Equal("x", model["inputs"]![0]!["name"]!.GetValue<string>());
        var torchId = await ApiClient.UploadId(client, "v1/models", fixture.Files.TorchScript);
        var dataset = JsonNode.Parse(await (await ApiClient.Upload(client, "v1/datasets", fixture.Files.Csv)).Content.ReadAsStringAsync())!;
        Assert.Equal(120, dataset["rows"]!.GetValue<int>());
        Assert.True(dataset["hasLabels"]!.GetValue<bool>());
        Assert.Equal(2, dataset["classes"]!.GetValue<int>());

        var onnxJob = await ApiClient.SubmitId(client, new { modelId = model["id"]!.GetValue<string>(), datasetId = dataset["id"]!.GetValue<string>(), seed = 3, orders = new { min = 1, max = 4 } });
        var torchJob = await ApiClient.SubmitId(client, new { modelId = torchId, datasetId = dataset["id"]!.GetValue<string>(), seed = 3 });
        var onnxResult = await ApiClient.WaitFor(client, onnxJob, TimeSpan.FromMinutes(2));
        var torchResult = await ApiClient.WaitFor(client, torchJob, TimeSpan.FromMinutes(2));
        Assert.Equal("succeeded", onnxResult["status"]!.GetValue<string>());
        Assert.Equal("succeeded", torchResult["status"]!.GetValue<string>());
        Assert.Equal(1.0, onnxResult["progress"]!.GetValue<double>());
        Assert.NotNull(onnxResult["startedAt"]);
        Assert.NotNull(onnxResult["finishedAt"]);

        var viaHttpOnnx = onnxResult["result"]!["lambda"]!.GetValue<double>();
        var viaHttpTorch = torchResult["result"]!["lambda"]!.GetValue<double>();
        Assert.Equal("taylor", onnxResult["result"]!["engine"]!.GetValue<string>());
        Assert.Equal("autograd", torchResult["result"]!["engine"]!.GetValue<string>());
        // The sandbox computes exactly what the CLI computes for the same files and seed.
        Assert.Equal(CliLambda("--model", fixture.Files.Onnx, "--data", fixture.Files.Csv, "--seed", "3"), viaHttpOnnx, 12);
        Assert.Equal(CliLambda("--model", fixture.Files.TorchScript, "--data", fixture.Files.Csv, "--seed", "3"), viaHttpTorch, 12);
        // Two exact engines (Taylor mode on the imported ONNX graph, autograd on TorchScript), one network: the same λ
        // up to the float32 weights each format stores (identical here) and rounding.
        Assert.Equal(viaHttpTorch, viaHttpOnnx, 8);
    }

    [Fact]
    public async Task Lambda_at_a_layer_over_http_is_the_clis_and_unknown_layers_are_400s_naming_at_with_the_valid_layers()
    {
        using var client = fixture.Service.Client();
        var modelId = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var torchId = await ApiClient.UploadId(client, "v1/models", fixture.Files.TorchScript);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);

        var job = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId, datasetId, seed = 3, at = "act1" }), TimeSpan.FromMinutes(2));
        Assert.Equal("succeeded", job["status"]!.GetValue<string>());
        var result = job["result"]!;
        Assert.Equal("act1", result["config"]!["at"]!.GetValue<string>());
        Assert.Equal("taylor", result["engine"]!.GetValue<string>());
        Assert.Equal(16, Assert.Single(result["config"]!["layerShape"]!.AsArray())!.GetValue<int>());
        Assert.Equal(CliLambda("--model", fixture.Files.Onnx, "--data", fixture.Files.Csv, "--seed", "3", "--at", "act1"), result["lambda"]!.GetValue<double>(), 12);
        var atInput = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId, datasetId, seed = 3 }), TimeSpan.FromMinutes(2));
        Assert.Equal("input", atInput["result"]!["config"]!["at"]!.GetValue<string>());
        Assert.NotEqual(atInput["result"]!["lambda"]!.GetValue<double>(), result["lambda"]!.GetValue<double>(), 6);

        var unknown = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId, datasetId, at = "conv9" }), HttpStatusCode.BadRequest);
        Assert.Equal("at", unknown.GetProperty("field").GetString());
        Assert.Contains("'conv9' is not a layer of this model; use 'input' or one of: fc1, act1", unknown.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var opaque = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId = torchId, datasetId, at = "act1" }), HttpStatusCode.BadRequest);
        Assert.Equal("at", opaque.GetProperty("field").GetString());
        Assert.Contains("TorchScript", opaque.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var fd = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId, datasetId, at = "act1", engine = "finite-difference" }), HttpStatusCode.BadRequest);
        Assert.Equal("engine", fd.GetProperty("field").GetString());
    }

    [Theory]
    [InlineData("attention block, opset 13")]
    [InlineData("layer norm mlp, LayerNormalization, opset 17")]
    [InlineData("padded cnn with average pooling, opset 11")]
    public async Task A_model_as_torch_onnx_export_writes_it_is_measured_by_an_exact_engine_under_auto_and_agrees_with_finite_differences(string graph)
    {
        var (model, sample) = LambdaService.Measurement.Tests.Taylor.ExportedGraphs.All[graph]();
        var modelPath = Path.Combine(fixture.Files.Folder, $"exported-{string.Concat(graph.Where(char.IsLetterOrDigit))}.onnx");
        LambdaService.Measurement.Models.OnnxModelBuilder.Save(model, modelPath);
        var features = sample.Aggregate(1, (a, b) => a * b);
        var dataPath = Path.Combine(fixture.Files.Folder, $"exported-{features}.csv");
        var rng = new Random(4);
        File.WriteAllLines(dataPath, [string.Join(",", Enumerable.Range(0, features).Select(i => $"f{i}").Append("label")),
            .. Enumerable.Range(0, 12).Select(r => string.Join(",", Enumerable.Range(0, features)
                .Select(_ => (rng.NextDouble() * 3 - 1.5).ToString("R", System.Globalization.CultureInfo.InvariantCulture)).Append((r % 3).ToString(System.Globalization.CultureInfo.InvariantCulture))))]);
        using var client = fixture.Service.Client();
        var modelId = await ApiClient.UploadId(client, "v1/models", modelPath);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", dataPath);
        var auto = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId, datasetId, maxPoints = 6, directions = 2 }), TimeSpan.FromMinutes(2));
        var fd = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId, datasetId, maxPoints = 6, directions = 2, engine = "finite-difference" }), TimeSpan.FromMinutes(2));
        Assert.Equal("succeeded", auto["status"]!.GetValue<string>());
        Assert.Equal("succeeded", fd["status"]!.GetValue<string>());
        Assert.Equal("taylor", auto["result"]!["engine"]!.GetValue<string>());
        var exact = auto["result"]!["orders"]!.AsArray().Select(o => o!["norm"]!.GetValue<double>()).ToArray();
        var approximate = fd["result"]!["orders"]!.AsArray().Select(o => o!["norm"]!.GetValue<double>()).ToArray();
        Assert.Equal(4, exact.Length);
        for (var n = 0; n < exact.Length; n++) Assert.True(Math.Abs(approximate[n] - exact[n]) <= 1e-6 * exact[n], $"v_{n + 1}: {approximate[n]:R} vs {exact[n]:R}");
    }

    [Fact]
    public async Task Precision_float32_over_http_runs_the_exact_engine_in_float32_reads_back_float32_and_gives_the_clis_lambda()
    {
        using var client = fixture.Service.Client();
        var modelId = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var single = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId, datasetId, seed = 3, precision = "float32" }), TimeSpan.FromMinutes(2));
        var dbl = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId, datasetId, seed = 3 }), TimeSpan.FromMinutes(2));
        Assert.Equal("succeeded", single["status"]!.GetValue<string>());
        var result = single["result"]!;
        Assert.Equal("float32", result["precision"]!.GetValue<string>());
        Assert.Equal("float32", result["config"]!["precision"]!.GetValue<string>());
        Assert.Equal("taylor", result["engine"]!.GetValue<string>());
        Assert.Equal("float64", dbl["result"]!["precision"]!.GetValue<string>());
        Assert.Equal("float64", dbl["result"]!["config"]!["precision"]!.GetValue<string>());
        // The sandbox computes what the CLI computes in float32; float64 differs by float32 rounding only (tests/Training.Tests/PrecisionTests.cs: ≤ 2e-3).
        var lambda32 = result["lambda"]!.GetValue<double>();
        Assert.Equal(CliLambda("--model", fixture.Files.Onnx, "--data", fixture.Files.Csv, "--seed", "3", "--precision", "float32"), lambda32, 12);
        Assert.True(Math.Abs(lambda32 - dbl["result"]!["lambda"]!.GetValue<double>()) <= 2e-3, $"λ {lambda32} (float32) vs {dbl["result"]!["lambda"]} (float64)");
    }

    [Fact]
    public async Task Precision_float32_where_finite_differences_would_run_and_unknown_precisions_are_400s_naming_precision()
    {
        using var client = fixture.Service.Client();
        var modelId = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var unsupportedId = await ApiClient.UploadId(client, "v1/models", fixture.Files.UnsupportedOnnx);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var fd = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId, datasetId, precision = "float32", engine = "finite-difference" }), HttpStatusCode.BadRequest);
        Assert.Equal("precision", fd.GetProperty("field").GetString());
        Assert.Contains("exact engines taylor and autograd", fd.GetProperty("detail").GetString(), StringComparison.Ordinal);
        // auto on a graph with an operator the exact engines lack would fall back to finite differences: refused before anything is queued.
        var auto = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId = unsupportedId, datasetId, precision = "float32" }), HttpStatusCode.BadRequest);
        Assert.Equal("precision", auto.GetProperty("field").GetString());
        Assert.Contains("engine auto falls back to finite differences on this ONNX graph (unsupported operators Einsum", auto.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var unknown = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId, datasetId, precision = "float16" }), HttpStatusCode.BadRequest);
        Assert.Equal("precision", unknown.GetProperty("field").GetString());
        Assert.Contains("use one of float64, float32", unknown.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_exact_engine_on_a_graph_it_cannot_read_is_a_400_naming_the_operator_its_nodes_and_what_auto_does()
    {
        using var client = fixture.Service.Client();
        var modelId = await ApiClient.UploadId(client, "v1/models", fixture.Files.UnsupportedOnnx);
        var datasetId = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var problem = await ApiClient.Problem(await ApiClient.Submit(client, new { modelId, datasetId, engine = "taylor" }), HttpStatusCode.BadRequest);
        Assert.Equal("engine", problem.GetProperty("field").GetString());
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("unsupported operators Einsum at nodes 'einsum", detail, StringComparison.Ordinal);
        Assert.Contains("engine auto measures such a model with finite differences", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Finite_differences_on_a_relu_cnn_fail_the_job_as_derivatives_unreliable_unless_allowed()
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.ReluCnn);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Images);

        var refused = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, engine = "finite-difference", seed = 1 }),
            TimeSpan.FromMinutes(2));
        Assert.Equal("failed", refused["status"]!.GetValue<string>());
        Assert.Null(refused["result"]);
        var error = refused["error"]!;
        Assert.Equal(422, error["status"]!.GetValue<int>());
        Assert.Equal("Derivatives unreliable", error["title"]!.GetValue<string>());
        Assert.Equal("engine", error["field"]!.GetValue<string>());
        var detail = error["detail"]!.GetValue<string>();
        Assert.StartsWith("derivatives unreliable:", detail, StringComparison.Ordinal);
        Assert.Contains("order 4 (median ", detail, StringComparison.Ordinal);
        Assert.Contains("use engine taylor or autograd (or auto)", detail, StringComparison.Ordinal);
        // A user error is not retried.
        Assert.Equal(1, refused["attempts"]!.GetValue<int>());

        var allowed = await ApiClient.WaitFor(client,
            await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, engine = "finite-difference", seed = 1, allowUnreliable = true }), TimeSpan.FromMinutes(2));
        Assert.Equal("succeeded", allowed["status"]!.GetValue<string>());
        var result = allowed["result"]!;
        Assert.True(result["unreliable"]!.GetValue<bool>());
        Assert.True(result["config"]!["allowUnreliable"]!.GetValue<bool>());
        Assert.Contains(result["warnings"]!.AsArray(), w => w!.GetValue<string>().StartsWith("derivatives unreliable:", StringComparison.Ordinal));
        Assert.True(allowed["request"]!["allowUnreliable"]!.GetValue<bool>());

        // The default engine (auto: Taylor mode on the imported graph) measures the same model exactly, unflagged.
        var exact = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, seed = 1 }), TimeSpan.FromMinutes(2));
        Assert.Equal("succeeded", exact["status"]!.GetValue<string>());
        Assert.Equal("taylor", exact["result"]!["engine"]!.GetValue<string>());
        Assert.False(exact["result"]!["unreliable"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Cuda_requested_on_a_node_without_a_device_fails_as_a_503_problem_naming_device_and_cpu_runs_where_asked()
    {
        // This build's libtorch and the machines the suite runs on have no CUDA device (a test on a GPU node would see one).
        Assert.False(TorchSharp.torch.cuda.is_available(), "this test expects a machine without CUDA");
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        foreach (var engine in new[] { "taylor", "finite-difference" })
        {
            // libtorch (taylor) and ONNX Runtime's CUDA provider (finite differences) each say why.
            var job = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, engine, device = "cuda", maxPoints = 8 }),
                TimeSpan.FromMinutes(1));
            Assert.Equal("failed", job["status"]!.GetValue<string>());
            var error = job["error"]!;
            Assert.Equal(503, error["status"]!.GetValue<int>());
            Assert.Equal("CUDA unavailable", error["title"]!.GetValue<string>());
            Assert.Equal("device", error["field"]!.GetValue<string>());
            Assert.Contains("use device auto or cpu", error["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(1, job["attempts"]!.GetValue<int>());
        }

        var cpu = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, device = "cpu", maxPoints = 8 }), TimeSpan.FromMinutes(1));
        Assert.Equal("succeeded", cpu["status"]!.GetValue<string>());
        Assert.Equal("cpu", cpu["result"]!["device"]!.GetValue<string>());
        Assert.Equal("cpu", cpu["result"]!["config"]!["device"]!.GetValue<string>());
        var auto = await ApiClient.WaitFor(client, await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 8 }), TimeSpan.FromMinutes(1));
        Assert.Equal("cpu", auto["result"]!["device"]!.GetValue<string>());
        Assert.Equal("auto", auto["result"]!["config"]!["device"]!.GetValue<string>());

        // The command line: exit code 2 and the same sentence.
        var stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["measure", "--model", fixture.Files.Onnx, "--data", fixture.Files.Csv, "--device", "cuda"], new StringWriter(), stderr, CancellationToken.None));
        Assert.Contains("CUDA was requested but", stderr.ToString(), StringComparison.Ordinal);
        stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["bench", "--device", "cuda", "--profile"], new StringWriter(), stderr, CancellationToken.None));
        Assert.Contains("CUDA was requested but", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_measurement_without_a_budget_runs_under_the_services_default_and_a_budget_past_the_jobs_memory_limit_is_a_400()
    {
        // Jobs:MemoryLimitMb 4096 and no Measurement:MemoryBudgetMb: the default is 4096 / 8 = 512 MiB (MeasurementDefaultsOptions).
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Jobs__MemoryLimitMb"] = "4096" });
        using var client = service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 8 });
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.Equal(512, job["result"]!["config"]!["memoryBudgetMb"]!.GetValue<double>());

        var refused = await client.PostAsJsonAsync("v1/measurements", new { modelId = model, datasetId = dataset, memoryBudgetMb = 4096 });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal("memoryBudgetMb", problem!["field"]!.GetValue<string>());
        Assert.Contains("does not fit in a job's memory limit of 4096 MiB", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        // Measurement:MemoryBudgetMb set by the operator.
        using var configured = new ServiceProcess(new Dictionary<string, string> { ["Measurement__MemoryBudgetMb"] = "300" });
        using var second = configured.Client();
        var model2 = await ApiClient.UploadId(second, "v1/models", fixture.Files.Onnx);
        var dataset2 = await ApiClient.UploadId(second, "v1/datasets", fixture.Files.Csv);
        var job2 = await ApiClient.WaitFor(second, await ApiClient.SubmitId(second, new { modelId = model2, datasetId = dataset2, maxPoints = 8 }), TimeSpan.FromMinutes(1));
        Assert.Equal(300, job2["result"]!["config"]!["memoryBudgetMb"]!.GetValue<double>());
    }

    [Fact]
    public async Task Lists_are_paged_and_newest_first()
    {
        using var client = fixture.Service.Client();
        var first = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var second = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.UnlabelledCsv);
        var page = await ApiClient.Get(client, "v1/datasets?page=1&pageSize=1");
        Assert.Single(page["items"]!.AsArray());
        Assert.Equal(second, page["items"]![0]!["id"]!.GetValue<string>());
        Assert.True(page["total"]!.GetValue<int>() >= 2);
        var next = await ApiClient.Get(client, "v1/datasets?page=2&pageSize=1");
        Assert.Equal(first, next["items"]![0]!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_deleted_model_is_gone()
    {
        using var client = fixture.Service.Client();
        var id = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"v1/models/{id}")).StatusCode);
        await ApiClient.Problem(await client.GetAsync($"v1/models/{id}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_same_idempotency_key_and_body_return_the_same_resource_and_a_different_body_is_refused()
    {
        using var client = fixture.Service.Client();
        var key = Guid.NewGuid().ToString();
        var a = await ApiClient.Upload(client, "v1/models", fixture.Files.Onnx, idempotencyKey: key);
        var b = await ApiClient.Upload(client, "v1/models", fixture.Files.Onnx, idempotencyKey: key);
        Assert.Equal(HttpStatusCode.Created, b.StatusCode);
        var modelId = JsonNode.Parse(await a.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        Assert.Equal(modelId, JsonNode.Parse(await b.Content.ReadAsStringAsync())!["id"]!.GetValue<string>());
        var other = await ApiClient.Upload(client, "v1/models", fixture.Files.TorchScript, idempotencyKey: key);
        var problem = await ApiClient.Problem(other, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("Idempotency-Key", problem.GetProperty("field").GetString());

        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var jobKey = Guid.NewGuid().ToString();
        var body = new { modelId, datasetId = dataset, maxPoints = 8 };
        var first = JsonNode.Parse(await (await ApiClient.Submit(client, body, jobKey)).Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        var again = JsonNode.Parse(await (await ApiClient.Submit(client, body, jobKey)).Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        Assert.Equal(first, again);
        await ApiClient.Problem(await ApiClient.Submit(client, new { modelId, datasetId = dataset, maxPoints = 9 }, jobKey), HttpStatusCode.UnprocessableEntity);
        await ApiClient.WaitFor(client, first, TimeSpan.FromMinutes(1));
    }
}
