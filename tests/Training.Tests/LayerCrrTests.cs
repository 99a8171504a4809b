using LambdaService.Measurement;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Training.Export;
using LambdaService.Training.Methods;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

/// <summary>λ and CRR at an intermediate layer, and the class-filtered penalty (issue 15 part 2, paper §7).</summary>
[Collection(TorchGeneratorCollection.Name)]
public class LayerCrrTests
{
    private static readonly double[][] X = [[0.3, -1.2], [1.1, 0.4], [-0.7, 0.9], [0.2, 0.5]];
    private static readonly int[] Y = [0, 2, 1, 2];
    private const int Directions = 2;

    // A 2-3-3 tanh MLP: W1 [3,2], b1 [3], W2 [3,3], b2 [3] (torch's parameter order).
    private static readonly double[] Start = [0.9, -0.4, 0.3, 1.1, -0.7, 0.5, 0.2, -0.1, 0.3, 0.6, -0.8, 0.4, -0.2, 0.7, 0.1, -0.5, 0.9, 0.3, 0.05, -0.15, 0.25];

    /// <summary>act1 = tanh(W1 x + b1), computed here in double.</summary>
    private static double[][] Activations(double[][] x) => [.. x.Select(row => Enumerable.Range(0, 3)
        .Select(j => Math.Tanh(Start[2 * j] * row[0] + Start[2 * j + 1] * row[1] + Start[6 + j])).ToArray())];

    /// <summary>The output layer as a linear softmax model (W2, b2 from <see cref="Start"/>).</summary>
    private static LinearSoftmax Head => LinearSoftmax.FromFlat(Start[9..], 3, 3);

    [Fact]
    public void The_penalty_at_the_last_hidden_layer_equals_the_linear_softmax_closed_form_at_its_activations()
    {
        // At act1 the rest of the network is the linear softmax head: P = Σ_n mean (Dⁿ_u CE(W2 h + b2, y))², closed form in
        // LinearSoftmax (cumulants of the softmax along W2 u), at h = tanh(W1 x + b1) computed by hand; float64 both sides, 1e-12.
        using var mlp = ParameterAccess.Float64Mlp([2, 3, 3], Start);
        var method = new CrrMethod(1, 1, 4, Directions, 1, new Random(4), at: "act1");
        using var scope = NewDisposeScope();
        var v = method.DrawDirections(X.Length, [3], ScalarType.Float64);
        var u = ParameterAccess.Split(v.data<double>().ToArray(), 3);
        var penalty = method.Penalty(mlp, ParameterAccess.Rows(X), ParameterAccess.Labels(Y), v).ToDouble();
        Assert.Equal(Head.Penalty(Activations(X), Y, u, Directions, 1, 4), penalty, 12);
    }

    [Fact]
    public void Taylor_mode_from_a_layer_gives_the_same_penalty_and_gradient_as_nested_autograd()
    {
        manual_seed(7);
        using var mlp = new Mlp([2, 5, 4, 3]);
        mlp.to(ScalarType.Float64);
        var x = ParameterAccess.Rows(X);
        var y = ParameterAccess.Labels(Y);
        foreach (var at in mlp.Layers)
        {
            using var scope = NewDisposeScope();
            var taylor = new CrrMethod(1, 1, 5, Directions, 1, new Random(2), at: at);
            var nested = new CrrMethod(1, 1, 5, Directions, 1, new Random(2), engine: new AutogradDifferentiableEngine(), at: at);
            Assert.Equal("taylor", taylor.Engine);
            Assert.Equal("autograd", nested.Engine);
            var width = at.EndsWith('1') ? 5 : 4;
            var v = taylor.DrawDirections(X.Length, [width], ScalarType.Float64);
            var p1 = taylor.Penalty(mlp, x, y, v);
            var p2 = nested.Penalty(mlp, x, y, v);
            Assert.Equal(p2.ToDouble(), p1.ToDouble(), 1e-9 * Math.Max(1, Math.Abs(p2.ToDouble())));
            var parameters = mlp.parameters().ToArray();
            var g1 = autograd.grad([p1], parameters).SelectMany(g => g.data<double>().ToArray()).ToArray();
            var g2 = autograd.grad([p2], parameters).SelectMany(g => g.data<double>().ToArray()).ToArray();
            for (var i = 0; i < g1.Length; i++) Assert.True(Math.Abs(g1[i] - g2[i]) <= 1e-9 * Math.Max(1, Math.Abs(g2[i])), $"{at}, parameter {i}: {g1[i]} vs {g2[i]}");
            // The layer's own parameters and those before it receive a gradient (h keeps its graph); here the first layer's weights.
            Assert.True(g1.Take(10).Select(Math.Abs).Max() > 1e-6, $"{at}: the first layer gets no gradient");
        }
    }

    [Fact]
    public void Cutting_the_networks_at_any_layer_composes_to_the_whole_network()
    {
        manual_seed(3);
        using var mlp = new Mlp([4, 6, 5, 3], "gelu");
        using var cnn = new Cnn(ExportFixtures.TinyCnn("tanh"));
        mlp.to(ScalarType.Float64).eval();
        cnn.to(ScalarType.Float64).eval();
        using var scope = NewDisposeScope();
        foreach (var (network, shape) in new (nn.Module<Tensor, Tensor>, long[])[] { (mlp, [4]), (cnn, [1, 10, 10]) })
        {
            var layered = (ILayeredModule)network;
            var x = rand([3, .. shape], ScalarType.Float64);
            var whole = network.call(x);
            foreach (var layer in layered.Layers)
            {
                var h = layered.ForwardTo(layer, x);
                Assert.Equal(0, (layered.ForwardFrom(layer, h) - whole).abs().max().ToDouble(), 12);
                // On jets: the value coefficient of the output jet of a constant line is the plain output.
                var jet = layered.ForwardFrom(layer, Jet.Line(h, zeros_like(h), 2));
                Assert.Equal(0, (jet.Value - whole).abs().max().ToDouble(), 12);
            }
        }
        Assert.Equal(["fc1", "act1", "fc2", "act2"], mlp.Layers);
        Assert.Equal(["conv1", "act1", "conv2", "act2", "pool", "hidden", "act3"], cnn.Layers);
    }

    [Fact]
    public void Lambda_at_a_layer_is_the_same_on_the_module_and_its_onnx_export()
    {
        // The export names its values like the modules (act1, act3, …): measuring at the same name gives the same λ, once in
        // TorchSharp (the project's Cnn) and once through the ONNX file's imported graph.
        manual_seed(11);
        using var cnn = new Cnn(ExportFixtures.TinyCnn("tanh"));
        ExportFixtures.Initialize(cnn, 11);
        var x = ExportFixtures.Uniform(12 * 100, 4);
        var labels = ExportFixtures.Labels(12, 3);
        ExportFixtures.Train(cnn, x, [1, 10, 10], labels, steps: 5);
        var data = ExportFixtures.Data(x, 12, [1, 10, 10], labels);
        var file = ModelFile.FromBytes("cnn.onnx", ModelExport.OnnxBytes(cnn));
        foreach (var at in new[] { "act3", "pool", "act1" })
        {
            var options = new MeasurementOptions { At = at, Engine = EngineChoice.Taylor, BootstrapResamples = 0, Seed = 2 };
            using var fromFile = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Taylor);
            var onnx = CurvatureRate.Estimate(fromFile, data, options, null, default);
            using var module = TorchModelRunner.FromModule(cnn, [1, 10, 10]);
            var torch = CurvatureRate.Estimate(module, data, options, null, default);
            // The file holds float32 weights; the module was trained in float32 too and runs in float64: the same numbers.
            Assert.Equal(torch.Lambda, onnx.Lambda, 1e-9);
            Assert.Equal(torch.Config.LayerShape!, onnx.Config.LayerShape!);
        }
        Assert.Contains("act3", OnnxJetImporter.LayerNames(Onnx.ModelProto.Parser.ParseFrom(file.Bytes)));
    }

    [Fact]
    public void The_class_filter_penalises_only_points_of_the_named_classes()
    {
        // Classes {2}: rows 1 and 3. The step's penalty is the closed form on those rows alone, with the first directions the
        // method draws (2 rows × 2 directions); a batch without class 2 is not penalised and steps exactly like plain CE.
        using var mlp = ParameterAccess.Float64Mlp([2, 3], Start[..9]);
        using var sgd = optim.SGD(mlp.parameters(), 0.01);
        var method = new CrrMethod(0.5, 1, 3, Directions, 1, new Random(6), classes: [2]);
        using var scope = NewDisposeScope();
        var loss = method.Step(mlp, ParameterAccess.Rows(X), ParameterAccess.Labels(Y), sgd, 0);
        using var drawn = new CrrMethod(1, 1, 1, Directions, 1, new Random(6)).DrawDirections(2, [2], ScalarType.Float64);
        var v = ParameterAccess.Split(drawn.data<double>().ToArray(), 2);
        var expected = LinearSoftmax.FromFlat(Start[..9], 3, 2).Penalty([X[1], X[3]], [Y[1], Y[3]], v, Directions, 1, 3);
        Assert.Equal(expected, loss.Penalty!.Value, 12);
        Assert.Contains("y_i in {2}", method.Formula);

        using var plain = ParameterAccess.Float64Mlp([2, 3], Start[..9]);
        using var sgd2 = optim.SGD(plain.parameters(), 0.01);
        double[][] others = [X[0], X[2]];
        int[] otherY = [Y[0], Y[2]];
        new BaselineMethod().Step(plain, ParameterAccess.Rows(others), ParameterAccess.Labels(otherY), sgd2, 0);
        // Through Taylor mode in libtorch the step is plain CE's to the bit (the same operations); through the fused kernel, whose
        // reverse pass sums in its own order, to rounding.
        foreach (var fused in new[] { false, true })
        {
            using var filtered = ParameterAccess.Float64Mlp([2, 3], Start[..9]);
            using var sgd3 = optim.SGD(filtered.parameters(), 0.01);
            var none = new CrrMethod(0.5, 1, 3, Directions, 1, new Random(6), classes: [2], fused: fused)
                .Step(filtered, ParameterAccess.Rows(others), ParameterAccess.Labels(otherY), sgd3, 0);
            Assert.Equal(0, none.Penalty);
            if (!fused) Assert.Equal(ParameterAccess.Get(plain), ParameterAccess.Get(filtered));
            else Assert.All(ParameterAccess.Get(plain).Zip(ParameterAccess.Get(filtered)), p => Assert.Equal(p.First, p.Second, 1e-15));
        }
    }

    [Theory]
    [InlineData("crr.at", "act3")]
    [InlineData("measure.at", "conv1")]
    public void An_unknown_layer_is_refused_naming_the_field_and_listing_the_layers(string field, string at)
    {
        var request = new TrainingRequest { Model = new ModelSpec { Hidden = [8, 8] } };
        request = field == "crr.at" ? request with { Crr = request.Crr with { At = at } } : request with { Measure = request.Measure with { At = at } };
        var ex = Assert.Throws<MeasurementInputException>(request.Validate);
        Assert.Equal(field, ex.Field);
        Assert.Contains($"'{at}' is not a layer of this mlp", ex.Message);
        Assert.Contains("fc1, act1, fc2, act2", ex.Message);
        Assert.Contains("'input'", ex.Message);
    }

    [Fact]
    public void Bad_class_pairs_for_the_penalty_name_crr_pairs()
    {
        var bad = new TrainingRequest { Method = "crr", Crr = new CrrSettings { Pairs = ["4-4"] } };
        Assert.Equal("crr.pairs", Assert.Throws<MeasurementInputException>(bad.Validate).Field);
        var missing = new TrainingRequest { Method = "crr", Epochs = 1, Data = new DataSpec { Samples = 40 }, Crr = new CrrSettings { Pairs = ["0-5"] } };
        var ex = Assert.Throws<MeasurementInputException>(() => TrainingRun.Run(missing, null, default));
        Assert.Equal("crr.pairs", ex.Field);
        Assert.Contains("class 5", ex.Message);
    }

    [Fact]
    public void Crr_at_a_hidden_layer_lowers_lambda_measured_there()
    {
        // Two Moons, the default tanh MLP; λ measured at act2 (the last hidden layer) on all test points. A strong penalty at act2
        // (scale 20, orders 1–3: the derivatives there are small, e^{-1.9 n}) flattens the head in that space: λ there ends below the
        // baseline's (same seed and data). Measured when written: −2.18 against −1.92.
        TrainingRequest Request(string method) => new()
        {
            Method = method, Epochs = 12, Seed = 1, Data = new DataSpec { Samples = 300 },
            Crr = new CrrSettings { Scale = 20, Orders = new OrderSpan(1, 3), At = "act2" },
            Measure = new LambdaSettings { Points = "all", At = "act2", MaxPoints = 64, BootstrapResamples = 0 },
        };
        var baseline = TrainingRun.Run(Request("baseline"), null, default);
        var crr = TrainingRun.Run(Request("crr"), null, default);
        Assert.Contains("layer act2", crr.Config.Objective);
        Assert.Equal("act2", crr.Config.Request.Measure.At);
        Assert.True(crr.Lambda!.Lambda < baseline.Lambda!.Lambda - 0.1, $"λ at act2: crr {crr.Lambda.Lambda}, baseline {baseline.Lambda.Lambda}");
    }
}
