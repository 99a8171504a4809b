using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Measurement.Tests.Engines;
using LambdaService.Measurement.Tests.Models;
using Onnx;
using TorchSharp;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;
using Jet = LambdaService.Measurement.Taylor.Jet;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// ONNX import: the imported graph's plain forward against ONNX Runtime (<see cref="OnnxRunner"/>, float64 where it
/// offers it) to 1e-5 (absolute, or relative above 1), its jets against nested autograd on its own plain forward to
/// 1e-6 relative (float64), and the naming of what cannot be imported.
/// </summary>
public class OnnxJetImporterTests
{
    private static float[] Rand(Random rng, int n, double scale = 1) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    /// <summary>
    /// A graph with most supported operators: asymmetric-padded and grouped strided convolutions, batch normalisation,
    /// leaky ReLU, average/max/global pooling, the exporter's Shape → Gather → Unsqueeze → Concat → Reshape flattening,
    /// Flatten, Concat, Gemm, Tanh, Dropout, Reshape with 0, Transpose, Cast, Sin/Cos/Exp/Div/Sub/Mul/Log/Sigmoid/Softplus,
    /// the Erf form of GELU, MatMul, Softmax, LogSoftmax, Identity and a Constant node. Input [N, 2, 6, 6], output [N, 3].
    /// </summary>
    internal static ModelProto Zoo(int seed)
    {
        var rng = new Random(seed);
        var b = new OnnxModelBuilder("x", 2, 6, 6);
        var c = b.Node("Conv", [b.Input, b.Constant(Rand(rng, 4 * 2 * 9, 0.5), 4, 2, 3, 3), b.Constant(Rand(rng, 4, 0.3), 4)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 0, 0, 1 }));                                  // [N,4,5,5]
        var bn = b.Node("BatchNormalization", [c, b.Constant(Rand(rng, 4).Select(f => 1 + 0.3f * f).ToArray(), 4), b.Constant(Rand(rng, 4, 0.2), 4),
            b.Constant(Rand(rng, 4, 0.2), 4), b.Constant(Rand(rng, 4).Select(f => 1 + 0.4f * f).ToArray(), 4)], ("epsilon", 1e-3f));
        var r = b.Node("LeakyRelu", [bn], ("alpha", 0.2f));
        var avg = b.Node("AveragePool", [r], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 1, 1 }));            // [N,4,4,4]
        var g = b.Node("Conv", [r, b.Constant(Rand(rng, 4 * 2 * 9, 0.5), 4, 2, 3, 3)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }), ("strides", new long[] { 2, 2 }), ("group", 2L)); // [N,4,3,3]
        var m = b.Node("MaxPool", [b.Node("Tanh", [g])], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 1, 1 }));   // [N,4,2,2]
        var shape = b.Node("Shape", [m]);
        var n = b.Node("Gather", [shape, b.ConstantInt64([0])], ("axis", 0L));
        var nu = b.Node("Unsqueeze", [n, b.ConstantInt64([0], 1)]);
        var target = b.Node("Concat", [nu, b.ConstantInt64([-1], 1)], ("axis", 0L));
        var mf = b.Node("Reshape", [m, target]);                                                                                   // [N,16]
        var gf = b.Flatten(b.Node("GlobalAveragePool", [avg]));                                                                    // [N,4]
        var cat = b.Node("Concat", [mf, gf], ("axis", 1L));                                                                        // [N,20]
        var w = Rand(rng, 8 * 20, Math.Sqrt(3.0 / 20));
        var h = b.Node("Dropout", [b.Node("Tanh", [b.Node("Gemm", [cat, b.Constant(w, 8, 20), b.Constant(Rand(rng, 8, 0.3), 8)], ("transB", 1L), ("alpha", 1.3f))])]);
        var t = b.Node("Cast", [b.Flatten(b.Node("Transpose", [b.Reshape(h, 0, 2, 4)], ("perm", new long[] { 0, 2, 1 })))], ("to", 1L)); // [N,8]
        var smooth = b.Node("Div", [b.Node("Sin", [t]), b.Node("Add", [b.Node("Exp", [b.Node("Cos", [t])]), b.Constant([1f])])]);
        smooth = b.Node("Sub", [smooth, b.Node("Mul", [b.Node("Log", [b.Node("Add", [b.Node("Sigmoid", [t]), b.Constant([0.5f])])]), b.Node("Softplus", [t])])]);
        var scale = b.Node("Constant", []);                                   // its value attribute is added below
        var mixed = b.Node("Identity", [b.Node("Mul", [b.Gelu(smooth), scale])]);
        var z = b.Node("MatMul", [mixed, b.Constant(Rand(rng, 8 * 3), 8, 3)]);
        var output = b.Node("Add", [z, b.Node("Mul", [b.Node("Softmax", [z], ("axis", 1L)), b.Node("LogSoftmax", [z], ("axis", 1L))])]);
        var model = b.Build(output, "logits", 3);
        var value = new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float } };
        value.T.Dims.Add(8);
        value.T.FloatData.Add(Rand(rng, 8));
        model.Graph.Node.Single(node => node.Output[0] == scale).Attribute.Add(value);
        return model;
    }

    public static TheoryData<string> Models() => ["mlp tanh", "mlp relu", "mlp sigmoid", "mlp softplus", "mlp gelu", "tiny cnn", "zoo"];

    private static (ModelProto Model, int[] Sample) Model(string name)
    {
        if (name == "tiny cnn") return (OnnxConvolutionTests.TinyCnn(3), [1, 6, 6]);
        if (name == "zoo") return (Zoo(4), [2, 6, 6]);
        var mlp = new ReferenceMlp([3, 8, 8, 3], seed: 5, weightScale: 1.5);
        return (OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases, name[4..]), [3]);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void An_imported_graph_computes_what_onnx_runtime_computes_to_1e_5(string name)
    {
        var (model, sample) = Model(name);
        Assert.True(JetGraph.TryImport(model, out var graph, out var unsupported, ScalarType.Float64), string.Join(", ", unsupported));
        using var g = graph!;
        using var onnx = OnnxRunner.Create(TestData.Onnx(model), sample);
        var size = sample.Aggregate(1, (a, c) => a * c);
        var x = TestData.Uniform(5 * size, seed: 6, low: -1.5, high: 1.5);
        var expected = onnx.Forward(x, 5);
        using var scope = NewDisposeScope();
        var actual = g.call(tensor(x, [5, .. sample.Select(d => (long)d)], ScalarType.Float64)).reshape(-1).data<double>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < actual.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"{name} output {i}: {actual[i]:R} vs onnx runtime ({onnx.Precision}) {expected[i]:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void The_jets_of_an_imported_graph_match_nested_autograd_on_its_plain_forward(string name)
    {
        var (model, sample) = Model(name);
        Assert.True(JetGraph.TryImport(model, out var graph, out _, ScalarType.Float64));
        using var g = graph!;
        using var scope = NewDisposeScope();
        var rng = new Random(7);
        long[] shape = [4, .. sample.Select(d => (long)d)];
        var x = Uniform(rng, shape, -1.5, 1.5);
        var v = Uniform(rng, shape, -1, 1);
        var classes = tensor(new long[] { 0, 2, 1, 2 });
        foreach (var target in new[] { TargetKind.Loss, TargetKind.Logit })
        {
            var expected = NestedAutograd(z => Objective.Evaluate(target, g.call(z), classes), x, v, 4);
            AssertClose(TaylorMode.ObjectiveDerivatives(g, x, v, 4, target, classes), expected, 1e-6, $"{name} {target}");
        }
    }

    [Fact]
    public void An_imported_graph_runs_under_the_autograd_engine_and_agrees_with_the_taylor_engine()
    {
        var model = Zoo(8);
        Assert.True(JetGraph.TryImport(model, out var graph, out _));
        using var g = graph!;
        using var runner = TorchModelRunner.FromModule(g, [2, 6, 6]);           // converts the float32 constants to float64
        Assert.Equal("float64", runner.Precision);
        var x = TestData.Uniform(3 * 72, seed: 9, low: -1, high: 1);
        var v = TestData.Uniform(3 * 2 * 72, seed: 10, low: -0.2, high: 0.2);
        var request = new DerivativeRequest(x, 3, v, 2, TargetKind.Loss, [0, 1, 2], 4);
        var reference = new AutogradEngine(runner).Compute(request, null, default);
        var taylor = new TaylorEngine(g, [2, 6, 6]).Compute(request, null, default);
        for (var i = 0; i < reference.Values.Length; i++)
        {
            Assert.True(Math.Abs(taylor.Values[i] - reference.Values[i]) <= 1e-9 * Math.Max(1, Math.Abs(reference.Values[i])), $"value {i}: {taylor.Values[i]:R} vs {reference.Values[i]:R}");
        }
    }

    [Fact]
    public void Relu_and_max_pool_graphs_report_their_piecewise_linear_operators_and_flat_logits()
    {
        var mlp = new ReferenceMlp([3, 8, 3], seed: 11);
        Assert.True(JetGraph.TryImport(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases, "relu"), out var relu, out _, ScalarType.Float64));
        using var r = relu!;
        Assert.Equal(["Relu"], r.PiecewiseLinearOperators);
        Assert.True(JetGraph.TryImport(OnnxConvolutionTests.TinyCnn(2), out var cnn, out _));
        using var c = cnn!;
        Assert.Equal(["MaxPool"], c.PiecewiseLinearOperators);
        Assert.True(JetGraph.TryImport(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases, "tanh"), out var tanh, out _));
        using var t = tanh!;
        Assert.Empty(t.PiecewiseLinearOperators);
        using var scope = NewDisposeScope();
        var rng = new Random(12);
        var x = Uniform(rng, [5, 3]);
        var d = TaylorMode.DirectionalDerivatives(r, x, Uniform(rng, [5, 3]), 4, TargetKind.Logit, tensor(new long[] { 0, 1, 2, 0, 1 }));
        Assert.Equal(0.0, d.narrow(1, 1, 3).abs().max().ToDouble());
        Assert.True(d.select(1, 0).abs().max().ToDouble() > 0);
    }

    [Fact]
    public void Unsupported_operators_are_named_with_their_nodes_and_nothing_is_imported()
    {
        var b = new OnnxModelBuilder("x", 3);
        var h = b.Node("Softsign", [b.Node("Tan", [b.Node("Tan", [b.Input])])]);
        var model = b.Build(h, "y", 3);
        Assert.False(JetGraph.TryImport(model, out var graph, out var unsupported));
        Assert.Null(graph);
        // The builder names nodes after their first output: tan0_node, tan1_node, softsign2_node.
        Assert.Equal(["Tan at nodes 'tan0_node', 'tan1_node'", "Softsign at node 'softsign2_node'"], unsupported);
        Assert.Equal(unsupported, OnnxJetImporter.UnknownOperators(model));

        var c = new OnnxModelBuilder("x", 3);
        var gelu = c.Node("Gelu", [c.Input]);
        var tanhGelu = c.Build(gelu, "y", 3);
        tanhGelu.Graph.Node[0].Attribute.Add(new AttributeProto { Name = "approximate", Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8("tanh") });
        Assert.False(JetGraph.TryImport(tanhGelu, out _, out var reasons));
        Assert.Equal(["Gelu (approximate=tanh) at node 'gelu0_node'"], reasons);
        Assert.Empty(OnnxJetImporter.UnknownOperators(tanhGelu));          // a known operator: its attribute is the problem

        var d = new OnnxModelBuilder("x", 1, 6, 6);
        var pool = d.Node("MaxPool", [d.Input], ("kernel_shape", new long[] { 2, 2 }), ("pads", new long[] { 1, 0, 0, 1 }));
        var pad = d.Node("Pad", [pool, d.ConstantInt64([0, 0, 1, 1, 0, 0, 1, 1], 8)], ("mode", "mirror"));
        Assert.False(JetGraph.TryImport(d.Build(d.Flatten(pad), "y", 0), out _, out var poolReasons));
        Assert.Equal(["MaxPool (asymmetric pads) at node 'maxpool0_node'", "Pad (mode=mirror) at node 'pad2_node'"], poolReasons);
    }

    [Fact]
    public void The_exact_engines_refuse_a_graph_they_cannot_read_naming_operators_nodes_and_what_auto_does_instead()
    {
        var b = new OnnxModelBuilder("x", 3);
        var model = b.Build(b.Node("Gemm", [b.Node("Tan", [b.Input]), b.Constant(new float[9], 3, 3)], ("transB", 1L)), "y", 3);
        var file = TestData.Onnx(model);
        var data = TestData.Make(TestData.Uniform(12, seed: 1), 4, [3]);
        var e = Assert.Throws<MeasurementInputException>(() => CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Taylor));
        Assert.Equal("engine", e.Field);
        Assert.Contains("unsupported operators Tan at node 'tan0_node'", e.Message, StringComparison.Ordinal);
        Assert.Contains("engine auto measures such a model with finite differences", e.Message, StringComparison.Ordinal);

        using var auto = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Auto);
        Assert.IsType<OnnxRunner>(auto);
        Assert.Contains(auto.Notes, n => n.StartsWith("engine auto chose finite-difference", StringComparison.Ordinal) && n.Contains("Tan at node 'tan0_node'", StringComparison.Ordinal));
    }

    [Fact]
    public void Auto_measures_a_piecewise_linear_onnx_graph_it_can_read_with_the_taylor_engine_never_finite_differences()
    {
        var cnn = OnnxConvolutionTests.TinyCnn(3);
        foreach (var node in cnn.Graph.Node.Where(n => n.OpType == "Tanh")) node.OpType = "Relu";   // Conv → Relu → MaxPool → Gemm
        var file = TestData.Onnx(cnn);
        var data = TestData.Make(TestData.Uniform(8 * 36, seed: 2), 8, [1, 6, 6], [0, 1, 2, 0, 1, 2, 0, 1]);
        using var runner = CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Auto);
        var result = CurvatureRate.Estimate(runner, data, new MeasurementOptions { BootstrapResamples = 0 }, null, default);
        Assert.Equal("taylor", result.Engine);
        Assert.Contains(result.Warnings, w => w.Contains("piecewise-linear operators (Relu, MaxPool)", StringComparison.Ordinal));
    }

    [Fact]
    public void Bytes_that_are_not_an_onnx_model_are_refused_with_an_argument_exception()
    {
        var e = Assert.Throws<ArgumentException>(() => JetGraph.TryImport(new byte[] { 1, 2, 3, 4, 5 }, out _, out _));
        Assert.Contains("not a readable ONNX model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_gelu_operator_of_opset_20_is_imported_and_matches_onnx_runtime()
    {
        var mlp = new ReferenceMlp([3, 6, 2], seed: 13);
        var model = OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases, "tanh");
        foreach (var node in model.Graph.Node.Where(n => n.OpType == "Tanh")) node.OpType = "Gelu";
        model.OpsetImport[0].Version = 20;
        Assert.True(JetGraph.TryImport(Google.Protobuf.MessageExtensions.ToByteArray(model), out var graph, out _, ScalarType.Float64));
        using var g = graph!;
        using var onnx = OnnxRunner.Create(TestData.Onnx(model), [3]);
        var x = TestData.Uniform(4 * 3, seed: 14, low: -2, high: 2);
        var expected = onnx.Forward(x, 4);
        using var scope = NewDisposeScope();
        var actual = g.call(tensor(x, [4, 3], ScalarType.Float64)).reshape(-1).data<double>().ToArray();
        for (var i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"{actual[i]} vs {expected[i]}");
    }
}
