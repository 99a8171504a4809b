namespace LambdaService.Measurement.Engines;

/// <summary>
/// Directional derivatives wanted: for each point <c>x_p</c> and each of its directions <c>v_{p,d}</c>,
/// <c>Dⁿ f(x_p)[v_{p,d}] = dⁿ/dtⁿ f(x_p + t v_{p,d})</c> at t = 0 for n = 0..<see cref="MaxOrder"/>.
/// </summary>
/// <param name="Points">Row-major points, <c>PointCount × sampleSize</c>.</param>
/// <param name="PointCount">Number of points.</param>
/// <param name="Directions">Row-major unit directions, <c>PointCount × DirectionsPerPoint × sampleSize</c>.</param>
/// <param name="DirectionsPerPoint">Directions per point.</param>
/// <param name="Target">Which scalar of the output is differentiated.</param>
/// <param name="TargetClass">Per point: the label (loss) or class (logit); ignored for <see cref="TargetKind.Output"/>.</param>
/// <param name="MaxOrder">Highest order K ≥ 1.</param>
public sealed record DerivativeRequest(
    double[] Points, int PointCount, double[] Directions, int DirectionsPerPoint, TargetKind Target, int[] TargetClass, int MaxOrder);

/// <summary>
/// Derivatives <c>[point, direction, order]</c> for orders 0..K (order 0 is f itself), and where the
/// engine can tell, an estimate of the relative error per order; <see cref="Plan"/> says how the lines were split into passes.
/// </summary>
public sealed record DerivativeResult(double[] Values, int PointCount, int DirectionsPerPoint, int MaxOrder, string Precision, OrderError[]? Errors,
    PassPlan? Plan = null)
{
    /// <summary>The derivative of order <paramref name="n"/> at point p along direction d.</summary>
    public double this[int p, int d, int n] => Values[((p * DirectionsPerPoint) + d) * (MaxOrder + 1) + n];
}

/// <summary>
/// Estimated relative error of one order's derivatives: median and 90th percentile over lines, and the error of their
/// mean magnitude <c>v_n</c>, <c>OfNorm = Σ_lines err_l / Σ_lines |Dⁿ_l|</c> (each line's absolute error estimate; a few lines
/// that are far off can dominate <c>v_n</c> while the median stays small).
/// </summary>
public sealed record OrderError(int N, double Median, double P90, double OfNorm);

/// <summary>A way of computing directional derivatives; the estimator does not know which one runs.</summary>
public interface IDerivativeEngine
{
    /// <summary><c>autograd</c>, <c>finite-difference</c>, …</summary>
    string Name { get; }

    /// <summary>Where it computes: <c>cpu</c>, <c>cuda:0</c>.</summary>
    string Device { get; }

    /// <summary>Computes every requested derivative.</summary>
    DerivativeResult Compute(DerivativeRequest request, IProgress<double>? progress, CancellationToken cancellationToken);
}
