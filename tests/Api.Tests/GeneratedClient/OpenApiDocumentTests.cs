using System.Text.Json.Nodes;
using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.GeneratedClient;

/// <summary>What the served OpenAPI document promises, read as JSON: typed results, problem responses, binary and multipart bodies, enums.</summary>
public class OpenApiDocumentTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private async Task<JsonNode> Document()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.Service.BaseAddress };
        return JsonNode.Parse(await anonymous.GetStringAsync("openapi/v1.json"))!;
    }

    [Fact]
    public async Task Every_v1_operation_documents_its_problem_responses_as_problem_json_with_the_field_extension()
    {
        var doc = await Document();
        Assert.Contains("string", doc["components"]!["schemas"]!["ProblemDetails"]!["properties"]!["field"]!["type"]!.AsArray().Select(t => t!.GetValue<string>()));
        foreach (var (path, item) in doc["paths"]!.AsObject().Where(p => p.Key.StartsWith("/v1/", StringComparison.Ordinal)))
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                var responses = operation!["responses"]!.AsObject();
                foreach (var status in new[] { "401", "429", "503" })
                {
                    Assert.True(responses.ContainsKey(status), $"{method} {path} lacks {status}");
                    Assert.Equal("#/components/schemas/ProblemDetails", responses[status]!["content"]!["application/problem+json"]!["schema"]!["$ref"]!.GetValue<string>());
                }
                if (path.Contains("{id}", StringComparison.Ordinal)) Assert.True(responses.ContainsKey("404"), $"{method} {path} lacks 404");
                if (method == "post") Assert.True(responses.ContainsKey("400") && responses.ContainsKey("409") && responses.ContainsKey("422"), $"{method} {path} lacks 400/409/422");
            }
        }
        Assert.True(doc["paths"]!["/v1/models"]!["post"]!["responses"]!.AsObject().ContainsKey("413"));
    }

    [Fact]
    public async Task Results_are_typed_downloads_are_binary_and_uploads_are_multipart_binary()
    {
        var doc = await Document();
        var schemas = doc["components"]!["schemas"]!;
        Assert.Equal("#/components/schemas/MeasurementResult", schemas["MeasurementResponse"]!["properties"]!["result"]!["oneOf"]![0]!["$ref"]!.GetValue<string>());
        Assert.Equal("null", schemas["MeasurementResponse"]!["properties"]!["result"]!["oneOf"]![1]!["type"]!.GetValue<string>());
        Assert.Equal("#/components/schemas/TrainingResult", schemas["TrainingRunResponse"]!["properties"]!["result"]!["oneOf"]![0]!["$ref"]!.GetValue<string>());
        Assert.Contains("orders", schemas["MeasurementResult"]!["properties"]!.AsObject().Select(p => p.Key));
        Assert.Contains("history", schemas["TrainingResult"]!["properties"]!.AsObject().Select(p => p.Key));
        Assert.Null(schemas["JsonElement"]);

        var plot = doc["paths"]!["/v1/measurements/{id}/plot"]!["get"]!["responses"]!["200"]!["content"]!.AsObject();
        Assert.Equal(["image/svg+xml", "image/png"], plot.Select(c => c.Key));
        Assert.Equal("binary", plot["image/png"]!["schema"]!["format"]!.GetValue<string>());
        Assert.True(doc["paths"]!["/v1/training-runs/{id}/model"]!["get"]!["responses"]!["200"]!["content"]!.AsObject().ContainsKey("application/octet-stream"));

        var upload = doc["paths"]!["/v1/datasets"]!["post"]!["requestBody"]!["content"]!["multipart/form-data"]!["schema"]!;
        Assert.Equal("binary", upload["properties"]!["file"]!["format"]!.GetValue<string>());
        Assert.Equal("file", upload["required"]![0]!.GetValue<string>());
        Assert.Null(upload["allOf"]);
    }

    [Fact]
    public async Task Closed_sets_of_words_are_enums_and_numbers_are_not_typed_as_objects()
    {
        var doc = await Document();
        var schemas = doc["components"]!["schemas"]!;
        string[] Enum(JsonNode schema) => [.. schema["enum"]!.AsArray().Select(v => v!.GetValue<string>())];
        Assert.Equal(["queued", "running", "succeeded", "failed", "canceled"], Enum(schemas["MeasurementResponse"]!["properties"]!["status"]!));
        Assert.Equal(["auto", "taylor", "autograd", "finite-difference"], Enum(schemas["MeasurementRequest"]!["properties"]!["engine"]!));
        Assert.Equal(["baseline", "crr", "sam", "crr-target"], Enum(schemas["TrainingRunRequest"]!["properties"]!["method"]!));
        Assert.Equal(["auto", "cpu", "cuda"], Enum(schemas["MeasurementRequest"]!["properties"]!["device"]!));
        Assert.Equal(["auto", "cpu", "cuda"], Enum(schemas["TrainingRunRequest"]!["properties"]!["device"]!));
        var plotFormat = doc["paths"]!["/v1/measurements/{id}/plot"]!["get"]!["parameters"]!.AsArray().Single(p => p!["name"]!.GetValue<string>() == "format")!;
        Assert.Equal(["svg", "png"], Enum(plotFormat["schema"]!));
        // A double: a number, or one of the named literals the service writes for non-finite values.
        var progress = schemas["MeasurementResponse"]!["properties"]!["progress"]!;
        Assert.Null(progress["type"]);
        Assert.Equal("number", progress["anyOf"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("string", progress["anyOf"]![1]!["type"]!.GetValue<string>());
        Assert.Equal(["NaN", "Infinity", "-Infinity"], Enum(progress["anyOf"]![1]!));
        Assert.False(doc["servers"]![0]!["url"]!.GetValue<string>().EndsWith('/'));
        Assert.All(doc["tags"]!.AsArray(), t => Assert.False(string.IsNullOrWhiteSpace(t!["description"]?.GetValue<string>())));
    }
}
