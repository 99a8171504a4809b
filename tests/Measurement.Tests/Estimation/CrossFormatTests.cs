using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests.Estimation;

public class CrossFormatTests
{
    private static ModelFile TorchScript(TorchScriptModuleSpec spec)
    {
        var ms = new MemoryStream();
        TorchScriptWriter.Write(ms, spec);
        return ModelFile.FromBytes("model.pt", ms.ToArray());
    }

    [Fact]
    public void The_same_tanh_mlp_as_onnx_and_as_torchscript_gives_the_same_lambda_and_metrics()
    {
        var mlp = new ReferenceMlp([2, 16, 16, 3], seed: 31, weightScale: 1.5);
        var x = TestData.Uniform(80 * 2, seed: 32, low: -1.5, high: 1.5);
        var labels = Enumerable.Range(0, 80).Select(i => i % 3).ToArray();
        var data = TestData.Make(x, 80, [2], labels);
        var options = new MeasurementOptions { Seed = 2 };

        var ts = TorchScript(TorchScriptWriter.Mlp(mlp.Weights, mlp.Biases));
        Assert.Equal(ModelFormat.TorchScript, ts.Format);
        using var torch = CurvatureRate.CreateRunner(ts, data);
        using var onnx = CurvatureRate.CreateRunner(TestData.Onnx(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases)), data);
        var viaTorchScript = CurvatureRate.Estimate(torch, data, options, null, default);
        var viaOnnx = CurvatureRate.Estimate(onnx, data, options, null, default);

        Assert.Equal("autograd", viaTorchScript.Engine);
        Assert.Equal("finite-difference", viaOnnx.Engine);
        Assert.Equal("torchscript", viaTorchScript.Config.ModelFormat);
        // Exact (autograd, float64) against finite differences (ONNX Runtime, float64): agreement to 1e-4 in λ.
        Assert.Equal(viaTorchScript.Lambda, viaOnnx.Lambda, 4);
        Assert.Equal(viaTorchScript.Ci95[0], viaOnnx.Ci95[0], 3);
        Assert.Equal(viaTorchScript.Accuracy, viaOnnx.Accuracy);
        Assert.Equal(viaTorchScript.Ece!.Value, viaOnnx.Ece!.Value, 9);
        Assert.Equal(3, viaTorchScript.Model.Classes);
    }

    [Fact]
    public void A_torchscript_sine_model_has_lambda_log_omega_through_autograd_and_finite_differences()
    {
        var spec = new TorchScriptModuleSpec("Sine", [new TorchScriptParameter("omega", [1], [3f])], "return torch.sin(x * self.omega)");
        var x = ScalarModelTests.PeriodGrid(64, 3.0);
        var data = TestData.Make(x, x.Length, [1]);
        using var runner = CurvatureRate.CreateRunner(TorchScript(spec), data);
        foreach (var engine in new[] { EngineChoice.Autograd, EngineChoice.FiniteDifference })
        {
            var r = CurvatureRate.Estimate(runner, data, new MeasurementOptions { Target = "logit", Directions = 1, Engine = engine, BootstrapResamples = 0 }, null, default);
            Assert.Equal(Math.Log(3), r.Lambda, 6);
        }
    }
}

public class InputShapeTests
{
    [Fact]
    public void A_given_input_shape_reshapes_samples_and_a_shape_of_the_wrong_size_is_refused()
    {
        var spec = new TorchScriptModuleSpec("Sum", [], "return torch.sum(torch.tanh(x), [1, 2])");
        var ms = new MemoryStream();
        TorchScriptWriter.Write(ms, spec);
        var file = ModelFile.FromBytes("sum.pt", ms.ToArray());
        var data = TestData.Make([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 1, [6]);
        using (var runner = CurvatureRate.CreateRunner(file, data, [2, 3]))
        {
            Assert.Equal([2, 3], runner.SampleShape);
            // Σ tanh(x_i) over the six values, in float64.
            Assert.Equal(new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6 }.Sum(Math.Tanh), runner.Forward(data.X, 1)[0], 12);
        }
        var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.CreateRunner(file, data, [4, 2]));
        Assert.Equal("inputShape", ex.Field);
        Assert.Contains("product is 6", ex.Message);
    }
}
