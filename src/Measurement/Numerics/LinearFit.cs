namespace LambdaService.Measurement.Numerics;

/// <summary>Result of an ordinary least-squares line fit <c>y ≈ Intercept + Slope·x</c>.</summary>
public readonly record struct LineFit(double Slope, double Intercept, double RSquared);

/// <summary>Ordinary least squares for a straight line.</summary>
public static class LinearFit
{
    /// <summary>
    /// Fits <c>y = a + b x</c> by least squares: <c>b = Σ(x-x̄)(y-ȳ) / Σ(x-x̄)²</c>, <c>a = ȳ - b x̄</c>,
    /// <c>R² = 1 - Σ(y-a-bx)² / Σ(y-ȳ)²</c> (1 when all y are equal).
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than two points, different lengths, non-finite values or all x equal.</exception>
    public static LineFit Fit(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"x has {x.Length} values but y has {y.Length}.", nameof(y));
        if (x.Length < 2) throw new ArgumentException("A line fit needs at least two points.", nameof(x));
        double mx = 0, my = 0;
        for (var i = 0; i < x.Length; i++)
        {
            if (!double.IsFinite(x[i]) || !double.IsFinite(y[i])) throw new ArgumentException("Values to fit must be finite.", nameof(y));
            mx += x[i];
            my += y[i];
        }
        mx /= x.Length;
        my /= x.Length;
        double sxx = 0, sxy = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
            syy += (y[i] - my) * (y[i] - my);
        }
        if (sxx == 0) throw new ArgumentException("All x values are equal; the slope is undefined.", nameof(x));
        var slope = sxy / sxx;
        var intercept = my - slope * mx;
        double sse = 0;
        for (var i = 0; i < x.Length; i++)
        {
            var r = y[i] - intercept - slope * x[i];
            sse += r * r;
        }
        var r2 = syy == 0 ? 1.0 : 1.0 - sse / syy;
        return new LineFit(slope, intercept, r2);
    }
}
