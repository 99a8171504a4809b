using LambdaService.Measurement.Numerics;
using MathNet.Numerics;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.RootFinding;

namespace LambdaService.Training.Sweeps;

/// <summary>
/// One quantity (λ, test error, …) over the runs (seeds) of one sweep cell.
/// <list type="bullet">
/// <item><c>Mean = x̄ = (1/n) Σ xᵢ</c> over the <paramref name="Count"/> non-NaN values;</item>
/// <item><c>StandardDeviation = s = √(Σ (xᵢ − x̄)² / (n − 1))</c> (the sample standard deviation);</item>
/// <item><c>Ci95 = [x̄ − t·s/√n, x̄ + t·s/√n]</c> with <c>t = t_{0.975, n−1}</c>, the 97.5% quantile of Student's t
/// with n − 1 degrees of freedom (<see cref="SweepStatistics.StudentTQuantile"/>).</item>
/// </list>
/// </summary>
/// <param name="Count">Values used: the non-NaN ones.</param>
/// <param name="NaNCount">NaN values skipped (e.g. runs whose λ could not be measured).</param>
/// <param name="Mean">Arithmetic mean of the used values.</param>
/// <param name="StandardDeviation">Sample standard deviation (divisor n − 1); null when <paramref name="Count"/> is 1.</param>
/// <param name="Ci95">95% confidence interval of the mean, <c>[low, high]</c>; null when <paramref name="Count"/> is 1.</param>
/// <param name="Min">Smallest used value.</param>
/// <param name="Max">Largest used value.</param>
public sealed record Summary(int Count, int NaNCount, double Mean, double? StandardDeviation, double[]? Ci95, double Min, double Max);

/// <summary>
/// Association of two quantities over the runs of a sweep (the paper's §5: λ against test error).
/// <list type="bullet">
/// <item><c>R = Sxy / √(Sxx·Syy)</c> (Pearson), with <c>Sxy = Σ (xᵢ − x̄)(yᵢ − ȳ)</c>, <c>Sxx = Σ (xᵢ − x̄)²</c>, <c>Syy = Σ (yᵢ − ȳ)²</c>;</item>
/// <item><c>PValue = (1 + #{b : |r_b| ≥ |R|}) / (1 + B)</c>, two-sided, over B permutations of y
/// (a seeded Fisher–Yates shuffle; r_b the Pearson r of x with the b-th shuffle);</item>
/// <item><c>Slope = Sxy / Sxx</c>, <c>Intercept = ȳ − Slope·x̄</c> (ordinary least squares of y on x);</item>
/// <item><c>SlopeCi95</c>: percentile bootstrap interval — the 2.5% and 97.5% quantiles (type 7,
/// <see cref="Statistics.Quantile"/>) of the OLS slope over resamples of the n pairs drawn with replacement.</item>
/// </list>
/// </summary>
/// <param name="Count">Pairs used: those in which neither value is NaN.</param>
/// <param name="SkippedPairs">Pairs skipped because x or y was NaN.</param>
/// <param name="R">Pearson correlation coefficient.</param>
/// <param name="PValue">Two-sided permutation-test p-value; at least <c>1 / (1 + Permutations)</c>.</param>
/// <param name="Permutations">Permutations drawn (B).</param>
/// <param name="Slope">OLS slope of y on x.</param>
/// <param name="Intercept">OLS intercept of y on x.</param>
/// <param name="SlopeCi95">Bootstrap 95% interval of the slope, <c>[low, high]</c>; null only when no resample had two distinct x values.</param>
/// <param name="BootstrapResamples">Resamples drawn.</param>
/// <param name="BootstrapUsed">Resamples used: those whose x values were not all equal (their slope is undefined).</param>
/// <param name="Seed">Seed of the permutations and the resamples.</param>
public sealed record Correlation(
    int Count,
    int SkippedPairs,
    double R,
    double PValue,
    int Permutations,
    double Slope,
    double Intercept,
    double[]? SlopeCi95,
    int BootstrapResamples,
    int BootstrapUsed,
    int Seed);

/// <summary>
/// Statistics over the runs of a sweep: means with Student-t intervals, and the correlation of two
/// quantities with a permutation test and a bootstrap interval of the regression slope.
/// </summary>
public static class SweepStatistics
{
    /// <summary>Largest number of permutations or bootstrap resamples one call accepts.</summary>
    public const int MaxResamples = 1_000_000;

    /// <summary>
    /// |r_b| counts as at least |R| when <c>|r_b| ≥ |R| − RTolerance</c>: a permutation that gives the same
    /// Sxy up to the order of summation (identical y values swapped, mirror images) must count as a tie.
    /// </summary>
    private const double RTolerance = 1e-12;

    /// <summary>
    /// Count, mean, sample standard deviation, 95% Student-t interval of the mean, minimum and maximum of
    /// <paramref name="values"/>, NaN values skipped and counted (see <see cref="Summary"/> for the formulas).
    /// With a single value the standard deviation and the interval are null (undefined for n = 1).
    /// </summary>
    /// <exception cref="ArgumentException">No values, only NaN values, or an infinite value.</exception>
    public static Summary Summarize(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) throw new ArgumentException("There are no values to summarize.", nameof(values));
        var used = new List<double>(values.Count);
        var nan = 0;
        for (var i = 0; i < values.Count; i++)
        {
            var v = values[i];
            if (double.IsNaN(v)) nan++;
            else if (double.IsInfinity(v)) throw new ArgumentException($"Value {i} is {v}; a mean needs finite values.", nameof(values));
            else used.Add(v);
        }
        if (used.Count == 0) throw new ArgumentException($"All {values.Count} values are NaN; there is nothing to summarize.", nameof(values));

        var n = used.Count;
        double sum = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var v in used)
        {
            sum += v;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        var mean = sum / n;
        if (n == 1) return new Summary(1, nan, mean, null, null, min, max);

        double ss = 0;
        foreach (var v in used) ss += (v - mean) * (v - mean);
        var sd = Math.Sqrt(ss / (n - 1));
        var half = StudentTQuantile(0.975, n - 1) * sd / Math.Sqrt(n);
        return new Summary(n, nan, mean, sd, [mean - half, mean + half], min, max);
    }

    /// <summary>
    /// Pearson r of <paramref name="x"/> and <paramref name="y"/>, its two-sided permutation-test p-value over
    /// <paramref name="permutations"/> shuffles of y, the OLS line of y on x and a percentile bootstrap 95%
    /// interval of its slope over <paramref name="bootstrap"/> resamples of the pairs (formulas on
    /// <see cref="Correlation"/>). Pairs in which either value is NaN are skipped and counted. The shuffles
    /// draw from <c>Seeds.Stream(seed, 1)</c> and the resamples from <c>Seeds.Stream(seed, 2)</c>, so the same
    /// inputs and seed give the same result.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// Lengths differ, fewer than three usable pairs, an infinite value, all x equal or all y equal (r is then
    /// undefined), or <paramref name="permutations"/> / <paramref name="bootstrap"/> outside 1..<see cref="MaxResamples"/>.
    /// </exception>
    public static Correlation Correlate(IReadOnlyList<double> x, IReadOnlyList<double> y, int permutations, int bootstrap, int seed)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count) throw new ArgumentException($"x has {x.Count} values but y has {y.Count}; they must be pairs.", nameof(y));
        if (permutations is < 1 or > MaxResamples)
            throw new ArgumentOutOfRangeException(nameof(permutations), permutations, $"The number of permutations must be between 1 and {MaxResamples}.");
        if (bootstrap is < 1 or > MaxResamples)
            throw new ArgumentOutOfRangeException(nameof(bootstrap), bootstrap, $"The number of bootstrap resamples must be between 1 and {MaxResamples}.");

        var xs = new List<double>(x.Count);
        var ys = new List<double>(y.Count);
        var skipped = 0;
        for (var i = 0; i < x.Count; i++)
        {
            if (double.IsNaN(x[i]) || double.IsNaN(y[i]))
            {
                skipped++;
                continue;
            }
            if (double.IsInfinity(x[i])) throw new ArgumentException($"x[{i}] is {x[i]}; a correlation needs finite values.", nameof(x));
            if (double.IsInfinity(y[i])) throw new ArgumentException($"y[{i}] is {y[i]}; a correlation needs finite values.", nameof(y));
            xs.Add(x[i]);
            ys.Add(y[i]);
        }
        var n = xs.Count;
        if (n < 3)
            throw new ArgumentException($"A correlation needs at least three pairs without NaN; there are {n} ({skipped} skipped).", nameof(x));
        if (AllEqual(xs)) throw new ArgumentException("All x values are equal; the correlation and the slope are undefined.", nameof(x));
        if (AllEqual(ys)) throw new ArgumentException("All y values are equal; the correlation is undefined.", nameof(y));

        double mx = 0, my = 0;
        for (var i = 0; i < n; i++)
        {
            mx += xs[i];
            my += ys[i];
        }
        mx /= n;
        my /= n;
        var dx = new double[n];
        var dy = new double[n];
        double sxx = 0, syy = 0, sxy = 0;
        for (var i = 0; i < n; i++)
        {
            dx[i] = xs[i] - mx;
            dy[i] = ys[i] - my;
            sxx += dx[i] * dx[i];
            syy += dy[i] * dy[i];
            sxy += dx[i] * dy[i];
        }
        var scale = Math.Sqrt(sxx * syy);
        var r = Math.Clamp(sxy / scale, -1.0, 1.0);
        var fit = LinearFit.Fit(xs.ToArray(), ys.ToArray());

        // Permutation test: Sxx and Syy do not change under a permutation of y, so r_b = Sxy_b / √(Sxx·Syy).
        // Shuffling the previous shuffle again gives another uniformly random permutation.
        var permutationRng = Seeds.Stream(seed, 1);
        var shuffled = (double[])dy.Clone();
        var atLeast = 0;
        var threshold = Math.Abs(r) - RTolerance;
        for (var b = 0; b < permutations; b++)
        {
            for (var i = n - 1; i > 0; i--)
            {
                var j = permutationRng.Next(i + 1);
                (shuffled[i], shuffled[j]) = (shuffled[j], shuffled[i]);
            }
            double s = 0;
            for (var i = 0; i < n; i++) s += dx[i] * shuffled[i];
            if (Math.Abs(s / scale) >= threshold) atLeast++;
        }
        var p = (1.0 + atLeast) / (1.0 + permutations);

        // Percentile bootstrap of the slope: resample pairs with replacement; skip resamples whose x are all equal.
        var bootstrapRng = Seeds.Stream(seed, 2);
        var bx = new double[n];
        var by = new double[n];
        var slopes = new List<double>(bootstrap);
        for (var b = 0; b < bootstrap; b++)
        {
            var distinct = false;
            for (var i = 0; i < n; i++)
            {
                var k = bootstrapRng.Next(n);
                bx[i] = xs[k];
                by[i] = ys[k];
                if (bx[i] != bx[0]) distinct = true;
            }
            if (!distinct) continue;
            slopes.Add(LinearFit.Fit(bx, by).Slope);
        }
        double[]? slopeCi = null;
        if (slopes.Count > 0)
        {
            slopes.Sort();
            slopeCi = [Statistics.Quantile(slopes, 0.025), Statistics.Quantile(slopes, 0.975)];
        }

        return new Correlation(n, skipped, r, p, permutations, fit.Slope, fit.Intercept, slopeCi, bootstrap, slopes.Count, seed);
    }

    /// <summary>
    /// MathNet's <see cref="StudentT.InvCDF"/> looks for the quantile only in <c>[−800, 800]</c> (Brent's method on that
    /// fixed bracket) and throws <see cref="MathNet.Numerics.NonConvergenceException"/> beyond it, e.g. for
    /// <c>t_{0.9999, 1} = tan(0.4999π) ≈ 3183</c>, which SweepStatisticsTests'
    /// <c>The_t_distribution_function_inverts_the_quantile</c> asks for. Quantiles beyond this bound are found here.
    /// </summary>
    private const double InvCdfBound = 800;

    /// <summary>
    /// The quantile <c>t_{p, ν}</c> of Student's t distribution with <paramref name="degreesOfFreedom"/> ν:
    /// the t with <c>P(T ≤ t) = p</c>, i.e. the root of <c>P(T &gt; t) = ½·I_{ν/(ν+t²)}(ν/2, ½) = 1 − p</c> (t ≥ 0;
    /// I the regularized incomplete beta function, <see cref="StudentTCdf"/>); <c>t_{1−p} = −t_p</c>. Computed by
    /// MathNet.Numerics' <see cref="StudentT.InvCDF"/> (Brent's method to 1e-12 absolute) when <c>|t| ≤ 800</c>; beyond,
    /// where that method does not look (<see cref="InvCdfBound"/>), by Brent's method on <c>P(T &gt; t)/(1 − p) − 1</c> over
    /// a bracket doubled until it holds the root.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">p outside (0, 1), or ν not finite and positive.</exception>
    public static double StudentTQuantile(double p, double degreesOfFreedom)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "A quantile's probability lies strictly between 0 and 1.");
        CheckDegreesOfFreedom(degreesOfFreedom);
        if (p == 0.5) return 0;
        if (p < 0.5) return -StudentTQuantile(1 - p, degreesOfFreedom);
        if (StudentT.CDF(0, 1, degreesOfFreedom, InvCdfBound) >= p) return StudentT.InvCDF(0, 1, degreesOfFreedom, p);

        var tail = 1 - p; // the upper tail the quantile leaves, smaller than P(T > 800)
        double lo = InvCdfBound, hi = 2 * InvCdfBound;
        while (UpperTail(hi, degreesOfFreedom) > tail)
        {
            lo = hi;
            hi *= 2;
            if (double.IsInfinity(hi)) return double.PositiveInfinity;
        }
        // Brent stops once |f| ≤ accuracy, so f is taken relative to the tail: P(T > t) − tail itself is ~1e-5 here and
        // flat (slope ~1/(πt²)), which stopped it 7e-9 relative away from t_{0.99999, 1} (SweepStatisticsTests'
        // The_t_quantile_beyond_800_where_mathnet_does_not_search_matches_the_closed_forms).
        return Brent.FindRoot(t => UpperTail(t, degreesOfFreedom) / tail - 1, lo, hi, accuracy: 1e-13, maxIterations: 200);
    }

    /// <summary>
    /// Student's t distribution function <c>P(T ≤ t)</c> with ν = <paramref name="degreesOfFreedom"/>:
    /// <c>1 − ½·I_{ν/(ν+t²)}(ν/2, ½)</c> for t ≥ 0 and <c>½·I_{ν/(ν+t²)}(ν/2, ½)</c> for t &lt; 0, with I the
    /// regularized incomplete beta function (MathNet.Numerics' <see cref="StudentT.CDF"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">t is NaN, or ν not finite and positive.</exception>
    public static double StudentTCdf(double t, double degreesOfFreedom)
    {
        if (double.IsNaN(t)) throw new ArgumentOutOfRangeException(nameof(t), t, "t must be a number.");
        CheckDegreesOfFreedom(degreesOfFreedom);
        return StudentT.CDF(0, 1, degreesOfFreedom, t);
    }

    private static void CheckDegreesOfFreedom(double degreesOfFreedom)
    {
        if (!(degreesOfFreedom > 0) || double.IsInfinity(degreesOfFreedom))
            throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "The degrees of freedom must be finite and positive.");
    }

    /// <summary><c>P(T &gt; t) = ½·I_{ν/(ν+t²)}(ν/2, ½)</c> for t ≥ 0, taken directly rather than as <c>1 − P(T ≤ t)</c>, which loses the far tail to cancellation.</summary>
    private static double UpperTail(double t, double nu) =>
        double.IsPositiveInfinity(t) ? 0 : 0.5 * SpecialFunctions.BetaRegularized(nu / 2, 0.5, nu / (nu + t * t));

    private static bool AllEqual(List<double> values)
    {
        for (var i = 1; i < values.Count; i++)
            if (values[i] != values[0]) return false;
        return true;
    }
}
