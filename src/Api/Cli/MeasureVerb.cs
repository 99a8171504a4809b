using System.Globalization;
using LambdaService.Api.Contracts;
using LambdaService.Api.Measurements;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;

namespace LambdaService.Api.Cli;

/// <summary><c>measure</c>: λ of a model file on a data file.</summary>
public static class MeasureVerb
{
    private static readonly string[] Flags = ["json", "allow-unreliable"];

    private static readonly string[] Valued =
        ["model", "data", "target", "labels", "class", "points", "band", "pairs", "orders", "directions", "max-points", "norm", "normalization", "engine", "label-column", "seed", "input-shape", "max-data-mb", "max-derivative-error", "device", "at", "memory-budget-mb", "precision"];

    /// <summary>
    /// Parses the options into the same <see cref="MeasurementRequest"/> the HTTP API takes, so that both
    /// share one mapping to <see cref="MeasurementOptions"/> (names, meanings, defaults, errors).
    /// </summary>
    public static MeasurementRequest ParseRequest(CliArguments a)
    {
        var orders = a.Range("orders");
        var band = a.Pair("band");
        return new MeasurementRequest(
            ModelId: "",
            DatasetId: "",
            Target: ClosedSet.Parse<MeasurementTarget>("target", a.Get("target")),
            Labels: ClosedSet.Parse<LabelSource>("labels", a.Get("labels")),
            Class: a.Int("class", 0),
            Points: ClosedSet.Parse<PointSelection>("points", a.Get("points")),
            Band: band is { } b ? [b.Item1, b.Item2] : null,
            Pairs: a.Get("pairs") is { } pairs ? pairs.Split(',', StringSplitOptions.TrimEntries) : null,
            Orders: orders is { } o ? new OrderRange(o.Item1, o.Item2) : null,
            Directions: a.Int("directions"),
            MaxPoints: a.Int("max-points"),
            Norm: ClosedSet.Parse<NormKind>("norm", a.Get("norm")),
            Normalization: ClosedSet.Parse<Normalization>("normalization", a.Get("normalization")),
            Engine: ClosedSet.Parse<EngineChoice>("engine", a.Get("engine")),
            Seed: a.Int("seed"),
            InputShape: a.Shape("input-shape"),
            MaxDerivativeError: a.Double("max-derivative-error"),
            AllowUnreliable: a.Has("allow-unreliable") ? true : null,
            Device: ClosedSet.Parse<DeviceChoice>("device", a.Get("device")),
            At: a.Get("at"),
            MemoryBudgetMb: a.Double("memory-budget-mb"),
            Precision: ClosedSet.Parse<ComputePrecision>("precision", a.Get("precision")));
    }

    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, Valued, Flags);
        var model = a.Required("model");
        var data = a.Required("data");
        var options = ParseRequest(a).ToOptions();
        var dataOptions = new DataReadOptions
        {
            LabelColumn = a.Get("label-column") ?? "label",
            MaxDecompressedBytes = (a.Int("max-data-mb", 1, 1 << 20) ?? 1024) * (1L << 20),
        };
        var result = CurvatureRate.Measure(model, data, options, dataOptions, null, cancellationToken);
        stdout.WriteLine(a.Has("json") ? CliJson.Serialize(result) : Summary(result));
        return 0;
    }

    /// <summary>The readable summary of a result.</summary>
    public static string Summary(MeasurementResult r)
    {
        var c = CultureInfo.InvariantCulture;
        var w = new StringWriter(c);
        w.WriteLine($"λ = {r.Lambda:F4}   95% CI [{r.Ci95[0]:F4}, {r.Ci95[1]:F4}]   R² = {r.R2:F4}   intercept = {r.Intercept:F4}"
            + (r.Unreliable ? "   UNRELIABLE (derivative errors above --max-derivative-error; see the warnings)" : ""));
        w.WriteLine($"target {r.Config.Target} (labels {r.Config.Labels}), orders {r.Config.MinOrder}-{r.Config.MaxOrder}, norm {r.Config.Norm}, normalization {r.Config.Normalization}");
        w.WriteLine($"points: {r.PointsUsed} used of {r.PointsEligible} eligible ({r.Config.Points}), {r.Config.Directions} directions each, seed {r.Config.Seed}");
        w.WriteLine($"engine: {r.Engine} on {r.Device} ({r.Precision}), {r.Seconds:F2} s");
        if (r.Config.LayerShape is { } layerShape) w.WriteLine($"at layer {r.Config.At} (activation [{string.Join(",", layerShape)}] per sample)");
        w.WriteLine("   n    log v_n");
        foreach (var o in r.Orders) w.WriteLine($"{o.N,4} {o.LogNorm,10:F4}{(o.UsedInFit ? "" : "   (not fitted)")}");
        var q = r.PerPointSlopes;
        w.WriteLine($"per-point slopes: 5% {q.P05:F3}  25% {q.P25:F3}  median {q.P50:F3}  75% {q.P75:F3}  95% {q.P95:F3}");
        if (r.DerivativeErrors is { } errors)
        {
            w.WriteLine("estimated relative error of derivatives (median / 90th percentile): "
                + string.Join("  ", errors.Select(e => $"n={e.N}: {e.Median:E1}/{e.P90:E1}")));
        }
        if (r.Accuracy is { } acc) w.WriteLine($"accuracy {acc:F4}   ECE {r.Ece:F4}   hardest-20% accuracy {r.Hard20Accuracy:F4}");
        w.WriteLine($"model {r.Model.Format} {r.Model.Kind} ({r.Model.OutputsPerSample} outputs), sha256 {r.Config.ModelSha256[..12]}…; data sha256 {r.Config.DataSha256[..Math.Min(12, r.Config.DataSha256.Length)]}…");
        foreach (var warning in r.Warnings) w.WriteLine($"warning: {warning}");
        return w.ToString().TrimEnd();
    }
}
