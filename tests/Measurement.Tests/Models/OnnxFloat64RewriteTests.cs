using Google.Protobuf;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Models;

/// <summary>
/// The float64 rewrite of operators ONNX Runtime's CPU provider has no float64 kernel for
/// (<see cref="OnnxPrecision.ToFloat64WithReport"/>). Every case checks two things:
/// (1) the float64 graph agrees with the original float32 graph run by ONNX Runtime to float32 precision;
/// inputs and weights are float32 values, so the only difference is float32 rounding inside the original
/// graph (ε₃₂ ≈ 6·10⁻⁸ per operation, accumulated over at most a few hundred terms of size ≤ 1), well
/// inside |Δ| ≤ 10⁻⁵·max(1, |y|);
/// (2) the float64 graph agrees with an independent float64 reference (TorchSharp in float64, or the
/// defining formula evaluated here in double) to float64 precision, |Δ| ≤ 10⁻¹²·max(1, |y|) — sums of
/// at most a few hundred float64 terms in a different order differ by ~10⁻¹⁵, so this shows the graph
/// really computes in float64 and computes the same function.
/// </summary>
public class OnnxFloat64RewriteTests
{
    private const double Float32Tolerance = 1e-5;
    private const double Float64Tolerance = 1e-12;

    // ---------------------------------------------------------------- Conv

    /// <summary>A Conv test case: channels, output channels, spatial size, kernel, strides, pads ([begins, ends]), dilations, group, bias, auto_pad.</summary>
    public sealed record ConvCase(int C, int M, long[] Spatial, long[] Kernel, long[]? Strides = null, long[]? Pads = null, long[]? Dilations = null, int Group = 1, bool Bias = true, string? AutoPad = null);

    private static readonly Dictionary<string, ConvCase> ConvCases = new()
    {
        ["a 3x3 kernel from one to two channels (the TinyCnn layer)"] = new(1, 2, [6, 6], [3, 3]),
        ["stride 2 and padding 1 from 3 to 4 channels"] = new(3, 4, [7, 8], [3, 3], Strides: [2, 2], Pads: [1, 1, 1, 1]),
        ["dilation 2 with a non-square 2x3 kernel and asymmetric padding"] = new(2, 3, [7, 9], [2, 3], Pads: [1, 0, 0, 2], Dilations: [2, 2]),
        ["different strides, dilations and pads per axis without bias"] = new(2, 2, [9, 10], [3, 2], Strides: [2, 3], Pads: [0, 1, 2, 0], Dilations: [1, 2], Bias: false),
        ["a 1x1 kernel"] = new(4, 3, [5, 5], [1, 1]),
        ["a 1x1 kernel with stride 2"] = new(3, 2, [5, 6], [1, 1], Strides: [2, 2]),
        ["a kernel as large as the padded input"] = new(2, 2, [4, 4], [5, 5], Pads: [1, 0, 0, 1]),
        ["group 2"] = new(4, 6, [6, 6], [3, 3], Pads: [1, 1, 1, 1], Group: 2),
        ["a depthwise kernel with channel multiplier 2 and stride 2"] = new(3, 6, [7, 7], [3, 3], Strides: [2, 2], Pads: [1, 1, 1, 1], Group: 3),
        ["auto_pad SAME_UPPER with an even kernel"] = new(2, 3, [5, 6], [4, 2], AutoPad: "SAME_UPPER"),
        // (ONNX Runtime's float32 Conv refuses auto_pad SAME together with dilations, so there is no case for that.)
        ["auto_pad SAME_LOWER with an even kernel"] = new(2, 2, [6, 6], [3, 2], AutoPad: "SAME_LOWER"),
        ["auto_pad VALID with stride 2"] = new(2, 2, [6, 5], [2, 2], Strides: [2, 2], AutoPad: "VALID"),
        ["a 1-D kernel with stride 2, dilation 2 and padding"] = new(3, 2, [11], [3], Strides: [2], Pads: [1, 2], Dilations: [2]),
        ["a 3-D kernel with strides and padding"] = new(2, 3, [5, 4, 6], [3, 2, 3], Strides: [2, 1, 2], Pads: [1, 0, 1, 1, 1, 0]),
    };

    public static TheoryData<string> ConvCaseNames => [.. ConvCases.Keys];

    [Theory]
    [MemberData(nameof(ConvCaseNames))]
    public void A_convolution_rewritten_to_float64_matches_float32_onnx_runtime_and_float64_torch(string name)
    {
        var c = ConvCases[name];
        var s = c.Kernel.Length;
        var rng = new Random(name.Length);
        var weight = RandomFloats(rng, c.M * (c.C / c.Group) * (int)c.Kernel.Aggregate(1L, (a, b) => a * b), 0.5);
        var bias = RandomFloats(rng, c.M, 0.5);
        var b = new OnnxModelBuilder("x", [c.C, .. c.Spatial]);
        var inputs = new List<string> { b.Input, b.Constant(weight, [c.M, c.C / c.Group, .. c.Kernel]) };
        if (c.Bias) inputs.Add(b.Constant(bias, c.M));
        var attributes = new List<(string, object)> { ("kernel_shape", c.Kernel), ("group", (long)c.Group) };
        if (c.Strides is not null) attributes.Add(("strides", c.Strides));
        if (c.Pads is not null) attributes.Add(("pads", c.Pads));
        if (c.Dilations is not null) attributes.Add(("dilations", c.Dilations));
        var y = b.Node("Conv", inputs, [.. attributes]);
        var model = Finish(b, y, 17);
        if (c.AutoPad is not null) SetString(model, "Conv", "auto_pad", c.AutoPad);

        long[] shape = [3, c.C, .. c.Spatial];
        var x = RandomInput(shape, seed: 7);

        // Reference: explicit padding (the auto_pad SAME amounts with stride 1: δ(k−1) in total, the odd
        // element at the end for SAME_UPPER), then an unpadded float64 TorchSharp convolution.
        var strides = c.Strides ?? Ones(s);
        var dilations = c.Dilations ?? Ones(s);
        var pads = c.Pads ?? new long[2 * s];
        if (c.AutoPad == "VALID") pads = new long[2 * s];
        if (c.AutoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            for (var a = 0; a < s; a++)
            {
                var total = dilations[a] * (c.Kernel[a] - 1);
                pads[a] = c.AutoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                pads[s + a] = total - pads[a];
            }
        }
        double[] Reference(double[] input)
        {
            using var scope = NewDisposeScope();
            var xt = tensor(input, shape, ScalarType.Float64);
            xt = nn.functional.pad(xt, [.. Enumerable.Range(0, s).Reverse().SelectMany(a => new[] { pads[a], pads[s + a] })]);
            var w = tensor(weight.Select(v => (double)v).ToArray(), [c.M, c.C / c.Group, .. c.Kernel], ScalarType.Float64);
            var bt = c.Bias ? tensor(bias.Select(v => (double)v).ToArray(), [c.M], ScalarType.Float64) : null;
            var yt = s switch
            {
                1 => nn.functional.conv1d(xt, w, bt, strides[0], 0, dilations[0], c.Group),
                2 => nn.functional.conv2d(xt, w, bt, strides, [0, 0], dilations, c.Group),
                _ => nn.functional.conv3d(xt, w, bt, strides, [0, 0, 0], dilations, c.Group),
            };
            return yt.contiguous().data<double>().ToArray();
        }

        AssertRewriteAgrees(model, "Conv", x, shape, Reference);
    }

    [Fact]
    public void A_convolution_with_auto_pad_same_and_stride_2_is_left_alone_and_reported_and_the_runner_falls_back_to_float32()
    {
        var b = new OnnxModelBuilder("x", 1, 6, 6);
        var y = b.Node("Conv", [b.Input, b.Constant(RandomFloats(new Random(1), 9, 0.5), 1, 1, 3, 3)], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }));
        var model = Finish(b, b.Node("Flatten", [y], ("axis", 1L)), 17);
        SetString(model, "Conv", "auto_pad", "SAME_UPPER");

        var conversion = OnnxPrecision.ToFloat64WithReport(model);

        Assert.Empty(conversion.Rewritten);
        var entry = Assert.Single(conversion.NotRewritten);
        Assert.StartsWith("Conv", entry);
        Assert.Contains("auto_pad", entry);
        Assert.Contains(conversion.Model.Graph.Node, n => n.OpType == "Conv");
        using var runner = OnnxRunner.Create(TestData.Onnx(model), [1, 6, 6]);
        Assert.Equal("float32", runner.Precision);
        Assert.Contains(runner.Notes, n => n.Contains("float64 is not available"));
    }

    [Fact]
    public void A_convolution_whose_weight_is_a_graph_input_or_in_an_opset_10_model_is_left_alone_with_the_reason()
    {
        var b = new OnnxModelBuilder("x", 1, 6, 6);
        var y = b.Node("Conv", [b.Input, "w"], ("kernel_shape", new long[] { 3, 3 }));
        var model = Finish(b, y, 17);
        model.Graph.Input.Add(model.Graph.Input[0].Clone());
        model.Graph.Input[1].Name = "w";
        Assert.Contains("not a constant", Assert.Single(OnnxPrecision.ToFloat64WithReport(model).NotRewritten));

        var old = OnnxConvolutionTests.TinyCnn(3);
        old.OpsetImport[0].Version = 10;
        Assert.Contains("opset 10", Assert.Single(OnnxPrecision.ToFloat64WithReport(old).NotRewritten));
    }

    [Fact]
    public void A_transposed_convolution_is_reported_as_lacking_a_float64_kernel()
    {
        var b = new OnnxModelBuilder("x", 2, 4, 4);
        var y = b.Node("ConvTranspose", [b.Input, b.Constant(RandomFloats(new Random(2), 2 * 3 * 9, 0.5), 2, 3, 3, 3)], ("kernel_shape", new long[] { 3, 3 }));
        var conversion = OnnxPrecision.ToFloat64WithReport(Finish(b, y, 17));
        Assert.Contains("ConvTranspose", Assert.Single(conversion.NotRewritten));
    }

    [Fact]
    public void The_rewrite_drops_the_convolution_weight_and_keeps_the_graph_inputs_and_outputs()
    {
        var model = OnnxConvolutionTests.TinyCnn(3);
        var conversion = OnnxPrecision.ToFloat64WithReport(model);

        Assert.Equal([$"Conv '{model.Graph.Node.Single(n => n.OpType == "Conv").Name}'"], conversion.Rewritten);
        Assert.Empty(conversion.NotRewritten);
        // The original [2,1,3,3] weight is replaced by one [3·1, 2] block per kernel row.
        Assert.DoesNotContain(conversion.Model.Graph.Initializer, t => t.Name == model.Graph.Initializer[0].Name);
        Assert.Equal(3, conversion.Model.Graph.Initializer.Count(t => t.Dims.SequenceEqual([3L, 2L])));
        Assert.Equal(model.Graph.Input.Select(i => i.Name), conversion.Model.Graph.Input.Select(i => i.Name));
        Assert.Equal(model.Graph.Output.Select(o => o.Name), conversion.Model.Graph.Output.Select(o => o.Name));
        Assert.All(conversion.Model.Graph.Initializer, t => Assert.NotEqual((int)TensorProto.Types.DataType.Float, t.DataType));
    }

    // ---------------------------------------------------------------- pooling

    /// <summary>An AveragePool case: kernel, strides, pads, dilations, count_include_pad, auto_pad, opset.</summary>
    public sealed record PoolCase(long[] Spatial, long[] Kernel, long[]? Strides = null, long[]? Pads = null, long[]? Dilations = null, long CountIncludePad = 0, string? AutoPad = null, int Opset = 17);

    private static readonly Dictionary<string, PoolCase> PoolCases = new()
    {
        ["a 2x2 window with stride 2"] = new([6, 6], [2, 2], Strides: [2, 2]),
        ["a 2x2 window with stride 2 on an odd-sized input"] = new([7, 5], [2, 2], Strides: [2, 2]),
        ["a 3x3 window with padding 1, padding counted"] = new([5, 6], [3, 3], Pads: [1, 1, 1, 1], CountIncludePad: 1),
        ["a 3x3 window with padding 1, padding not counted"] = new([5, 6], [3, 3], Pads: [1, 1, 1, 1]),
        ["a 3x2 window with strides (2, 1) and asymmetric padding, padding not counted"] = new([7, 6], [3, 2], Strides: [2, 1], Pads: [2, 0, 1, 1]),
        ["a 3x2 window with strides (2, 1) and asymmetric padding, padding counted"] = new([7, 6], [3, 2], Strides: [2, 1], Pads: [2, 0, 1, 1], CountIncludePad: 1),
        ["a dilated 2x2 window with padding (opset 19)"] = new([7, 7], [2, 2], Pads: [1, 1, 1, 1], Dilations: [2, 2], Opset: 19),
        ["auto_pad SAME_UPPER, padding not counted"] = new([5, 5], [2, 3], AutoPad: "SAME_UPPER"),
        ["a 1-D window with stride 2 and padding"] = new([9], [3], Strides: [2], Pads: [1, 1]),
    };

    public static TheoryData<string> PoolCaseNames => [.. PoolCases.Keys];

    [Theory]
    [MemberData(nameof(PoolCaseNames))]
    public void An_average_pool_rewritten_to_float64_matches_float32_onnx_runtime_and_the_definition(string name)
    {
        var c = PoolCases[name];
        var s = c.Kernel.Length;
        var b = new OnnxModelBuilder("x", [2, .. c.Spatial]);
        var attributes = new List<(string, object)> { ("kernel_shape", c.Kernel), ("count_include_pad", c.CountIncludePad) };
        if (c.Strides is not null) attributes.Add(("strides", c.Strides));
        if (c.Pads is not null) attributes.Add(("pads", c.Pads));
        if (c.Dilations is not null) attributes.Add(("dilations", c.Dilations));
        var model = Finish(b, b.Node("AveragePool", [b.Input], [.. attributes]), c.Opset);
        if (c.AutoPad is not null) SetString(model, "AveragePool", "auto_pad", c.AutoPad);

        var strides = c.Strides ?? Ones(s);
        var dilations = c.Dilations ?? Ones(s);
        var pads = c.Pads ?? new long[2 * s];
        if (c.AutoPad == "SAME_UPPER")
        {
            for (var a = 0; a < s; a++)
            {
                var total = dilations[a] * (c.Kernel[a] - 1);
                pads[a] = total / 2;
                pads[s + a] = total - total / 2;
            }
        }
        long[] shape = [3, 2, .. c.Spatial];
        AssertRewriteAgrees(model, "AveragePool", RandomInput(shape, seed: 11), shape,
            x => AveragePoolReference(x, shape, c.Kernel, strides, pads, dilations, c.CountIncludePad != 0));
    }

    [Theory]
    [InlineData("GlobalAveragePool", 4, 17)]
    [InlineData("GlobalAveragePool", 4, 18)]
    [InlineData("GlobalAveragePool", 3, 13)]
    [InlineData("GlobalMaxPool", 4, 17)]
    [InlineData("GlobalMaxPool", 5, 18)]
    public void A_global_pool_becomes_a_reduction_over_the_spatial_axes(string op, int rank, int opset)
    {
        long[] sample = [3, .. new long[] { 4, 5, 3 }.Take(rank - 2)];
        var b = new OnnxModelBuilder("x", sample);
        var model = Finish(b, b.Node(op, [b.Input]), opset);
        long[] shape = [2, .. sample];
        var spatial = (int)sample.Skip(1).Aggregate(1L, (a, v) => a * v);
        AssertRewriteAgrees(model, op, RandomInput(shape, seed: 5), shape, x =>
            Enumerable.Range(0, 2 * 3).Select(nc =>
            {
                var window = x.Skip(nc * spatial).Take(spatial);
                return op == "GlobalMaxPool" ? window.Max() : window.Sum() / spatial;
            }).ToArray(),
            expectedShape: [2, 3, .. Enumerable.Repeat(1L, rank - 2)]);
    }

    // ---------------------------------------------------------------- elementwise

    /// <summary>An elementwise case: operator, attributes, opset, and the definition in double.</summary>
    public sealed record ElementwiseCase(string Op, (string, object)[] Attributes, int Opset, Func<double, double> Definition, string? StringAttribute = null, string? StringValue = null);

    private static readonly Dictionary<string, ElementwiseCase> ElementwiseCases = new()
    {
        ["Softplus"] = new("Softplus", [], 17, v => Math.Log(1 + Math.Exp(v))),
        ["LeakyRelu with alpha 0.1"] = new("LeakyRelu", [("alpha", 0.1f)], 13, v => v < 0 ? (double)0.1f * v : v),
        ["LeakyRelu with the default alpha at opset 20"] = new("LeakyRelu", [], 20, v => v < 0 ? (double)0.01f * v : v),
        ["Elu with alpha 0.7"] = new("Elu", [("alpha", 0.7f)], 17, v => v < 0 ? (double)0.7f * (Math.Exp(v) - 1) : v),
        ["Selu with the default constants"] = new("Selu", [], 17, v => v > 0 ? (double)1.05070102214813232421875f * v : (double)1.05070102214813232421875f * ((double)1.67326319217681884765625f * Math.Exp(v) - (double)1.67326319217681884765625f)),
        ["HardSigmoid with alpha 0.3 and beta 0.4"] = new("HardSigmoid", [("alpha", 0.3f), ("beta", 0.4f)], 17, v => Math.Max(0, Math.Min(1, (double)0.3f * v + (double)0.4f))),
        ["HardSwish"] = new("HardSwish", [], 14, v => v * Math.Max(0, Math.Min(1, v / 6 + 0.5))),
        ["Mish"] = new("Mish", [], 18, v => v * Math.Tanh(Math.Log(1 + Math.Exp(v)))),
        ["Softsign"] = new("Softsign", [], 17, v => v / (1 + Math.Abs(v))),
        ["ThresholdedRelu with alpha 0.2"] = new("ThresholdedRelu", [("alpha", 0.2f)], 17, v => v > (double)0.2f ? v : 0),
        ["Gelu (erf form, opset 20)"] = new("Gelu", [], 20, v => 0.5 * v * (1 + TorchErf(v / Math.Sqrt(2)))),
        ["Gelu (tanh form, opset 20)"] = new("Gelu", [], 20, v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))), "approximate", "tanh"),
        ["Erf"] = new("Erf", [], 17, TorchErf),
    };

    public static TheoryData<string> ElementwiseCaseNames => [.. ElementwiseCases.Keys];

    [Theory]
    [MemberData(nameof(ElementwiseCaseNames))]
    public void An_activation_rewritten_to_float64_matches_float32_onnx_runtime_and_its_definition(string name)
    {
        var c = ElementwiseCases[name];
        var b = new OnnxModelBuilder("x", 3, 40);
        var model = Finish(b, b.Node(c.Op, [b.Input], c.Attributes), c.Opset);
        if (c.StringAttribute is not null) SetString(model, c.Op, c.StringAttribute, c.StringValue!);
        long[] shape = [4, 3, 40];
        // Inputs in [−6, 6] reach every branch (both signs, Erf's four regions, the clipping of HardSigmoid).
        var x = RandomInput(shape, seed: 3, scale: 6);
        AssertRewriteAgrees(model, c.Op, x, shape, input => input.Select(c.Definition).ToArray());
    }

    [Fact]
    public void PRelu_with_a_per_channel_slope_is_rewritten()
    {
        var b = new OnnxModelBuilder("x", 3, 4, 4);
        float[] slope = [0.1f, -0.3f, 2f];
        var model = Finish(b, b.Node("PRelu", [b.Input, b.Constant(slope, 3, 1, 1)]), 13);
        long[] shape = [2, 3, 4, 4];
        AssertRewriteAgrees(model, "PRelu", RandomInput(shape, seed: 4), shape,
            x => x.Select((v, i) => v < 0 ? slope[i / 16 % 3] * v : v).ToArray());
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void Clip_at_opset_11_is_rewritten_to_max_and_min(bool withMin, bool withMax)
    {
        var b = new OnnxModelBuilder("x", 10);
        var model = Finish(b, b.Node("Clip", [b.Input, withMin ? b.Constant([-0.25f]) : "", withMax ? b.Constant([0.5f]) : ""]), 11);
        long[] shape = [5, 10];
        AssertRewriteAgrees(model, "Clip", RandomInput(shape, seed: 9), shape,
            x => x.Select(v => Math.Min(withMax ? 0.5 : double.PositiveInfinity, Math.Max(withMin ? -0.25 : double.NegativeInfinity, v))).ToArray());
    }

    [Fact]
    public void The_float64_erf_agrees_with_a_correctly_rounded_erf_to_a_few_ulp_across_all_of_its_regions()
    {
        var b = new OnnxModelBuilder("x", 1);
        var model = OnnxPrecision.ToFloat64(Finish(b, b.Node("Erf", [b.Input]), 17));
        // A dense grid over [−7, 7], the region boundaries 0.84375, 1.25, 1/0.35 and 6 with their
        // neighbours one ulp away, zero, tiny and huge values, and the infinities.
        var values = new List<double> { 0, 1e-300, -1e-20, 1e-8, 27, 1e10, double.PositiveInfinity, double.NegativeInfinity };
        for (var i = -7000; i <= 7000; i++) values.Add(i / 1000.0 + 1e-4);
        foreach (var edge in new[] { 0.84375, 1.25, 1 / 0.35, 6 })
        {
            foreach (var v in new[] { edge, Math.BitDecrement(edge), Math.BitIncrement(edge) }) values.AddRange([v, -v]);
        }
        var x = values.ToArray();
        var y = Run(model, x, [x.Length, 1], out _);
        var worst = 0.0;
        var worstAt = 0.0;
        for (var i = 0; i < x.Length; i++)
        {
            var expected = TorchErf(x[i]);
            var ulps = y[i] == expected ? 0 : Math.Abs(y[i] - expected) / Ulp(expected);
            if (ulps > worst) (worst, worstAt) = (ulps, x[i]);
        }
        // fdlibm's pieces are accurate to ≲ 2⁻⁵⁷ relative; without fdlibm's split of a² into two halves the
        // tail's exponent carries a relative error of ~a²·2⁻⁵³, which multiplies erfc(a) ≤ 0.08: a few ulp in all.
        Assert.True(worst <= 4, $"worst error {worst:F2} ulp at x = {worstAt:R}");
    }

    private static double Ulp(double v) => Math.BitIncrement(Math.Abs(v)) - Math.Abs(v);

    // ---------------------------------------------------------------- whole networks

    [Fact]
    public void The_tiny_cnn_now_runs_in_float64_and_agrees_with_its_float32_run()
    {
        var file = TestData.Onnx(OnnxConvolutionTests.TinyCnn(3));
        using var best = OnnxRunner.Create(file, [1, 6, 6]);
        using var f32 = OnnxRunner.Create(file, [1, 6, 6], new OnnxRunnerOptions { PreferFloat64 = false });
        Assert.Equal("float64", best.Precision);
        Assert.DoesNotContain(best.Notes, n => n.Contains("float64"));
        var x = TestData.Uniform(5 * 36, seed: 4);
        var a = best.Forward(x, 5);
        var c = f32.Forward(x, 5);
        for (var i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - c[i]) < Float32Tolerance * Math.Max(1, Math.Abs(a[i])), $"{a[i]} vs {c[i]}");
    }

    [Fact]
    public void A_resnet_style_classifier_runs_in_float64_and_agrees_with_its_float32_run()
    {
        // Conv(3→8, 3x3, stride 2, pad 1) → BatchNormalization → Relu → Conv(8→8, 3x3, group 2, pad 1)
        // → Add (residual) → Softplus → AveragePool(2, stride 2) → GlobalAveragePool → Flatten → Gemm(8→5).
        var rng = new Random(12);
        var b = new OnnxModelBuilder("x", 3, 9, 9);
        var h = b.Node("Conv", [b.Input, b.Constant(RandomFloats(rng, 8 * 3 * 9, 0.4), 8, 3, 3, 3), b.Constant(RandomFloats(rng, 8, 0.1), 8)],
            ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 }));
        float[] Positive(int n) => [.. RandomFloats(rng, n, 0.5).Select(v => 1 + v)];
        h = b.Node("BatchNormalization", [h, b.Constant(Positive(8), 8), b.Constant(RandomFloats(rng, 8, 0.2), 8), b.Constant(RandomFloats(rng, 8, 0.2), 8), b.Constant(Positive(8), 8)]);
        var r = b.Node("Relu", [h]);
        var g = b.Node("Conv", [r, b.Constant(RandomFloats(rng, 8 * 4 * 9, 0.3), 8, 4, 3, 3)], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }), ("group", 2L));
        h = b.Node("Softplus", [b.Node("Add", [g, r])]);
        h = b.Node("AveragePool", [h], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }));
        h = b.Node("Flatten", [b.Node("GlobalAveragePool", [h])], ("axis", 1L));
        var logits = b.Node("Gemm", [h, b.Constant(RandomFloats(rng, 5 * 8, 0.5), 5, 8), b.Constant(RandomFloats(rng, 5, 0.5), 5)], ("transB", 1L));
        var file = TestData.Onnx(b.Build(logits, "logits", 5));

        using var best = OnnxRunner.Create(file, [3, 9, 9]);
        using var f32 = OnnxRunner.Create(file, [3, 9, 9], new OnnxRunnerOptions { PreferFloat64 = false });
        Assert.Equal("float64", best.Precision);
        var x = TestData.Uniform(6 * 243, seed: 13);
        var a = best.Forward(x, 6);
        var c = f32.Forward(x, 6);
        for (var i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - c[i]) < Float32Tolerance * Math.Max(1, Math.Abs(a[i])), $"{a[i]} vs {c[i]}");
    }

    [Fact]
    public void A_constant_given_as_value_float_becomes_float64()
    {
        var b = new OnnxModelBuilder("x", 2);
        var model = Finish(b, b.Node("Add", [b.Input, "two"]), 17);
        var constant = new NodeProto { OpType = "Constant", Name = "two_node" };
        constant.Output.Add("two");
        constant.Attribute.Add(new AttributeProto { Name = "value_float", Type = AttributeProto.Types.AttributeType.Float, F = 2f });
        model.Graph.Node.Insert(0, constant);
        var y = Run(OnnxPrecision.ToFloat64(model), [0.1, 0.2], [1, 2], out _);
        Assert.Equal([2.1, 2.2], y);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>
    /// Converts <paramref name="model"/>, checks that every <paramref name="op"/> node was rewritten, and compares
    /// the float64 graph with the float32 graph and with <paramref name="reference"/> (see the class comment).
    /// </summary>
    private static void AssertRewriteAgrees(ModelProto model, string op, double[] x, long[] shape, Func<double[], double[]> reference, long[]? expectedShape = null)
    {
        var conversion = OnnxPrecision.ToFloat64WithReport(model);
        Assert.Empty(conversion.NotRewritten);
        Assert.NotEmpty(conversion.Rewritten);
        Assert.DoesNotContain(conversion.Model.Graph.Node, n => n.OpType == op);

        var y32 = Run(model, x, shape, out var shape32);
        var y64 = Run(conversion.Model, x, shape, out var shape64);
        Assert.Equal(shape32, shape64);
        if (expectedShape is not null) Assert.Equal(expectedShape, shape64);
        var expected = reference(x);
        Assert.Equal(expected.Length, y64.Length);
        for (var i = 0; i < y64.Length; i++)
        {
            Assert.True(Math.Abs(y64[i] - y32[i]) <= Float32Tolerance * Math.Max(1, Math.Abs(y64[i])), $"[{i}] float64 {y64[i]:R} vs float32 {y32[i]:R}");
            Assert.True(Math.Abs(y64[i] - expected[i]) <= Float64Tolerance * Math.Max(1, Math.Abs(expected[i])), $"[{i}] float64 {y64[i]:R} vs reference {expected[i]:R}");
        }
    }

    /// <summary>Runs a one-input graph (input "x", output "y") with the optimisation level the runner uses.</summary>
    private static double[] Run(ModelProto model, double[] x, long[] shape, out long[] outputShape)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(model.ToByteArray(), options);
        var f64 = model.Graph.Input[0].Type.TensorType.ElemType == (int)TensorProto.Types.DataType.Double;
        using var input = f64
            ? OrtValue.CreateTensorValueFromMemory(x.ToArray(), shape)
            : OrtValue.CreateTensorValueFromMemory(x.Select(v => (float)v).ToArray(), shape);
        using var run = new RunOptions();
        using var outputs = session.Run(run, ["x"], [input], [model.Graph.Output[0].Name]);
        var info = outputs[0].GetTensorTypeAndShape();
        outputShape = info.Shape;
        return f64 ? [.. outputs[0].GetTensorDataAsSpan<double>()] : [.. outputs[0].GetTensorDataAsSpan<float>().ToArray().Select(v => (double)v)];
    }

    /// <summary>Builds the model with output "y" of unknown shape at <paramref name="opset"/>.</summary>
    private static ModelProto Finish(OnnxModelBuilder b, string value, int opset)
    {
        var model = b.Build(value, "y", 0);
        model.Graph.Output[0].Type.TensorType.Shape = null;
        model.OpsetImport[0].Version = opset;
        return model;
    }

    private static void SetString(ModelProto model, string op, string name, string value) =>
        model.Graph.Node.First(n => n.OpType == op).Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) });

    private static long[] Ones(int n) => Enumerable.Repeat(1L, n).ToArray();

    private static float[] RandomFloats(Random rng, int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)(scale * (2 * rng.NextDouble() - 1))).ToArray();

    /// <summary>Uniform values in [−scale, scale], rounded to float32 so both graphs see the same input.</summary>
    private static double[] RandomInput(long[] shape, int seed, double scale = 1) =>
        RandomFloats(new Random(seed), (int)shape.Aggregate(1L, (a, b) => a * b), scale).Select(v => (double)v).ToArray();

    private static double TorchErf(double v)
    {
        using var t = tensor(v, ScalarType.Float64);
        using var e = t.erf();
        return e.item<double>();
    }

    /// <summary>ONNX AveragePool (ceil_mode 0) by its definition, in double, on an [N, C, spatial...] array.</summary>
    private static double[] AveragePoolReference(double[] x, long[] shape, long[] kernel, long[] strides, long[] pads, long[] dilations, bool countPad)
    {
        var s = kernel.Length;
        var spatial = shape[2..];
        var outSize = Enumerable.Range(0, s).Select(a => (spatial[a] + pads[a] + pads[s + a] - dilations[a] * (kernel[a] - 1) - 1) / strides[a] + 1).ToArray();
        var outVolume = outSize.Aggregate(1L, (a, b) => a * b);
        var inVolume = spatial.Aggregate(1L, (a, b) => a * b);
        var kernelVolume = kernel.Aggregate(1L, (a, b) => a * b);
        var result = new double[shape[0] * shape[1] * outVolume];
        for (var nc = 0L; nc < shape[0] * shape[1]; nc++)
        {
            for (var o = 0L; o < outVolume; o++)
            {
                var index = Unravel(o, outSize);
                double sum = 0;
                var count = 0;
                for (var k = 0L; k < kernelVolume; k++)
                {
                    var tap = Unravel(k, kernel);
                    var flat = 0L;
                    var inside = true;
                    for (var a = 0; a < s; a++)
                    {
                        var p = index[a] * strides[a] + tap[a] * dilations[a] - pads[a];
                        inside &= p >= 0 && p < spatial[a];
                        flat = flat * spatial[a] + p;
                    }
                    if (!inside) continue;
                    sum += x[nc * inVolume + flat];
                    count++;
                }
                result[nc * outVolume + o] = sum / (countPad ? kernelVolume : count);
            }
        }
        return result;
    }

    private static long[] Unravel(long flat, long[] dims)
    {
        var index = new long[dims.Length];
        for (var a = dims.Length - 1; a >= 0; a--)
        {
            index[a] = flat % dims[a];
            flat /= dims[a];
        }
        return index;
    }
}
