using LambdaService.Measurement.Numerics;

namespace LambdaService.Measurement.Validation;

/// <summary>
/// The fit <c>log v_n ≈ Intercept + Slope·n</c> over the orders that carry information, and the orders left out.
/// </summary>
/// <param name="Slope">The growth rate <c>λ̂</c> (least-squares slope of <c>log v_n</c> on <c>n</c>).</param>
/// <param name="Intercept">The fitted <c>log v_n</c> at <c>n = 0</c>.</param>
/// <param name="RSquared">Coefficient of determination of the line over the fitted orders.</param>
/// <param name="FittedOrders">Orders that entered the fit.</param>
/// <param name="SkippedOrders">Orders left out because <c>v_n</c> is zero (see <see cref="GrowthRate.Fit"/>).</param>
public sealed record GrowthRateFit(double Slope, double Intercept, double RSquared, IReadOnlyList<int> FittedOrders, IReadOnlyList<int> SkippedOrders);

/// <summary>
/// The fit <c>log v_n ≈ Intercept + Slope·n + Gamma·log(2n+1)</c> (three-parameter least squares) used for the
/// finite-domain (band-edge) correction.
/// </summary>
/// <param name="Slope">The corrected growth rate <c>λ̂</c>.</param>
/// <param name="Gamma">The estimated power of <c>(2n+1)</c>; <c>−1/2</c> for a flat spectrum up to a sharp edge.</param>
/// <param name="Intercept">The constant term <c>c</c>.</param>
/// <param name="RSquared">Coefficient of determination of the three-parameter model.</param>
/// <param name="FittedOrders">Orders that entered the fit.</param>
public sealed record CorrectedGrowthRateFit(double Slope, double Gamma, double Intercept, double RSquared, IReadOnlyList<int> FittedOrders);

/// <summary>
/// Growth-rate fits of a derivative-norm sequence <c>v_n</c> given as <c>log v_n</c>.
/// </summary>
public static class GrowthRate
{
    /// <summary>
    /// Least-squares slope of <c>log v_n</c> against <c>n</c> (<see cref="LinearFit.Fit"/>) over the orders
    /// where <c>v_n</c> is non-zero.
    /// </summary>
    /// <remarks>
    /// λ is a lim sup, <c>λ = limsup_{n→∞} (1/n) log v_n</c>, so orders where <c>v_n</c> vanishes (for
    /// example the coefficients of <c>(1−x³)⁻¹</c> at <c>n ≢ 0 mod 3</c>) lie below the envelope that defines
    /// it and are left out. An order is skipped when <c>log v_n = −∞</c> (exact zero) or when
    /// <c>v_n &lt; relativeZeroTolerance · max(v_{n−1}, v_{n+1})</c> over the neighbouring listed orders
    /// (a zero blurred by round-off). NaN or <c>+∞</c> values are rejected, not skipped.
    /// </remarks>
    /// <param name="orders">The orders <c>n</c>, strictly increasing.</param>
    /// <param name="logNorms"><c>log v_n</c> for each order (<c>−∞</c> for <c>v_n = 0</c>).</param>
    /// <param name="relativeZeroTolerance">Ratio to the neighbours below which <c>v_n</c> counts as zero; 0 skips exact zeros only.</param>
    /// <exception cref="ArgumentException">Different lengths, orders not increasing, NaN or +∞ values, or fewer than two orders left.</exception>
    public static GrowthRateFit Fit(ReadOnlySpan<int> orders, ReadOnlySpan<double> logNorms, double relativeZeroTolerance = 1e-12)
    {
        CheckInputs(orders, logNorms);
        if (!(relativeZeroTolerance >= 0 && relativeZeroTolerance < 1))
            throw new ArgumentOutOfRangeException(nameof(relativeZeroTolerance), relativeZeroTolerance, "The zero tolerance must lie in [0, 1).");
        var logTolerance = relativeZeroTolerance > 0 ? Math.Log(relativeZeroTolerance) : double.NegativeInfinity;

        var fitted = new List<int>();
        var skipped = new List<int>();
        var x = new List<double>();
        var y = new List<double>();
        for (var i = 0; i < orders.Length; i++)
        {
            var neighbour = double.NegativeInfinity;
            if (i > 0) neighbour = Math.Max(neighbour, logNorms[i - 1]);
            if (i + 1 < orders.Length) neighbour = Math.Max(neighbour, logNorms[i + 1]);
            var isZero = double.IsNegativeInfinity(logNorms[i]) || logNorms[i] < neighbour + logTolerance;
            if (isZero)
            {
                skipped.Add(orders[i]);
                continue;
            }
            fitted.Add(orders[i]);
            x.Add(orders[i]);
            y.Add(logNorms[i]);
        }
        if (fitted.Count < 2)
            throw new ArgumentException($"Only {fitted.Count} order(s) have a non-zero norm; a growth rate needs at least two.", nameof(logNorms));
        var line = LinearFit.Fit(x.ToArray(), y.ToArray());
        return new GrowthRateFit(line.Slope, line.Intercept, line.RSquared, fitted, skipped);
    }

    /// <summary>
    /// Finite-domain (band-edge) correction: least squares for <c>log v_n = c + λ·n + γ·log(2n+1)</c> with
    /// <c>c</c>, <c>λ</c> and <c>γ</c> all free.
    /// </summary>
    /// <remarks>
    /// For a spectrum that ends at <c>Ω</c>, <c>v_n² ∝ Σ_{|k|≤Ω} |F_k|² k^{2n}</c>; for a flat spectrum
    /// <c>Σ_{k≤Ω} k^{2n} ≈ Ω^{2n+1}/(2n+1)</c>, so <c>log v_n = n log Ω + c − ½ log(2n+1) + o(1)</c>; a spectrum that
    /// tapers to the edge changes the power (<c>γ</c>), which is why <c>γ</c> is estimated, not fixed. The plain
    /// slope absorbs part of the <c>log(2n+1)</c> term and underestimates <c>log Ω</c>.
    /// The solution uses the Frisch–Waugh–Lovell theorem with <see cref="LinearFit.Fit"/>: with
    /// <c>u_n = log(2n+1)</c>, <c>λ̂</c> is the slope of the residuals of <c>log v_n</c> on <c>u</c> against the
    /// residuals of <c>n</c> on <c>u</c>; then <c>γ̂</c> and <c>ĉ</c> are the line fit of <c>log v_n − λ̂n</c> on <c>u</c>.
    /// All values must be finite (no skipping here).
    /// </remarks>
    /// <exception cref="ArgumentException">Different lengths, orders not increasing or negative, values not finite, or fewer than four orders.</exception>
    public static CorrectedGrowthRateFit FitWithBandEdgeCorrection(ReadOnlySpan<int> orders, ReadOnlySpan<double> logNorms)
    {
        CheckInputs(orders, logNorms);
        if (orders.Length < 4) throw new ArgumentException("The three-parameter fit needs at least four orders.", nameof(orders));
        var m = orders.Length;
        var n = new double[m];
        var u = new double[m];
        var y = new double[m];
        for (var i = 0; i < m; i++)
        {
            if (orders[i] < 0) throw new ArgumentException("Orders must be non-negative for log(2n+1).", nameof(orders));
            if (!double.IsFinite(logNorms[i])) throw new ArgumentException($"log v_n at n = {orders[i]} is not finite.", nameof(logNorms));
            n[i] = orders[i];
            u[i] = Math.Log(2.0 * orders[i] + 1);
            y[i] = logNorms[i];
        }

        var nOnU = LinearFit.Fit(u, n);
        var yOnU = LinearFit.Fit(u, y);
        var rn = new double[m];
        var ry = new double[m];
        for (var i = 0; i < m; i++)
        {
            rn[i] = n[i] - nOnU.Intercept - nOnU.Slope * u[i];
            ry[i] = y[i] - yOnU.Intercept - yOnU.Slope * u[i];
        }
        var lambda = LinearFit.Fit(rn, ry).Slope;
        var rest = new double[m];
        for (var i = 0; i < m; i++) rest[i] = y[i] - lambda * n[i];
        var gammaFit = LinearFit.Fit(u, rest);

        double mean = 0;
        for (var i = 0; i < m; i++) mean += y[i];
        mean /= m;
        double sse = 0, sst = 0;
        for (var i = 0; i < m; i++)
        {
            var r = y[i] - gammaFit.Intercept - lambda * n[i] - gammaFit.Slope * u[i];
            sse += r * r;
            sst += (y[i] - mean) * (y[i] - mean);
        }
        var r2 = sst == 0 ? 1.0 : 1.0 - sse / sst;
        var used = new int[m];
        orders.CopyTo(used);
        return new CorrectedGrowthRateFit(lambda, gammaFit.Slope, gammaFit.Intercept, r2, used);
    }

    private static void CheckInputs(ReadOnlySpan<int> orders, ReadOnlySpan<double> logNorms)
    {
        if (orders.Length != logNorms.Length)
            throw new ArgumentException($"{orders.Length} orders but {logNorms.Length} norms.", nameof(logNorms));
        for (var i = 0; i < orders.Length; i++)
        {
            if (i > 0 && orders[i] <= orders[i - 1]) throw new ArgumentException("Orders must be strictly increasing.", nameof(orders));
            if (double.IsNaN(logNorms[i]) || double.IsPositiveInfinity(logNorms[i]))
                throw new ArgumentException($"log v_n at n = {orders[i]} is {logNorms[i]}; only finite values or −∞ (v_n = 0) are allowed.", nameof(logNorms));
        }
    }
}
