using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests.Estimation;

/// <summary>λ at an intermediate layer (issue 15 part 2): <c>f = g_L ∘ h_L</c>, derivatives of g_L at h_L(x) in the layer's space.</summary>
public class LayerLambdaTests
{
    // h = W x + b (3 units), y = Σ_j a_j sin(h_j). All values are exact in float32, so the float64 import computes with them exactly.
    private static readonly float[,] W = { { 0.5f, -1.25f }, { 2f, 0.75f }, { -0.375f, 1.5f } };
    private static readonly float[] B = [0.25f, -0.5f, 1f];
    private static readonly float[] A = [1.5f, -0.5f, 2f];

    /// <summary>x [N, 2] → Gemm → "h" → Sin → Gemm(a) → y [N, 1].</summary>
    private static Onnx.ModelProto LinearThenSine()
    {
        var b = new OnnxModelBuilder("x", 2);
        var h = b.Name(b.Linear(b.Input, W, B), "h");
        var s = b.Node("Sin", [h]);
        var y = b.Linear(s, new float[,] { { A[0], A[1], A[2] } }, [0f]);
        return b.Build(y, "y", 1);
    }

    private static (double[] X, Dataset Data) Points(int n)
    {
        var x = TestData.Uniform(2 * n, seed: 11, low: -2, high: 2);
        return (x, TestData.Make(x, n, [2]));
    }

    [Theory]
    [InlineData("taylor")]
    [InlineData("autograd")]
    public void Lambda_at_a_linear_layer_followed_by_sin_matches_the_closed_form(string engine)
    {
        // Closed form: along a unit direction u in h-space, dⁿ/dtⁿ Σ_j a_j sin(h_j + t u_j) = Σ_j a_j u_jⁿ sin(h_j + nπ/2).
        // v_n = mean over points and directions of |Dⁿ|, λ = least-squares slope of log v_n over n = 1..4; the directions are
        // the measurement's own (CurvatureRate.Directions with the seed, 3 components: the layer's width). Tolerance 1e-9.
        const int n = 40, directions = 3, seed = 5;
        var (x, data) = Points(n);
        var options = new MeasurementOptions
        {
            Target = "logit", Directions = directions, Seed = seed, BootstrapResamples = 0, At = "h",
            Engine = engine == "taylor" ? EngineChoice.Taylor : EngineChoice.Autograd,
        };
        var file = TestData.Onnx(LinearThenSine());
        using var runner = CurvatureRate.CreateRunner(file, data, engine: options.Engine);
        var result = CurvatureRate.Estimate(runner, data, options, null, default);

        var u = CurvatureRate.Directions(n, directions, 3, seed);
        var logs = new double[4];
        for (var order = 1; order <= 4; order++)
        {
            double sum = 0;
            for (var p = 0; p < n; p++)
            {
                var h = new double[3];
                for (var j = 0; j < 3; j++) h[j] = W[j, 0] * x[2 * p] + W[j, 1] * x[2 * p + 1] + B[j];
                for (var d = 0; d < directions; d++)
                {
                    double derivative = 0;
                    for (var j = 0; j < 3; j++) derivative += A[j] * Math.Pow(u[(p * directions + d) * 3 + j], order) * Math.Sin(h[j] + order * Math.PI / 2);
                    sum += Math.Abs(derivative);
                }
            }
            logs[order - 1] = Math.Log(sum / (n * directions));
        }
        // Slope of the least-squares line through (n, logs) for n = 1..4: Σ (n − 2.5)·y / Σ (n − 2.5)² = Σ (n − 2.5)·y / 5.
        var expected = (-1.5 * logs[0] - 0.5 * logs[1] + 0.5 * logs[2] + 1.5 * logs[3]) / 5;

        Assert.Equal(engine, result.Engine);
        Assert.Equal(expected, result.Lambda, 1e-9);
        for (var order = 1; order <= 4; order++) Assert.Equal(logs[order - 1], result.Orders[order - 1].LogNorm, 1e-9);
        Assert.Equal("h", result.Config.At);
        Assert.Equal([3], result.Config.LayerShape!);
        Assert.Equal(n, result.PointsUsed);
    }

    /// <summary>
    /// x → Gemm "g1" → Tanh "t" → Gemm "g2" → Add(g2, g1) "s" (a residual block, nodes named /block/…) → Sin → Gemm → y, two classes.
    /// </summary>
    private static Onnx.ModelProto Residual()
    {
        var b = new OnnxModelBuilder("x", 2);
        var g1 = b.Name(b.Linear(b.Input, W, B), "g1");
        var t = b.Name(b.Node("Tanh", [g1]), "t");
        var g2 = b.Name(b.Linear(t, new float[,] { { 0.5f, 0.25f, -1f }, { 1f, -0.5f, 0.125f }, { -0.75f, 1f, 0.5f } }, [0f, 0.5f, -0.25f]), "g2");
        var s = b.Name(b.Node("Add", [g2, g1]), "s");
        var sin = b.Name(b.Node("Sin", [s]), "sin");
        var y = b.Linear(sin, new float[,] { { 1f, -2f, 0.5f }, { -1f, 0.5f, 1.5f } }, [0f, 0.25f]);
        var model = b.Build(y, "logits", 2);
        foreach (var node in model.Graph.Node)
        {
            if (node.Output.Contains("t")) node.Name = "/block/act/Tanh";
            if (node.Output.Contains("g2")) node.Name = "/block/fc/Gemm";
            if (node.Output.Contains("s")) node.Name = "/block/Add";
        }
        return model;
    }

    [Fact]
    public void The_layers_of_a_graph_are_the_values_every_path_passes_through_and_module_scopes_name_them()
    {
        Assert.True(JetGraph.TryImport(Residual(), out var graph, out _, TorchSharp.torch.ScalarType.Float64));
        using (graph)
        {
            // t and g2 lie beside the skip path (g1 reaches s without them); the last Gemm's output is only renamed by Identity.
            // Scope "block" ends with its Add (a cut: alias); scopes "act" and "fc" end at values that are not cuts (no alias).
            Assert.Equal(["block", "g1", "s", "sin"], graph!.Layers);
        }
    }

    [Fact]
    public void The_file_level_layer_list_agrees_with_the_imported_graph()
    {
        // OnnxJetImporter.LayerNames reads the protobuf only (what the API checks a request against, without libtorch).
        foreach (var model in new[] { Residual(), LinearThenSine() })
        {
            Assert.True(JetGraph.TryImport(model, out var graph, out _, TorchSharp.torch.ScalarType.Float64));
            using (graph) Assert.Equal(graph!.Layers, OnnxJetImporter.LayerNames(model));
        }
        // Linear → sin → linear: the first Linear's value and the Sin's; the last Gemm is only renamed by the output's Identity.
        var names = OnnxJetImporter.LayerNames(LinearThenSine());
        Assert.Equal(2, names.Count);
        Assert.Equal("h", names[0]);
        Assert.StartsWith("sin", names[1]);
    }

    [Theory]
    [InlineData("s")]
    [InlineData("block")]
    [InlineData("g1")]
    public void Taylor_mode_from_a_layer_agrees_with_nested_autograd_on_a_residual_graph(string at)
    {
        const int n = 24;
        var (x, _) = Points(n);
        var labels = Enumerable.Range(0, n).Select(i => i % 2).ToArray();
        var data = TestData.Make(x, n, [2], labels);
        MeasurementResult Run(EngineChoice engine)
        {
            using var runner = CurvatureRate.CreateRunner(TestData.Onnx(Residual()), data, engine: engine);
            return CurvatureRate.Estimate(runner, data, new MeasurementOptions { At = at, Engine = engine, BootstrapResamples = 0, MaxOrder = 5, Seed = 3 }, null, default);
        }
        var taylor = Run(EngineChoice.Taylor);
        var autograd = Run(EngineChoice.Autograd);
        Assert.Equal("taylor", taylor.Engine);
        Assert.Equal("autograd", autograd.Engine);
        for (var i = 0; i < taylor.Orders.Count; i++) Assert.Equal(autograd.Orders[i].LogNorm, taylor.Orders[i].LogNorm, 1e-9);
        Assert.Equal(autograd.Lambda, taylor.Lambda, 1e-9);
        Assert.Equal([3], taylor.Config.LayerShape!);

        // A layer is not the input: derivatives along directions in h-space differ from those in x-space.
        using var runner = CurvatureRate.CreateRunner(TestData.Onnx(Residual()), data, engine: EngineChoice.Taylor);
        var atInput = CurvatureRate.Estimate(runner, data, new MeasurementOptions { Engine = EngineChoice.Taylor, BootstrapResamples = 0, MaxOrder = 5, Seed = 3 }, null, default);
        Assert.NotEqual(atInput.Lambda, taylor.Lambda, 1e-3);
        Assert.Equal("input", atInput.Config.At);
        Assert.Null(atInput.Config.LayerShape);
    }

    [Fact]
    public void An_unknown_layer_is_refused_naming_at_and_listing_the_valid_layers()
    {
        var (x, data) = Points(8);
        using var runner = CurvatureRate.CreateRunner(TestData.Onnx(Residual()), TestData.Make(x, 8, [2], [0, 1, 0, 1, 0, 1, 0, 1]), engine: EngineChoice.Auto);
        var ex = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.Estimate(runner, data with { Labels = [0, 1, 0, 1, 0, 1, 0, 1] }, new MeasurementOptions { At = "conv9" }, null, default));
        Assert.Equal("at", ex.Field);
        Assert.Contains("'conv9' is not a layer", ex.Message);
        Assert.Contains("block, g1, s, sin", ex.Message);
        Assert.Contains("'input'", ex.Message);

        var t = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.Estimate(runner, data with { Labels = [0, 1, 0, 1, 0, 1, 0, 1] }, new MeasurementOptions { At = "t" }, null, default));
        Assert.Equal("at", t.Field);
    }

    [Fact]
    public void Finite_differences_cannot_start_at_a_layer()
    {
        var (x, data) = Points(8);
        var file = TestData.Onnx(LinearThenSine());
        using var runner = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.FiniteDifference);
        var ex = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.Estimate(runner, data, new MeasurementOptions { Target = "logit", At = "h", Engine = EngineChoice.FiniteDifference }, null, default));
        Assert.Equal("engine", ex.Field);
        Assert.Contains("exact engine", ex.Message);

        // auto on an ONNX Runtime runner (what auto falls back to for graphs the importer cannot read): the layer cannot be reached.
        using var onnx = OnnxRunner.Create(file, [2]);
        var auto = Assert.Throws<MeasurementInputException>(() =>
            CurvatureRate.Estimate(onnx, data, new MeasurementOptions { Target = "logit", At = "h" }, null, default));
        Assert.Equal("at", auto.Field);
    }

    [Fact]
    public void An_empty_layer_name_is_refused()
    {
        var ex = Assert.Throws<MeasurementInputException>(() => new MeasurementOptions { At = " " }.Validate());
        Assert.Equal("at", ex.Field);
    }
}
