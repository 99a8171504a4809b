using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests.Estimation;

public class ScalarModelTests
{
    private const double Omega = 3.0;

    /// <summary>sin(ω x) on [N, 1] inputs, as ONNX (Mul, Sin).</summary>
    internal static Onnx.ModelProto SineOnnx(double omega)
    {
        var b = new OnnxModelBuilder("x", 1);
        var y = b.Node("Sin", [b.Node("Mul", [b.Input, b.Constant([(float)omega], 1)])]);
        return b.Build(y, "y", 1);
    }

    /// <summary>
    /// Points spaced evenly over whole periods of sin(ω x): x_i = i·(2π/ω)/N, N a multiple of 4. Then
    /// mean_i |sin| = mean_i |cos| exactly (the grid maps onto itself under a quarter-period shift), so
    /// v_n = ωⁿ·c for every n and λ = log ω with R² = 1.
    /// </summary>
    internal static double[] PeriodGrid(int n, double omega) =>
        Enumerable.Range(0, n).Select(i => i * (2 * Math.PI / omega) / n + 0.01).ToArray();

    [Theory]
    [InlineData("finite-difference")]
    [InlineData("autograd")]
    public void Sine_of_omega_x_has_lambda_log_omega_through_either_engine(string engine)
    {
        // ω = 3 is exactly representable in float32, so λ = log 3 = 1.0986122886681098.
        var x = PeriodGrid(64, Omega);
        var data = TestData.Make(x, x.Length, [1]);
        var options = new MeasurementOptions { Target = "logit", Directions = 1, BootstrapResamples = 200 };
        MeasurementResult result;
        if (engine == "autograd")
        {
            using var module = new SineModule(Omega);
            using var runner = TorchModelRunner.FromModule(module, [1]);
            result = CurvatureRate.Estimate(runner, data, options, null, default);
        }
        else
        {
            using var runner = OnnxRunner.Create(TestData.Onnx(SineOnnx(Omega)), [1]);
            result = CurvatureRate.Estimate(runner, data, options, null, default);
        }
        Assert.Equal(engine, result.Engine);
        Assert.Equal(Math.Log(3), result.Lambda, 6);
        Assert.True(result.R2 > 0.999999, $"R² = {result.R2}");
        Assert.Equal(ModelKind.Scalar, result.Model.Kind);
        Assert.Null(result.Accuracy);
    }

    [Fact]
    public void Taylor_normalization_subtracts_the_slope_of_log_n_factorial()
    {
        // With v_n = c·ωⁿ, log(v_n / n!) = log c + n log ω − log n!; over n = 1..4 the least-squares slope of
        // log n! = (0, log 2, log 6, log 24) is Σ(n−2.5)·log n! / 5 = (−1.5·0 − 0.5·0.6931 + 0.5·1.7918 + 1.5·3.1781)/5.
        var slopeLogFactorial = (-0.5 * Math.Log(2) + 0.5 * Math.Log(6) + 1.5 * Math.Log(24)) / 5;
        var x = PeriodGrid(64, Omega);
        using var runner = OnnxRunner.Create(TestData.Onnx(SineOnnx(Omega)), [1]);
        var result = CurvatureRate.Estimate(runner, TestData.Make(x, x.Length, [1]),
            new MeasurementOptions { Target = "logit", Directions = 1, Normalization = Normalization.Taylor, BootstrapResamples = 0 }, null, default);
        Assert.Equal(Math.Log(3) - slopeLogFactorial, result.Lambda, 6);
    }

    [Fact]
    public void The_loss_target_on_a_scalar_model_is_refused_with_advice()
    {
        using var runner = OnnxRunner.Create(TestData.Onnx(SineOnnx(Omega)), [1]);
        var ex = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.Estimate(runner, TestData.Make([0.1, 0.2], 2, [1]), new MeasurementOptions(), null, default));
        Assert.Equal("target", ex.Field);
        Assert.Contains("target logit", ex.Message);
    }

    [Fact]
    public void Boundary_points_on_a_scalar_model_are_refused()
    {
        using var runner = OnnxRunner.Create(TestData.Onnx(SineOnnx(Omega)), [1]);
        var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Estimate(runner, TestData.Make([0.1, 0.2], 2, [1]),
            new MeasurementOptions { Target = "logit", Points = PointSelection.Boundary }, null, default));
        Assert.Equal("points", ex.Field);
    }
}

internal sealed class SineModule : TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>
{
    private readonly double omega;

    public SineModule(double omega) : base(nameof(SineModule))
    {
        this.omega = omega;
        RegisterComponents();
    }

    public override TorchSharp.torch.Tensor forward(TorchSharp.torch.Tensor x) => (x * omega).sin();
}
