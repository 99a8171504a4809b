using MathNet.Numerics;

namespace LambdaService.Measurement.Numerics;

/// <summary>Result of an ordinary least-squares line fit <c>y ≈ Intercept + Slope·x</c>.</summary>
public readonly record struct LineFit(double Slope, double Intercept, double RSquared);

/// <summary>Ordinary least squares for a straight line, computed by MathNet.Numerics (<see cref="MathNet.Numerics.Fit.Line"/>).</summary>
public static class LinearFit
{
    /// <summary>
    /// Fits <c>y = a + b x</c> by least squares: <c>b = Σ(x-x̄)(y-ȳ) / Σ(x-x̄)²</c>, <c>a = ȳ - b x̄</c>
    /// (MathNet's <see cref="MathNet.Numerics.Fit.Line"/>, two passes: means, then these sums),
    /// <c>R² = 1 - Σ(y-a-bx)² / Σ(y-ȳ)²</c> (<see cref="GoodnessOfFit.CoefficientOfDetermination"/>; 1 when all y are equal).
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than two points, different lengths, non-finite values or all x equal.</exception>
    public static LineFit Fit(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        // MathNet checks the lengths too, but returns NaN or ±∞ for non-finite values and equal x: checked here first.
        if (x.Length != y.Length) throw new ArgumentException($"x has {x.Length} values but y has {y.Length}.", nameof(y));
        if (x.Length < 2) throw new ArgumentException("A line fit needs at least two points.", nameof(x));
        bool xVaries = false, yVaries = false;
        for (var i = 0; i < x.Length; i++)
        {
            if (!double.IsFinite(x[i]) || !double.IsFinite(y[i])) throw new ArgumentException("Values to fit must be finite.", nameof(y));
            xVaries |= x[i] != x[0];
            yVaries |= y[i] != y[0];
        }
        if (!xVaries) throw new ArgumentException("All x values are equal; the slope is undefined.", nameof(x));

        var xs = x.ToArray();
        var ys = y.ToArray();
        var (intercept, slope) = MathNet.Numerics.Fit.Line(xs, ys);
        if (!yVaries) return new LineFit(slope, intercept, 1.0);
        var modelled = new double[xs.Length];
        for (var i = 0; i < xs.Length; i++) modelled[i] = intercept + slope * xs[i];
        return new LineFit(slope, intercept, GoodnessOfFit.CoefficientOfDetermination(modelled, ys));
    }
}
