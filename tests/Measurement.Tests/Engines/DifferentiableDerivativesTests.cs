using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Engines;

public class DifferentiableDerivativesTests
{
    [Fact]
    public void Derivatives_of_the_loss_of_a_tanh_mlp_equal_the_autograd_engines_and_exact_taylor_arithmetic()
    {
        const int points = 6, directions = 2, maxOrder = 4;
        var mlp = new ReferenceMlp([2, 8, 8, 3], seed: 4, weightScale: 1.5);
        var x = TestData.Uniform(points * 2, seed: 5, low: -1.5, high: 1.5);
        var v = CurvatureRate.Directions(points, directions, 2, seed: 6);
        var labels = Enumerable.Range(0, points).Select(i => i % 3).ToArray();
        using var module = new FixedTanhMlp(mlp.Weights, mlp.Biases);
        using var runner = TorchModelRunner.FromModule(module, [2]);
        var engine = new AutogradEngine(runner).Compute(new DerivativeRequest(x, points, v, directions, TargetKind.Loss, labels, maxOrder), null, default);

        using var scope = NewDisposeScope();
        var lines = points * directions;
        var xr = new double[lines * 2];
        for (var l = 0; l < lines; l++) Array.Copy(x, l / directions * 2, xr, l * 2, 2);
        var cls = tensor(Enumerable.Range(0, lines).Select(l => (long)labels[l / directions]).ToArray());
        var d = DifferentiableDerivatives.DirectionalDerivatives(
            input => Objective.Evaluate(TargetKind.Loss, runner.ForwardTensor(input), cls),
            tensor(xr, [lines, 2], ScalarType.Float64), tensor(v, [lines, 2], ScalarType.Float64), maxOrder);
        Assert.Equal([lines, maxOrder], d.shape);
        var values = d.data<double>().ToArray();
        for (var p = 0; p < points; p++)
        {
            for (var dir = 0; dir < directions; dir++)
            {
                var line = p * directions + dir;
                var jet = mlp.Loss(x[(p * 2)..(p * 2 + 2)], v[(line * 2)..(line * 2 + 2)], labels[p], maxOrder);
                for (var n = 1; n <= maxOrder; n++)
                {
                    var ours = values[line * maxOrder + n - 1];
                    // Same construction as the engine in float64: equal up to rounding; the jet is exact arithmetic in double.
                    Assert.True(Math.Abs(ours - engine[p, dir, n]) <= 1e-12 * Math.Max(1, Math.Abs(engine[p, dir, n])), $"line {line} n={n}: {ours} vs engine {engine[p, dir, n]}");
                    Assert.True(Math.Abs(ours - jet.Derivative(n)) <= 1e-9 * Math.Max(1, Math.Abs(jet.Derivative(n))), $"line {line} n={n}: {ours} vs exact {jet.Derivative(n)}");
                }
            }
        }
    }

    [Fact]
    public void The_derivatives_are_differentiable_with_respect_to_a_parameter_of_the_function()
    {
        // f(x) = exp(a·(w·x)) along x + t v: Dⁿ = (a c)ⁿ e^{a s}, c = w·v, s = w·x, so
        // ∂Dⁿ/∂a = (n aⁿ⁻¹ cⁿ + (a c)ⁿ s) e^{a s} (closed form).
        using var scope = NewDisposeScope();
        double a0 = 0.7, w0 = 1.3, w1 = -0.4;
        var a = tensor(a0, ScalarType.Float64).requires_grad_(true);
        var w = tensor(new[] { w0, w1 }, [2, 1], ScalarType.Float64);
        double[] x = [0.2, -0.5, 1.0, 0.3];
        double[] v = [0.6, 0.8, -1.0, 0.0];
        var d = DifferentiableDerivatives.DirectionalDerivatives(input => (a * input.matmul(w).squeeze(1)).exp(),
            tensor(x, [2, 2], ScalarType.Float64), tensor(v, [2, 2], ScalarType.Float64), 3);
        var values = d.data<double>().ToArray();
        var grads = new double[2 * 3];
        for (var k = 0; k < grads.Length; k++)
        {
            var g = autograd.grad([d.reshape(-1)[k]], [a], retain_graph: true)[0];
            grads[k] = g.ToDouble();
        }
        for (var line = 0; line < 2; line++)
        {
            var s = w0 * x[2 * line] + w1 * x[2 * line + 1];
            var c = w0 * v[2 * line] + w1 * v[2 * line + 1];
            for (var n = 1; n <= 3; n++)
            {
                var expected = Math.Pow(a0 * c, n) * Math.Exp(a0 * s);
                var expectedGrad = (n * Math.Pow(a0, n - 1) * Math.Pow(c, n) + Math.Pow(a0 * c, n) * s) * Math.Exp(a0 * s);
                Assert.Equal(expected, values[line * 3 + n - 1], 12);
                Assert.Equal(expectedGrad, grads[line * 3 + n - 1], 12);
            }
        }
    }

    [Fact]
    public void Orders_beyond_the_degree_of_a_linear_function_are_zero_whether_or_not_its_parameter_requires_grad()
    {
        // f(x) = a·(x₀ + 2x₁): D¹ = a (v₀ + 2v₁), higher orders 0. Without the requires_grad check the
        // second order would call autograd on a constant, which aborts the process in TorchSharp 0.107.
        foreach (var requiresGrad in new[] { true, false })
        {
            using var scope = NewDisposeScope();
            var a = tensor(1.5, ScalarType.Float64).requires_grad_(requiresGrad);
            var d = DifferentiableDerivatives.DirectionalDerivatives(input => a * (input[.., 0] + 2 * input[.., 1]),
                tensor(new[] { 0.1, 0.2 }, [1, 2], ScalarType.Float64), tensor(new[] { 0.6, 0.8 }, [1, 2], ScalarType.Float64), 3);
            Assert.Equal(new[] { 1.5 * 2.2, 0, 0 }, d.data<double>().ToArray());
            Assert.Equal(requiresGrad, d.requires_grad);
        }
    }
}
