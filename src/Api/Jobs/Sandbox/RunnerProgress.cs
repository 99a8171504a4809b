using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>A progress report read from the runner: a value from 0 to 1 and, for training, what the last epoch gave.</summary>
/// <param name="Progress">0 to 1.</param>
/// <param name="Detail">A JSON object (e.g. <c>{"epoch":3,"epochs":50,"trainLoss":0.41,…}</c>) or null.</param>
public sealed record RunnerReport(double Progress, string? Detail);

/// <summary>
/// The progress lines of <see cref="RunnerProtocol"/>: one compact JSON object per line, <c>{"progress":0.42}</c>,
/// with a value from 0 to 1, optionally followed by a <c>"detail"</c> object: <c>{"progress":0.42,"detail":{…}}</c>.
/// </summary>
public static class RunnerProgressLine
{
    private const string Prefix = "{\"progress\":";

    /// <summary>The line for <paramref name="value"/> (clamped to 0..1), without the line break.</summary>
    public static string Format(double value) =>
        Prefix + Math.Clamp(value, 0.0, 1.0).ToString("R", CultureInfo.InvariantCulture) + "}";

    /// <summary>The line for <paramref name="value"/> with a detail object (compact JSON of <paramref name="detail"/>).</summary>
    public static string Format<T>(double value, T detail) =>
        Prefix + Math.Clamp(value, 0.0, 1.0).ToString("R", CultureInfo.InvariantCulture) + ",\"detail\":" + JsonSerializer.Serialize(detail, Compact) + "}";

    private static readonly JsonSerializerOptions Compact = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Reads a progress line (see <see cref="TryParseReport"/>), keeping only the value.</summary>
    public static bool TryParse(string? line, out double value)
    {
        var ok = TryParseReport(line, out var report);
        value = report?.Progress ?? 0;
        return ok;
    }

    /// <summary>
    /// Reads a progress line. Anything else (other output, a malformed object, a value that is not a finite
    /// number) gives false; values are clamped to 0..1; a detail that is not an object is dropped.
    /// </summary>
    public static bool TryParseReport(string? line, out RunnerReport? report)
    {
        report = ProtocolLine.Read(line, Prefix, root =>
            root.TryGetProperty("progress", out var element) && element.ValueKind == JsonValueKind.Number && element.TryGetDouble(out var parsed) && double.IsFinite(parsed)
                ? new RunnerReport(Math.Clamp(parsed, 0.0, 1.0), root.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.Object ? d.GetRawText() : null)
                : null);
        return report is not null;
    }
}

/// <summary>Reads one line of <see cref="RunnerProtocol"/>: a compact JSON object that starts with a known prefix.</summary>
internal static class ProtocolLine
{
    /// <summary>What <paramref name="read"/> makes of the line's object, or null when the line is not such an object (other output, malformed JSON).</summary>
    public static T? Read<T>(string? line, string prefix, Func<JsonElement, T?> read) where T : class
    {
        if (line is null) return null;
        var text = line.Trim();
        if (!text.StartsWith(prefix, StringComparison.Ordinal) || !text.EndsWith('}')) return null;
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.ValueKind == JsonValueKind.Object ? read(document.RootElement) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// The phase lines of <see cref="RunnerProtocol"/>: <c>{"phase":"load"}</c> before the runner loads the model and data,
/// <c>{"phase":"run"}</c> once they are loaded and the computation starts. The parent uses the last one to tell a model
/// that cannot be loaded (a failure that would repeat on every attempt) from a crash in the computation.
/// </summary>
public static class RunnerPhase
{
    /// <summary>Loading the model and data (deserialising, building the runtime's session, checking shapes).</summary>
    public const string Load = "load";

    /// <summary>The measurement or training itself.</summary>
    public const string Run = "run";

    private const string Prefix = "{\"phase\":";

    /// <summary>The line for <paramref name="phase"/>, without the line break.</summary>
    public static string Format(string phase) => Prefix + JsonSerializer.Serialize(phase) + "}";

    /// <summary>Reads a phase line; anything else gives false.</summary>
    public static bool TryParse(string? line, out string? phase)
    {
        phase = ProtocolLine.Read(line, Prefix, root =>
            root.TryGetProperty("phase", out var element) && element.ValueKind == JsonValueKind.String ? element.GetString() : null);
        return phase is not null;
    }
}

/// <summary>
/// Writes progress lines to the runner's standard output as the measurement reports them, at most one per
/// <see cref="MinimumInterval"/> (the last value of 1 always), each line flushed at once. Thread-safe.
/// </summary>
internal sealed class ThrottledProgressWriter(TextWriter output) : IProgress<double>
{
    /// <summary>The shortest time between two lines: at most about ten lines a second.</summary>
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromMilliseconds(100);

    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan? _lastWrite;
    private double _lastValue = double.NaN;

    /// <inheritdoc />
    public void Report(double value)
    {
        if (!double.IsFinite(value)) return;
        lock (_gate)
        {
            var now = _clock.Elapsed;
            if (_lastWrite is { } last && now - last < MinimumInterval) return;
            WriteLocked(value, now);
        }
    }

    /// <summary>Writes <paramref name="value"/> whatever the time since the last line (the start and the end).</summary>
    public void ReportNow(double value)
    {
        lock (_gate)
        {
            if (value == _lastValue) return;
            WriteLocked(value, _clock.Elapsed);
        }
    }

    /// <summary>Writes <paramref name="value"/> with a detail object at once (one line per epoch of a training run).</summary>
    public void ReportDetail<T>(double value, T detail)
    {
        lock (_gate) WriteLocked(value, _clock.Elapsed, RunnerProgressLine.Format(value, detail));
    }

    /// <summary>Writes a phase line (<see cref="RunnerPhase"/>) at once.</summary>
    public void ReportPhase(string phase)
    {
        lock (_gate)
        {
            output.WriteLine(RunnerPhase.Format(phase));
            output.Flush();
        }
    }

    private void WriteLocked(double value, TimeSpan now, string? line = null)
    {
        output.WriteLine(line ?? RunnerProgressLine.Format(value));
        output.Flush();
        _lastWrite = now;
        _lastValue = value;
    }
}
