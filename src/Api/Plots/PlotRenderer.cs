using System.Globalization;
using System.Text;
using ScottPlot;

namespace LambdaService.Api.Plots;

/// <summary>
/// Renders the service's plots with ScottPlot 5 (SkiaSharp underneath) to SVG or PNG bytes: a λ measurement's fit,
/// a training run's history, and a sweep's λ-against-scale curves and test-error-against-λ scatter. Every method
/// checks its input first and throws <see cref="ArgumentException"/> naming what is wrong; each call builds its own
/// plot, so calls may run in parallel.
/// <para>
/// Text needs a font installed on the machine (SkiaSharp's Linux build without fontconfig reads
/// <c>/usr/share/fonts</c>; Debian/Ubuntu: <c>fonts-dejavu-core</c>). Without one, text would silently be left out of
/// both formats, so the methods throw <see cref="InvalidOperationException"/> instead.
/// </para>
/// </summary>
public static class PlotRenderer
{
    /// <summary>Default width in pixels.</summary>
    public const int DefaultWidth = 800;

    /// <summary>Default height in pixels.</summary>
    public const int DefaultHeight = 500;

    /// <summary>Smallest width or height accepted.</summary>
    public const int MinSize = 100;

    /// <summary>Largest width or height accepted.</summary>
    public const int MaxSize = 4000;

    /// <summary>Font families tried in order; the first one installed is used, else SkiaSharp's default family.</summary>
    private static readonly string[] PreferredFonts = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Open Sans", "Arial"];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The HTTP content type of a format: <c>image/svg+xml</c> or <c>image/png</c>.</summary>
    public static string ContentType(PlotFormat format) => format switch
    {
        PlotFormat.Svg => "image/svg+xml",
        PlotFormat.Png => "image/png",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "The format must be svg or png."),
    };

    /// <summary>
    /// A λ fit: the points <c>(n, log v_n)</c> (filled for orders in the fit, open grey circles for the others), the
    /// line <c>Intercept + λ·n</c>, the shaded 95% band between <c>ȳ + λ_lo·(n − n̄)</c> and <c>ȳ + λ_hi·(n − n̄)</c>
    /// (see <see cref="FitPlotData"/>), and the title <c>{Title} — λ = … [lo, hi], R² = …</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, no order is in the fit, a used order's log-norm or λ, the intercept or R² is not finite, the interval is not [low ≤ high], or the size or format is invalid.</exception>
    public static byte[] MeasurementFit(FitPlotData data, PlotFormat format, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckOutput(format, width, height);
        ArgumentNullException.ThrowIfNull(data.Orders, nameof(data.Orders));
        ArgumentNullException.ThrowIfNull(data.LogNorms, nameof(data.LogNorms));
        ArgumentNullException.ThrowIfNull(data.UsedInFit, nameof(data.UsedInFit));
        ArgumentNullException.ThrowIfNull(data.Title, nameof(data.Title));
        var n = data.Orders.Length;
        if (n == 0) throw new ArgumentException("A fit plot needs at least one order.", nameof(data));
        if (data.LogNorms.Length != n || data.UsedInFit.Length != n)
            throw new ArgumentException($"Orders ({n}), LogNorms ({data.LogNorms.Length}) and UsedInFit ({data.UsedInFit.Length}) must have the same length.", nameof(data));
        for (var i = 0; i < n; i++)
            if (data.UsedInFit[i] && !double.IsFinite(data.LogNorms[i]))
                throw new ArgumentException($"Order {data.Orders[i]} is used in the fit but its log-norm is {data.LogNorms[i]}.", nameof(data));
        if (!data.UsedInFit.Any(u => u)) throw new ArgumentException("No order is used in the fit.", nameof(data));
        RequireFinite(data.Lambda, "Lambda");
        RequireFinite(data.Intercept, "Intercept");
        RequireFinite(data.R2, "R2");
        var band = ReadInterval(data.Ci95, "Ci95", allowNaN: true);

        using var plot = NewPlot();
        var used = Enumerable.Range(0, n).Where(i => data.UsedInFit[i]).ToArray();
        var unused = Enumerable.Range(0, n).Where(i => !data.UsedInFit[i] && double.IsFinite(data.LogNorms[i])).ToArray();
        var drawn = used.Concat(unused).Select(i => (double)data.Orders[i]).ToArray();
        double nMin = drawn.Min(), nMax = drawn.Max();
        var nBar = used.Average(i => (double)data.Orders[i]);
        var yBar = data.Intercept + data.Lambda * nBar;

        // The band between the two pivoting lines (the grid contains n̄, where they cross) under the fit line; its dashed edges in a
        // contrasting colour over it, so that a band only a pixel or two wide still shows.
        double[] xs = [], lower = [], upper = [];
        if (band is { } ci)
        {
            xs = Enumerable.Range(0, 41).Select(k => nMin + (nMax - nMin) * k / 40.0).Append(nBar).Distinct().Order().ToArray();
            lower = xs.Select(x => Math.Min(yBar + ci.Low * (x - nBar), yBar + ci.High * (x - nBar))).ToArray();
            upper = xs.Select(x => Math.Max(yBar + ci.Low * (x - nBar), yBar + ci.High * (x - nBar))).ToArray();
            var fill = plot.Add.FillY(xs, lower, upper);
            fill.FillColor = Colors.DarkOrange.WithAlpha(0.3);
            fill.LineWidth = 0;
            fill.LegendText = "95% confidence band of the slope";
        }

        var line = plot.Add.Line(nMin, data.Intercept + data.Lambda * nMin, nMax, data.Intercept + data.Lambda * nMax);
        line.Color = Colors.SteelBlue;
        line.LineWidth = 2;
        line.MarkerSize = 0;
        line.LegendText = "fit: " + LineFormula(data.Intercept, data.Lambda, "G4", "n");
        foreach (var edge in band is null ? [] : new[] { lower, upper })
        {
            var border = plot.Add.ScatterLine(xs, edge, Colors.DarkOrange);
            border.LinePattern = LinePattern.Dashed;
            border.LineWidth = 1.5f;
        }

        var fitted = plot.Add.Markers(used.Select(i => (double)data.Orders[i]).ToArray(), used.Select(i => data.LogNorms[i]).ToArray(), MarkerShape.FilledCircle, 9, Colors.Black);
        fitted.LegendText = "log v_n (in the fit)";
        if (unused.Length > 0)
        {
            var other = plot.Add.Markers(unused.Select(i => (double)data.Orders[i]).ToArray(), unused.Select(i => data.LogNorms[i]).ToArray(), MarkerShape.OpenCircle, 9, Colors.Gray);
            other.LegendText = "log v_n (not in the fit)";
        }

        var orders = data.Orders.Distinct().Order().Select(o => (double)o).ToArray();
        plot.Axes.Bottom.SetTicks(orders, orders.Select(o => o.ToString("0", Inv)).ToArray());
        plot.XLabel("order n");
        plot.YLabel("log v_n");
        var interval = band is { } b ? string.Create(Inv, $" [{b.Low:G4}, {b.High:G4}]") : "";
        plot.Title(Prefix(data.Title) + string.Create(Inv, $"λ = {data.Lambda:G4}{interval}, R² = {data.R2:0.000}"));
        ShowLegend(plot, data.Lambda >= 0 ? Alignment.UpperLeft : Alignment.UpperRight, width);
        return Render(plot, format, width, height);
    }

    /// <summary>
    /// A run's history: test error per epoch (and the training loss, when given) on the left axis, λ at the epochs
    /// where it was measured on the right axis.
    /// </summary>
    /// <exception cref="ArgumentException">No epochs, lengths differ, epochs not strictly increasing, a value not finite, or the size or format is invalid.</exception>
    public static byte[] RunHistory(RunHistoryData data, PlotFormat format, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckOutput(format, width, height);
        ArgumentNullException.ThrowIfNull(data.Epochs, nameof(data.Epochs));
        ArgumentNullException.ThrowIfNull(data.TestErrors, nameof(data.TestErrors));
        ArgumentNullException.ThrowIfNull(data.Lambdas, nameof(data.Lambdas));
        ArgumentNullException.ThrowIfNull(data.Title, nameof(data.Title));
        var n = data.Epochs.Length;
        if (n == 0) throw new ArgumentException("A run history needs at least one epoch.", nameof(data));
        if (data.TestErrors.Length != n || data.Lambdas.Length != n || (data.TrainLosses is not null && data.TrainLosses.Length != n))
            throw new ArgumentException(
                $"Epochs ({n}), TestErrors ({data.TestErrors.Length}), Lambdas ({data.Lambdas.Length}) and TrainLosses ({data.TrainLosses?.Length.ToString(Inv) ?? "none"}) must have the same length.",
                nameof(data));
        for (var i = 1; i < n; i++)
            if (data.Epochs[i] <= data.Epochs[i - 1])
                throw new ArgumentException($"Epochs must be strictly increasing; epoch {data.Epochs[i]} follows {data.Epochs[i - 1]}.", nameof(data));
        for (var i = 0; i < n; i++)
        {
            RequireFinite(data.TestErrors[i], $"TestErrors[{i}]");
            if (data.Lambdas[i] is { } l) RequireFinite(l, $"Lambdas[{i}]");
            if (data.TrainLosses is not null) RequireFinite(data.TrainLosses[i], $"TrainLosses[{i}]");
        }

        using var plot = NewPlot();
        var epochs = data.Epochs.Select(e => (double)e).ToArray();
        var error = plot.Add.Scatter(epochs, data.TestErrors, Colors.FireBrick);
        error.LineWidth = 2;
        error.MarkerSize = n > 60 ? 0 : 5;
        error.LegendText = "test error";
        if (data.TrainLosses is not null)
        {
            var loss = plot.Add.Scatter(epochs, data.TrainLosses, Colors.DimGray);
            loss.LinePattern = LinePattern.Dashed;
            loss.MarkerSize = 0;
            loss.LegendText = "training loss";
        }
        if (data.MonitorLambdas is { } monitor && monitor.Length != n)
            throw new ArgumentException($"MonitorLambdas ({monitor.Length}) must have one entry per epoch ({n}).", nameof(data));
        if (ReadInterval(data.Band, "Band", allowNaN: false) is { } band)
        {
            ShadeBand(plot, band, "target band of λ", 0.18).Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "curvature rate λ";
        }
        var monitored = Enumerable.Range(0, n).Where(i => data.MonitorLambdas?[i] is { } m && double.IsFinite(m)).ToArray();
        if (monitored.Length > 0)
        {
            var monitorLine = plot.Add.Scatter(monitored.Select(i => epochs[i]).ToArray(), monitored.Select(i => data.MonitorLambdas![i]!.Value).ToArray(), Colors.SeaGreen);
            monitorLine.Axes.YAxis = plot.Axes.Right;
            monitorLine.LineWidth = 2;
            monitorLine.MarkerSize = n > 60 ? 0 : 5;
            monitorLine.LegendText = "λ on the monitor samples (right axis)";
            plot.Axes.Right.Label.Text = "curvature rate λ";
        }
        var measured = Enumerable.Range(0, n).Where(i => data.Lambdas[i].HasValue).ToArray();
        if (measured.Length > 0)
        {
            var lambda = plot.Add.Scatter(measured.Select(i => epochs[i]).ToArray(), measured.Select(i => data.Lambdas[i]!.Value).ToArray(), Colors.SteelBlue);
            lambda.Axes.YAxis = plot.Axes.Right;
            lambda.MarkerShape = MarkerShape.FilledSquare;
            lambda.MarkerSize = 7;
            lambda.LineWidth = 2;
            lambda.LegendText = "λ (right axis)";
            plot.Axes.Right.Label.Text = "curvature rate λ";
        }
        if (n <= 20) plot.Axes.Bottom.SetTicks(epochs, data.Epochs.Select(e => e.ToString(Inv)).ToArray());
        plot.XLabel("epoch");
        plot.YLabel(data.TrainLosses is null ? "test error" : "test error and training loss");
        plot.Title(data.Title);
        ShowLegend(plot, Alignment.UpperRight, width);
        return Render(plot, format, width, height);
    }

    /// <summary>
    /// A sweep's curves: the mean (with 95% interval error bars) against the CRR scale, one curve per series. The
    /// x-axis is logarithmic when the positive scales span more than 10×; 0 then sits one decade left of the smallest
    /// positive scale (see <see cref="ScaleCurveData"/>), and the ticks are the grid's scales (decades when there are
    /// more than 12). With several series, curve k is shifted sideways by <c>(k − (S−1)/2) · 1%</c> of the x range so
    /// that error bars at the same scale do not overlap.
    /// </summary>
    /// <exception cref="ArgumentException">No series, a series without points or label, a negative or non-finite scale, a non-finite mean, an interval that is not [low ≤ mean ≤ high], or the size or format is invalid.</exception>
    public static byte[] SweepScaleCurve(ScaleCurveData data, PlotFormat format, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckOutput(format, width, height);
        ArgumentNullException.ThrowIfNull(data.Series, nameof(data.Series));
        ArgumentNullException.ThrowIfNull(data.Title, nameof(data.Title));
        ArgumentNullException.ThrowIfNull(data.XLabel, nameof(data.XLabel));
        ArgumentNullException.ThrowIfNull(data.YLabel, nameof(data.YLabel));
        if (data.Series.Length == 0) throw new ArgumentException("A sweep plot needs at least one series.", nameof(data));
        for (var s = 0; s < data.Series.Length; s++)
        {
            var series = data.Series[s] ?? throw new ArgumentException($"Series {s} is null.", nameof(data));
            if (series.Label is null) throw new ArgumentException($"Series {s} has no label.", nameof(data));
            if (series.Points is null || series.Points.Length == 0) throw new ArgumentException($"Series {s} ('{series.Label}') has no points.", nameof(data));
            foreach (var p in series.Points)
            {
                if (p is null) throw new ArgumentException($"Series '{series.Label}' has a null point.", nameof(data));
                if (!double.IsFinite(p.Scale) || p.Scale < 0)
                    throw new ArgumentException($"Series '{series.Label}': scale {p.Scale} is not a finite number ≥ 0.", nameof(data));
                RequireFinite(p.Mean, $"mean at scale {p.Scale} of series '{series.Label}'");
                if (ReadInterval(p.Ci95, $"Ci95 at scale {p.Scale} of series '{series.Label}'", allowNaN: false) is { } ci && !(ci.Low <= p.Mean && p.Mean <= ci.High))
                    throw new ArgumentException($"Series '{series.Label}', scale {p.Scale}: the interval [{ci.Low}, {ci.High}] does not contain the mean {p.Mean}.", nameof(data));
            }
        }

        var scales = data.Series.SelectMany(s => s.Points).Select(p => p.Scale).Distinct().Order().ToArray();
        var positive = scales.Where(s => s > 0).ToArray();
        var log = positive.Length > 0 && positive[^1] / positive[0] > 10;
        var zeroAt = log ? Math.Log10(positive[0]) - 1 : 0;
        double X(double scale) => !log ? scale : scale == 0 ? zeroAt : Math.Log10(scale);
        var span = X(scales[^1]) - X(scales[0]);
        var dodge = data.Series.Length > 1 ? 0.01 * (span > 0 ? span : 1) : 0;

        using var plot = NewPlot();
        for (var s = 0; s < data.Series.Length; s++)
        {
            var points = data.Series[s].Points.OrderBy(p => p.Scale).ToArray();
            var shift = (s - (data.Series.Length - 1) / 2.0) * dodge;
            var xs = points.Select(p => X(p.Scale) + shift).ToArray();
            var ys = points.Select(p => p.Mean).ToArray();
            var color = Palette(s);
            var errors = plot.Add.ErrorBar(xs, ys, points.Select(p => p.Ci95 is null ? 0.0 : p.Ci95[1] - p.Mean).ToArray());
            errors.YErrorNegative = points.Select(p => p.Ci95 is null ? 0.0 : p.Mean - p.Ci95[0]).ToArray();
            errors.Color = color;
            errors.LineWidth = 1.5f;
            var curve = plot.Add.Scatter(xs, ys, color);
            curve.LineWidth = 2;
            curve.MarkerSize = 7;
            curve.LegendText = data.Series[s].Label;
        }

        if (log)
        {
            var ticks = scales.Length <= 12
                ? scales
                : [.. scales.Where(s => s == 0), .. Decades(positive[0], positive[^1])];
            plot.Axes.Bottom.SetTicks(ticks.Select(X).ToArray(), ticks.Select(t => t.ToString("G3", Inv)).ToArray());
        }
        else if (scales.Length <= 12)
        {
            plot.Axes.Bottom.SetTicks(scales, scales.Select(t => t.ToString("G3", Inv)).ToArray());
        }
        plot.XLabel(log ? data.XLabel + (scales[0] == 0 ? " (log scale; 0 drawn one decade below the smallest scale)" : " (log scale)") : data.XLabel);
        plot.YLabel(data.YLabel);
        plot.Title(data.Title);
        if (width < NarrowWidth) plot.ShowLegend(Edge.Bottom);
        else plot.ShowLegend(Edge.Right);
        return Render(plot, format, width, height);
    }

    /// <summary>
    /// Trajectories over epochs in one plot: per series, the mean as a line and its 95% interval as a translucent fill in the
    /// series' colour; a target band, when given, as a green span across the plot.
    /// </summary>
    /// <exception cref="ArgumentException">No series, a series without label or epochs, lengths differ, epochs not increasing, a value not finite, an interval not containing its mean, or the size or format is invalid.</exception>
    public static byte[] Trajectories(TrajectoryData data, PlotFormat format, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckOutput(format, width, height);
        ArgumentNullException.ThrowIfNull(data.Series, nameof(data.Series));
        ArgumentNullException.ThrowIfNull(data.Title, nameof(data.Title));
        ArgumentNullException.ThrowIfNull(data.YLabel, nameof(data.YLabel));
        if (data.Series.Length == 0) throw new ArgumentException("A trajectory plot needs at least one series.", nameof(data));
        foreach (var series in data.Series)
        {
            if (series?.Label is null || series.Epochs is null || series.Means is null) throw new ArgumentException("Every series needs a label, epochs and means.", nameof(data));
            var n = series.Epochs.Length;
            if (n == 0) throw new ArgumentException($"Series '{series.Label}' has no epochs.", nameof(data));
            if (series.Means.Length != n || (series.Ci95 is not null && series.Ci95.Length != n))
                throw new ArgumentException($"Series '{series.Label}': epochs ({n}), means ({series.Means.Length}) and intervals ({series.Ci95?.Length.ToString(Inv) ?? "none"}) differ in length.", nameof(data));
            for (var i = 0; i < n; i++)
            {
                if (i > 0 && series.Epochs[i] <= series.Epochs[i - 1]) throw new ArgumentException($"Series '{series.Label}': epochs must increase.", nameof(data));
                RequireFinite(series.Means[i], $"mean at epoch {series.Epochs[i]} of series '{series.Label}'");
                if (ReadInterval(series.Ci95?[i], $"interval at epoch {series.Epochs[i]} of series '{series.Label}'", allowNaN: false) is { } ci && !(ci.Low <= series.Means[i] && series.Means[i] <= ci.High))
                    throw new ArgumentException($"Series '{series.Label}', epoch {series.Epochs[i]}: the interval [{ci.Low}, {ci.High}] does not contain the mean {series.Means[i]}.", nameof(data));
            }
        }

        using var plot = NewPlot();
        if (ReadInterval(data.Band, "Band", allowNaN: false) is { } band) ShadeBand(plot, band, "target band", 0.15);
        for (var s = 0; s < data.Series.Length; s++)
        {
            var series = data.Series[s];
            var color = Palette(s);
            var xs = series.Epochs.Select(e => (double)e).ToArray();
            var withInterval = Enumerable.Range(0, xs.Length).Where(i => series.Ci95?[i] is not null).ToArray();
            if (withInterval.Length > 1)
            {
                var fill = plot.Add.FillY(withInterval.Select(i => xs[i]).ToArray(), withInterval.Select(i => series.Ci95![i]![0]).ToArray(),
                    withInterval.Select(i => series.Ci95![i]![1]).ToArray());
                fill.FillColor = color.WithAlpha(0.22);
                fill.LineWidth = 0;
            }
            var line = plot.Add.Scatter(xs, series.Means, color);
            line.LineWidth = 2;
            line.MarkerSize = xs.Length > 30 ? 0 : 5;
            line.LegendText = series.Label;
        }
        plot.XLabel("epoch");
        plot.YLabel(data.YLabel);
        plot.Title(data.Title);
        ShowLegend(plot, Alignment.UpperLeft, width);
        return Render(plot, format, width, height);
    }

    /// <summary>
    /// Test error against λ over all runs of a sweep: one point per run, the OLS line over the range of λ, and the title
    /// <c>{Title} — r = …, p = …, n = …</c> (the line's equation is in the legend).
    /// </summary>
    /// <exception cref="ArgumentException">No runs, lengths differ, a value not finite, r outside [−1, 1], p outside (0, 1], or the size or format is invalid.</exception>
    public static byte[] SweepErrorVsLambda(ErrorLambdaData data, PlotFormat format, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckOutput(format, width, height);
        ArgumentNullException.ThrowIfNull(data.Lambdas, nameof(data.Lambdas));
        ArgumentNullException.ThrowIfNull(data.TestErrors, nameof(data.TestErrors));
        ArgumentNullException.ThrowIfNull(data.Title, nameof(data.Title));
        var n = data.Lambdas.Length;
        if (n == 0) throw new ArgumentException("An error-against-λ plot needs at least one run.", nameof(data));
        if (data.TestErrors.Length != n)
            throw new ArgumentException($"Lambdas ({n}) and TestErrors ({data.TestErrors.Length}) must have the same length.", nameof(data));
        for (var i = 0; i < n; i++)
        {
            RequireFinite(data.Lambdas[i], $"Lambdas[{i}]");
            RequireFinite(data.TestErrors[i], $"TestErrors[{i}]");
        }
        RequireFinite(data.Slope, "Slope");
        RequireFinite(data.Intercept, "Intercept");
        if (!(data.R >= -1 && data.R <= 1)) throw new ArgumentException($"R is {data.R}; a correlation lies in [−1, 1].", nameof(data));
        if (!(data.PValue > 0 && data.PValue <= 1)) throw new ArgumentException($"PValue is {data.PValue}; a p-value lies in (0, 1].", nameof(data));

        using var plot = NewPlot();
        var runs = plot.Add.Markers(data.Lambdas, data.TestErrors, MarkerShape.FilledCircle, 7, Colors.SteelBlue.WithAlpha(0.8));
        runs.LegendText = string.Create(Inv, $"runs (n = {n})");
        double lo = data.Lambdas.Min(), hi = data.Lambdas.Max();
        if (hi > lo)
        {
            var line = plot.Add.Line(lo, data.Intercept + data.Slope * lo, hi, data.Intercept + data.Slope * hi);
            line.Color = Colors.FireBrick;
            line.LineWidth = 2;
            line.MarkerSize = 0;
            line.LegendText = "OLS: error = " + LineFormula(data.Intercept, data.Slope, "G3", "λ");
        }
        plot.XLabel("λ");
        plot.YLabel("test error");
        plot.Title(Prefix(data.Title) + string.Create(Inv, $"r = {data.R:0.000}, p = {data.PValue:G3}, n = {n}"));
        ShowLegend(plot, data.Slope >= 0 ? Alignment.UpperLeft : Alignment.UpperRight, width);
        return Render(plot, format, width, height);
    }

    private static void CheckOutput(PlotFormat format, int width, int height)
    {
        if (!Enum.IsDefined(format)) throw new ArgumentOutOfRangeException(nameof(format), format, "The format must be svg or png.");
        if (width is < MinSize or > MaxSize) throw new ArgumentOutOfRangeException(nameof(width), width, $"The width must be between {MinSize} and {MaxSize} pixels.");
        if (height is < MinSize or > MaxSize) throw new ArgumentOutOfRangeException(nameof(height), height, $"The height must be between {MinSize} and {MaxSize} pixels.");
    }

    private static void RequireFinite(double value, string name)
    {
        if (!double.IsFinite(value)) throw new ArgumentException($"{name} is {value}; it must be a finite number.", "data");
    }

    /// <summary>An interval <c>[low, high]</c>: null stays null; NaN entries give null when allowed; else both finite and low ≤ high.</summary>
    private static (double Low, double High)? ReadInterval(double[]? interval, string name, bool allowNaN)
    {
        if (interval is null) return null;
        if (interval.Length != 2) throw new ArgumentException($"{name} has {interval.Length} values; an interval has two, [low, high].", "data");
        if (allowNaN && (double.IsNaN(interval[0]) || double.IsNaN(interval[1]))) return null;
        if (!double.IsFinite(interval[0]) || !double.IsFinite(interval[1]) || interval[0] > interval[1])
            throw new ArgumentException($"{name} is [{interval[0]}, {interval[1]}]; an interval needs finite low ≤ high.", "data");
        return (interval[0], interval[1]);
    }

    /// <summary><c>a + b·x</c> or <c>a − |b|·x</c>.</summary>
    private static string LineFormula(double intercept, double slope, string format, string variable) =>
        intercept.ToString(format, Inv) + (slope < 0 ? " − " : " + ") + Math.Abs(slope).ToString(format, Inv) + "·" + variable;

    private static string Prefix(string title) => string.IsNullOrWhiteSpace(title) ? "" : title + " — ";

    /// <summary>Below this width legends go under the plot instead of over (or beside) the data, where they would not fit.</summary>
    private const int NarrowWidth = 600;

    /// <summary>The legend in a corner of the data area, or under the plot when the canvas is narrow.</summary>
    private static void ShowLegend(Plot plot, Alignment corner, int width)
    {
        if (width < NarrowWidth) plot.ShowLegend(Edge.Bottom);
        else plot.ShowLegend(corner);
    }

    /// <summary>Space kept free on each side of the title, in pixels.</summary>
    private const float TitleMargin = 12;

    /// <summary>Smallest font size a title or axis label is shrunk to before it is cut.</summary>
    private const float MinTitleFontSize = 10;

    /// <summary>
    /// Makes the title and the x-axis label fit the canvas. Both are centred over the data area, whose place is known only after a
    /// layout, so the plot is laid out once first; each text then gets the width between the centre and the nearer canvas edge
    /// (less <see cref="TitleMargin"/>) on both sides, and is kept as one line if it fits; else broken into lines (the title after
    /// its first <c>" — "</c>, then both at spaces); then its font is shrunk down to <see cref="MinTitleFontSize"/>; then each line
    /// is cut with an ellipsis. Measured with each label's own font.
    /// </summary>
    private static void FitTexts(Plot plot, int width, int height)
    {
        using (plot.GetImage(width, height)) { }
        var data = plot.LastRender.DataRect;
        var centre = (data.Left + data.Right) / 2;
        var available = 2 * Math.Min(centre, width - centre) - 2 * TitleMargin;
        Fit(plot.Axes.Title.Label, available, " — ");
        Fit(plot.Axes.Bottom.Label, available, null);
    }

    private static void Fit(LabelStyle label, float available, string? breakAfter)
    {
        var text = label.Text;
        if (string.IsNullOrEmpty(text)) return;
        using var paint = Paint.NewDisposablePaint();
        float Measure(string s) => new LabelStyle { FontName = label.FontName, FontSize = label.FontSize, Bold = label.Bold, Text = s }.Measure(paint).Width;

        var parts = breakAfter is null ? [text] : SplitOnce(text, breakAfter);
        var lines = Measure(text) <= available ? [text] : parts.SelectMany(part => Wrap(part, available, Measure)).ToList();
        while (lines.Max(Measure) > available && label.FontSize > MinTitleFontSize) label.FontSize -= 1;
        for (var i = 0; i < lines.Count; i++)
            while (Measure(lines[i]) > available && lines[i].Length > 1)
                lines[i] = lines[i][..^(lines[i].EndsWith('…') ? 2 : 1)].TrimEnd() + "…";
        label.Text = string.Join("\n", lines);
    }

    /// <summary>The text split at the first separator (which stays at the end of the first part), or whole when it has none.</summary>
    private static IEnumerable<string> SplitOnce(string text, string separator)
    {
        var at = text.IndexOf(separator, StringComparison.Ordinal);
        return at < 0 ? [text] : [text[..at].TrimEnd() + " —", text[(at + separator.Length)..]];
    }

    /// <summary>Greedy word wrap of one part to <paramref name="available"/> pixels (a single long word stays one line).</summary>
    private static IEnumerable<string> Wrap(string text, float available, Func<string, float> measure)
    {
        var line = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = line.Length == 0 ? word : line + " " + word;
            if (line.Length > 0 && measure(candidate) > available)
            {
                yield return line;
                line = word;
            }
            else
            {
                line = candidate;
            }
        }
        if (line.Length > 0) yield return line;
    }

    private static IEnumerable<double> Decades(double min, double max)
    {
        for (var k = (int)Math.Floor(Math.Log10(min)); k <= (int)Math.Ceiling(Math.Log10(max)); k++) yield return Math.Pow(10, k);
    }

    /// <summary>
    /// A band of λ shaded across the whole width of the plot: a span of the y axis (ScottPlot's <c>VerticalSpan</c>; its
    /// <c>HorizontalSpan</c> would shade a range of epochs), labelled <c>{legend} [low, high]</c>.
    /// </summary>
    private static ScottPlot.Plottables.VerticalSpan ShadeBand(Plot plot, (double Low, double High) band, string legend, double alpha)
    {
        var span = plot.Add.VerticalSpan(band.Low, band.High);
        span.FillStyle.Color = Colors.SeaGreen.WithAlpha(alpha);
        span.LineStyle.Width = 0;
        span.LegendText = string.Create(Inv, $"{legend} [{band.Low:G3}, {band.High:G3}]");
        return span;
    }

    private static Color Palette(int index) => new ScottPlot.Palettes.Category10().GetColor(index);

    private static Plot NewPlot()
    {
        var family = FontFamily();
        var plot = new Plot();
        plot.Font.Set(family);
        return plot;
    }

    /// <summary>The first installed family of <see cref="PreferredFonts"/>, else the default family; throws when no font is installed.</summary>
    private static string FontFamily()
    {
        foreach (var name in PreferredFonts)
            if (Fonts.GetTypeface(name, bold: false, italic: false)?.FamilyName == name)
                return name;
        var fallback = Fonts.GetTypeface(Fonts.Default, bold: false, italic: false)?.FamilyName;
        if (!string.IsNullOrEmpty(fallback)) return fallback;
        throw new InvalidOperationException(
            "No font is installed, so the plot would have no text. Install one under /usr/share/fonts (Debian/Ubuntu: apt-get install fonts-dejavu-core).");
    }

    private static byte[] Render(Plot plot, PlotFormat format, int width, int height)
    {
        FitTexts(plot, width, height);
        return format switch
        {
            PlotFormat.Svg => new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(plot.GetSvgXml(width, height)),
            PlotFormat.Png => plot.GetImageBytes(width, height, ImageFormat.Png),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "The format must be svg or png."),
        };
    }
}
