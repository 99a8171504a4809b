using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

/// <summary>
/// Test reference, independent of TorchSharp: a linear classifier <c>z = W x + b</c> with softmax
/// cross-entropy in double precision, its gradient by the textbook formula, and the CRR penalty of it in
/// closed form. Along a line <c>x + t v</c> the logits are <c>z + t a</c> with <c>a = W v</c>, and
/// <c>ℓ(t) = log Σ_k exp(z_k + t a_k) − z_y − t a_y</c>; the t-derivatives of the log-partition are the
/// cumulants of <c>a</c> under <c>p = softmax(z)</c>, so <c>D¹ℓ = E_p[a] − a_y</c>, <c>D²ℓ = Var_p(a)</c>,
/// <c>D³ℓ = E_p[(a − μ)³]</c>, <c>D⁴ℓ = E_p[(a − μ)⁴] − 3 Var_p(a)²</c>.
/// </summary>
internal sealed class LinearSoftmax(double[,] w, double[] b)
{
    public double[,] W { get; } = w;

    public double[] B { get; } = b;

    public int Classes => B.Length;

    public int Features => W.GetLength(1);

    /// <summary>Parameters flattened as torch orders them: W row-major, then b.</summary>
    public double[] Flat => [.. W.Cast<double>(), .. B];

    public static LinearSoftmax FromFlat(double[] flat, int classes, int features)
    {
        var w = new double[classes, features];
        for (var k = 0; k < classes; k++) for (var j = 0; j < features; j++) w[k, j] = flat[k * features + j];
        return new LinearSoftmax(w, flat[(classes * features)..]);
    }

    public double[] Probabilities(double[] x)
    {
        var z = new double[Classes];
        for (var k = 0; k < Classes; k++)
        {
            z[k] = B[k];
            for (var j = 0; j < Features; j++) z[k] += W[k, j] * x[j];
        }
        var max = z.Max();
        var e = z.Select(v => Math.Exp(v - max)).ToArray();
        var s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    /// <summary>Gradient of <c>mean_i CE</c>: <c>∂/∂W = mean_i (p_i − e_{y_i}) x_iᵀ</c>, <c>∂/∂b = mean_i (p_i − e_{y_i})</c>; flattened like <see cref="Flat"/>.</summary>
    public double[] CrossEntropyGradient(double[][] x, int[] y)
    {
        var g = new double[Classes * Features + Classes];
        for (var i = 0; i < x.Length; i++)
        {
            var p = Probabilities(x[i]);
            for (var k = 0; k < Classes; k++)
            {
                var delta = (p[k] - (k == y[i] ? 1 : 0)) / x.Length;
                for (var j = 0; j < Features; j++) g[k * Features + j] += delta * x[i][j];
                g[Classes * Features + k] += delta;
            }
        }
        return g;
    }

    /// <summary>The n-th derivative (n = 1..4) of <c>CE(W(x + t v) + b, y)</c> at t = 0, from the cumulants (see the class summary).</summary>
    public double LossDerivative(double[] x, double[] v, int y, int n)
    {
        var p = Probabilities(x);
        var a = new double[Classes];
        for (var k = 0; k < Classes; k++) for (var j = 0; j < Features; j++) a[k] += W[k, j] * v[j];
        double mu = 0;
        for (var k = 0; k < Classes; k++) mu += p[k] * a[k];
        double Central(int m) => Enumerable.Range(0, Classes).Sum(k => p[k] * Math.Pow(a[k] - mu, m));
        return n switch
        {
            1 => mu - a[y],
            2 => Central(2),
            3 => Central(3),
            4 => Central(4) - 3 * Central(2) * Central(2),
            _ => throw new ArgumentOutOfRangeException(nameof(n)),
        };
    }

    /// <summary>CRR penalty <c>Σ_{n=min..max} mean_{i,d} (Dⁿ ℓ_i)²</c> with directions <c>v[i·D + d]</c>.</summary>
    public double Penalty(double[][] x, int[] y, double[][] v, int directions, int min, int max)
    {
        double total = 0;
        for (var n = min; n <= max; n++)
        {
            double s = 0;
            for (var i = 0; i < x.Length; i++) for (var d = 0; d < directions; d++) s += Math.Pow(LossDerivative(x[i], v[i * directions + d], y[i], n), 2);
            total += s / (x.Length * directions);
        }
        return total;
    }
}

/// <summary>Puts values into and reads them from a network's parameters (in <c>parameters()</c> order, flattened).</summary>
internal static class ParameterAccess
{
    public static Mlp Float64Mlp(int[] widths, double[] flat)
    {
        var mlp = new Mlp(widths);
        mlp.to(ScalarType.Float64);
        Set(mlp, flat);
        return mlp;
    }

    public static void Set(nn.Module module, double[] flat)
    {
        using var noGrad = no_grad();
        var offset = 0;
        foreach (var p in module.parameters())
        {
            var n = (int)p.numel();
            using var values = tensor(flat[offset..(offset + n)], p.shape, ScalarType.Float64);
            p.copy_(values);
            offset += n;
        }
        Assert.Equal(flat.Length, offset);
    }

    public static double[] Get(nn.Module module) =>
        module.parameters().SelectMany(p =>
        {
            using var scope = NewDisposeScope();   // holds detach()'s result while to() reads it
            return p.detach().to(ScalarType.Float64).cpu().data<double>().ToArray();
        }).ToArray();

    public static Tensor Rows(double[][] rows) => tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length], ScalarType.Float64);

    public static Tensor Labels(int[] y) => tensor(y.Select(v => (long)v).ToArray(), [y.Length]);

    public static double[][] Split(double[] flat, int width) => flat.Chunk(width).ToArray();
}
