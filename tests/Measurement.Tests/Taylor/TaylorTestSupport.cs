using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// Shared pieces of the Taylor-mode tests: seeded tensors (System.Random, not torch's global generator, so the
/// tests may run in parallel), the nested-autograd reference and the tolerance check.
/// </summary>
internal static class TaylorTestSupport
{
    static TaylorTestSupport() => TorchRuntime.EnsureConfigured();

    /// <summary>Uniform values in [low, high) from a seeded stream, float64.</summary>
    public static Tensor Uniform(Random rng, long[] shape, double low = -1, double high = 1)
    {
        var count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new double[count];
        for (var i = 0; i < count; i++) values[i] = low + (high - low) * rng.NextDouble();
        return tensor(values, shape, ScalarType.Float64);
    }

    /// <summary>
    /// The reference: <c>[B, K+1]</c> derivatives of orders 0..K of the per-sample scalar function along
    /// x + t v, order 0 from the plain function and orders 1..K from nested reverse mode
    /// (<see cref="AutogradDifferentiableEngine"/>).
    /// </summary>
    public static Tensor NestedAutograd(Func<Tensor, Tensor> scalarPerSample, Tensor x, Tensor v, int k)
    {
        var value = scalarPerSample(x).unsqueeze(1);
        var d = new AutogradDifferentiableEngine().DirectionalDerivatives(scalarPerSample, x, v, k);
        return cat([value, d], 1);
    }

    /// <summary>Taylor-mode <c>[B, K+1]</c> derivatives of a jet function returning a jet of shape <c>[B]</c>.</summary>
    public static Tensor TaylorDerivatives(Func<Jet, Jet> scalarPerSample, Tensor x, Tensor v, int k)
    {
        var f = scalarPerSample(Jet.Line(x, v, k));
        Assert.Equal([x.shape[0]], f.Shape);
        Assert.Equal(k, f.Order);
        return f.Derivatives().transpose(0, 1);
    }

    /// <summary>
    /// Asserts agreement order by order: <c>|a − e| ≤ rel · max(|e|, 10⁻³·max_b |e_b|)</c> (relative error, with a floor
    /// at a thousandth of the order's largest magnitude so that lines where an order happens to cross zero do not
    /// demand digits below rounding), and <c>|a| ≤ 10⁻¹²</c> where the whole order is zero.
    /// </summary>
    public static void AssertClose(Tensor actual, Tensor expected, double rel, string context)
    {
        var a = actual.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        var e = expected.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        Assert.Equal(expected.shape, actual.shape);
        var rows = (int)expected.shape[0];
        var cols = a.Length / rows;
        for (var n = 0; n < cols; n++)
        {
            double scale = 0;
            for (var b = 0; b < rows; b++) scale = Math.Max(scale, Math.Abs(e[b * cols + n]));
            for (var b = 0; b < rows; b++)
            {
                var ai = a[b * cols + n];
                var ei = e[b * cols + n];
                var bound = scale == 0 ? 1e-12 : rel * Math.Max(Math.Abs(ei), 1e-3 * scale);
                Assert.True(Math.Abs(ai - ei) <= bound && double.IsFinite(ai),
                    $"{context}: line {b}, order {n}: taylor {ai:R} vs reference {ei:R} (|diff| {Math.Abs(ai - ei):E2} > {bound:E2})");
            }
        }
    }

    /// <summary>Fixed random weights of <paramref name="shape"/> (per sample) reducing an output to one scalar per sample.</summary>
    public static Tensor Weights(long[] shape, int seed) => Uniform(new Random(seed), shape, -1, 1);

    /// <summary><c>Σ_{non-batch} w ⊙ y</c> for plain outputs <c>[B, …]</c>.</summary>
    public static Tensor Reduce(Tensor y, Tensor w)
    {
        var p = y * w;
        return p.dim() == 1 ? p : p.flatten(1).sum(1);
    }

    /// <summary>The same reduction applied to a jet (linear: per coefficient), returning a jet <c>[B]</c>.</summary>
    public static Jet Reduce(Jet y, Tensor w)
    {
        var p = y.Coefficients * w;
        return new Jet(p.dim() == 2 ? p : p.flatten(2).sum(2));
    }
}
