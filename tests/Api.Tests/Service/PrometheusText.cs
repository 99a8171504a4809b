using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace LambdaService.Api.Tests.Service;

/// <summary>Reads <c>/metrics</c> as Prometheus does: the text exposition format (version 0.0.4), one sample a line.</summary>
internal static partial class PrometheusText
{
    /// <summary>One sample line: <c>name{label="value",…} number</c>.</summary>
    public sealed record Sample(string Name, Dictionary<string, string> Labels, double Value);

    /// <summary>GET /metrics without a key, checked to be Prometheus' text format (version 0.0.4), parsed into samples.</summary>
    public static async Task<List<Sample>> Scrape(Uri baseAddress)
    {
        using var anonymous = new HttpClient { BaseAddress = baseAddress };
        var response = await anonymous.GetAsync("metrics");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("0.0.4", response.Content.Headers.ContentType?.Parameters.FirstOrDefault(p => p.Name == "version")?.Value);
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"not a sample line: {line}");
            var labels = LabelPair().Matches(match.Groups["labels"].Value).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(match.Groups["name"].Value, labels, value));
        }
        return samples;
    }

    /// <summary>The value of the one sample with this name and these labels (other labels ignored); 0 when there is none.</summary>
    public static double Value(List<Sample> samples, string name, params (string Key, string Value)[] labels)
    {
        var found = samples.Where(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Key) == l.Value)).ToList();
        Assert.True(found.Count <= 1, $"{found.Count} samples of {name} match");
        return found.Count == 0 ? 0 : found[0].Value;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex(""""([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"""")]
    private static partial Regex LabelPair();
}
