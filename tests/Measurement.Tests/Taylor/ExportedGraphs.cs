using LambdaService.Measurement.Models;
using Onnx;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// ONNX graphs built node by node the way <c>torch.onnx.export</c> writes the corresponding PyTorch modules at the
/// given opset: attributes where that opset has attributes, inputs where it has inputs (Pad's pads since 11, ReduceSum's
/// axes since 13 and the other reductions' since 18, Split's sizes since 13 and num_outputs since 18, Slice's operands
/// since 10, Clip's bounds since 11), LayerNorm fused (17) or decomposed (13), AvgPool2d(padding) as Pad → AveragePool,
/// and attention as MatMul → Div → Softmax → MatMul with multi-head Reshape and Transpose. Float32 weights, a dynamic
/// batch axis, one output <c>[N, classes]</c>.
/// </summary>
internal static class ExportedGraphs
{
    public sealed record Graph(ModelProto Model, int[] Sample);

    /// <summary>The graphs by name: the operator and the opset it is written for.</summary>
    public static readonly IReadOnlyDictionary<string, Func<Graph>> All = new Dictionary<string, Func<Graph>>
    {
        ["layer norm mlp, LayerNormalization, opset 17"] = () => LayerNormMlp(17, fused: true),
        ["layer norm mlp, decomposed, opset 13"] = () => LayerNormMlp(13, fused: false),
        ["layer norm mlp, decomposed with axes as inputs, opset 18"] = () => LayerNormMlp(18, fused: false),
        ["padded cnn with average pooling, opset 11"] = () => PaddedCnn(11),
        ["padded cnn with average pooling, pads as an attribute, opset 10"] = () => PaddedCnn(10),
        ["pad modes reflect edge and a constant value, opset 13"] = () => PadModes(13),
        ["pad with axes as an input, opset 18"] = () => PadModes(18),
        ["attention block, opset 13"] = () => Attention(13),
        ["attention block, softmax on 2-d coercion, opset 11"] = () => Attention(11),
        ["elementwise activations, opset 18"] = () => Elementwise(18),
        ["elementwise activations with clip attributes, opset 10"] = () => Elementwise(10),
        ["reductions, axes as attributes, opset 11"] = () => Reductions(11),
        ["reductions, reduce sum axes as an input, opset 13"] = () => Reductions(13),
        ["reductions, axes as inputs, opset 18"] = () => Reductions(18),
        ["slice split expand where gather, opset 9"] = () => Indexing(9),
        ["slice split expand where gather, opset 13"] = () => Indexing(13),
        ["slice split expand where gather, split num_outputs, opset 18"] = () => Indexing(18),
        ["transposed convolutions, opset 13"] = () => TransposedConvolutions(13),
        ["instance and group normalisation, opset 18"] = () => Normalisations(18),
        ["instance and group normalisation, per-channel group scale, opset 21"] = () => Normalisations(21),
        ["broadcasting matmul, opset 13"] = () => BroadcastingMatMul(13),
    };

    private static float[] Rand(Random rng, int n, double scale = 1, double offset = 0) =>
        [.. Enumerable.Range(0, n).Select(_ => (float)(offset + (rng.NextDouble() * 2 - 1) * scale))];

    /// <summary>torch.nn.Linear as exported for 2-D inputs: Gemm with transB = 1.</summary>
    private static string Linear(OnnxModelBuilder b, Random rng, string input, int inputs, int outputs) =>
        b.Node("Gemm", [input, b.Constant(Rand(rng, outputs * inputs, Math.Sqrt(3.0 / inputs)), outputs, inputs), b.Constant(Rand(rng, outputs, 0.2), outputs)], ("transB", 1L));

    private static string Reduce(OnnxModelBuilder b, string op, string input, long[] axes, int opset, long keepdims = 1)
    {
        var axesAsInput = op == "ReduceSum" ? opset >= 13 : opset >= 18;
        return axesAsInput
            ? b.Node(op, [input, b.ConstantInt64(axes, axes.Length)], ("keepdims", keepdims))
            : b.Node(op, [input], ("axes", axes), ("keepdims", keepdims));
    }

    private static string Unsqueeze(OnnxModelBuilder b, string input, long axis, int opset) =>
        opset >= 13 ? b.Node("Unsqueeze", [input, b.ConstantInt64([axis], 1)]) : b.Node("Unsqueeze", [input], ("axes", new[] { axis }));

    /// <summary>
    /// A residual MLP with torch.nn.LayerNorm: x[5] → Linear(8) → LayerNorm → tanh → Linear(8) + skip → LayerNorm → Linear(3).
    /// Opset 17 exports LayerNormalization; opset 13 the decomposition ReduceMean → Sub → Pow(2) → ReduceMean → Add(ε) →
    /// Sqrt → Div → Mul(γ) → Add(β).
    /// </summary>
    public static Graph LayerNormMlp(int opset, bool fused)
    {
        var rng = new Random(21 + opset);
        var b = new OnnxModelBuilder("x", 5);
        string Norm(string h)
        {
            var scale = b.Constant(Rand(rng, 8, 0.3, 1), 8);
            var bias = b.Constant(Rand(rng, 8, 0.2), 8);
            if (fused) return b.Node("LayerNormalization", [h, scale, bias], ("axis", -1L), ("epsilon", 1e-5f));
            var centered = b.Node("Sub", [h, Reduce(b, "ReduceMean", h, [-1], opset)]);
            var variance = Reduce(b, "ReduceMean", b.Node("Pow", [centered, b.Constant([2f])]), [-1], opset);
            var deviation = b.Node("Sqrt", [b.Node("Add", [variance, b.Constant([1e-5f])])]);
            return b.Node("Add", [b.Node("Mul", [b.Node("Div", [centered, deviation]), scale]), bias]);
        }
        var h1 = Norm(Linear(b, rng, b.Input, 5, 8));
        var h2 = b.Node("Add", [Linear(b, rng, b.Node("Tanh", [h1]), 8, 8), h1]);
        return new(b.Build(Linear(b, rng, Norm(h2), 8, 3), "logits", 3, opset), [5]);
    }

    /// <summary>
    /// Conv2d(1→2, 3×3, padding = 1) → tanh → AvgPool2d(2, padding = 1, count_include_pad) exported as Pad → AveragePool →
    /// Flatten → Linear(3); the Pad's pads are an input from opset 11, an attribute before.
    /// </summary>
    public static Graph PaddedCnn(int opset)
    {
        var rng = new Random(31 + opset);
        var b = new OnnxModelBuilder("x", 1, 6, 6);
        var conv = b.Node("Conv", [b.Input, b.Constant(Rand(rng, 2 * 9, 0.5), 2, 1, 3, 3), b.Constant(Rand(rng, 2, 0.2), 2)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }));                                      // [N,2,6,6]
        long[] pads = [0, 0, 1, 1, 0, 0, 1, 1];
        var padded = opset >= 11
            ? b.Node("Pad", [b.Node("Tanh", [conv]), b.ConstantInt64(pads, 8), b.Constant([0f])], ("mode", "constant"))
            : b.Node("Pad", [b.Node("Tanh", [conv])], ("mode", "constant"), ("pads", pads), ("value", 0f));                   // [N,2,8,8]
        var pooled = b.Node("AveragePool", [padded], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 })); // [N,2,4,4]
        return new(b.Build(Linear(b, rng, b.Flatten(pooled), 32, 3), "logits", 3, opset), [1, 6, 6]);
    }

    /// <summary>ReflectionPad2d, ReplicationPad2d and ConstantPad2d(value 0.5) (opset 18: the last with an axes input) on [N, 2, 4, 5].</summary>
    public static Graph PadModes(int opset)
    {
        var rng = new Random(41 + opset);
        var b = new OnnxModelBuilder("x", 2, 4, 5);
        var reflect = b.Node("Pad", [b.Input, b.ConstantInt64([0, 0, 1, 2, 0, 0, 2, 1], 8)], ("mode", "reflect"));          // [N,2,7,8]
        var edge = b.Node("Pad", [b.Node("Tanh", [reflect]), b.ConstantInt64([0, 0, 0, 1, 0, 0, 1, 0], 8)], ("mode", "edge")); // [N,2,8,9]
        var constant = opset >= 18
            ? b.Node("Pad", [b.Node("Sin", [edge]), b.ConstantInt64([1, 0, 0, 1], 4), b.Constant([0.5f]), b.ConstantInt64([2, 3], 2)], ("mode", "constant"))
            : b.Node("Pad", [b.Node("Sin", [edge]), b.ConstantInt64([0, 0, 1, 0, 0, 0, 0, 1], 8), b.Constant([0.5f])], ("mode", "constant")); // [N,2,9,10]
        var pooled = b.Node("AveragePool", [constant], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 3, 3 }));           // [N,2,3,3]
        return new(b.Build(Linear(b, rng, b.Flatten(pooled), 18, 3), "logits", 3, opset), [2, 4, 5]);
    }

    /// <summary>
    /// A one-layer, two-head self-attention block on [N, 4, 6] as exported from q/k/v Linear layers and
    /// <c>softmax(q kᵀ / √d) v</c>: MatMul + Add projections, Reshape [0, 0, 2, 3] and Transpose to heads, MatMul → Div →
    /// Softmax → MatMul, back to [N, 4, 6], a residual Add, ReduceMean over the sequence and Linear(3).
    /// </summary>
    public static Graph Attention(int opset)
    {
        var rng = new Random(51 + opset);
        var b = new OnnxModelBuilder("x", 4, 6);
        string Project(string h) => b.Node("Add", [b.Node("MatMul", [h, b.Constant(Rand(rng, 36, 0.6), 6, 6)]), b.Constant(Rand(rng, 6, 0.1), 6)]);
        string Heads(string h, long[] perm) => b.Node("Transpose", [b.Node("Reshape", [h, b.ConstantInt64([0, 0, 2, 3], 4)])], ("perm", perm));
        var q = Heads(Project(b.Input), [0, 2, 1, 3]);                                                                  // [N,2,4,3]
        var k = Heads(Project(b.Input), [0, 2, 3, 1]);                                                                  // [N,2,3,4]
        var v = Heads(Project(b.Input), [0, 2, 1, 3]);                                                                  // [N,2,4,3]
        var scores = b.Node("Div", [b.Node("MatMul", [q, k]), b.Constant([(float)Math.Sqrt(3)])]);
        var weights = b.Node("Softmax", [scores], ("axis", opset >= 13 ? -1L : 3L));
        var context = b.Node("Reshape", [b.Node("Transpose", [b.Node("MatMul", [weights, v])], ("perm", new long[] { 0, 2, 1, 3 })), b.ConstantInt64([0, 0, 6], 3)]);
        var mixed = b.Node("Add", [Project(context), b.Input]);                                                         // [N,4,6]
        var pooled = Reduce(b, "ReduceMean", mixed, [1], opset, keepdims: 0);                                            // [N,6]
        return new(b.Build(Linear(b, rng, pooled, 6, 3), "logits", 3, opset), [4, 6]);
    }

    /// <summary>
    /// HardSigmoid, HardSwish, Elu, PRelu, Selu, Mish, Abs, Sqrt, Reciprocal, Clip (ReLU6-like, attributes before opset 11),
    /// Min, Max and Pow (constant exponent 1.5 and constant base 2) side by side after a Linear layer, concatenated, Linear(3).
    /// </summary>
    public static Graph Elementwise(int opset)
    {
        var rng = new Random(61 + opset);
        var b = new OnnxModelBuilder("x", 4);
        var h = Linear(b, rng, b.Input, 4, 4);
        var hs = Scaled(b, h, 3);
        var positive = b.Node("Add", [b.Node("Abs", [h]), b.Constant([0.5f])]);
        var clip = opset >= 11
            ? b.Node("Clip", [hs, b.Constant([-0.5f]), b.Constant([0.8f])])
            : b.Node("Clip", [hs], ("min", -0.5f), ("max", 0.8f));
        List<string> parts =
        [
            b.Node("HardSigmoid", [hs], ("alpha", 0.3f), ("beta", 0.4f)),
            b.Node("Elu", [h], ("alpha", 0.9f)),
            b.Node("PRelu", [h, b.Constant(Rand(rng, 4, 0.3), 4)]),
            b.Node("Selu", [h]),
            b.Node("Sqrt", [positive]),
            b.Node("Reciprocal", [positive]),
            clip,
            b.Node("Min", [h, b.Node("Sin", [h]), b.Constant([0.3f])]),
            b.Node("Max", [h, b.Node("Cos", [h])]),
            b.Node("Pow", [positive, b.Constant([1.5f])]),
            b.Node("Pow", [b.Constant([2f]), h]),
        ];
        if (opset >= 14) parts.Add(b.Node("HardSwish", [hs]));
        if (opset >= 18) parts.Add(b.Node("Mish", [h]));
        var all = b.Node("Concat", parts, ("axis", 1L));
        return new(b.Build(Linear(b, rng, all, 4 * parts.Count, 3), "logits", 3, opset), [4]);
    }

    private static string Scaled(OnnxModelBuilder b, string h, float s) => b.Node("Mul", [h, b.Constant([s])]);

    /// <summary>ReduceSum, ReduceMean (keepdims 0), ReduceMax and ReduceMin on [N, 3, 4], with axes where the opset puts them.</summary>
    public static Graph Reductions(int opset)
    {
        var rng = new Random(71 + opset);
        var b = new OnnxModelBuilder("x", 3, 4);
        var t = b.Node("Tanh", [b.Input]);
        var sum = b.Flatten(Reduce(b, "ReduceSum", b.Node("Exp", [t]), [2], opset));                                       // [N,3]
        var mean = Reduce(b, "ReduceMean", b.Node("Sin", [b.Input]), [-1], opset, keepdims: 0);                           // [N,3]
        var max = b.Flatten(Reduce(b, "ReduceMax", t, [1], opset));                                                       // [N,4]
        var min = Reduce(b, "ReduceMin", b.Node("Cos", [b.Input]), [1, 2], opset, keepdims: 0);                           // [N]
        var all = b.Node("Concat", [sum, mean, max, Unsqueeze(b, min, 1, opset)], ("axis", 1L));                         // [N,11]
        return new(b.Build(Linear(b, rng, all, 11, 3), "logits", 3, opset), [3, 4]);
    }

    /// <summary>
    /// Slice (a strided and a reversed slice), Split (attribute sizes before 13, an input since, num_outputs at 18), Expand,
    /// Where with a constant mask and Gather with constant indices on [N, 4, 6].
    /// </summary>
    public static Graph Indexing(int opset)
    {
        var rng = new Random(81 + opset);
        var b = new OnnxModelBuilder("x", 4, 6);
        string Slice(string h, long[] starts, long[] ends, long[] axes, long[] steps) => opset >= 10
            ? b.Node("Slice", [h, b.ConstantInt64(starts, starts.Length), b.ConstantInt64(ends, ends.Length), b.ConstantInt64(axes, axes.Length), b.ConstantInt64(steps, steps.Length)])
            : b.Node("Slice", [h], ("starts", starts), ("ends", ends), ("axes", axes));
        var strided = Slice(b.Node("Exp", [b.Input]), [1, 0], [long.MaxValue, -1], [1, 2], opset >= 10 ? [2, 2] : [1, 1]);            // [N,2,3] or [N,3,5]
        var reversed = opset >= 10 ? Slice(b.Input, [-1], [long.MinValue], [2], [-1]) : b.Input;                               // [N,4,6]
        var parts = opset switch
        {
            >= 18 => b.Nodes("Split", [b.Node("Sin", [reversed])], 2, ("axis", 2L), ("num_outputs", 2L)),
            >= 13 => b.Nodes("Split", [b.Node("Sin", [reversed]), b.ConstantInt64([2, 4], 2)], 2, ("axis", 2L)),
            _ => b.Nodes("Split", [b.Node("Sin", [reversed])], 2, ("axis", 2L), ("split", new long[] { 2, 4 })),
        };
        var first = b.Node("Tanh", [parts[0]]);
        var expanded = b.Node("Expand", [Slice(first, [0], [1], [1], [1]), b.ConstantInt64([1, 3, 1], 3)]);                 // [N,3,w]
        var mask = b.Constant([.. Enumerable.Range(0, 4 * 6).Select(i => i % 3 == 0 ? 1f : 0f)], 4, 6);
        var condition = b.Node("Greater", [mask, b.Constant([0.5f])]);
        var chosen = b.Node("Where", [condition, b.Input, b.Node("Cos", [b.Input])]);                                        // [N,4,6]
        var gathered = b.Node("Gather", [chosen, b.ConstantInt64([3, 0], 2)], ("axis", 2L));                                 // [N,4,2]
        var all = b.Node("Concat", [b.Flatten(strided), b.Flatten(parts[1]), b.Flatten(expanded), b.Flatten(gathered)], ("axis", 1L));
        var width = (opset >= 10 ? 2 * 3 : 3 * 5) + 4 * (opset >= 18 ? 3 : 4) + 3 * (opset >= 18 ? 3 : 2) + 8;
        return new(b.Build(Linear(b, rng, all, width, 3), "logits", 3, opset), [4, 6]);
    }

    /// <summary>
    /// ConvTranspose2d(2→3, 3×3, stride 2, padding 1, output_padding 1) and a grouped, dilated one with asymmetric pads,
    /// then Conv, GlobalAveragePool, Linear(3), on [N, 2, 3, 3].
    /// </summary>
    public static Graph TransposedConvolutions(int opset)
    {
        var rng = new Random(91 + opset);
        var b = new OnnxModelBuilder("x", 2, 3, 3);
        var up = b.Node("ConvTranspose", [b.Input, b.Constant(Rand(rng, 2 * 3 * 9, 0.5), 2, 3, 3, 3), b.Constant(Rand(rng, 3, 0.2), 3)],
            ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 }), ("output_padding", new long[] { 1, 1 })); // [N,3,6,6]
        var t = b.Node("Tanh", [up]);
        var grouped = b.Node("ConvTranspose", [b.Node("Slice", [t, b.ConstantInt64([0], 1), b.ConstantInt64([2], 1), b.ConstantInt64([1], 1)]),
            b.Constant(Rand(rng, 2 * 2 * 2 * 2, 0.5), 2, 2, 2, 2)],
            ("kernel_shape", new long[] { 2, 2 }), ("group", 2L), ("dilations", new long[] { 2, 1 }), ("pads", new long[] { 0, 1, 1, 0 }));              // [N,4,7,6]
        var conv = b.Node("Conv", [b.Node("Sin", [grouped]), b.Constant(Rand(rng, 2 * 4 * 4, 0.4), 2, 4, 2, 2)], ("kernel_shape", new long[] { 2, 2 }));
        var pooled = b.Flatten(b.Node("GlobalAveragePool", [conv]));
        return new(b.Build(Linear(b, rng, pooled, 2, 3), "logits", 3, opset), [2, 3, 3]);
    }

    /// <summary>InstanceNorm2d(affine) → tanh → GroupNorm(2 groups of 2 channels) on [N, 4, 3, 3]; opset 18 scales per group, 21 per channel.</summary>
    public static Graph Normalisations(int opset)
    {
        var rng = new Random(101 + opset);
        var b = new OnnxModelBuilder("x", 4, 3, 3);
        var instance = b.Node("InstanceNormalization", [b.Input, b.Constant(Rand(rng, 4, 0.3, 1), 4), b.Constant(Rand(rng, 4, 0.2), 4)], ("epsilon", 1e-5f));
        var affine = opset >= 21 ? 4 : 2;
        var group = b.Node("GroupNormalization", [b.Node("Tanh", [instance]), b.Constant(Rand(rng, affine, 0.3, 1), affine), b.Constant(Rand(rng, affine, 0.2), affine)],
            ("num_groups", 2L), ("epsilon", 1e-5f));
        return new(b.Build(Linear(b, rng, b.Flatten(b.Node("Sin", [group])), 36, 3), "logits", 3, opset), [4, 3, 3]);
    }

    /// <summary>MatMul with broadcasting: [N, 2, 3] by a [3, 4] weight, reshaped to [N, 2, 1, 4] by a [2, 4, 2] batch of weights (broadcast over N), and [N, 2, 3] by its own transpose.</summary>
    public static Graph BroadcastingMatMul(int opset)
    {
        var rng = new Random(111 + opset);
        var b = new OnnxModelBuilder("x", 2, 3);
        var h = b.Node("Tanh", [b.Node("MatMul", [b.Input, b.Constant(Rand(rng, 12, 0.6), 3, 4)])]);                       // [N,2,4]
        var batched = b.Node("MatMul", [b.Reshape(h, 0, 2, 1, 4), b.Constant(Rand(rng, 16, 0.6), 2, 4, 2)]);             // [N,2,1,2]
        var gram = b.Node("MatMul", [b.Input, b.Node("Transpose", [b.Input], ("perm", new long[] { 0, 2, 1 }))]);        // [N,2,2]
        var all = b.Node("Concat", [b.Flatten(batched), b.Flatten(gram)], ("axis", 1L));
        return new(b.Build(Linear(b, rng, all, 8, 3), "logits", 3, opset), [2, 3]);
    }
}
