using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Taylor;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

/// <summary>
/// The project's <see cref="Mlp"/> and <see cref="Cnn"/> as jet modules: their Taylor derivatives equal nested autograd
/// on their own forward pass (float64, 1e-6 relative against max(|reference|, 10⁻³·largest of that order)), parameter
/// gradients of a CRR-style penalty agree, and the piecewise-linear reports are right.
/// </summary>
[Collection(TorchGeneratorCollection.Name)]
public class TaylorJetTests
{
    private static Tensor Uniform(Random rng, long[] shape, double low = -1, double high = 1)
    {
        var count = shape.Aggregate(1L, (a, b) => a * b);
        return tensor(Enumerable.Range(0, (int)count).Select(_ => low + (high - low) * rng.NextDouble()).ToArray(), shape, ScalarType.Float64);
    }

    private static void AssertClose(Tensor actual, Tensor expected, string context)
    {
        Assert.Equal(expected.shape, actual.shape);
        var a = actual.contiguous().data<double>().ToArray();
        var e = expected.contiguous().data<double>().ToArray();
        var cols = (int)expected.shape[1];
        for (var n = 0; n < cols; n++)
        {
            var scale = Enumerable.Range(0, e.Length / cols).Max(b => Math.Abs(e[b * cols + n]));
            for (var b = 0; b < e.Length / cols; b++)
            {
                var bound = scale == 0 ? 1e-12 : 1e-6 * Math.Max(Math.Abs(e[b * cols + n]), 1e-3 * scale);
                Assert.True(Math.Abs(a[b * cols + n] - e[b * cols + n]) <= bound, $"{context}: line {b} order {n + 1}: {a[b * cols + n]:R} vs {e[b * cols + n]:R}");
            }
        }
    }

    private static Tensor Nested(nn.Module<Tensor, Tensor> net, TargetKind target, Tensor classes, Tensor x, Tensor v, int k) =>
        new AutogradDifferentiableEngine().DirectionalDerivatives(z => Objective.Evaluate(target, net.call(z), classes), x, v, k);

    [Theory]
    [InlineData("tanh")]
    [InlineData("relu")]
    [InlineData("sigmoid")]
    [InlineData("softplus")]
    [InlineData("gelu")]
    public void Every_mlp_activation_gives_the_derivatives_of_nested_autograd(string activation)
    {
        manual_seed(31);
        using var mlp = new Mlp([3, 8, 8, 4], activation);
        mlp.eval();
        mlp.to(ScalarType.Float64);
        Assert.Equal(activation == "relu" ? ["Relu"] : Array.Empty<string>(), mlp.PiecewiseLinearOperators);
        using var scope = NewDisposeScope();
        var rng = new Random(32);
        var x = Uniform(rng, [5, 1, 3], -2, 2);                        // rank 3: both paths flatten it
        var v = Uniform(rng, [5, 1, 3]);
        var classes = tensor(new long[] { 0, 1, 2, 3, 0 });
        foreach (var target in new[] { TargetKind.Loss, TargetKind.Logit })
        {
            AssertClose(TaylorMode.DirectionalDerivatives(mlp, x, v, 5, target, classes), Nested(mlp, target, classes, x, v, 5), $"{activation} {target}");
        }
    }

    [Theory]
    [InlineData("relu")]
    [InlineData("tanh")]
    public void The_cnn_gives_the_derivatives_of_nested_autograd_and_a_relu_cnn_has_flat_logits(string activation)
    {
        manual_seed(33);
        using var cnn = new Cnn(new CnnOptions { InputChannels = 2, ImageSize = 8, Conv1Channels = 3, Conv2Channels = 4, Hidden = 6, Classes = 3, Activation = activation });
        cnn.eval();
        cnn.to(ScalarType.Float64);
        Assert.Equal(activation == "relu" ? ["Relu", "MaxPool"] : ["MaxPool"], cnn.PiecewiseLinearOperators);
        using var scope = NewDisposeScope();
        var rng = new Random(34);
        var x = Uniform(rng, [4, 2, 8, 8]);
        var v = Uniform(rng, [4, 2, 8, 8]);
        var classes = tensor(new long[] { 0, 1, 2, 1 });
        foreach (var target in new[] { TargetKind.Loss, TargetKind.Logit })
        {
            var taylor = TaylorMode.DirectionalDerivatives(cnn, x, v, 4, target, classes);
            AssertClose(taylor, Nested(cnn, target, classes, x, v, 4), $"{activation} {target}");
            // Flat samples [N, C·H·W] are reshaped by both paths.
            AssertClose(TaylorMode.DirectionalDerivatives(cnn, x.flatten(1), v.flatten(1), 4, target, classes), taylor, $"{activation} {target} flat");
            if (activation == "relu" && target == TargetKind.Logit) Assert.Equal(0.0, taylor.narrow(1, 1, 3).abs().max().ToDouble());
        }
    }

    [Fact]
    public void A_cnn_in_training_mode_refuses_jets_and_asks_for_evaluation_mode()
    {
        manual_seed(35);
        using var cnn = new Cnn(new CnnOptions { ImageSize = 6, Conv1Channels = 2, Conv2Channels = 2, Hidden = 3, Classes = 2 });
        cnn.train();
        using var scope = NewDisposeScope();
        var x = zeros(1, 1, 6, 6);
        var e = Assert.Throws<InvalidOperationException>(() => cnn.Forward(Jet.Line(x, x, 2)));
        Assert.Contains("evaluation mode", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parameter_gradients_of_a_crr_penalty_through_taylor_mode_equal_those_through_nested_autograd()
    {
        // P = Σ_lines Σ_{n=2..3} (Dⁿ CE)², as in CrrMethod.Penalty; ∇_w P by autograd through both constructions.
        manual_seed(36);
        using var mlp = new Mlp([2, 6, 6, 3], "softplus");
        mlp.eval();
        mlp.to(ScalarType.Float64);
        using var scope = NewDisposeScope();
        var rng = new Random(37);
        var x = Uniform(rng, [6, 2], -1.5, 1.5);
        var v = Uniform(rng, [6, 2]);
        var y = tensor(new long[] { 0, 1, 2, 0, 1, 2 });
        var parameters = mlp.parameters().Select(p => (Tensor)p).ToList();
        var taylor = new TaylorDifferentiableEngine().DirectionalDerivatives(mlp, TargetKind.Loss, y, x, v, 3);
        var nested = Nested(mlp, TargetKind.Loss, y, x, v, 3);
        var gTaylor = autograd.grad([taylor.narrow(1, 1, 2).square().sum()], parameters, retain_graph: true);
        var gNested = autograd.grad([nested.narrow(1, 1, 2).square().sum()], parameters, retain_graph: true);
        for (var i = 0; i < parameters.Count; i++)
        {
            var scale = gNested[i].abs().max().ToDouble();
            var diff = (gTaylor[i] - gNested[i]).abs().max().ToDouble();
            Assert.True(scale > 0 && diff <= 1e-6 * scale, $"parameter {i}: max |Δgrad| {diff:E2} vs max |grad| {scale:E2}");
        }
    }
}
