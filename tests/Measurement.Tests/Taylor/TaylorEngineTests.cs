using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Measurement.Tests.Engines;
using LambdaService.Measurement.Tests.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jet = LambdaService.Measurement.Taylor.Jet;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>A tanh MLP with given weights that is both a TorchSharp module and a jet module (as a user's network would be).</summary>
internal sealed class JetTanhMlp : nn.Module<Tensor, Tensor>, IJetModule
{
    private readonly ParameterList weights = new();
    private readonly ParameterList biases = new();

    public JetTanhMlp(float[][,] w, float[][] b) : base(nameof(JetTanhMlp))
    {
        for (var l = 0; l < w.Length; l++)
        {
            var flat = new float[w[l].Length];
            Buffer.BlockCopy(w[l], 0, flat, 0, flat.Length * sizeof(float));
            weights.Add(new Parameter(tensor(flat, [w[l].GetLength(0), w[l].GetLength(1)]), requires_grad: false));
            biases.Add(new Parameter(tensor(b[l], [b[l].Length]), requires_grad: false));
        }
        RegisterComponents();
    }

    public IReadOnlyList<string> PiecewiseLinearOperators => [];

    public override Tensor forward(Tensor x)
    {
        for (var l = 0; l < weights.Count; l++)
        {
            x = nn.functional.linear(x, weights[l], biases[l]);
            if (l < weights.Count - 1) x = x.tanh();
        }
        return x;
    }

    public Jet Forward(Jet x)
    {
        for (var l = 0; l < weights.Count; l++)
        {
            x = JetOps.Linear(x, weights[l], biases[l]);
            if (l < weights.Count - 1) x = JetOps.Tanh(x);
        }
        return x;
    }
}

/// <summary>The TinyCnn of the ONNX tests (conv → tanh → max-pool → flatten → linear) as a module and a jet module.</summary>
internal sealed class JetTinyCnn : nn.Module<Tensor, Tensor>, IJetModule
{
    private readonly Parameter convW, convB, fcW, fcB;

    public JetTinyCnn(Onnx.ModelProto onnx) : base(nameof(JetTinyCnn))
    {
        Parameter T(int i) => new(tensor(onnx.Graph.Initializer[i].FloatData.ToArray(), onnx.Graph.Initializer[i].Dims.ToArray()), requires_grad: false);
        convW = T(0); convB = T(1); fcW = T(2); fcB = T(3);
        RegisterComponents();
    }

    public IReadOnlyList<string> PiecewiseLinearOperators => ["MaxPool"];

    public override Tensor forward(Tensor x)
    {
        var h = nn.functional.conv2d(x, convW, convB).tanh();
        return nn.functional.linear(nn.functional.max_pool2d(h, 2, 2).flatten(1), fcW, fcB);
    }

    public Jet Forward(Jet x)
    {
        var h = JetOps.Tanh(JetOps.Conv2d(x, convW, convB));
        return JetOps.Linear(JetOps.Flatten(JetOps.MaxPool2d(h, [2, 2], [2, 2]), 1), fcW, fcB);
    }
}

/// <summary>
/// A ReLU CNN with random weights (conv 2→3 → ReLU → conv 3→4 → ReLU → 2×2 max pooling → flatten → linear 16 → ReLU → linear 3), as a
/// module and a jet module: every layer keeps the value rows that a point's lines share (<see cref="Jet.SharedValueRows"/>).
/// </summary>
internal sealed class JetReluCnn : nn.Module<Tensor, Tensor>, IJetModule
{
    private readonly Parameter conv1W, conv1B, conv2W, conv2B, fc1W, fc1B, fc2W, fc2B;

    public JetReluCnn(int seed) : base(nameof(JetReluCnn))
    {
        var rng = new Random(seed);
        Parameter P(params long[] shape) => new(tensor(Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), shape), requires_grad: false);
        conv1W = P(3, 2, 3, 3); conv1B = P(3); conv2W = P(4, 3, 3, 3); conv2B = P(4);
        fc1W = P(16, 16); fc1B = P(16); fc2W = P(3, 16); fc2B = P(3);
        RegisterComponents();
    }

    public IReadOnlyList<string> PiecewiseLinearOperators => ["Relu", "MaxPool"];

    public override Tensor forward(Tensor x)
    {
        var h = nn.functional.relu(nn.functional.conv2d(nn.functional.relu(nn.functional.conv2d(x, conv1W, conv1B)), conv2W, conv2B));
        return nn.functional.linear(nn.functional.relu(nn.functional.linear(nn.functional.max_pool2d(h, 2, 2).flatten(1), fc1W, fc1B)), fc2W, fc2B);
    }

    public Jet Forward(Jet x)
    {
        var h = JetOps.Relu(JetOps.Conv2d(JetOps.Relu(JetOps.Conv2d(x, conv1W, conv1B)), conv2W, conv2B));
        return JetOps.Linear(JetOps.Relu(JetOps.Linear(JetOps.Flatten(JetOps.MaxPool2d(h, [2, 2], [2, 2]), 1), fc1W, fc1B)), fc2W, fc2B);
    }
}

/// <summary>
/// <see cref="TaylorEngine"/> against <see cref="AutogradEngine"/> on the same modules (float64; only rounding differs:
/// 1e-9 relative), and against the exact scalar Taylor arithmetic of the test-side reference jet.
/// </summary>
public class TaylorEngineTests
{
    private const int Points = 8, Directions = 3, MaxOrder = 5;

    private static void AssertAgree(DerivativeResult taylor, DerivativeResult reference, double rel, string what)
    {
        Assert.Equal(reference.Values.Length, taylor.Values.Length);
        for (var p = 0; p < reference.PointCount; p++)
        {
            for (var d = 0; d < reference.DirectionsPerPoint; d++)
            {
                for (var n = 0; n <= reference.MaxOrder; n++)
                {
                    var e = reference[p, d, n];
                    var a = taylor[p, d, n];
                    Assert.True(Math.Abs(a - e) <= rel * Math.Max(1, Math.Abs(e)), $"{what} p={p} d={d} n={n}: taylor {a:R} vs {e:R}");
                }
            }
        }
    }

    [Theory]
    [InlineData(TargetKind.Loss)]
    [InlineData(TargetKind.Logit)]
    public void The_taylor_engine_on_a_tanh_mlp_agrees_with_the_autograd_engine_and_with_exact_taylor_arithmetic(TargetKind target)
    {
        var mlp = new ReferenceMlp([2, 12, 12, 3], seed: 7, weightScale: 1.5);
        using var module = new JetTanhMlp(mlp.Weights, mlp.Biases);
        using var runner = TorchModelRunner.FromModule(module, [2]);
        var x = TestData.Uniform(Points * 2, seed: 8, low: -1.5, high: 1.5);
        var v = CurvatureRate.Directions(Points, Directions, 2, seed: 9);
        var labels = Enumerable.Range(0, Points).Select(i => i % 3).ToArray();
        var request = new DerivativeRequest(x, Points, v, Directions, target, labels, MaxOrder);
        var engine = new TaylorEngine(module, [2], budget: LineBudget.Fixed(5));
        Assert.Equal("taylor", engine.Name);
        var reports = new List<double>();
        var taylor = engine.Compute(request, new SyncProgress(reports.Add), default);
        Assert.Equal("float64", taylor.Precision);
        Assert.Equal(8, reports.Count);                                        // 24 lines in passes of 3: 5 rounded down to whole points
        Assert.Equal(1.0, reports[^1]);
        AssertAgree(taylor, new AutogradEngine(runner).Compute(request, null, default), 1e-9, "autograd");
        for (var p = 0; p < Points; p++)
        {
            for (var d = 0; d < Directions; d++)
            {
                var line = p * Directions + d;
                var xs = x[(p * 2)..(p * 2 + 2)];
                var vs = v[(line * 2)..(line * 2 + 2)];
                var exact = target == TargetKind.Loss ? mlp.Loss(xs, vs, labels[p], MaxOrder) : mlp.Logits(xs, vs, MaxOrder)[labels[p]];
                for (var n = 0; n <= MaxOrder; n++)
                {
                    // Same float32 weights; the reference jet is double-precision scalar arithmetic.
                    Assert.True(Math.Abs(taylor[p, d, n] - exact.Derivative(n)) <= 1e-9 * Math.Max(1, Math.Abs(exact.Derivative(n))),
                        $"p={p} d={d} n={n}: {taylor[p, d, n]:R} vs exact {exact.Derivative(n):R}");
                }
            }
        }
    }

    [Fact]
    public void The_taylor_engine_on_a_conv_maxpool_network_agrees_with_the_autograd_engine()
    {
        using var module = new JetTinyCnn(OnnxConvolutionTests.TinyCnn(3));
        using var runner = TorchModelRunner.FromModule(module, [1, 6, 6]);
        var x = TestData.Uniform(Points * 36, seed: 10, low: 0, high: 1);
        var v = CurvatureRate.Directions(Points, Directions, 36, seed: 11);
        var labels = Enumerable.Range(0, Points).Select(i => i % 3).ToArray();
        var request = new DerivativeRequest(x, Points, v, Directions, TargetKind.Loss, labels, MaxOrder);
        var taylor = new TaylorEngine(module, [1, 6, 6]).Compute(request, null, default);
        AssertAgree(taylor, new AutogradEngine(runner).Compute(request, null, default), 1e-9, "autograd");
        Assert.Equal(["MaxPool"], module.PiecewiseLinearOperators);
    }

    [Fact]
    public void A_relu_cnn_computes_each_point_value_once_and_agrees_with_the_autograd_engine_and_with_unshared_lines()
    {
        using var module = new JetReluCnn(seed: 12);
        module.to(ScalarType.Float64);
        using var runner = TorchModelRunner.FromModule(module, [2, 8, 8]);
        var x = TestData.Uniform(Points * 128, seed: 13, low: 0, high: 1);
        var v = CurvatureRate.Directions(Points, Directions, 128, seed: 14);
        var labels = Enumerable.Range(0, Points).Select(i => i % 3).ToArray();
        var request = new DerivativeRequest(x, Points, v, Directions, TargetKind.Loss, labels, MaxOrder);
        // Passes of 7 lines round down to 6: two whole points each, so their lines share values.
        var taylor = new TaylorEngine(module, [2, 8, 8], budget: LineBudget.Fixed(7)).Compute(request, null, default);
        AssertAgree(taylor, new AutogradEngine(runner).Compute(request, null, default), 1e-9, "autograd");

        // The jet of the point lines keeps its groups through every layer to the logits, and its coefficients are those of the
        // same lines given one by one (the value computed once per point instead of once per line: only rounding may differ).
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var points = tensor(x, [Points, 2, 8, 8]);
        var directions = tensor(v, [Points * Directions, 2, 8, 8]);
        var shared = module.Forward(Jet.PointLines(points, directions, MaxOrder));
        var plain = module.Forward(Jet.Line(points.repeat_interleave(Directions, 0), directions, MaxOrder));
        Assert.Equal(Directions, shared.SharedValueRows);
        Assert.Equal(1, plain.SharedValueRows);
        var difference = (shared.Coefficients - plain.Coefficients).abs().max().ToDouble();
        Assert.True(difference <= 1e-12 * plain.Coefficients.abs().max().ToDouble(), $"max difference {difference:R}");
    }

    [Fact]
    public void A_scalar_model_is_differentiated_through_its_single_output_and_float32_is_reported()
    {
        var mlp = new ReferenceMlp([3, 6, 1], seed: 12);
        using var module = new JetTanhMlp(mlp.Weights, mlp.Biases);
        using var runner = TorchModelRunner.FromModule(module, [3]);
        var x = TestData.Uniform(4 * 3, seed: 13);
        var v = CurvatureRate.Directions(4, 2, 3, seed: 14);
        var request = new DerivativeRequest(x, 4, v, 2, TargetKind.Output, [], 4);
        AssertAgree(new TaylorEngine(module, [3]).Compute(request, null, default), new AutogradEngine(runner).Compute(request, null, default), 1e-9, "output");
        var single = new TaylorEngine(module, [3], ScalarType.Float32).Compute(request, null, default);
        Assert.Equal("float32", single.Precision);
        AssertAgree(single, new AutogradEngine(runner).Compute(request, null, default), 1e-4, "float32");
    }

    [Fact]
    public void A_cancelled_request_stops_before_the_first_pass()
    {
        var mlp = new ReferenceMlp([2, 4, 3], seed: 15);
        using var module = new JetTanhMlp(mlp.Weights, mlp.Biases);
        var request = new DerivativeRequest(new double[4], 2, new double[4], 1, TargetKind.Loss, [0, 1], 3);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => new TaylorEngine(module, [2]).Compute(request, null, cts.Token));
    }

    [Fact]
    public void Bad_settings_are_refused_with_messages_that_say_what_to_give()
    {
        var mlp = new ReferenceMlp([2, 4, 3], seed: 16);
        using var module = new JetTanhMlp(mlp.Weights, mlp.Biases);
        Assert.Contains("sample shape", Assert.Throws<ArgumentException>(() => new TaylorEngine(module, [])).Message, StringComparison.Ordinal);
        Assert.Contains("float64 or float32", Assert.Throws<ArgumentException>(() => new TaylorEngine(module, [2], ScalarType.Int32)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => LineBudget.Fixed(0));
        using var scope = NewDisposeScope();
        var x = zeros(3, 2, dtype: ScalarType.Float64);
        var e = Assert.Throws<ArgumentException>(() => TaylorMode.DirectionalDerivatives(module, x, x, 2, TargetKind.Loss, tensor(new long[] { 0, 1 })));
        Assert.Contains("one class index per line", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => TaylorMode.DirectionalDerivatives(module, x, x, 2, TargetKind.Logit, null));
        Assert.Contains("scalar model", Assert.Throws<ArgumentException>(() => TaylorMode.DirectionalDerivatives(module, x, x, 2, TargetKind.Output, null)).Message, StringComparison.Ordinal);
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
