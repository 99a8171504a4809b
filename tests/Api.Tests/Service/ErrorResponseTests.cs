using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Tests.Service;

/// <summary>Every error a caller can cause is a 4xx problem-details response naming the field.</summary>
public class ErrorResponseTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    [Fact]
    public async Task Requests_without_a_key_or_with_an_unknown_key_get_401_problem_details()
    {
        using var anonymous = fixture.Service.Client(key: null);
        var problem = await ApiClient.Problem(await anonymous.GetAsync("v1/models"), HttpStatusCode.Unauthorized);
        Assert.Equal("X-Api-Key", problem.GetProperty("field").GetString());
        using var wrong = fixture.Service.Client(key: "not-a-key");
        await ApiClient.Problem(await wrong.GetAsync("v1/measurements"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Health_endpoints_need_no_key_and_report_ready()
    {
        using var anonymous = fixture.Service.Client(key: null);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("healthz")).StatusCode);
        var ready = await anonymous.GetAsync("readyz");
        Assert.True(ready.StatusCode == HttpStatusCode.OK, await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_file_that_is_not_a_model_is_refused_with_422()
    {
        using var client = fixture.Service.Client();
        var problem = await ApiClient.Problem(await ApiClient.Upload(client, "v1/models", fixture.Files.Garbage), HttpStatusCode.UnprocessableEntity);
        Assert.Equal("file", problem.GetProperty("field").GetString());
        Assert.Contains("garbage.onnx", problem.GetProperty("detail").GetString());
        Assert.DoesNotContain(fixture.Service.DataRoot, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_torchscript_file_with_a_truncated_storage_and_an_onnx_file_with_mismatched_initializer_dims_are_refused_with_422_and_not_stored()
    {
        using var client = fixture.Service.Client();
        var before = (await ApiClient.Get(client, "v1/models"))["total"]!.GetValue<int>();

        // The test MLP's first weight is 16 × 2 float32: archive/data/0 holds 128 bytes; keep 4 of them.
        var truncated = Path.Combine(fixture.Files.Folder, "truncated.pt");
        using (var source = ZipFile.OpenRead(fixture.Files.TorchScript))
        using (var target = ZipFile.Open(truncated, ZipArchiveMode.Create))
        {
            foreach (var entry in source.Entries)
            {
                using var from = entry.Open();
                using var to = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open();
                if (entry.FullName == "archive/data/0")
                {
                    var head = new byte[4];
                    from.ReadExactly(head);
                    to.Write(head);
                }
                else
                {
                    from.CopyTo(to);
                }
            }
        }
        var onnx = OnnxModelBuilder.Mlp([new float[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }], [[0.1f, 0.2f, 0.3f]]);
        onnx.Graph.Initializer[0].Dims[0] = 4; // [4, 2] over 6 values
        var mismatched = Path.Combine(fixture.Files.Folder, "mismatched.onnx");
        OnnxModelBuilder.Save(onnx, mismatched);

        foreach (var (file, expected) in new[] { (truncated, "storage 'archive/data/0' holds 4 bytes"), (mismatched, "with dims [4, 2]") })
        {
            var problem = await ApiClient.Problem(await ApiClient.Upload(client, "v1/models", file), HttpStatusCode.UnprocessableEntity);
            Assert.Equal("file", problem.GetProperty("field").GetString());
            var detail = problem.GetProperty("detail").GetString();
            Assert.Contains(expected, detail);
            Assert.Contains(Path.GetFileName(file), detail);
            Assert.DoesNotContain(fixture.Service.DataRoot, detail);
        }
        Assert.Equal(before, (await ApiClient.Get(client, "v1/models"))["total"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_model_over_the_size_limit_is_refused_with_413()
    {
        using var client = fixture.Service.Client();
        var big = Path.Combine(fixture.Files.Folder, "big.onnx");
        await File.WriteAllBytesAsync(big, new byte[500_000]);
        var response = await ApiClient.Upload(client, "v1/models", big);
        await ApiClient.Problem(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task Data_with_nan_is_refused_with_422_naming_the_file()
    {
        using var client = fixture.Service.Client();
        var problem = await ApiClient.Problem(await ApiClient.Upload(client, "v1/datasets", fixture.Files.NanCsv), HttpStatusCode.UnprocessableEntity);
        Assert.Equal("file", problem.GetProperty("field").GetString());
        Assert.Contains("NaN", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_multipart_request_without_a_file_is_a_400()
    {
        using var client = fixture.Service.Client();
        using var form = new MultipartFormDataContent { { new StringContent("x"), "name" } };
        var response = await client.PostAsync("v1/models", form);
        await ApiClient.Problem(response, HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("v1/measurements", """{ "modelId": "m", "datasetId": "d", "engine": "quantum" }""", "engine",
        "engine 'quantum' is not known; use one of auto, taylor, autograd, finite-difference.")]
    [InlineData("v1/training-runs", """{ "model": { "kind": "rnn" } }""", "model.kind", "model kind 'rnn' is not known; use mlp or cnn.")]
    [InlineData("v1/training-runs", """{ "device": "tpu" }""", "device",
        "device 'tpu' is not known; use auto (the default: CUDA where there is a device, else the CPU), cpu or cuda.")]
    [InlineData("v1/sweeps", """{ "base": { "method": "adam" } }""", "base.method", "method 'adam' is not known; use baseline, crr, sam or crr-target.")]
    public async Task An_unknown_word_of_a_closed_set_is_a_400_naming_the_field_and_its_words_not_a_generic_json_error(string path, string body, string field, string detail)
    {
        using var client = fixture.Service.Client();
        var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var problem = await ApiClient.Problem(response, HttpStatusCode.BadRequest);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Equal(detail, problem.GetProperty("detail").GetString());
        Assert.Equal("Invalid request", problem.GetProperty("title").GetString());
    }

    [Theory]
    [InlineData("""{ "modelId": "mdl_nope", "datasetId": "DS" }""", "modelId")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "ds_nope" }""", "datasetId")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "orders": { "min": 0, "max": 4 } }""", "orders")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "engine": "quantum" }""", "engine")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "device": "tpu" }""", "device")]
    [InlineData("""{ "modelId": "UNSUPPORTED", "datasetId": "DS", "engine": "taylor" }""", "engine")]
    [InlineData("""{ "modelId": "UNSUPPORTED", "datasetId": "DS", "engine": "autograd" }""", "engine")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "band": [0.9, 0.1] }""", "band")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "class": 7, "target": "logit" }""", "class")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "UNLABELLED", "points": "pairs", "pairs": ["0-1"] }""", "points")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "UNLABELLED", "labels": "true" }""", "labels")]
    [InlineData("""{ "modelId": "SCALAR", "datasetId": "DS" }""", "target")]
    [InlineData("""{ "modelId": "SCALAR", "datasetId": "DS", "target": "logit", "points": "boundary" }""", "points")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "directions": "four" }""", "directions")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "maxDerivativeError": 0 }""", "maxDerivativeError")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "maxDerivativeError": -1 }""", "maxDerivativeError")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "maxDerivativeError": "x" }""", "maxDerivativeError")]
    [InlineData("""{ "modelId": "MODEL", "datasetId": "DS", "allowUnreliable": "yes" }""", "allowUnreliable")]
    // Truncated JSON: System.Text.Json reports the path where reading stopped.
    [InlineData("""{ "modelId": "MODEL", "datasetId": """, "datasetId")]
    [InlineData("""[1, 2]""", "body")]
    public async Task An_invalid_measurement_request_is_refused_before_anything_is_queued(string template, string field)
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var scalar = await ApiClient.UploadId(client, "v1/models", fixture.Files.Scalar);
        var unsupported = await ApiClient.UploadId(client, "v1/models", fixture.Files.UnsupportedOnnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var unlabelled = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.UnlabelledCsv);
        var before = (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>();
        var body = template.Replace("SCALAR", scalar).Replace("UNSUPPORTED", unsupported).Replace("MODEL", model).Replace("UNLABELLED", unlabelled).Replace("\"DS\"", $"\"{dataset}\"");
        var response = await client.PostAsync("v1/measurements", new StringContent(body, Encoding.UTF8, "application/json"));
        var problem = await ApiClient.Problem(response, HttpStatusCode.BadRequest);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
        Assert.Equal(before, (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_torchscript_model_calling_layer_norm_is_refused_with_400_on_engine_at_orders_1_to_4_and_queued_at_orders_1_to_2()
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.LayerNormTorchScript);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var before = (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>();
        var refused = await client.PostAsync("v1/measurements", new StringContent(
            $$"""{ "modelId": "{{model}}", "datasetId": "{{dataset}}", "engine": "auto" }""", Encoding.UTF8, "application/json"));
        var problem = await ApiClient.Problem(refused, HttpStatusCode.BadRequest);
        Assert.Equal("engine", problem.GetProperty("field").GetString());
        Assert.Contains("torch.layer_norm", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(before, (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>());

        var accepted = await client.PostAsync("v1/measurements", new StringContent(
            $$"""{ "modelId": "{{model}}", "datasetId": "{{dataset}}", "engine": "autograd", "orders": { "min": 1, "max": 2 } }""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
    }

    [Fact]
    public async Task Unknown_resources_are_404_problems()
    {
        using var client = fixture.Service.Client();
        var problem = await ApiClient.Problem(await client.GetAsync("v1/measurements/msr_unknown"), HttpStatusCode.NotFound);
        Assert.Equal("id", problem.GetProperty("field").GetString());
        await ApiClient.Problem(await client.DeleteAsync("v1/datasets/ds_unknown"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_finished_measurement_cannot_be_canceled()
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var id = await ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 4 });
        await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        await ApiClient.Problem(await client.DeleteAsync($"v1/measurements/{id}"), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task The_openapi_document_lists_every_endpoint_and_the_api_key_scheme_and_swagger_ui_is_served()
    {
        using var anonymous = fixture.Service.Client(key: null);
        var doc = await ApiClient.Get(anonymous, "openapi/v1.json");
        var paths = doc["paths"]!.AsObject();
        foreach (var (path, methods) in new[]
        {
            ("/v1/models", new[] { "post", "get" }), ("/v1/models/{id}", ["get", "delete"]),
            ("/v1/datasets", ["post", "get"]), ("/v1/datasets/{id}", ["get", "delete"]),
            ("/v1/measurements", ["post", "get"]), ("/v1/measurements/{id}", ["get", "delete"]),
            ("/healthz", ["get"]), ("/readyz", ["get"]),
        })
        {
            Assert.True(paths.ContainsKey(path), $"missing {path}: {string.Join(", ", paths.Select(p => p.Key))}");
            foreach (var m in methods)
            {
                Assert.True(paths[path]!.AsObject().ContainsKey(m), $"missing {m} {path}");
                Assert.False(string.IsNullOrEmpty(paths[path]![m]!["summary"]?.GetValue<string>()), $"{m} {path} has no summary");
            }
        }
        var scheme = doc["components"]!["securitySchemes"]!["ApiKey"]!;
        Assert.Equal("apiKey", scheme["type"]!.GetValue<string>());
        Assert.Equal("X-Api-Key", scheme["name"]!.GetValue<string>());
        Assert.Contains("multipart/form-data", paths["/v1/models"]!["post"]!["requestBody"]!["content"]!.AsObject().Select(c => c.Key));
        var ui = await anonymous.GetAsync("swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
        Assert.Contains("swagger", await ui.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }
}
