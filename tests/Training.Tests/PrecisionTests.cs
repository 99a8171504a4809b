using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Training.Export;
using LambdaService.Training.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

/// <summary>
/// <c>precision: float32</c> (<see cref="MeasurementOptions.Precision"/>) against float64 on the same lines, for the project's
/// networks exported to ONNX and imported into libtorch (the path a measurement of an uploaded ONNX file takes).
/// </summary>
/// <remarks>
/// Tolerance. float32's unit roundoff is u = 2⁻²⁴ ≈ 6·10⁻⁸. The exported weights are float32 already, so float32 rounds only the
/// points and directions (relative u each) and every intermediate. The n-th Taylor coefficient of a line is a sum over the network of
/// products of lower coefficients whose terms are larger than the result (cancellation), so its relative error is u times a growth
/// factor G_n that grows with n; nested autograd computes the same quantities through a graph about 3ⁿ larger. Taking G_n ≤ 100·4ⁿ
/// (about a hundred roundings in sequence on these networks, a factor 4 of cancellation per order: tanh's n-th derivative is a sum of
/// terms up to 2ⁿ⁻¹·n! times it, the jet's products add another factor) gives the per-order tolerance u·100·4ⁿ: 2.4·10⁻⁵ at n = 1 to
/// 1.5·10⁻³ at n = 4 on a single line, measured against the largest |Dⁿ| over lines at that order (a line whose Dⁿ crosses zero has
/// no relative accuracy to speak of). The median over lines of the plain relative error must stay within u·100·4ⁿ too. Measured
/// (this test's output, 2026-12-08): medians 1–6·10⁻⁷ and worst lines below 10⁻⁶ of the largest |Dⁿ|, i.e. G_n ≈ 2–10.
/// The difference must also be non-zero: a float64 pass labelled float32 would show none.
/// λ is a slope of log v_n over n = 1..4: a relative error ε_n in v_n moves it by at most about max ε_n (least squares over four
/// points spaced by one), so |λ₃₂ − λ₆₄| ≤ 2·10⁻³ follows from the tolerances above at their loosest.
/// </remarks>
public class PrecisionTests(ITestOutputHelper output)
{
    private const double UnitRoundoff = 5.96e-8;   // 2⁻²⁴

    private static double Tolerance(int n) => UnitRoundoff * 100 * Math.Pow(4, n);

    private static (Dataset Data, ModelFile File, int[] Shape) TanhMlp()
    {
        var mlp = new Mlp([2, 16, 16, 3]);
        ExportFixtures.Initialize(mlp, seed: 31);
        var x = ExportFixtures.Uniform(40 * 2, seed: 8, low: -1.5, high: 1.5);
        var labels = ExportFixtures.Labels(40, 3);
        ExportFixtures.Train(mlp, x, [2], labels, steps: 20);
        var file = ModelFile.FromBytes("mlp.onnx", ModelExport.OnnxBytes(mlp));
        mlp.Dispose();
        return (ExportFixtures.Data(x, 40, [2], labels), file, [2]);
    }

    /// <summary>The paper's MNIST CNN (the project's default <see cref="CnnOptions"/>: 16 and 32 channels, 128 hidden, ReLU), at its initialisation.</summary>
    private static (Dataset Data, ModelFile File, int[] Shape) PaperCnn()
    {
        var cnn = new Cnn(new CnnOptions { PoolDropout = 0, HiddenDropout = 0 });
        ExportFixtures.Initialize(cnn, seed: 34);
        int[] shape = [1, 28, 28];
        var x = ExportFixtures.Uniform(16 * 784, seed: 11);
        var file = ModelFile.FromBytes("paper-cnn.onnx", ModelExport.OnnxBytes(cnn));
        cnn.Dispose();
        return (ExportFixtures.Data(x, 16, shape, ExportFixtures.Labels(16, 10)), file, shape);
    }

    private static (Dataset Data, ModelFile File, int[] Shape) ProjectCnn(string activation)
    {
        var cnn = new Cnn(ExportFixtures.TinyCnn(activation) with { PoolDropout = 0, HiddenDropout = 0 });
        ExportFixtures.Initialize(cnn, seed: 32);
        int[] shape = [1, 10, 10];
        var x = ExportFixtures.Uniform(16 * 100, seed: 9);
        var labels = ExportFixtures.Labels(16, 3);
        ExportFixtures.Train(cnn, x, shape, labels, steps: 10, lr: 0.01);
        var file = ModelFile.FromBytes("cnn.onnx", ModelExport.OnnxBytes(cnn));
        cnn.Dispose();
        return (ExportFixtures.Data(x, 16, shape, labels), file, shape);
    }

    /// <summary>The same lines (points, unit directions, predicted classes) through a float64 and a float32 runner of one file.</summary>
    private void CompareLines(string name, (Dataset Data, ModelFile File, int[] Shape) model, EngineChoice engineChoice)
    {
        var (data, file, shape) = model;
        using var r64 = (TorchModelRunner)CurvatureRate.CreateRunner(file, data, engine: engineChoice, precision: ComputePrecision.Float64);
        using var r32 = (TorchModelRunner)CurvatureRate.CreateRunner(file, data, engine: engineChoice, precision: ComputePrecision.Float32);
        Assert.Equal(ScalarType.Float64, r64.DType);
        Assert.Equal(ScalarType.Float32, r32.DType);
        const int points = 12, directions = 3, maxOrder = 4;
        var size = data.SampleSize;
        var request = new DerivativeRequest(data.X[..(points * size)], points, CurvatureRate.Directions(points, directions, size, seed: 3), directions,
            TargetKind.Loss, Enumerable.Range(0, points * directions).Select(i => data.Labels![i / directions]).ToArray(), maxOrder);
        IDerivativeEngine Engine(TorchModelRunner r) => engineChoice == EngineChoice.Taylor
            ? new TaylorEngine(r.JetModule!, shape, r.DType)
            : new AutogradEngine(r);
        var d64 = Engine(r64).Compute(request, null, default);
        var d32 = Engine(r32).Compute(request, null, default);
        Assert.Equal("float64", d64.Precision);
        Assert.Equal("float32", d32.Precision);
        for (var n = 1; n <= maxOrder; n++)
        {
            var scale = 0.0;
            var relative = new List<double>();
            var worstOfScale = 0.0;
            for (var p = 0; p < points; p++)
            {
                for (var d = 0; d < directions; d++) scale = Math.Max(scale, Math.Abs(d64[p, d, n]));
            }
            for (var p = 0; p < points; p++)
            {
                for (var d = 0; d < directions; d++)
                {
                    var diff = Math.Abs(d32[p, d, n] - d64[p, d, n]);
                    relative.Add(diff / Math.Abs(d64[p, d, n]));
                    worstOfScale = Math.Max(worstOfScale, diff / scale);
                }
            }
            relative.Sort();
            var median = relative[relative.Count / 2];
            output.WriteLine($"{name} {engineChoice} n={n}: median relative {median:E2}, max relative {relative[^1]:E2}, max of the order's largest |D^n| {worstOfScale:E2} (tolerance {Tolerance(n):E1})");
            Assert.True(scale > 0, $"{name}: order {n} vanishes on every line, so the comparison would say nothing");
            Assert.True(relative[^1] > 0, $"{name} {engineChoice} order {n}: float32 and float64 agree exactly on every line; did float32 run?");
            Assert.True(median <= Tolerance(n), $"{name} {engineChoice} order {n}: median relative difference {median:E2} > {Tolerance(n):E1}");
            Assert.True(worstOfScale <= Tolerance(n), $"{name} {engineChoice} order {n}: a line differs by {worstOfScale:E2} of the largest |D^n| > {Tolerance(n):E1}");
        }
    }

    [Theory]
    [InlineData(EngineChoice.Taylor)]
    [InlineData(EngineChoice.Autograd)]
    public void Float32_derivatives_of_the_tanh_mlp_agree_with_float64_on_the_same_lines_within_roundoff_times_the_growth_per_order(EngineChoice engine) =>
        CompareLines("tanh mlp", TanhMlp(), engine);

    [Theory]
    [InlineData(EngineChoice.Taylor)]
    [InlineData(EngineChoice.Autograd)]
    public void Float32_derivatives_of_the_project_cnn_with_tanh_agree_with_float64_on_the_same_lines_within_roundoff_times_the_growth_per_order(EngineChoice engine) =>
        CompareLines("tanh cnn", ProjectCnn("tanh"), engine);

    [Theory]
    [InlineData(EngineChoice.Taylor)]
    [InlineData(EngineChoice.Autograd)]
    public void Float32_derivatives_of_the_papers_relu_cnn_agree_with_float64_on_the_same_lines_within_roundoff_times_the_growth_per_order(EngineChoice engine) =>
        CompareLines("paper cnn", PaperCnn(), engine);

    [Theory]
    [InlineData("mlp", EngineChoice.Taylor)]
    [InlineData("mlp", EngineChoice.Autograd)]
    [InlineData("cnn", EngineChoice.Taylor)]
    [InlineData("cnn", EngineChoice.Autograd)]
    public void Lambda_in_float32_is_within_two_thousandths_of_float64_and_the_result_says_float32(string kind, EngineChoice engine)
    {
        // The CNN is the project's default ReLU network: its pieces are chosen from float32 values, which agree with float64 ones
        // away from the switches; λ moves by the v_n errors (≤ 2·10⁻³ from the tolerances in the remarks).
        var (data, file, _) = kind == "mlp" ? TanhMlp() : ProjectCnn("relu");
        var options64 = new MeasurementOptions { Engine = engine, Labels = LabelSource.Predicted, Seed = 5, BootstrapResamples = 50 };
        var options32 = options64 with { Precision = ComputePrecision.Float32 };
        using var r64 = CurvatureRate.CreateRunner(file, data, engine: engine, precision: options64.Precision);
        using var r32 = CurvatureRate.CreateRunner(file, data, engine: engine, precision: options32.Precision);
        var m64 = CurvatureRate.Estimate(r64, data, options64, null, default);
        var m32 = CurvatureRate.Estimate(r32, data, options32, null, default);

        output.WriteLine($"{kind} {engine}: λ64 {m64.Lambda:F6}, λ32 {m32.Lambda:F6}, difference {m32.Lambda - m64.Lambda:E2}");
        Assert.Equal("float64", m64.Precision);
        Assert.Equal("float32", m32.Precision);
        Assert.Equal("float64", m64.Config.Precision);
        Assert.Equal("float32", m32.Config.Precision);
        Assert.Equal(engine.ToString().ToLowerInvariant(), m32.Engine);
        Assert.True(double.IsFinite(m64.Lambda));
        Assert.True(Math.Abs(m32.Lambda - m64.Lambda) <= 2e-3, $"λ {m32.Lambda} (float32) vs {m64.Lambda} (float64)");
    }

    [Fact]
    public void Lambda_at_a_layer_in_float32_runs_the_layers_suffix_in_float32_and_is_within_two_thousandths_of_float64()
    {
        // The suffix g_L shares the model's parameters (LayerCut): it must run in the model's dtype, not be cast back to float64.
        var (data, file, _) = TanhMlp();
        var options64 = new MeasurementOptions { At = "act1", Labels = LabelSource.Predicted, Seed = 4, BootstrapResamples = 0 };
        var options32 = options64 with { Precision = ComputePrecision.Float32 };
        using var r64 = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Auto, precision: options64.Precision);
        using var r32 = (TorchModelRunner)CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Auto, precision: options32.Precision);
        var m64 = CurvatureRate.Estimate(r64, data, options64, null, default);
        var m32 = CurvatureRate.Estimate(r32, data, options32, null, default);

        Assert.Equal("act1", m32.Config.At);
        Assert.Equal("float32", m32.Precision);
        Assert.Equal(ScalarType.Float32, r32.DType);
        output.WriteLine($"at act1: λ64 {m64.Lambda:F6}, λ32 {m32.Lambda:F6}");
        Assert.True(Math.Abs(m32.Lambda - m64.Lambda) <= 2e-3, $"λ at act1 {m32.Lambda} (float32) vs {m64.Lambda} (float64)");
        Assert.NotEqual(m64.Lambda, m32.Lambda);   // float32 rounding shows
    }

    [Fact]
    public void A_torchscript_model_in_float32_runs_autograd_in_float32_within_two_thousandths_of_float64()
    {
        using var mlp = new Mlp([2, 16, 16, 3]);
        ExportFixtures.Initialize(mlp, seed: 35);
        var x = ExportFixtures.Uniform(40 * 2, seed: 12, low: -1.5, high: 1.5);
        var data = ExportFixtures.Data(x, 40, [2], ExportFixtures.Labels(40, 3));
        var file = ModelFile.FromBytes("mlp.pt", ModelExport.TorchScriptBytes(mlp));
        var options64 = new MeasurementOptions { Seed = 6, BootstrapResamples = 0 };
        var options32 = options64 with { Precision = ComputePrecision.Float32 };
        using var r64 = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Auto, precision: options64.Precision);
        using var r32 = (TorchModelRunner)CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Auto, precision: options32.Precision);
        var m64 = CurvatureRate.Estimate(r64, data, options64, null, default);
        var m32 = CurvatureRate.Estimate(r32, data, options32, null, default);

        Assert.Equal(ScalarType.Float32, r32.DType);
        Assert.Equal("autograd", m32.Engine);
        Assert.Equal("float32", m32.Precision);
        Assert.DoesNotContain(m32.Warnings, w => w.Contains("does not run in float64", StringComparison.Ordinal));   // asked for, not a fallback
        Assert.True(Math.Abs(m32.Lambda - m64.Lambda) <= 2e-3, $"λ {m32.Lambda} (float32) vs {m64.Lambda} (float64)");
        Assert.NotEqual(m64.Lambda, m32.Lambda);
    }

    [Fact]
    public void A_project_module_wrapped_in_float32_runs_the_taylor_engine_in_float32_and_matches_its_float64_copy()
    {
        using var cnn = new Cnn(ExportFixtures.TinyCnn("tanh") with { PoolDropout = 0, HiddenDropout = 0 });
        ExportFixtures.Initialize(cnn, seed: 33);
        int[] shape = [1, 10, 10];
        var x = ExportFixtures.Uniform(16 * 100, seed: 10);
        var data = ExportFixtures.Data(x, 16, shape, ExportFixtures.Labels(16, 3));
        // Each runner casts its module in place: two copies of the same float32 weights.
        using var copy64 = ExportFixtures.Copy(cnn);
        using var copy32 = ExportFixtures.Copy(cnn);
        using var r64 = TorchModelRunner.FromModule(copy64, shape);
        using var r32 = TorchModelRunner.FromModule(copy32, shape, dtype: ScalarType.Float32);
        var options = new MeasurementOptions { Seed = 2, BootstrapResamples = 0 };
        var m64 = CurvatureRate.Estimate(r64, data, options, null, default);
        var m32 = CurvatureRate.Estimate(r32, data, options with { Precision = ComputePrecision.Float32 }, null, default);

        Assert.Equal("taylor", m32.Engine);
        Assert.Equal("float32", m32.Precision);
        Assert.Equal(ScalarType.Float32, copy32.parameters().First().dtype);
        for (var i = 0; i < m64.Orders.Count; i++)
        {
            var n = m64.Orders[i].N;
            Assert.True(Math.Abs(m32.Orders[i].Norm / m64.Orders[i].Norm - 1) <= Tolerance(n), $"v_{n}: {m32.Orders[i].Norm} vs {m64.Orders[i].Norm}");
        }
    }

    [Fact]
    public void Float32_on_a_float64_runner_is_refused_rather_than_rounding_the_callers_module()
    {
        var (data, file, _) = TanhMlp();
        using var r64 = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Taylor);
        var e = Assert.Throws<ArgumentException>(() =>
            CurvatureRate.Estimate(r64, data, new MeasurementOptions { Precision = ComputePrecision.Float32 }, null, default));
        Assert.Contains("prepared in float32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Float32_with_finite_differences_is_refused_naming_precision()
    {
        var (data, file, _) = TanhMlp();
        var explicitFd = Assert.Throws<MeasurementInputException>(() =>
            new MeasurementOptions { Precision = ComputePrecision.Float32, Engine = EngineChoice.FiniteDifference }.Validate());
        Assert.Equal("precision", explicitFd.Field);
        Assert.Contains("exact engines taylor and autograd", explicitFd.Message, StringComparison.Ordinal);

        var viaRunner = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.CreateRunner(file, data, engine: EngineChoice.FiniteDifference, precision: ComputePrecision.Float32));
        Assert.Equal("precision", viaRunner.Field);

        // An ONNX Runtime runner (what auto falls back to on unsupported operators) with float32 asked for.
        using var onnx = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.FiniteDifference);
        var viaEstimate = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.Estimate(onnx, data, new MeasurementOptions { Precision = ComputePrecision.Float32 }, null, default));
        Assert.Equal("precision", viaEstimate.Field);
        Assert.Contains("only finite differences can run this model", viaEstimate.Message, StringComparison.Ordinal);
    }
}
