using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Measurement.Tests.Engines;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// Every graph of <see cref="ExportedGraphs"/> (the operators and opset forms of <c>torch.onnx.export</c>): the imported
/// graph's plain forward against ONNX Runtime to 1e-5 (absolute, or relative above 1; ONNX Runtime runs float64 where it
/// has kernels, else float32), and its jets of orders 0..4 against nested reverse-mode autograd on that plain forward in
/// float64 to 1e-6 relative (<see cref="TaylorTestSupport.AssertClose"/>), for the loss and for a logit.
/// </summary>
public class ExportedGraphTests
{
    public static TheoryData<string> Graphs() => [.. ExportedGraphs.All.Keys];

    [Theory]
    [MemberData(nameof(Graphs))]
    public void An_exported_graph_imports_and_computes_what_onnx_runtime_computes(string name)
    {
        var (model, sample) = ExportedGraphs.All[name]();
        Assert.True(JetGraph.TryImport(model, out var graph, out var unsupported, ScalarType.Float64), string.Join("; ", unsupported));
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
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])),
                $"{name} output {i}: {actual[i]:R} vs onnx runtime ({onnx.Precision}) {expected[i]:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Graphs))]
    public void The_jets_of_an_exported_graph_match_nested_autograd_to_1e_6(string name)
    {
        var (model, sample) = ExportedGraphs.All[name]();
        Assert.True(JetGraph.TryImport(model, out var graph, out var unsupported, ScalarType.Float64), string.Join("; ", unsupported));
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
}
