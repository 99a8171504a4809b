using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>
/// The progress lines of <see cref="RunnerProtocol"/>: one compact JSON object per line, <c>{"progress":0.42}</c>,
/// with a value from 0 to 1.
/// </summary>
public static class RunnerProgressLine
{
    private const string Prefix = "{\"progress\":";

    /// <summary>The line for <paramref name="value"/> (clamped to 0..1), without the line break.</summary>
    public static string Format(double value) =>
        Prefix + Math.Clamp(value, 0.0, 1.0).ToString("R", CultureInfo.InvariantCulture) + "}";

    /// <summary>
    /// Reads a progress line. Anything else (other output, a malformed object, a value that is not a finite
    /// number) gives false; values are clamped to 0..1.
    /// </summary>
    public static bool TryParse(string? line, out double value)
    {
        value = 0;
        if (line is null) return false;
        var text = line.Trim();
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || !text.EndsWith('}')) return false;
        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("progress", out var element)
                || element.ValueKind != JsonValueKind.Number
                || !element.TryGetDouble(out var parsed)
                || !double.IsFinite(parsed))
            {
                return false;
            }
            value = Math.Clamp(parsed, 0.0, 1.0);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
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

    private void WriteLocked(double value, TimeSpan now)
    {
        output.WriteLine(RunnerProgressLine.Format(value));
        output.Flush();
        _lastWrite = now;
        _lastValue = value;
    }
}
