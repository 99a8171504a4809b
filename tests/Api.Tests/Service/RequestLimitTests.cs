using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// What a client sends is bounded and checked before anything is stored: unknown fields, long names, large bodies, unknown
/// filter words and a reused Idempotency-Key are 4xx problems naming the field (issue 24's report, each as the user sent it).
/// </summary>
public class RequestLimitTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    [Theory]
    // A typo: "direction" for "directions" ran with the default 4 before.
    [InlineData("v1/measurements", """{ "modelId": "MODEL", "datasetId": "DS", "direction": 64 }""", "direction")]
    [InlineData("v1/measurements", """{ "modelId": "MODEL", "datasetId": "DS", "orders": { "min": 1, "maximum": 6 } }""", "orders.maximum")]
    // Training runs take model.kind, not an uploaded model: refused rather than trained on the default MLP.
    [InlineData("v1/training-runs", """{ "model": { "modelId": "MODEL" }, "epochs": 1 }""", "model.modelId")]
    [InlineData("v1/sweeps", """{ "name": "s", "base": { "epochs": 1 }, "grid": { "method": ["baseline"] }, "seed": 3 }""", "seed")]
    public async Task An_unknown_field_is_a_400_naming_it_and_nothing_is_queued(string path, string template, string field)
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var before = await Totals(client);
        var body = template.Replace("MODEL", model).Replace("\"DS\"", $"\"{dataset}\"");
        var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var problem = await ApiClient.Problem(response, HttpStatusCode.BadRequest);
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains("openapi", problem.GetProperty("detail").GetString());
        Assert.Equal(before, await Totals(client));
    }

    [Fact]
    public async Task A_sweep_name_of_two_megabytes_is_a_413_and_one_of_300_characters_a_400_and_neither_is_stored()
    {
        using var client = fixture.Service.Client();
        var before = await Totals(client);
        var huge = await ApiClient.Post(client, "v1/sweeps", Sweep(new string('x', 2_000_000)));
        Assert.Equal("body", (await ApiClient.Problem(huge, HttpStatusCode.RequestEntityTooLarge)).GetProperty("field").GetString());

        // The same body sent without a declared length (chunked) is cut off at the limit too.
        using (var chunked = new HttpRequestMessage(HttpMethod.Post, "v1/sweeps"))
        {
            chunked.Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes($$"""{ "name": "{{new string('x', 2_000_000)}}" }""")));
            chunked.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            chunked.Headers.TransferEncodingChunked = true;
            var response = await client.SendAsync(chunked);
            Assert.Equal("body", (await ApiClient.Problem(response, HttpStatusCode.RequestEntityTooLarge)).GetProperty("field").GetString());
        }

        var longName = await ApiClient.Post(client, "v1/sweeps", Sweep(new string('y', 300)));
        var problem = await ApiClient.Problem(longName, HttpStatusCode.BadRequest);
        Assert.Equal("name", problem.GetProperty("field").GetString());
        Assert.Contains("200", problem.GetProperty("detail").GetString());
        Assert.Equal(before, await Totals(client));
    }

    [Fact]
    public async Task An_upload_name_over_200_characters_is_a_400_and_nothing_is_stored()
    {
        using var client = fixture.Service.Client();
        var before = (await ApiClient.Get(client, "v1/models"))["total"]!.GetValue<int>();
        var response = await ApiClient.Upload(client, "v1/models", fixture.Files.Onnx, fields: new Dictionary<string, string> { ["name"] = new string('n', 201) });
        Assert.Equal("name", (await ApiClient.Problem(response, HttpStatusCode.BadRequest)).GetProperty("field").GetString());
        Assert.Equal(before, (await ApiClient.Get(client, "v1/models"))["total"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("v1/measurements?status=bogus")]
    [InlineData("v1/training-runs?status=done")]
    public async Task Filtering_a_list_by_a_word_that_is_no_job_state_is_a_400_naming_status(string path)
    {
        using var client = fixture.Service.Client();
        var problem = await ApiClient.Problem(await client.GetAsync(path), HttpStatusCode.BadRequest);
        Assert.Equal("status", problem.GetProperty("field").GetString());
        Assert.Contains("succeeded", problem.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("v1/measurements?status=succeeded")).StatusCode);
    }

    [Fact]
    public async Task An_idempotency_key_reused_on_another_endpoint_is_a_422_and_creates_nothing()
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);
        var key = "reused-" + Guid.NewGuid().ToString("N");
        var first = await ApiClient.Submit(client, new { modelId = model, datasetId = dataset, maxPoints = 4 }, key);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var before = await Totals(client);

        var sweep = await ApiClient.Post(client, "v1/sweeps", Sweep("same key"), key);
        Assert.Equal("Idempotency-Key", (await ApiClient.Problem(sweep, HttpStatusCode.UnprocessableEntity)).GetProperty("field").GetString());
        var run = await ApiClient.Post(client, "v1/training-runs", new { epochs = 1 }, key);
        await ApiClient.Problem(run, HttpStatusCode.UnprocessableEntity);
        var upload = await ApiClient.Upload(client, "v1/datasets", fixture.Files.Csv, idempotencyKey: key);
        await ApiClient.Problem(upload, HttpStatusCode.UnprocessableEntity);
        Assert.Equal(before, await Totals(client));
        // The same request on its own endpoint still replays.
        var again = await ApiClient.Submit(client, new { modelId = model, datasetId = dataset, maxPoints = 4 }, key);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        Assert.Equal(first.Headers.Location, again.Headers.Location);
    }

    [Fact]
    public async Task Every_response_tells_browsers_not_to_sniff_its_type()
    {
        using var client = fixture.Service.Client();
        using var anonymous = fixture.Service.Client(key: null);
        foreach (var response in new[]
        {
            await client.GetAsync("v1/models"), await client.GetAsync("v1/models/mdl_unknown"), await anonymous.GetAsync("v1/models"),
            await anonymous.GetAsync("healthz"), await anonymous.GetAsync("openapi/v1.json"),
        })
        {
            Assert.True(response.Headers.TryGetValues("X-Content-Type-Options", out var values), $"{response.RequestMessage!.RequestUri}: no X-Content-Type-Options");
            Assert.Equal("nosniff", Assert.Single(values));
        }
    }

    private static object Sweep(string name) => new { name, @base = new { epochs = 1 }, grid = new Dictionary<string, object[]> { ["method"] = ["baseline"] } };

    /// <summary>How many measurements, training runs and sweeps the tenant has.</summary>
    private static async Task<(int, int, int)> Totals(HttpClient client) => (
        (await ApiClient.Get(client, "v1/measurements"))["total"]!.GetValue<int>(),
        (await ApiClient.Get(client, "v1/training-runs"))["total"]!.GetValue<int>(),
        (await ApiClient.Get(client, "v1/sweeps"))["total"]!.GetValue<int>());
}
