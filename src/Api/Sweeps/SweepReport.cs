using System.ComponentModel;
using System.Text.Json;
using LambdaService.Training.Sweeps;

namespace LambdaService.Api.Sweeps;

/// <summary>One run of a sweep as the report sees it: its cell, status and (when it succeeded) its result JSON.</summary>
public sealed record SweepRunState(int Cell, string Id, string Status, string? ResultJson);

/// <summary>How many runs are in each state.</summary>
public sealed record SweepCounts(int Total, int Queued, int Running, int Succeeded, int Failed, int Canceled);

/// <summary>Per metric of a cell: count, mean, standard deviation, 95% interval of the mean (Student t), min and max over its succeeded runs.</summary>
public sealed record CellMetrics(
    [property: Description("Test error.")] Summary? TestError,
    [property: Description("Expected calibration error.")] Summary? Ece,
    [property: Description("Accuracy on the hardest 20% of test points.")] Summary? Hard20Accuracy,
    [property: Description("λ on the test set (runs whose λ could not be measured are counted in nanCount).")] Summary? Lambda,
    [property: Description("Training wall-clock seconds.")] Summary? TrainingSeconds,
    [property: Description("crr-target runs: the fraction of the monitor measurements of λ inside the band (null for other methods).")] Summary? TimeInBand = null,
    [property: Description("crr-target runs: 1 when the final λ on the test set lies inside the band, else 0 — its mean is the fraction of seeds that ended in the band (null for other methods).")] Summary? FinalInBand = null);

/// <summary>A cell of the report.</summary>
public sealed record SweepCellReport(
    int Index,
    [property: Description("The cell's factor values (seed excluded).")] IReadOnlyDictionary<string, JsonElement> Parameters,
    [property: Description("The cell's runs (GET /v1/training-runs/{id}).")] IReadOnlyList<string> Runs,
    SweepCounts Counts,
    CellMetrics Metrics);

/// <summary>Everything a sweep has produced so far.</summary>
public sealed record SweepSummary(
    [property: Description("queued, running (some runs not final), succeeded (all runs succeeded), failed (some failed), canceled (some canceled, none failed).")] string Status,
    SweepCounts Counts,
    IReadOnlyList<SweepCellReport> Cells,
    [property: Description("Across all succeeded runs: Pearson r of λ with test error, two-sided permutation p-value (9,999 permutations), OLS slope with a bootstrap 95% interval (2,000 resamples); null with fewer than 3 usable runs.")]
    Correlation? LambdaVsTestError,
    [property: Description("Why the correlation is missing, when it is.")] string? CorrelationNote);

/// <summary>Aggregates a sweep's runs into per-cell statistics and the λ–error correlation (<see cref="SweepStatistics"/>).</summary>
public static class SweepReport
{
    /// <summary>Permutations of the correlation test.</summary>
    public const int Permutations = 9_999;

    /// <summary>Bootstrap resamples of the slope interval.</summary>
    public const int BootstrapResamples = 2_000;

    /// <summary>The metrics read from one succeeded run's result.</summary>
    public sealed record RunMetrics(double TestError, double Ece, double Hard20Accuracy, double Lambda, double TrainingSeconds, double? TimeInBand = null, double? FinalInBand = null);

    /// <summary>Builds the summary of <paramref name="cells"/> parameter sets and the runs' states.</summary>
    public static SweepSummary Build(IReadOnlyList<IReadOnlyDictionary<string, JsonElement>> cells, IReadOnlyList<SweepRunState> runs)
    {
        ArgumentNullException.ThrowIfNull(cells);
        ArgumentNullException.ThrowIfNull(runs);
        var metrics = runs.Where(r => r.Status == "succeeded" && r.ResultJson is not null).ToDictionary(r => r.Id, r => Read(r.ResultJson!));
        var reports = cells.Select((parameters, index) =>
        {
            var own = runs.Where(r => r.Cell == index).ToList();
            var done = own.Where(r => metrics.ContainsKey(r.Id)).Select(r => metrics[r.Id]).ToList();
            return new SweepCellReport(index, parameters, own.Select(r => r.Id).ToList(), Count(own), new CellMetrics(
                Summarize(done.Select(m => m.TestError)), Summarize(done.Select(m => m.Ece)), Summarize(done.Select(m => m.Hard20Accuracy)),
                Summarize(done.Select(m => m.Lambda)), Summarize(done.Select(m => m.TrainingSeconds)),
                Summarize(done.Where(m => m.TimeInBand is not null).Select(m => m.TimeInBand!.Value)),
                Summarize(done.Where(m => m.FinalInBand is not null).Select(m => m.FinalInBand!.Value))));
        }).ToList();

        var counts = Count(runs);
        var usable = metrics.Values.Where(m => double.IsFinite(m.Lambda) && double.IsFinite(m.TestError)).ToList();
        Correlation? correlation = null;
        string? note = null;
        if (usable.Count < 3)
        {
            note = $"{usable.Count} succeeded run(s) with a finite λ; the correlation needs at least 3.";
        }
        else
        {
            try
            {
                correlation = SweepStatistics.Correlate(usable.Select(m => m.Lambda).ToList(), usable.Select(m => m.TestError).ToList(), Permutations, BootstrapResamples, 0);
            }
            catch (ArgumentException e)
            {
                note = e.Message;
            }
        }
        return new SweepSummary(StatusOf(counts), counts, reports, correlation, note);
    }

    /// <summary>The headline metrics of a result JSON (<c>train --json</c>); λ is NaN when it could not be measured.</summary>
    public static RunMetrics Read(string resultJson)
    {
        using var document = JsonDocument.Parse(resultJson);
        var r = document.RootElement;
        var lambda = r.TryGetProperty("lambda", out var l) && l.ValueKind == JsonValueKind.Object ? Number(l.GetProperty("lambda")) : double.NaN;
        double? timeInBand = r.TryGetProperty("timeInBand", out var t) && t.ValueKind != JsonValueKind.Null ? Number(t) : null;
        double? finalInBand = null;
        if (timeInBand is not null && r.TryGetProperty("config", out var config) && config.GetProperty("request").GetProperty("crr").TryGetProperty("target", out var band)
            && band.ValueKind == JsonValueKind.Object)
        {
            finalInBand = lambda >= Number(band.GetProperty("min")) && lambda <= Number(band.GetProperty("max")) ? 1 : 0;
        }
        return new RunMetrics(Number(r.GetProperty("testError")), Number(r.GetProperty("ece")), Number(r.GetProperty("hard20Accuracy")), lambda,
            Number(r.GetProperty("trainingSeconds")), timeInBand, finalInBand);
    }

    private static double Number(JsonElement e) => Hosting.ResultNumbers.Number(e);

    private static Summary? Summarize(IEnumerable<double> values)
    {
        var list = values.Where(v => !double.IsInfinity(v)).ToList();
        return list.Any(double.IsFinite) ? SweepStatistics.Summarize(list) : null;
    }

    private static SweepCounts Count(IReadOnlyCollection<SweepRunState> runs) => new(runs.Count,
        runs.Count(r => r.Status == "queued"), runs.Count(r => r.Status == "running"), runs.Count(r => r.Status == "succeeded"),
        runs.Count(r => r.Status == "failed"), runs.Count(r => r.Status == "canceled"));

    private static string StatusOf(SweepCounts c) =>
        c.Queued + c.Running > 0 ? (c.Running + c.Succeeded + c.Failed + c.Canceled == 0 ? "queued" : "running")
        : c.Failed > 0 ? "failed"
        : c.Canceled > 0 ? "canceled"
        : "succeeded";
}
