using System.Text.Json;
using System.Text.Json.Nodes;
using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.GeneratedClient;

/// <summary>
/// The served OpenAPI document is the contract pipelines generate clients from: a restructuring of the service must leave it
/// exactly as it was. <c>openapi-v1.snapshot.json</c> is the document served at commit cf48a3a (before issue 26's reshaping of
/// src/Api), with <c>servers</c> left out (it names the test's random port). Compared as JSON: object keys in any order, arrays
/// in order, numbers and strings exactly. A deliberate change to the contract updates the snapshot in the same commit: the
/// failing test writes the document it was served next to the test binaries (<c>openapi-v1.served.json</c>).
/// </summary>
public class OpenApiSnapshotTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    [Fact]
    public async Task The_served_document_equals_the_snapshot_ignoring_key_order()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.Service.BaseAddress };
        var served = JsonNode.Parse(await anonymous.GetStringAsync("openapi/v1.json"))!.AsObject();
        served.Remove("servers");
        var snapshotPath = Path.Combine(AppContext.BaseDirectory, "openapi-v1.snapshot.json");
        var expected = JsonNode.Parse(File.ReadAllText(snapshotPath))!;
        var differences = new List<string>();
        Compare(expected, served, "$", differences);
        if (differences.Count > 0)
        {
            var written = Path.Combine(AppContext.BaseDirectory, "openapi-v1.served.json");
            File.WriteAllText(written, served.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Assert.Fail($"The served OpenAPI document differs from the snapshot in {differences.Count} place(s) (served copy: {written}):\n"
                + string.Join("\n", differences.Take(20)));
        }
    }

    [Fact]
    public void The_comparison_sees_a_changed_enum_word_and_a_missing_property_but_not_key_order()
    {
        var a = JsonNode.Parse("""{"x":{"enum":["a","b"]},"y":1,"z":{"p":true,"q":null}}""")!;
        var reordered = JsonNode.Parse("""{"z":{"q":null,"p":true},"y":1,"x":{"enum":["a","b"]}}""")!;
        var changed = JsonNode.Parse("""{"x":{"enum":["a","c"]},"y":1,"z":{"p":true}}""")!;
        var none = new List<string>();
        Compare(a, reordered, "$", none);
        Assert.Empty(none);
        var found = new List<string>();
        Compare(a, changed, "$", found);
        Assert.Equal(2, found.Count);
        Assert.Contains(found, d => d.StartsWith("$.x.enum[1]", StringComparison.Ordinal));
        Assert.Contains(found, d => d.StartsWith("$.z.q", StringComparison.Ordinal));
    }

    private static void Compare(JsonNode? expected, JsonNode? actual, string path, List<string> differences)
    {
        switch (expected, actual)
        {
            case (null, null):
                return;
            case (JsonObject e, JsonObject a):
                foreach (var (key, value) in e)
                {
                    if (!a.ContainsKey(key)) differences.Add($"{path}.{key}: missing");
                    else Compare(value, a[key], $"{path}.{key}", differences);
                }
                foreach (var (key, _) in a)
                {
                    if (!e.ContainsKey(key)) differences.Add($"{path}.{key}: not in the snapshot");
                }
                return;
            case (JsonArray e, JsonArray a):
                if (e.Count != a.Count) differences.Add($"{path}: {e.Count} items expected, {a.Count} served");
                for (var i = 0; i < Math.Min(e.Count, a.Count); i++) Compare(e[i], a[i], $"{path}[{i}]", differences);
                return;
            case (JsonValue e, JsonValue a):
                if (e.ToJsonString() != a.ToJsonString()) differences.Add($"{path}: {e.ToJsonString()} expected, {a.ToJsonString()} served");
                return;
            default:
                differences.Add($"{path}: {expected?.GetValueKind().ToString() ?? "null"} expected, {actual?.GetValueKind().ToString() ?? "null"} served");
                return;
        }
    }
}
