using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests.Estimation;

/// <summary>
/// TorchScript models whose code calls operators that nested autograd cannot differentiate exactly
/// (<see cref="TorchScriptOperators"/>, measured by TorchScriptOperatorDerivativeTests) are refused for the autograd engine
/// before libtorch differentiates them, and piecewise operators in TorchScript code give the non-smooth warning of the ONNX path.
/// </summary>
public sealed class TorchScriptSafetyTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lambdaservice-tssafety-" + Guid.NewGuid().ToString("N"));

    public TorchScriptSafetyTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
    }

    /// <summary>A 2-4-3 network: linear, then <paramref name="hidden"/> (TorchScript lines ending in <c>h = …</c> from <c>z</c>), tanh, linear.</summary>
    private static TorchScriptModuleSpec Network(string hidden) => new("Net",
        [new("w0", [4, 2], Values(8, 1)), new("b0", [4], Values(4, 2)), new("w1", [3, 4], Values(12, 3)), new("b1", [3], Values(3, 4))],
        "z = torch.linear(x, self.w0, self.b0)\n" + hidden + "\nreturn torch.linear(torch.tanh(h), self.w1, self.b1)");

    private const string FusedLayerNorm = "h = torch.layer_norm(z, [4], None, None, 1e-05)";

    /// <summary>The same normalisation in elementary operations (mean, mean of squares, sqrt).</summary>
    private const string SpelledLayerNorm = "c = z - torch.mean(z, [-1], True)\nh = c / torch.sqrt(torch.mean(c * c, [-1], True) + 1e-05)";

    private static ModelFile File(TorchScriptModuleSpec spec)
    {
        using var ms = new MemoryStream();
        TorchScriptWriter.Write(ms, spec);
        return ModelFile.FromBytes("model.pt", ms.ToArray());
    }

    private string Save(TorchScriptModuleSpec spec, string name)
    {
        var path = Path.Combine(_dir, name);
        TorchScriptWriter.Write(path, spec);
        return path;
    }

    private string Points()
    {
        var path = Path.Combine(_dir, "points.csv");
        System.IO.File.WriteAllText(path, "f1,f2\n0.5,-0.25\n0.125,0.75\n-0.5,0.5\n0.9,0.3\n-0.7,-0.6\n");
        return path;
    }

    private static LambdaService.Measurement.Data.Dataset Sample40() => TestData.Make(TestData.Uniform(40 * 2, seed: 5, low: -1.5, high: 1.5), 40, [2]);

    private static MeasurementOptions Options(EngineChoice engine, int minOrder, int maxOrder) =>
        new() { Engine = engine, MinOrder = minOrder, MaxOrder = maxOrder, Directions = 2, MaxPoints = 20, BootstrapResamples = 0, Seed = 3 };

    [Theory]
    [InlineData(EngineChoice.Auto)]
    [InlineData(EngineChoice.Autograd)]
    public void A_model_calling_torch_layer_norm_is_refused_at_orders_1_to_4_on_engine_naming_the_operator_and_the_onnx_export(EngineChoice engine)
    {
        var model = Save(Network(FusedLayerNorm), "layernorm.pt");
        var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Measure(model, Points(), Options(engine, 1, 4), null, null, default));
        Assert.Equal("engine", ex.Field);
        Assert.Contains("torch.layer_norm (libtorch's fused kernel gives wrong 3rd/4th derivatives under nested autograd, off by percents or more)", ex.Message);
        Assert.Contains("torch.onnx.export", ex.Message);
        Assert.Contains("max order 2", ex.Message);

        // A runner made by the caller (CreateRunner, as training and the cross-format tests do) is refused the same way.
        var data = Sample40();
        using var runner = CurvatureRate.CreateRunner(File(Network(FusedLayerNorm)), data);
        var again = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Estimate(runner, data, Options(engine, 1, 3), null, default));
        Assert.Equal("engine", again.Field);
    }

    [Fact]
    public void At_orders_1_to_2_a_model_calling_torch_layer_norm_gives_the_lambda_of_the_same_network_with_the_norm_spelled_out_to_1e_9()
    {
        // Orders 1 and 2 of the fused layer_norm are exact (TorchScriptOperatorDerivativeTests: within 1e-9 relative), so
        // λ through it must equal λ of the spelled-out network, which autograd differentiates exactly to any order.
        var data = Sample40();
        using var fused = CurvatureRate.CreateRunner(File(Network(FusedLayerNorm)), data);
        using var spelled = CurvatureRate.CreateRunner(File(Network(SpelledLayerNorm)), data);
        var viaFused = CurvatureRate.Estimate(fused, data, Options(EngineChoice.Auto, 1, 2), null, default);
        var viaSpelled = CurvatureRate.Estimate(spelled, data, Options(EngineChoice.Auto, 1, 2), null, default);
        Assert.Equal("autograd", viaFused.Engine);
        Assert.Equal(viaSpelled.Lambda, viaFused.Lambda, 9);
        Assert.True(double.IsFinite(viaFused.Lambda));
        // The spelled-out network is accepted at orders 1-4 (its code calls no listed operator).
        Assert.True(double.IsFinite(CurvatureRate.Estimate(spelled, data, Options(EngineChoice.Autograd, 1, 4), null, default).Lambda));
    }

    [Fact]
    public void A_model_calling_torch_hardsigmoid_is_refused_for_autograd_before_libtorch_differentiates_it()
    {
        // Were it differentiated twice, libtorch would abort this test process ("derivative for aten::hardsigmoid_backward
        // is not implemented", TorchScriptOperators.WithoutSecondDerivative).
        var model = Save(Network("h = torch.hardsigmoid(z)"), "hardsigmoid.pt");
        var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Measure(model, Points(), Options(EngineChoice.Auto, 1, 2), null, null, default));
        Assert.Equal("engine", ex.Field);
        Assert.Contains("torch.hardsigmoid (no higher derivative in libtorch)", ex.Message);
        Assert.Contains("torch.onnx.export", ex.Message);
        Assert.DoesNotContain("max order 2", ex.Message);
    }

    [Fact]
    public void A_torchscript_relu_mlp_gets_the_piecewise_linear_warning_of_the_same_mlp_as_onnx_with_the_aten_name()
    {
        var mlp = new ReferenceMlp([2, 8, 3], seed: 11, weightScale: 1.5);
        var data = Sample40();
        var options = new MeasurementOptions { Directions = 2, MaxPoints = 20, BootstrapResamples = 0, Seed = 3 };
        using var ts = CurvatureRate.CreateRunner(File(TorchScriptWriter.Mlp(mlp.Weights, mlp.Biases, "relu")), data, engine: EngineChoice.Auto);
        using var onnx = CurvatureRate.CreateRunner(TestData.Onnx(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases, "relu")), data, engine: EngineChoice.Auto);
        var viaTorchScript = CurvatureRate.Estimate(ts, data, options, null, default);
        var viaOnnx = CurvatureRate.Estimate(onnx, data, options, null, default);
        var expected = Assert.Single(viaOnnx.Warnings, w => w.StartsWith("the model has piecewise-linear operators (Relu)", StringComparison.Ordinal));
        Assert.Contains(expected.Replace("(Relu)", "(relu)", StringComparison.Ordinal), viaTorchScript.Warnings);
    }

    [Fact]
    public void A_torchscript_model_with_hardswish_gets_the_piecewise_warning_and_one_without_listed_operators_gets_none()
    {
        var data = Sample40();
        using var hard = CurvatureRate.CreateRunner(File(Network("h = torch.hardswish(z)")), data);
        var warnings = CurvatureRate.Estimate(hard, data, Options(EngineChoice.Autograd, 1, 4), null, default).Warnings;
        Assert.Contains(warnings, w => w.StartsWith("the model has piecewise operators (hardswish): each point's derivatives", StringComparison.Ordinal));
        using var smooth = CurvatureRate.CreateRunner(File(Network(SpelledLayerNorm)), data);
        Assert.DoesNotContain(CurvatureRate.Estimate(smooth, data, Options(EngineChoice.Autograd, 1, 4), null, default).Warnings,
            w => w.Contains("piecewise", StringComparison.Ordinal));
    }

    [Fact]
    public void Layer_and_instance_norm_are_refused_from_max_order_3_hardsigmoid_from_2_and_together_the_message_names_both()
    {
        TorchScriptOperators.RefuseAutograd(["layer_norm", "instance_norm", "relu", "hardswish"], 2);
        Assert.Equal("engine", Assert.Throws<MeasurementInputException>(() => TorchScriptOperators.RefuseAutograd(["instance_norm"], 3)).Field);
        Assert.Equal("engine", Assert.Throws<MeasurementInputException>(() => TorchScriptOperators.RefuseAutograd(["hardsigmoid"], 2)).Field);
        var both = Assert.Throws<MeasurementInputException>(() => TorchScriptOperators.RefuseAutograd(["relu", "layer_norm", "hardsigmoid"], 4));
        Assert.Equal("the autograd engine cannot differentiate this TorchScript model exactly to order 4: it uses torch.layer_norm (libtorch's fused kernel "
            + "gives wrong 3rd/4th derivatives under nested autograd, off by percents or more) and torch.hardsigmoid (no higher derivative in libtorch); "
            + "export the model to ONNX (torch.onnx.export), whose importer spells them out, and measure that.", both.Message);
    }

    [Fact]
    public void Calls_are_found_as_torch_X_functional_X_C_nn_X_tensor_methods_in_place_forms_and_aten_names_but_not_definitions()
    {
        const string code = """
            def layer_norm(input: Tensor) -> Tensor:
              return input
            def forward(self, x: Tensor) -> Tensor:
              a = torch.nn.functional.hardswish(x)
              b = torch._C._nn.hardsigmoid(a)
              c = b.relu_()
              d = torch.max_pool2d(c, [2, 2])
              e = torch.gelu(torch.instance_norm(d, None, None, None, None, True, 0.1, 1e-05, False))
              # aten::layer_norm
              return torch.tanh(e)
            """;
        Assert.Equal(["hardswish", "hardsigmoid", "relu", "max_pool2d", "instance_norm", "layer_norm"], TorchScriptOperators.FindInCode(code));
    }

    [Fact]
    public void The_operators_found_in_a_written_archive_are_those_of_its_code_in_every_code_file()
    {
        var child = new TorchScriptModuleSpec("Inner", [], "return torch.layer_norm(x, [4], None, None, 1e-05)") { Qualifier = "__torch__.inner" };
        var spec = Network("h = (self.inner).forward(torch.relu(z), )") with { Submodules = [new TorchScriptSubmodule("inner", child)] };
        Assert.Equal(["layer_norm", "relu"], TorchScriptOperators.Find(File(spec)).Order(StringComparer.Ordinal));
        Assert.Empty(TorchScriptOperators.Find(TestData.Onnx(OnnxModelBuilder.Mlp([new float[,] { { 1, 2 } }], [[0.5f]]))));
    }
}
