using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LambdaService.Api.Tests.Service;

/// <summary>Small helpers over HttpClient for the end-to-end tests.</summary>
internal static class ApiClient
{
    public static async Task<HttpResponseMessage> Upload(HttpClient client, string path, string file, string? fileName = null,
        IDictionary<string, string>? fields = null, string? idempotencyKey = null)
    {
        using var form = new MultipartFormDataContent();
        var content = new ByteArrayContent(await File.ReadAllBytesAsync(file));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(content, "file", fileName ?? Path.GetFileName(file));
        foreach (var (k, v) in fields ?? new Dictionary<string, string>()) form.Add(new StringContent(v), k);
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = form };
        if (idempotencyKey is not null) request.Headers.Add("Idempotency-Key", idempotencyKey);
        return await client.SendAsync(request);
    }

    public static async Task<string> UploadId(HttpClient client, string path, string file, IDictionary<string, string>? fields = null)
    {
        var response = await Upload(client, path, file, fields: fields);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    public static Task<HttpResponseMessage> Submit(HttpClient client, object request, string? idempotencyKey = null) =>
        Post(client, "v1/measurements", request, idempotencyKey);

    public static async Task<string> SubmitId(HttpClient client, object request)
    {
        var response = await Submit(client, request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    public static async Task<JsonNode> Get(HttpClient client, string path)
    {
        var response = await client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    /// <summary>Polls until the measurement reaches one of <paramref name="states"/> (default: a final state).</summary>
    public static Task<JsonNode> WaitFor(HttpClient client, string id, TimeSpan timeout, params string[] states) =>
        WaitUntil(client, $"v1/measurements/{id}", timeout, job => states.Length == 0 ? IsFinal(job) : states.Contains(job["status"]!.GetValue<string>()));

    /// <summary>Polls the job at <paramref name="path"/> until <paramref name="done"/> holds.</summary>
    public static async Task<JsonNode> WaitUntil(HttpClient client, string path, TimeSpan timeout, Func<JsonNode, bool> done)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonNode job;
        do
        {
            job = await Get(client, path);
            if (done(job)) return job;
            await Task.Delay(150);
        }
        while (DateTime.UtcNow < deadline);
        throw new TimeoutException($"{path} still {job["status"]} after {timeout}: {job.ToJsonString()}");
    }

    /// <summary>Whether a job is succeeded, failed or canceled.</summary>
    public static bool IsFinal(JsonNode job) => job["status"]!.GetValue<string>() is "succeeded" or "failed" or "canceled";

    /// <summary>Posts a JSON body and returns the response.</summary>
    public static async Task<HttpResponseMessage> Post(HttpClient client, string path, object body, string? idempotencyKey = null)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null) message.Headers.Add("Idempotency-Key", idempotencyKey);
        return await client.SendAsync(message);
    }

    public static async Task<JsonElement> Problem(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
