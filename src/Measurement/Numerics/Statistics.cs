namespace LambdaService.Measurement.Numerics;

/// <summary>Small statistics helpers.</summary>
public static class Statistics
{
    /// <summary>
    /// Quantile of sorted data by linear interpolation between order statistics
    /// (the "type 7" definition used by R and NumPy's default): position <c>q·(n−1)</c>.
    /// </summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) return double.NaN;
        if (q is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(q), q, "A quantile lies in [0, 1].");
        var pos = q * (sorted.Count - 1);
        var lo = (int)Math.Floor(pos);
        var hi = Math.Min(lo + 1, sorted.Count - 1);
        var frac = pos - lo;
        if (double.IsInfinity(sorted[lo]) || double.IsInfinity(sorted[hi])) return frac == 0 ? sorted[lo] : sorted[hi];
        return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
    }
}
