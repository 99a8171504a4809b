namespace LambdaService.Api.Plots;

/// <summary>Image format of a rendered plot.</summary>
public enum PlotFormat
{
    /// <summary>SVG 1.1 (UTF-8 XML, <c>image/svg+xml</c>).</summary>
    Svg,

    /// <summary>PNG (RGBA, <c>image/png</c>).</summary>
    Png,
}

/// <summary>
/// One λ measurement: the points <c>(n, log v_n)</c>, the fitted line <c>log v_n ≈ Intercept + Lambda·n</c> and the
/// 95% interval <c>Ci95 = [λ_lo, λ_hi]</c> of the slope. The band is drawn between the lines
/// <c>ȳ + λ_lo·(n − n̄)</c> and <c>ȳ + λ_hi·(n − n̄)</c>, which pivot at the centre of the fitted orders
/// (<c>n̄</c> = mean of the orders used in the fit, <c>ȳ = Intercept + Lambda·n̄</c>, the point every least-squares line passes through).
/// </summary>
/// <param name="Orders">Orders n, one per point.</param>
/// <param name="LogNorms">log v_n per order. A non-finite value (v_n = 0 gives −∞) is allowed only for an order not used in the fit; it is not drawn.</param>
/// <param name="UsedInFit">Whether each order entered the fit (unused orders are drawn as open grey circles).</param>
/// <param name="Lambda">Fitted slope λ.</param>
/// <param name="Intercept">Fitted intercept.</param>
/// <param name="Ci95">95% interval of λ, <c>[low, high]</c>; null, or NaN entries (no bootstrap ran), draws no band.</param>
/// <param name="R2">R² of the fit.</param>
/// <param name="Title">Title; λ, its interval and R² are appended.</param>
public sealed record FitPlotData(int[] Orders, double[] LogNorms, bool[] UsedInFit, double Lambda, double Intercept, double[]? Ci95, double R2, string Title);

/// <summary>
/// The history of one training run: test error (and optionally the training loss) per epoch on the left axis,
/// λ on the right axis at the epochs where it was measured.
/// </summary>
/// <param name="Epochs">Epoch numbers, strictly increasing.</param>
/// <param name="TestErrors">Test error after each epoch.</param>
/// <param name="Lambdas">λ after each epoch; null where it was not measured.</param>
/// <param name="TrainLosses">Mean training loss of each epoch, or null to leave it out.</param>
/// <param name="Title">Title.</param>
/// <param name="MonitorLambdas">crr-target: λ on the held-out monitor samples at the end of each epoch (null where none), on the right axis.</param>
/// <param name="Band">crr-target: the band <c>[min, max]</c> λ is held in, shaded on the right axis.</param>
public sealed record RunHistoryData(int[] Epochs, double[] TestErrors, double?[] Lambdas, double[]? TrainLosses, string Title,
    double?[]? MonitorLambdas = null, double[]? Band = null);

/// <summary>One grid point of a sweep curve: the mean of a quantity over seeds at one CRR scale, with its interval.</summary>
/// <param name="Scale">CRR scale (≥ 0; 0 is the unregularised baseline).</param>
/// <param name="Mean">Mean over the seeds.</param>
/// <param name="Ci95">95% interval of the mean, <c>[low, high]</c> with <c>low ≤ Mean ≤ high</c>; null (a single seed) draws no error bar.</param>
public sealed record ScalePoint(double Scale, double Mean, double[]? Ci95);

/// <summary>One curve of a sweep plot: the grid points that share the values of the other grid factors.</summary>
/// <param name="Label">Legend text, e.g. <c>label noise 0.3</c>.</param>
/// <param name="Points">Its points (any order; drawn sorted by scale).</param>
public sealed record ScaleSeries(string Label, ScalePoint[] Points);

/// <summary>
/// λ (or another quantity) against the CRR scale, one curve per combination of the other grid factors.
/// The x-axis is logarithmic when the positive scales span more than a factor of 10; a scale of 0 then sits one
/// decade left of the smallest positive scale, at <c>log₁₀(s_min) − 1</c>, and its tick reads <c>0</c>.
/// </summary>
/// <param name="Series">The curves.</param>
/// <param name="Title">Title.</param>
/// <param name="XLabel">x-axis label.</param>
/// <param name="YLabel">y-axis label.</param>
public sealed record ScaleCurveData(ScaleSeries[] Series, string Title, string XLabel = "CRR scale", string YLabel = "λ (mean, 95% interval)");

/// <summary>
/// Test error against λ over all runs of a sweep, with the least-squares line <c>error ≈ Intercept + Slope·λ</c>,
/// Pearson <c>R</c> and its permutation-test <c>PValue</c> (e.g. from <c>SweepStatistics.Correlate</c>).
/// </summary>
/// <param name="Lambdas">λ of each run.</param>
/// <param name="TestErrors">Test error of each run.</param>
/// <param name="Slope">OLS slope of test error on λ.</param>
/// <param name="Intercept">OLS intercept.</param>
/// <param name="R">Pearson r, in [−1, 1].</param>
/// <param name="PValue">p-value of r, in (0, 1].</param>
/// <param name="Title">Title; r, p and n are appended.</param>
public sealed record ErrorLambdaData(double[] Lambdas, double[] TestErrors, double Slope, double Intercept, double R, double PValue, string Title);

/// <summary>One trajectory of a quantity over epochs: its mean over seeds per epoch with a 95% interval.</summary>
/// <param name="Label">Legend text, e.g. <c>CRR 0.003</c>.</param>
/// <param name="Epochs">Epochs, strictly increasing.</param>
/// <param name="Means">Mean per epoch.</param>
/// <param name="Ci95">Per epoch <c>[low, high]</c> containing the mean, or null (one seed) where there is none; null for no interval at all.</param>
public sealed record TrajectorySeries(string Label, int[] Epochs, double[] Means, double[]?[]? Ci95);

/// <summary>Several trajectories in one plot, each a line with its 95% interval shaded, and optionally a target band shaded across.</summary>
/// <param name="Series">The trajectories.</param>
/// <param name="Title">Title.</param>
/// <param name="Band">A target band <c>[min, max]</c> to shade, or null.</param>
/// <param name="YLabel">y-axis label.</param>
public sealed record TrajectoryData(TrajectorySeries[] Series, string Title, double[]? Band = null, string YLabel = "λ (mean over seeds, 95% interval)");
