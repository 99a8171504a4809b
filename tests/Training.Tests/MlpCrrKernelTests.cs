using LambdaService.Measurement.Engines;
using LambdaService.Training.Methods;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

/// <summary>
/// The fused CRR kernel against nested autograd (an independent construction: first-order autograd applied n times to the
/// plain forward pass, then autograd once more for the parameter gradient), all in float64.
/// </summary>
[Collection(TorchGeneratorCollection.Name)]
public class MlpCrrKernelTests
{
    private const int Points = 5, Directions = 2;

    private static double[] Uniform(Random rng, int count, double low = -1, double high = 1) =>
        [.. Enumerable.Range(0, count).Select(_ => low + (high - low) * rng.NextDouble())];

    /// <summary>J = mean CE + scale·Σ_{n=nmin..nmax} mean_lines (Dⁿℓ)², and its gradient, by nested autograd on the module.</summary>
    private static (double Loss, double Penalty, double[][] Gradients) Nested(Mlp mlp, double[] x, long[] y, double[] v, int inWidth, int nmin, int nmax, double scale,
        bool[]? penalised = null)
    {
        using var scope = NewDisposeScope();
        var xt = tensor(x, [Points, inWidth], ScalarType.Float64);
        var vt = tensor(v, [Points * Directions, inWidth], ScalarType.Float64);
        var yt = tensor(y);
        var yr = yt.repeat_interleave(Directions, 0);
        var d = new AutogradDifferentiableEngine().DirectionalDerivatives(z => Objective.Evaluate(TargetKind.Loss, mlp.call(z), yr), xt.repeat_interleave(Directions, 0), vt, nmax);
        var chosen = d.narrow(1, nmin - 1, nmax - nmin + 1);
        if (penalised is not null)
        {
            var lines = Enumerable.Range(0, Points * Directions).Where(l => penalised[l / Directions]).Select(l => (long)l).ToArray();
            chosen = chosen.index_select(0, tensor(lines));
        }
        var penalty = chosen.square().mean([0]).sum();
        var loss = nn.functional.cross_entropy(mlp.call(xt), yt);
        var parameters = mlp.parameters().Select(p => (Tensor)p).ToList();
        var grads = autograd.grad([loss + scale * penalty], parameters);
        return (loss.ToDouble(), penalty.ToDouble(), [.. grads.Select(g => g.data<double>().ToArray())]);
    }

    /// <summary>The mlp's weights and biases as the kernel takes them, and gradient buffers of the same sizes.</summary>
    private static (T[][] W, T[][] B, T[][] GW, T[][] GB) Arrays<T>(Mlp mlp) where T : unmanaged
    {
        var p = mlp.parameters().Select(t => t.to(typeof(T) == typeof(float) ? ScalarType.Float32 : ScalarType.Float64).data<T>().ToArray()).ToArray();
        T[][] w = [.. p.Where((_, i) => i % 2 == 0)], b = [.. p.Where((_, i) => i % 2 == 1)];
        return (w, b, [.. w.Select(a => new T[a.Length])], [.. b.Select(a => new T[a.Length])]);
    }

    [Theory]
    [InlineData("tanh", 2, 4)]
    [InlineData("tanh", 1, 6)]
    [InlineData("sigmoid", 1, 4)]
    [InlineData("softplus", 2, 5)]
    [InlineData("relu", 1, 4)]
    public void The_objective_and_its_parameter_gradient_equal_nested_autograd_in_double(string activation, int nmin, int nmax)
    {
        const double scale = 0.7;
        int[] widths = [3, 6, 5, 4];
        manual_seed(41);
        using var mlp = new Mlp(widths, activation);
        mlp.to(ScalarType.Float64);
        var rng = new Random(42);
        var x = Uniform(rng, Points * 3, -1.5, 1.5);
        var v = Uniform(rng, Points * Directions * 3);
        long[] y = [0, 3, 1, 2, 3];
        var expected = Nested(mlp, x, y, v, 3, nmin, nmax, scale);

        var (w, b, gw, gb) = Arrays<double>(mlp);
        var kernel = new MlpCrrKernel<double>(widths, activation);
        var actual = kernel.Evaluate(w, b, x, y, v, Directions, nmin, nmax, scale, gw, gb);

        Assert.Equal(expected.Loss, actual.Loss, 1e-12);
        Assert.True(expected.Penalty > 1e-6, "the penalty should not vanish here");
        Assert.True(Math.Abs(actual.Penalty - expected.Penalty) <= 1e-10 * expected.Penalty, $"penalty {actual.Penalty:R} vs {expected.Penalty:R}");
        AssertGradients(gw, gb, expected.Gradients);
    }

    /// <summary>Every gradient (W₀, b₀, W₁, b₁, … as the module lists them) within 1e-10 of the largest of its parameter's reference, none all zero.</summary>
    private static void AssertGradients(double[][] weightGradients, double[][] biasGradients, double[][] expected)
    {
        var grads = weightGradients.Zip(biasGradients).SelectMany(p => new[] { p.First, p.Second }).ToArray();
        Assert.Equal(expected.Length, grads.Length);
        for (var i = 0; i < grads.Length; i++)
        {
            var largest = expected[i].Max(Math.Abs);
            Assert.True(largest > 0, $"parameter {i}'s gradient should not vanish");
            for (var j = 0; j < grads[i].Length; j++)
            {
                Assert.True(Math.Abs(grads[i][j] - expected[i][j]) <= 1e-10 * largest, $"parameter {i}[{j}]: {grads[i][j]:R} vs {expected[i][j]:R}");
            }
        }
    }

    [Fact]
    public void A_class_filter_averages_the_penalty_over_the_flagged_points_lines_only_as_nested_autograd_does()
    {
        const double scale = 0.9;
        int[] widths = [3, 6, 4];
        manual_seed(43);
        using var mlp = new Mlp(widths);
        mlp.to(ScalarType.Float64);
        var rng = new Random(44);
        var x = Uniform(rng, Points * 3);
        var v = Uniform(rng, Points * Directions * 3);
        long[] y = [0, 3, 1, 3, 2];
        bool[] penalised = [false, true, false, true, false];
        var expected = Nested(mlp, x, y, v, 3, 1, 4, scale, penalised);

        var (w, b, gw, gb) = Arrays<double>(mlp);
        // The unflagged points' directions must not matter: scramble them.
        for (var i = 0; i < v.Length; i++) if (!penalised[i / (Directions * 3)]) v[i] = 100 + i;
        var actual = new MlpCrrKernel<double>(widths, "tanh").Evaluate(w, b, x, y, v, Directions, 1, 4, scale, gw, gb, penalised);

        Assert.Equal(expected.Loss, actual.Loss, 1e-12);
        Assert.True(Math.Abs(actual.Penalty - expected.Penalty) <= 1e-10 * expected.Penalty, $"penalty {actual.Penalty:R} vs {expected.Penalty:R}");
        AssertGradients(gw, gb, expected.Gradients);
        var none = new MlpCrrKernel<double>(widths, "tanh").Evaluate(w, b, x, y, v, Directions, 1, 4, scale, gw, gb, new bool[Points]);
        Assert.Equal(0, none.Penalty);
    }

    [Theory]
    [InlineData("tanh", "fc1", 1)]
    [InlineData("tanh", "act1", 2)]
    [InlineData("softplus", "fc2", 3)]
    [InlineData("relu", "act2", 4)]
    public void Lines_that_start_at_a_layer_give_the_objective_and_gradient_of_nested_autograd_through_the_cut_network(string activation, string layer, int start)
    {
        // Independent construction: h = ForwardTo(layer, x) keeps its graph to the layers before the cut, nested autograd
        // differentiates CE(ForwardFrom(layer, h + t·u)) along u, and autograd takes every parameter's gradient through both.
        const double scale = 0.8;
        int[] widths = [3, 6, 5, 4];
        manual_seed(45);
        using var mlp = new Mlp(widths, activation);
        mlp.to(ScalarType.Float64);
        var rng = new Random(46);
        var x = Uniform(rng, Points * 3, -1.5, 1.5);
        var width = widths[(start + 1) / 2];
        var u = Uniform(rng, Points * Directions * width);
        long[] y = [1, 0, 3, 2, 3];
        double expectedLoss, expectedPenalty;
        double[][] expectedGrads;
        using (var scope = NewDisposeScope())
        {
            var xt = tensor(x, [Points, 3], ScalarType.Float64);
            var yt = tensor(y);
            var yr = yt.repeat_interleave(Directions, 0);
            var h = mlp.ForwardTo(layer, xt).repeat_interleave(Directions, 0);
            var d = new AutogradDifferentiableEngine().DirectionalDerivatives(z => Objective.Evaluate(TargetKind.Loss, mlp.ForwardFrom(layer, z), yr), h,
                tensor(u, [Points * Directions, width], ScalarType.Float64), 4);
            var penalty = d.square().mean([0]).sum();
            var loss = nn.functional.cross_entropy(mlp.call(xt), yt);
            var reference = autograd.grad([loss + scale * penalty], [.. mlp.parameters().Select(p => (Tensor)p)]);
            (expectedLoss, expectedPenalty, expectedGrads) = (loss.ToDouble(), penalty.ToDouble(), [.. reference.Select(g => g.data<double>().ToArray())]);
        }

        var (w, b, gw, gb) = Arrays<double>(mlp);
        var actual = new MlpCrrKernel<double>(widths, activation).Evaluate(w, b, x, y, u, Directions, 1, 4, scale, gw, gb, start: start);

        Assert.Equal(expectedLoss, actual.Loss, 1e-12);
        Assert.True(expectedPenalty > 1e-8 && Math.Abs(actual.Penalty - expectedPenalty) <= 1e-10 * expectedPenalty, $"penalty {actual.Penalty:R} vs {expectedPenalty:R}");
        // Nonzero gradients everywhere: the layers before the cut train too.
        AssertGradients(gw, gb, expectedGrads);
    }

    [Fact]
    public void Float32_agrees_with_float64_to_single_precision_and_a_second_call_reuses_its_buffers_without_carrying_state()
    {
        int[] widths = [2, 8, 8, 2];
        manual_seed(7);
        using var mlp = new Mlp(widths);
        var rng = new Random(8);
        var x = Uniform(rng, Points * 2);
        var v = Uniform(rng, Points * Directions * 2);
        long[] y = [0, 1, 1, 0, 1];
        var (w64, b64, gw64, gb64) = Arrays<double>(mlp);
        var (w32, b32, gw32, gb32) = Arrays<float>(mlp);
        var k64 = new MlpCrrKernel<double>(widths, "tanh");
        var k32 = new MlpCrrKernel<float>(widths, "tanh");
        var o64 = k64.Evaluate(w64, b64, x, y, v, Directions, 1, 4, 0.5, gw64, gb64);
        var first = k32.Evaluate(w32, b32, [.. x.Select(d => (float)d)], y, [.. v.Select(d => (float)d)], Directions, 1, 4, 0.5, gw32, gb32);
        var firstGrad = gw32[1].ToArray();
        var again = k32.Evaluate(w32, b32, [.. x.Select(d => (float)d)], y, [.. v.Select(d => (float)d)], Directions, 1, 4, 0.5, gw32, gb32);

        Assert.Equal(o64.Loss, first.Loss, 1e-5);
        Assert.True(Math.Abs(first.Penalty - o64.Penalty) <= 1e-4 * o64.Penalty, $"{first.Penalty} vs {o64.Penalty}");
        var largest = gw64[1].Max(Math.Abs);
        for (var j = 0; j < firstGrad.Length; j++) Assert.True(Math.Abs(firstGrad[j] - gw64[1][j]) <= 1e-4 * largest, $"W1[{j}]: {firstGrad[j]} vs {gw64[1][j]}");
        Assert.Equal(first, again);
        Assert.Equal(firstGrad, gw32[1]);
    }

    [Fact]
    public void Bad_shapes_labels_and_activations_are_refused_with_the_argument_named()
    {
        var kernel = new MlpCrrKernel<double>([2, 3, 2], "tanh");
        double[][] w = [new double[6], new double[6]];
        double[][] b = [new double[3], new double[2]];
        double[][] gw = [new double[6], new double[6]];
        double[][] gb = [new double[3], new double[2]];
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => kernel.Evaluate(w, b, new double[3], [0, 1], new double[8], 2, 1, 4, 1, gw, gb)).ParamName);
        Assert.Equal("v", Assert.Throws<ArgumentException>(() => kernel.Evaluate(w, b, new double[4], [0, 1], new double[6], 2, 1, 4, 1, gw, gb)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentOutOfRangeException>(() => kernel.Evaluate(w, b, new double[4], [0, 2], new double[8], 2, 1, 4, 1, gw, gb)).ParamName);
        Assert.Equal("weights", Assert.Throws<ArgumentException>(() => kernel.Evaluate([new double[6]], b, new double[4], [0, 1], new double[8], 2, 1, 4, 1, gw, gb)).ParamName);
        Assert.Equal("activation", Assert.Throws<ArgumentException>(() => new MlpCrrKernel<double>([2, 2], "gelu")).ParamName);
    }
}
