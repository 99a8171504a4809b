using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LambdaService.Measurement.Models;
using LambdaService.Training.Datasets;

namespace LambdaService.Api.Tests.Service;

/// <summary><c>/v1/training-runs</c> against the real service: runs, exports, cancel, errors, tenants.</summary>
public class TrainingRunTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private readonly ServiceProcess _service = fixture.Service;

    /// <summary>A small CRR run on Two Moons: 400 points (280 train / 120 test), a 2-16-16-2 tanh MLP, 6 epochs, λ tracked every 3.</summary>
    private static object SmallCrrRun(int seed = 3) => new
    {
        dataset = new { builtin = "two-moons", samples = 400, labelNoise = 0.1 },
        model = new { hidden = new[] { 16, 16 } },
        method = "crr",
        crr = new { scale = 0.01, orders = new { min = 2, max = 3 } },
        epochs = 6,
        seed,
        measure = new { maxPoints = 32, bootstrapResamples = 50 },
        track = new { lambdaEvery = 3 },
    };

    private static async Task<string> SubmitRun(HttpClient client, object body)
    {
        var response = await ApiClient.Post(client, "v1/training-runs", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, text);
        var id = JsonNode.Parse(text)!["id"]!.GetValue<string>();
        Assert.Equal($"/v1/training-runs/{id}", response.Headers.Location?.AbsolutePath);
        return id;
    }

    private static Task<JsonNode> Finished(HttpClient client, string id) =>
        ApiClient.WaitUntil(client, $"v1/training-runs/{id}", TimeSpan.FromMinutes(2), ApiClient.IsFinal);

    [Fact]
    public async Task A_crr_run_over_http_reports_its_metrics_and_registers_models_that_reproduce_its_accuracy_and_can_be_measured()
    {
        using var client = _service.Client();
        var id = await SubmitRun(client, SmallCrrRun());
        var run = await Finished(client, id);
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());

        var result = run["result"]!;
        Assert.Equal("crr", result["method"]!.GetValue<string>());
        Assert.Equal(6, result["history"]!.AsArray().Count);
        Assert.Equal(6, run["current"]!["epoch"]!.GetValue<int>());
        Assert.NotNull(result["history"]![2]!["lambda"]);   // tracked after epochs 3 and 6
        Assert.NotNull(result["lambda"]!["lambda"]);
        Assert.Contains("P(w)", result["config"]!["objective"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(280, result["config"]!["trainSamples"]!.GetValue<int>());
        Assert.Equal(1.0, run["progress"]!.GetValue<double>());

        // Both exports are the caller's models now.
        var onnxId = run["models"]!["onnx"]!.GetValue<string>();
        var torchScriptId = run["models"]!["torchScript"]!.GetValue<string>();
        Assert.Equal(onnxId, result["models"]!["onnx"]!.GetValue<string>());
        Assert.Equal("onnx", (await ApiClient.Get(client, $"v1/models/{onnxId}"))["format"]!.GetValue<string>());
        Assert.Equal("torchscript", (await ApiClient.Get(client, $"v1/models/{torchScriptId}"))["format"]!.GetValue<string>());

        // Independent check of the reported accuracy: regenerate the run's test split (data seed = run seed 3), run the
        // downloaded ONNX file in ONNX Runtime (float32, as trained), count correct predictions. A near-tie may round
        // differently between libtorch and ONNX Runtime, so one sample (1/120) of difference is allowed.
        var folder = Directory.CreateTempSubdirectory("lambdaservice-train-e2e-").FullName;
        try
        {
            var onnxPath = Path.Combine(folder, "m.onnx");
            var torchScriptPath = Path.Combine(folder, "m.pt");
            await File.WriteAllBytesAsync(onnxPath, await Download(client, id, "onnx"));
            await File.WriteAllBytesAsync(torchScriptPath, await Download(client, id, "torchscript"));
            var data = TwoMoons.Generate(400, 0.2, 0.1, 0.3, 3);
            var x = data.TestX.Select(v => (double)v).ToArray();
            using var onnx = OnnxRunner.Create(ModelFile.Open(onnxPath), [2], new OnnxRunnerOptions { PreferFloat64 = false, Device = "cpu" });
            var logits = onnx.Forward(x, data.TestCount);
            var correct = Enumerable.Range(0, data.TestCount).Count(i => (logits[2 * i + 1] > logits[2 * i] ? 1 : 0) == data.TestY[i]);
            Assert.Equal(result["testAccuracy"]!.GetValue<double>(), (double)correct / data.TestCount, 1.0 / data.TestCount + 1e-12);

            // The TorchScript export (libtorch) gives the ONNX export's logits (ONNX Runtime) within 1e-5.
            using var script = TorchModelRunner.LoadTorchScript(ModelFile.Open(torchScriptPath), [2]);
            var scriptLogits = script.Forward(x, data.TestCount);
            Assert.All(Enumerable.Range(0, logits.Length), i => Assert.Equal(logits[i], scriptLogits[i], 1e-5));

            // "Measured at once": the registered ONNX model measures on the test split uploaded as CSV.
            var csvPath = Path.Combine(folder, "test.csv");
            var csv = new StringBuilder("x1,x2,label\n");
            for (var i = 0; i < data.TestCount; i++)
            {
                csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{data.TestX[2 * i]:R},{data.TestX[2 * i + 1]:R},{data.TestY[i]}"));
            }
            await File.WriteAllTextAsync(csvPath, csv.ToString());
            var dataset = await ApiClient.UploadId(client, "v1/datasets", csvPath);
            var measurement = await ApiClient.SubmitId(client, new { modelId = onnxId, datasetId = dataset, maxPoints = 16, directions = 2 });
            var measured = await ApiClient.WaitFor(client, measurement, TimeSpan.FromMinutes(1));
            Assert.True(measured["status"]!.GetValue<string>() == "succeeded", measured.ToJsonString());
            Assert.True(double.IsFinite(measured["result"]!["lambda"]!.GetValue<double>()));

            // Pictures of both: an SVG document and a PNG of the asked size.
            // Titled with what was trained and how it ended: method, data, final test error and λ of the final measurement.
            var title = string.Create(CultureInfo.InvariantCulture,
                $"CRR on Two Moons (10% label noise) — test error {result["testError"]!.GetValue<double>():0.0%}, λ = {result["lambda"]!["lambda"]!.GetValue<double>():0.###}");
            await AssertSvg(client, $"v1/training-runs/{id}/plot", title);
            await AssertPng(client, $"v1/training-runs/{id}/plot?format=png&width=640&height=360", 640, 360);
            await AssertSvg(client, $"v1/measurements/{measurement}/plot?format=svg", $"Measurement {measurement}");
            await AssertPng(client, $"v1/measurements/{measurement}/plot?format=png", 800, 500);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task AssertSvg(HttpClient client, string path, string title)
    {
        var response = await client.GetAsync(path);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("image/svg+xml", response.Content.Headers.ContentType?.MediaType);
        var svg = System.Xml.Linq.XDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("svg", svg.Root!.Name.LocalName);
        Assert.Contains(title, svg.ToString(), StringComparison.Ordinal);
    }

    private static async Task AssertPng(HttpClient client, string path, int width, int height)
    {
        var response = await client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        var png = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        // IHDR is the first chunk: length (4), "IHDR" (4), then width and height as big-endian 32-bit integers.
        Assert.Equal("IHDR", Encoding.ASCII.GetString(png, 12, 4));
        Assert.Equal(width, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)));
        Assert.Equal(height, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)));
    }

    private static async Task<byte[]> Download(HttpClient client, string id, string format)
    {
        var response = await client.GetAsync($"v1/training-runs/{id}/model?format={format}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(format == "onnx" ? $"{id}.onnx" : $"{id}.pt", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        return await response.Content.ReadAsByteArrayAsync();
    }

    [Fact]
    public async Task Canceling_a_training_run_mid_run_ends_its_sandbox_keeps_it_canceled_and_registers_no_model()
    {
        using var client = _service.Client();
        // 100,000 epochs of 700 samples: hours, unless canceled.
        var id = await SubmitRun(client, new { dataset = new { samples = 1000 }, epochs = 100_000, seed = 1 });
        var running = await ApiClient.WaitUntil(client, $"v1/training-runs/{id}", TimeSpan.FromMinutes(1),
            run => run["current"] is { } current && current["epoch"]!.GetValue<int>() >= 2);
        Assert.Equal("running", running["status"]!.GetValue<string>());
        Assert.Equal(100_000, running["current"]!["epochs"]!.GetValue<int>());
        Assert.InRange(running["progress"]!.GetValue<double>(), 0.0, 0.01);

        var cancel = await client.DeleteAsync($"v1/training-runs/{id}");
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.True(await JobLifecycleTests.NoRunnerFor(_service, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15)), "the sandbox is still running after cancel");
        var run = await ApiClient.Get(client, $"v1/training-runs/{id}");
        Assert.Equal("canceled", run["status"]!.GetValue<string>());
        Assert.Null(run["result"]);
        Assert.Null(run["models"]);
        Assert.Null(run["sweepId"]);                        // posted on its own, not by a sweep
        var models = await ApiClient.Get(client, "v1/models?pageSize=100");
        Assert.DoesNotContain(models["items"]!.AsArray(), m => m!["name"]!.GetValue<string>().StartsWith(id, StringComparison.Ordinal));

        var again = await client.DeleteAsync($"v1/training-runs/{id}");
        Assert.Equal("id", (await ApiClient.Problem(again, HttpStatusCode.Conflict)).GetProperty("field").GetString());
        var download = await client.GetAsync($"v1/training-runs/{id}/model");
        Assert.Equal("id", (await ApiClient.Problem(download, HttpStatusCode.Conflict)).GetProperty("field").GetString());
        var plot = await client.GetAsync($"v1/training-runs/{id}/plot");
        Assert.Equal("id", (await ApiClient.Problem(plot, HttpStatusCode.Conflict)).GetProperty("field").GetString());
    }

    [Fact]
    public async Task A_dataset_deleted_while_a_run_reads_it_stays_stored_until_the_run_ends_and_then_leaves_the_store()
    {
        using var client = _service.Client();
        // Content of its own: another record with the same bytes (the shared CSV) would rightly keep the file.
        var csv = Path.Combine(Path.GetTempPath(), $"own-{Guid.NewGuid():N}.csv");
        var unique = (Guid.NewGuid().GetHashCode() & 0xffff) / 1e6;
        await File.WriteAllTextAsync(csv, await File.ReadAllTextAsync(fixture.Files.Csv)
            + string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{0.5 + unique:R},{-0.25 - unique:R},0\n"));
        JsonNode uploaded;
        try
        {
            var response = await ApiClient.Upload(client, "v1/datasets", csv);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            uploaded = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        }
        finally
        {
            File.Delete(csv);
        }
        var datasetId = uploaded["id"]!.GetValue<string>();
        var sha = uploaded["sha256"]!.GetValue<string>();
        var stored = Path.Combine(_service.DataRoot, "artifacts", sha[..2], sha);
        Assert.True(File.Exists(stored), stored);

        var id = await SubmitRun(client, new { dataset = new { datasetId }, epochs = 100_000, seed = 1 });
        await ApiClient.WaitUntil(client, $"v1/training-runs/{id}", TimeSpan.FromMinutes(1),
            run => run["current"] is { } current && current["epoch"]!.GetValue<int>() >= 1);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"v1/datasets/{datasetId}")).StatusCode);
        Assert.True(File.Exists(stored), "the running job's input went while it ran");

        Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"v1/training-runs/{id}")).StatusCode);
        Assert.True(await JobLifecycleTests.NoRunnerFor(_service, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15)), "the sandbox is still running after cancel");
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (File.Exists(stored) && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.False(File.Exists(stored), "the deleted dataset's file stayed in the store after the run that used it ended");
    }

    [Fact]
    public async Task A_run_on_an_uploaded_dataset_with_an_uploaded_test_set_trains_on_all_rows_of_one_and_tests_on_the_other()
    {
        using var client = _service.Client();
        var train = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);   // 120 labelled rows
        var test = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var id = await SubmitRun(client, new
        {
            dataset = new { datasetId = train, testDatasetId = test, labelNoise = 0.0 },
            model = new { hidden = new[] { 8 } },
            method = "sam",
            sam = new { rho = 0.05, adaptive = true },
            epochs = 3,
            measure = new { points = "all", maxPoints = 16, bootstrapResamples = 20 },
        });
        var run = await Finished(client, id);
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
        var config = run["result"]!["config"]!;
        Assert.Equal(120, config["trainSamples"]!.GetValue<int>());
        Assert.Equal(120, config["testSamples"]!.GetValue<int>());
        Assert.Equal("sam", run["result"]!["method"]!.GetValue<string>());
        Assert.True(config["request"]!["sam"]!["adaptive"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_crr_target_run_over_http_reports_scale_monitor_lambda_and_time_in_band_per_epoch_and_plots_its_band()
    {
        using var client = _service.Client();
        var id = await SubmitRun(client, new
        {
            dataset = new { builtin = "two-moons", samples = 400, labelNoise = 0.3 },
            model = new { hidden = new[] { 16, 16 } },
            method = "crr-target",
            crr = new { orders = new { min = 1, max = 4 }, target = new { value = -0.4, tolerance = 0.2, every = 5 } },
            epochs = 6,
            learningRate = 0.01,
            measure = new { maxPoints = 32, bootstrapResamples = 20 },
        });
        var run = await Finished(client, id);
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
        var result = run["result"]!;
        Assert.Equal("crr-target", result["method"]!.GetValue<string>());
        // The band as { value, tolerance } is resolved to { min, max } in the echoed request: −0.4 ± 0.2.
        var target = result["config"]!["request"]!["crr"]!["target"]!;
        Assert.Equal(-0.6, target["min"]!.GetValue<double>(), 12);
        Assert.Equal(-0.2, target["max"]!.GetValue<double>(), 12);
        Assert.Equal(56, target["monitorPoints"]!.GetValue<int>());   // a fifth of the 280 training samples
        Assert.All(result["history"]!.AsArray(), h =>
        {
            Assert.True(h!["scale"]!.GetValue<double>() >= 0);
            Assert.NotNull(h["monitorLambda"]);
            Assert.InRange(h["timeInBand"]!.GetValue<double>(), 0, 1);
        });
        Assert.InRange(result["timeInBand"]!.GetValue<double>(), 0, 1);
        await AssertSvg(client, $"v1/training-runs/{id}/plot", "CRR holding λ in a band on Two Moons (30% label noise) — test error");
        await AssertSvg(client, $"v1/training-runs/{id}/plot", "target band of λ [-0.6, -0.2]");
    }

    [Fact]
    public async Task A_class_filtered_crr_run_at_a_hidden_layer_over_http_echoes_where_it_acted_and_measures_lambda_there()
    {
        using var client = _service.Client();
        var id = await SubmitRun(client, new
        {
            dataset = new { builtin = "two-moons", samples = 200 },
            model = new { hidden = new[] { 8, 8 } },
            method = "crr",
            crr = new { at = "act2", pairs = new[] { "0-1" }, scale = 1.0 },
            epochs = 2,
            measure = new { at = "act2", points = "all", maxPoints = 16, bootstrapResamples = 10 },
        });
        var run = await Finished(client, id);
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
        var result = run["result"]!;
        var request = result["config"]!["request"]!;
        Assert.Equal("act2", request["crr"]!["at"]!.GetValue<string>());
        Assert.Equal("0-1", request["crr"]!["pairs"]![0]!.GetValue<string>());
        Assert.Equal("act2", request["measure"]!["at"]!.GetValue<string>());
        Assert.Contains("the activation of layer act2", result["config"]!["objective"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("y_i in {0,1}", result["config"]!["objective"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(double.IsFinite(result["lambda"]!["lambda"]!.GetValue<double>()));
    }

    [Fact]
    public async Task A_run_asking_for_cuda_on_a_node_without_a_device_fails_as_a_503_problem_naming_device()
    {
        Assert.False(TorchSharp.torch.cuda.is_available(), "this test expects a machine without CUDA");
        using var client = _service.Client();
        var id = await SubmitRun(client, new { dataset = new { samples = 100 }, epochs = 1, device = "cuda" });
        var run = await Finished(client, id);
        Assert.Equal("failed", run["status"]!.GetValue<string>());
        Assert.Equal(503, run["error"]!["status"]!.GetValue<int>());
        Assert.Equal("CUDA unavailable", run["error"]!["title"]!.GetValue<string>());
        Assert.Equal("device", run["error"]!["field"]!.GetValue<string>());
        Assert.Null(run["models"]);
    }

    [Fact]
    public async Task Bad_training_requests_get_problem_details_naming_the_field()
    {
        using var client = _service.Client();
        var unlabelled = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.UnlabelledCsv);
        var labelled = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        (object Body, string Field)[] cases =
        [
            (new { dataset = new { builtin = "cifar" } }, "dataset.builtin"),
            (new { dataset = new { builtin = "two-moons", datasetId = labelled } }, "dataset"),
            (new { dataset = new { datasetId = "dst_missing" } }, "dataset.datasetId"),
            (new { dataset = new { datasetId = unlabelled } }, "dataset.datasetId"),
            (new { dataset = new { datasetId = labelled, testDatasetId = unlabelled } }, "dataset.testDatasetId"),
            (new { dataset = new { testDatasetId = labelled } }, "dataset.testDatasetId"),
            (new { dataset = new { labelNoise = 1.5 } }, "dataset.labelNoise"),
            (new { method = "adam" }, "method"),
            (new { crr = new { orders = new { min = 0, max = 2 } } }, "crr.orders"),
            (new { sam = new { rho = -1 } }, "sam.rho"),
            (new { epochs = 0 }, "epochs"),
            (new { model = new { kind = "cnn" } }, "model.kind"),
            (new { model = new { activation = "swish" } }, "model.activation"),
            (new { track = new { pairs = new[] { "0-7" } } }, "track.pairs"),
            (new { track = new { lambdaEvery = -1 } }, "track.lambdaEvery"),
            (new { device = "tpu" }, "device"),
            (new { method = "crr-target" }, "crr.target"),
            (new { method = "crr-target", crr = new { target = new { min = 1.0 } } }, "crr.target"),
            (new { method = "crr-target", crr = new { target = new { min = 1.5, max = 1.0 } } }, "crr.target"),
            (new { method = "crr-target", crr = new { target = new { min = 1.0, max = 1.5, value = 1.2 } } }, "crr.target"),
            (new { method = "crr-target", crr = new { target = new { value = 1.2, tolerance = -0.1 } } }, "crr.target.tolerance"),
            (new { method = "crr-target", crr = new { target = new { min = 1.0, max = 1.5, maxStep = 9.0 } } }, "crr.target.maxStep"),
            (new { method = "crr", crr = new { target = new { min = 1.0, max = 1.5 } } }, "crr.target"),
            (new { method = "crr", crr = new { at = "conv2" } }, "crr.at"),
            (new { measure = new { at = "act9" } }, "measure.at"),
            (new { method = "crr", crr = new { pairs = new[] { "4-4" } } }, "crr.pairs"),
            (new { method = "crr", crr = new { engine = "fast" } }, "crr.engine"),
            (new { method = "crr", model = new { activation = "gelu" }, crr = new { engine = "fused" } }, "crr.engine"),
        ];
        foreach (var (body, field) in cases)
        {
            var response = await ApiClient.Post(client, "v1/training-runs", body);
            var problem = await ApiClient.Problem(response, HttpStatusCode.BadRequest);
            Assert.True(problem.GetProperty("field").GetString() == field, $"{System.Text.Json.JsonSerializer.Serialize(body)}: {problem}");
            Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
        }

        var layer = await ApiClient.Problem(await ApiClient.Post(client, "v1/training-runs", new { method = "crr", crr = new { at = "conv2" } }), HttpStatusCode.BadRequest);
        Assert.Contains("'conv2' is not a layer of this mlp; use 'input' or one of: fc1, act1, fc2, act2", layer.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var format = await client.GetAsync("v1/training-runs/trn_missing/model?format=pt");
        Assert.Equal("format", (await ApiClient.Problem(format, HttpStatusCode.BadRequest)).GetProperty("field").GetString());
        var gif = await client.GetAsync("v1/training-runs/trn_missing/plot?format=gif");
        Assert.Equal("format", (await ApiClient.Problem(gif, HttpStatusCode.BadRequest)).GetProperty("field").GetString());
        var huge = await client.GetAsync("v1/measurements/msr_missing/plot?width=100000");
        Assert.Equal("width", (await ApiClient.Problem(huge, HttpStatusCode.BadRequest)).GetProperty("field").GetString());
        var missing = await client.GetAsync("v1/training-runs/trn_missing");
        await ApiClient.Problem(missing, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Another_tenant_cannot_see_cancel_or_download_a_run_and_measurements_do_not_list_runs()
    {
        using var a = _service.Client(ServiceProcess.KeyA);
        using var b = _service.Client(ServiceProcess.KeyB);
        var id = await SubmitRun(a, new { dataset = new { samples = 100 }, epochs = 1, measure = new { maxPoints = 8, bootstrapResamples = 10 } });
        await ApiClient.Problem(await b.GetAsync($"v1/training-runs/{id}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await b.DeleteAsync($"v1/training-runs/{id}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await b.GetAsync($"v1/training-runs/{id}/model"), HttpStatusCode.NotFound);
        var listB = await ApiClient.Get(b, "v1/training-runs");
        Assert.DoesNotContain(listB["items"]!.AsArray(), r => r!["id"]!.GetValue<string>() == id);
        var listA = await ApiClient.Get(a, "v1/training-runs?pageSize=100");
        Assert.Contains(listA["items"]!.AsArray(), r => r!["id"]!.GetValue<string>() == id);
        var measurements = await ApiClient.Get(a, "v1/measurements?pageSize=100");
        Assert.DoesNotContain(measurements["items"]!.AsArray(), r => r!["id"]!.GetValue<string>() == id);
        await ApiClient.Problem(await a.GetAsync($"v1/measurements/{id}"), HttpStatusCode.NotFound);
        Assert.Equal("succeeded", (await Finished(a, id))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_same_idempotency_key_and_body_return_the_same_run_and_a_different_body_is_refused()
    {
        using var client = _service.Client();
        var body = new { dataset = new { samples = 100 }, epochs = 1, seed = 9, measure = new { maxPoints = 8, bootstrapResamples = 10 } };
        var first = await ApiClient.Post(client, "v1/training-runs", body, "run-key-1");
        var second = await ApiClient.Post(client, "v1/training-runs", body, "run-key-1");
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        var id = JsonNode.Parse(await first.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        Assert.Equal(id, JsonNode.Parse(await second.Content.ReadAsStringAsync())!["id"]!.GetValue<string>());
        var other = await ApiClient.Post(client, "v1/training-runs", new { epochs = 2 }, "run-key-1");
        Assert.Equal("Idempotency-Key", (await ApiClient.Problem(other, HttpStatusCode.UnprocessableEntity)).GetProperty("field").GetString());
        await Finished(client, id);
    }
}
