using Google.Protobuf;
using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Replaces operators that ONNX Runtime's CPU execution provider (1.31) has no float64 kernel for by
/// equivalent subgraphs of operators it has float64 kernels for (Pad, Transpose, Slice, MatMul, Add, Mul, Div,
/// Reshape, ReduceMean, ReduceMax, Shape, Concat, ConstantOfShape, Where, Less, Greater, Abs, Neg, Sign, Exp, Log,
/// Tanh, Relu, Max, Min, Reciprocal). Works on a graph whose float tensors are already float64 and keeps
/// every original value name, so value_info and consumers stay valid.
/// </summary>
/// <remarks>
/// <para>
/// <b>Conv</b> (spatial rank s = 1, 2, 3; weight W of shape <c>[M, C/G, k₁..k_s]</c> a constant; group G;
/// strides σ, dilations δ, pads p). With X̃ = Pad(X, p) in channels-last layout <c>[N, H̃₁..H̃_s, C]</c>,
/// <c>Y[n, m, i] = B[m] + Σ_o Σ_c X̃[n, σ·i + δ·o, g(m)·C/G + c] · W[m, c, o]</c> over kernel offsets o.
/// For fixed o, the map <c>i ↦ X̃[n, σ·i + δ·o, ·]</c> is Slice(X̃, starts = δ·o, ends = −δ·(k − 1 − o)
/// (or the end when 0), steps = σ), whose length along each axis is <c>⌈(H̃ − δ(k−1))/σ⌉ = ⌊(H̃ − δ(k−1) − 1)/σ⌋ + 1</c>,
/// exactly Conv's output size and independent of the (possibly dynamic) input size. The channel contraction
/// for fixed o is MatMul with the constant <c>W[:, :, o]ᵀ</c> (<c>[C, M]</c>); the offsets of one kernel
/// row (o₁..o_{s−1} fixed, o_s = 0..k_s−1) are done at once by concatenating their slices on the channel
/// axis (<c>[…, k_s·C]</c>) and multiplying by the stacked <c>[k_s·C, M]</c> weight block. For G &gt; 1
/// the channels are first reshaped to <c>[G, 1, C/G]</c> and the weight blocks are <c>[G, k_s·C/G, M/G]</c>
/// (MatMul broadcasts over G). The row products are accumulated with Add, the bias is added along the last
/// axis, and the result is transposed back to <c>[N, M, ...]</c>. auto_pad VALID means p = 0;
/// SAME_UPPER/SAME_LOWER with all strides 1 pads δ(k − 1) in total (the larger half at the end for
/// SAME_UPPER, at the start for SAME_LOWER); SAME with a stride above 1 depends on the input size and is
/// left alone.
/// </para>
/// <para>
/// <b>AveragePool</b> (ceil_mode 0): <c>Y = (Σ_o Slice_o(Pad(X, p))) / K</c> with K = Πk when
/// count_include_pad = 1 or there is no padding; with count_include_pad = 0 the divisor is the same sum
/// applied to Pad(1, p), the number of non-padding elements under each window.
/// <b>GlobalAveragePool / GlobalMaxPool</b>: ReduceMean / ReduceMax of <c>Reshape(X, [N, C, −1])</c> over
/// its last axis, reshaped to <c>[N, C, 1, …, 1]</c> (shape computed in-graph from Shape(X)).
/// </para>
/// <para>Elementwise operators are documented in the second part of this class.</para>
/// </remarks>
internal sealed partial class OnnxFloat64Rewriter
{
    private const int Double = (int)TensorProto.Types.DataType.Double;
    private const int Int64 = (int)TensorProto.Types.DataType.Int64;

    /// <summary>Operators ONNX Runtime 1.31's CPU provider has no float64 kernel for (at any opset) and that are not rewritten.</summary>
    internal static readonly IReadOnlySet<string> LackingWithoutRewrite = new HashSet<string>(StringComparer.Ordinal)
    {
        "ConvTranspose", "LRN", "InstanceNormalization", "Tan", "Atan", "Asin", "Acos", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Celu",
    };

    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consumedConstants = new(StringComparer.Ordinal);
    private readonly List<string> _rewritten = [];
    private readonly List<string> _notRewritten = [];
    private readonly int _opset;
    private int _counter;

    private OnnxFloat64Rewriter(int opset) => _opset = opset;

    /// <summary>Rewrites <paramref name="model"/> in place; returns the rewritten nodes and the nodes left alone (with reasons).</summary>
    public static (IReadOnlyList<string> Rewritten, IReadOnlyList<string> NotRewritten) Rewrite(ModelProto model)
    {
        var opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => (int)o.Version).DefaultIfEmpty(0).Max();
        var rewriter = new OnnxFloat64Rewriter(opset);
        rewriter.CollectNames(model.Graph);
        rewriter.RewriteGraph(model.Graph, null);
        if (rewriter._consumedConstants.Count > 0) rewriter.RemoveUnusedConstants(model.Graph);
        return (rewriter._rewritten, rewriter._notRewritten);
    }

    private void CollectNames(GraphProto graph)
    {
        foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo)) _names.Add(v.Name);
        foreach (var t in graph.Initializer) _names.Add(t.Name);
        foreach (var node in graph.Node)
        {
            _names.Add(node.Name);
            foreach (var o in node.Output) _names.Add(o);
            foreach (var a in node.Attribute)
            {
                if (a.G is not null) CollectNames(a.G);
                foreach (var g in a.Graphs) CollectNames(g);
            }
        }
    }

    private string Fresh(string prefix)
    {
        string name;
        do
        {
            name = $"{prefix}/f64_{_counter++}";
        }
        while (!_names.Add(name));
        return name;
    }

    private void RewriteGraph(GraphProto graph, Scope? parent)
    {
        var scope = new Scope(graph, parent);
        var nodes = new List<NodeProto>(graph.Node.Count);
        foreach (var node in graph.Node)
        {
            foreach (var a in node.Attribute)
            {
                if (a.G is not null) RewriteGraph(a.G, scope);
                foreach (var g in a.Graphs) RewriteGraph(g, scope);
            }
            var label = $"{node.OpType} '{(node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? "")}'";
            if (node.Domain is not ("" or "ai.onnx"))
            {
                nodes.Add(node);
                continue;
            }
            var emitter = new Emitter(this, scope, node);
            var reason = TryRewrite(node, emitter);
            if (reason is null)
            {
                emitter.Commit();
                nodes.AddRange(emitter.Nodes);
                _rewritten.Add(label);
                continue;
            }
            nodes.Add(node);
            if (reason != NotHandled) _notRewritten.Add($"{label}: {reason}");
            else if (LackingWithoutRewrite.Contains(node.OpType)) _notRewritten.Add($"{label}: ONNX Runtime has no float64 kernel for {node.OpType} and there is no rewrite for it");
        }
        graph.Node.Clear();
        graph.Node.Add(nodes);
    }

    private const string NotHandled = "\0not handled";

    private string? TryRewrite(NodeProto node, Emitter e)
    {
        if (!Handles(node.OpType)) return NotHandled;
        if (node.OpType == "Clip" && _opset >= 12) return NotHandled; // Clip-12 and later have float64 kernels
        if (_opset < 11) return $"the model's opset {_opset} is below 11 (the rewrite needs Slice steps and Pad with a pads input)";
        if (node.Output.Count != 1 || node.Input.Count == 0 || node.Input[0].Length == 0) return "unexpected inputs or outputs";
        var type = e.Scope.ElementType(node.Input[0]);
        if (type is not null && type != Double) return $"its input is {OnnxGraphChecks.ElementTypeName(type.Value)}, not float64";
        return node.OpType switch
        {
            "Conv" => Conv(node, e),
            "AveragePool" => AveragePool(node, e),
            "GlobalAveragePool" => GlobalPool(node, e, "ReduceMean"),
            "GlobalMaxPool" => GlobalPool(node, e, "ReduceMax"),
            _ => Elementwise(node, e),
        };
    }

    private static bool Handles(string op) => op is "Conv" or "AveragePool" or "GlobalAveragePool" or "GlobalMaxPool" || HandlesElementwise(op);

    private string? Conv(NodeProto node, Emitter e)
    {
        if (node.Input.Count < 2 || node.Input[1].Length == 0) return "it has no weight input";
        var w = e.Scope.Constant(node.Input[1]);
        if (w is null) return "its weight is not a constant (initializer or Constant node), so it cannot be split per kernel offset";
        if (w.DataType != Double) return $"its weight is {OnnxGraphChecks.ElementTypeName(w.DataType)}";
        var dims = w.Dims.ToArray();
        var s = dims.Length - 2;
        if (s is < 1 or > 3) return $"its weight has rank {dims.Length}; only 1-, 2- and 3-D convolutions are rewritten";
        long m = dims[0], cg = dims[1];
        var kernel = dims[2..];
        var group = Int(node, "group", 1);
        if (group < 1 || m % group != 0 || m == 0 || cg == 0 || kernel.Any(k => k < 1)) return $"group {group} does not fit the weight shape [{string.Join(",", dims)}]";
        var kernelShape = Ints(node, "kernel_shape");
        if (kernelShape is not null && !kernelShape.SequenceEqual(kernel)) return "kernel_shape differs from the weight's shape";
        var window = Window(node, kernel, out var reason);
        if (window is null) return reason;
        var values = Doubles(w);
        if (values is null) return "its weight tensor could not be read";
        var (strides, dilations, pads) = window.Value;

        var x = node.Input[0];
        if (pads.Any(p => p != 0)) x = e.Op("Pad", [x, e.Ints([0, 0, .. pads[..s], 0, 0, .. pads[s..]])]);
        long[] toLast = [0, .. Enumerable.Range(2, s).Select(i => (long)i), 1];
        long[] toFirst = [0, s + 1, .. Enumerable.Range(1, s).Select(i => (long)i)];
        x = e.Op("Transpose", [x], Attr("perm", toLast));
        if (group > 1) x = e.Op("Reshape", [x, e.Ints([.. new long[s + 1], group, 1, cg])]);

        var mg = m / group;
        var volume = kernel.Aggregate(1L, (a, b) => a * b);
        var offsets = Offsets(kernel).ToArray();
        // One block per kernel row (the k_s offsets along the last spatial axis): their slices are concatenated on
        // the channel axis and contracted by one MatMul. On a 3-layer CNN (batch 512, 32×32) this ran about twice
        // as fast as one MatMul per offset, with k_s (not k₁·…·k_s) input-sized copies alive at a time.
        var width = (int)kernel[^1];
        string? acc = null;
        for (var first = 0; first < offsets.Length; first += width)
        {
            // W[oc, c, o] sits at (oc·cg + c)·volume + flat(o); the row's weight block is [width·cg, m] (G = 1)
            // or [G, width·cg, mg], with row b·cg + c for the row's b-th offset.
            var blockWeights = new double[width * cg * m];
            for (var b = 0; b < width; b++)
            {
                for (var oc = 0L; oc < m; oc++)
                {
                    long g = oc / mg, j = oc % mg;
                    for (var c = 0L; c < cg; c++)
                    {
                        var row = b * cg + c;
                        blockWeights[group == 1 ? row * m + oc : (g * width * cg + row) * mg + j] = values[(oc * cg + c) * volume + first + b];
                    }
                }
            }
            var weight = group == 1 ? e.Const(blockWeights, width * cg, m) : e.Const(blockWeights, group, width * cg, mg);
            var windows = offsets[first..(first + width)].Select(o => SliceWindow(e, x, o, kernel, strides, dilations, firstAxis: 1)).ToArray();
            var patch = width == 1 ? windows[0] : e.Op("Concat", windows, Attr("axis", -1L));
            var term = e.Op("MatMul", [patch, weight]);
            acc = acc is null ? term : e.Op("Add", [acc, term]);
        }
        if (group > 1) acc = e.Op("Reshape", [acc!, e.Ints([.. new long[s + 1], m])]);
        if (node.Input.Count > 2 && node.Input[2].Length > 0) acc = e.Op("Add", [acc!, node.Input[2]]);
        e.Finish(e.Op("Transpose", [acc!], Attr("perm", toFirst)));
        _consumedConstants.Add(node.Input[1]);
        return null;
    }

    private string? AveragePool(NodeProto node, Emitter e)
    {
        var kernel = Ints(node, "kernel_shape");
        if (kernel is null || kernel.Length is < 1 or > 3 || kernel.Any(k => k < 1)) return "its kernel_shape is missing or not 1-, 2- or 3-D";
        if (Int(node, "ceil_mode", 0) != 0) return "ceil_mode = 1 (the last window's size depends on the input size)";
        var window = Window(node, kernel, out var reason);
        if (window is null) return reason;
        var (strides, dilations, pads) = window.Value;
        var s = kernel.Length;
        var padded = pads.Any(p => p != 0);
        var padsInput = padded ? e.Ints([0, 0, .. pads[..s], 0, 0, .. pads[s..]]) : "";

        string WindowSum(string value)
        {
            string? acc = null;
            foreach (var offset in Offsets(kernel))
            {
                var term = SliceWindow(e, value, offset, kernel, strides, dilations, firstAxis: 2);
                acc = acc is null ? term : e.Op("Add", [acc, term]);
            }
            return acc!;
        }

        var x = node.Input[0];
        var sum = WindowSum(padded ? e.Op("Pad", [x, padsInput]) : x);
        string divisor;
        if (!padded || Int(node, "count_include_pad", 0) != 0)
        {
            divisor = e.Scalar(kernel.Aggregate(1L, (a, b) => a * b));
        }
        else
        {
            // ones of shape [1, 1, H₁..H_s], padded with zeros: the window sums count the non-padding elements.
            var shape = e.Op("Shape", [x]);
            var spatial = e.Op("Slice", [shape, e.Ints(2), e.Ints(long.MaxValue), e.Ints(0)]);
            var onesShape = e.Op("Concat", [e.Ints(1, 1), spatial], Attr("axis", 0L));
            var ones = e.Op("ConstantOfShape", [onesShape], Attr("value", DoubleTensor([1.0], 1)));
            divisor = WindowSum(e.Op("Pad", [ones, padsInput]));
        }
        e.Finish(e.Op("Div", [sum, divisor]));
        return null;
    }

    private string? GlobalPool(NodeProto node, Emitter e, string reduce)
    {
        var x = node.Input[0];
        var flat = e.Op("Reshape", [x, e.Ints(0, 0, -1)]);
        var reduced = _opset >= 18
            ? e.Op(reduce, [flat, e.Ints(2)], Attr("keepdims", 1L))
            : e.Op(reduce, [flat], Attr("axes", [2L]), Attr("keepdims", 1L));
        var shape = e.Op("Shape", [x]);
        var head = e.Op("Slice", [shape, e.Ints(0), e.Ints(2), e.Ints(0)]);
        var spatial = e.Op("Slice", [shape, e.Ints(2), e.Ints(long.MaxValue), e.Ints(0)]);
        var ones = e.Op("ConstantOfShape", [e.Op("Shape", [spatial])], Attr("value", Int64Tensor([1], 1)));
        e.Finish(e.Op("Reshape", [reduced, e.Op("Concat", [head, ones], Attr("axis", 0L))]));
        return null;
    }

    /// <summary>Strides, dilations and explicit pads (<c>[begin₁..begin_s, end₁..end_s]</c>) of a windowed operator.</summary>
    private static (long[] Strides, long[] Dilations, long[] Pads)? Window(NodeProto node, long[] kernel, out string? reason)
    {
        var s = kernel.Length;
        var strides = Ints(node, "strides") ?? Enumerable.Repeat(1L, s).ToArray();
        var dilations = Ints(node, "dilations") ?? Enumerable.Repeat(1L, s).ToArray();
        if (strides.Length != s || dilations.Length != s || strides.Any(v => v < 1) || dilations.Any(v => v < 1))
        {
            reason = "its strides or dilations do not match the kernel";
            return null;
        }
        var autoPad = Str(node, "auto_pad") ?? "NOTSET";
        long[] pads;
        switch (autoPad)
        {
            case "NOTSET" or "":
                pads = Ints(node, "pads") ?? new long[2 * s];
                if (pads.Length != 2 * s || pads.Any(p => p < 0))
                {
                    reason = "its pads do not match the kernel";
                    return null;
                }
                break;
            case "VALID":
                pads = new long[2 * s];
                break;
            case "SAME_UPPER" or "SAME_LOWER":
                if (strides.Any(v => v != 1))
                {
                    reason = $"auto_pad {autoPad} with a stride above 1 pads by an amount that depends on the input size";
                    return null;
                }
                pads = new long[2 * s];
                for (var a = 0; a < s; a++)
                {
                    var total = dilations[a] * (kernel[a] - 1);
                    var begin = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                    pads[a] = begin;
                    pads[s + a] = total - begin;
                }
                break;
            default:
                reason = $"unknown auto_pad '{autoPad}'";
                return null;
        }
        reason = null;
        return (strides, dilations, pads);
    }

    private static IEnumerable<long[]> Offsets(long[] kernel)
    {
        var volume = kernel.Aggregate(1L, (a, b) => a * b);
        for (var flat = 0L; flat < volume; flat++)
        {
            var offset = new long[kernel.Length];
            var rest = flat;
            for (var a = kernel.Length - 1; a >= 0; a--)
            {
                offset[a] = rest % kernel[a];
                rest /= kernel[a];
            }
            yield return offset;
        }
    }

    /// <summary>
    /// The elements a window offset <paramref name="offset"/> touches for every output position: along axis a,
    /// indices <c>δ·o + σ·i</c> for <c>i = 0 … ⌈(H − δ(k−1))/σ⌉ − 1</c> (ends counted from the back, so any H works).
    /// </summary>
    private static string SliceWindow(Emitter e, string x, long[] offset, long[] kernel, long[] strides, long[] dilations, int firstAxis)
    {
        var s = kernel.Length;
        var starts = new long[s];
        var ends = new long[s];
        for (var a = 0; a < s; a++)
        {
            starts[a] = dilations[a] * offset[a];
            var tail = dilations[a] * (kernel[a] - 1 - offset[a]);
            ends[a] = tail == 0 ? long.MaxValue : -tail;
        }
        if (starts.All(v => v == 0) && ends.All(v => v == long.MaxValue) && strides.All(v => v == 1)) return x;
        var axes = Enumerable.Range(firstAxis, s).Select(a => (long)a).ToArray();
        return e.Op("Slice", [x, e.Ints(starts), e.Ints(ends), e.Ints(axes), e.Ints(strides)]);
    }

    private void RemoveUnusedConstants(GraphProto root)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        void Collect(GraphProto g)
        {
            foreach (var o in g.Output) used.Add(o.Name);
            foreach (var node in g.Node)
            {
                foreach (var i in node.Input) used.Add(i);
                foreach (var a in node.Attribute)
                {
                    if (a.G is not null) Collect(a.G);
                    foreach (var sub in a.Graphs) Collect(sub);
                }
            }
        }
        void Remove(GraphProto g)
        {
            bool Unused(string name) => _consumedConstants.Contains(name) && !used.Contains(name);
            var inputs = g.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var t in g.Initializer.Where(t => Unused(t.Name) && !inputs.Contains(t.Name)).ToList()) g.Initializer.Remove(t);
            foreach (var n in g.Node.Where(n => n.OpType == "Constant" && n.Output.Count == 1 && Unused(n.Output[0])).ToList()) g.Node.Remove(n);
            foreach (var node in g.Node)
            {
                foreach (var a in node.Attribute)
                {
                    if (a.G is not null) Remove(a.G);
                    foreach (var sub in a.Graphs) Remove(sub);
                }
            }
        }
        Collect(root);
        Remove(root);
    }

    private static AttributeProto? Find(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name);

    private static long Int(NodeProto node, string name, long fallback) => Find(node, name) is { Type: AttributeProto.Types.AttributeType.Int } a ? a.I : fallback;

    private static double Float(NodeProto node, string name, float fallback) => Find(node, name) is { Type: AttributeProto.Types.AttributeType.Float } a ? a.F : fallback;

    private static long[]? Ints(NodeProto node, string name) => Find(node, name) is { Type: AttributeProto.Types.AttributeType.Ints } a ? [.. a.Ints] : null;

    private static string? Str(NodeProto node, string name) => Find(node, name) is { Type: AttributeProto.Types.AttributeType.String } a ? a.S.ToStringUtf8() : null;

    private static AttributeProto Attr(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Attr(string name, long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    private static AttributeProto Attr(string name, TensorProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    private static TensorProto DoubleTensor(double[] values, params long[] dims)
    {
        var t = new TensorProto { DataType = Double };
        t.Dims.Add(dims);
        t.DoubleData.Add(values);
        return t;
    }

    private static TensorProto Int64Tensor(long[] values, params long[] dims)
    {
        var t = new TensorProto { DataType = Int64 };
        t.Dims.Add(dims.Length == 0 ? [values.Length] : dims);
        t.Int64Data.Add(values);
        return t;
    }

    /// <summary>The values of a float64 (or float32) tensor stored in its typed field or raw bytes.</summary>
    private static double[]? Doubles(TensorProto t)
    {
        var count = t.Dims.Aggregate(1L, (a, b) => a * b);
        double[] values;
        if (t.DataType == Double)
        {
            if (t.DoubleData.Count > 0)
            {
                values = [.. t.DoubleData];
            }
            else
            {
                var raw = t.RawData.Span;
                values = new double[raw.Length / 8];
                for (var i = 0; i < values.Length; i++) values[i] = BitConverter.ToDouble(raw.Slice(8 * i, 8));
            }
        }
        else
        {
            return null;
        }
        return values.Length == count ? values : null;
    }

    /// <summary>Initializers and Constant-node values visible in a graph (its own, then its enclosing graphs').</summary>
    private sealed class Scope
    {
        private readonly Dictionary<string, TensorProto> _constants = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _types = new(StringComparer.Ordinal);
        private readonly Scope? _parent;

        public Scope(GraphProto graph, Scope? parent)
        {
            Graph = graph;
            _parent = parent;
            foreach (var t in graph.Initializer)
            {
                _constants[t.Name] = t;
                _types[t.Name] = t.DataType;
            }
            foreach (var v in graph.Input.Concat(graph.ValueInfo).Concat(graph.Output))
            {
                if (v.Type?.TensorType is { } tt && tt.ElemType != 0) _types[v.Name] = tt.ElemType;
            }
            // Graph inputs that share an initializer's name can be overridden at run time: not constants.
            foreach (var v in graph.Input) _constants.Remove(v.Name);
            foreach (var n in graph.Node)
            {
                if (n.OpType == "Constant" && n.Domain is "" or "ai.onnx" && n.Output.Count == 1 && n.Attribute.FirstOrDefault(a => a.Name == "value") is { T: { } t })
                {
                    _constants[n.Output[0]] = t;
                    _types[n.Output[0]] = t.DataType;
                }
            }
        }

        public GraphProto Graph { get; }

        public Dictionary<string, string> Cache { get; } = new(StringComparer.Ordinal);

        public TensorProto? Constant(string name) => _constants.TryGetValue(name, out var t) ? t : _parent?.Constant(name);

        public int? ElementType(string name) => _types.TryGetValue(name, out var t) ? t : _parent?.ElementType(name);
    }

    /// <summary>Collects the replacement nodes of one node; new constants go to the node's graph.</summary>
    private sealed class Emitter(OnnxFloat64Rewriter owner, Scope scope, NodeProto node)
    {
        private readonly string _prefix = node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? node.OpType;
        private readonly List<TensorProto> _initializers = [];
        private readonly Dictionary<string, string> _cache = new(StringComparer.Ordinal);

        public List<NodeProto> Nodes { get; } = [];

        public Scope Scope => scope;

        /// <summary>Adds a node with one output and returns that output's name.</summary>
        public string Op(string op, IEnumerable<string> inputs, params AttributeProto[] attributes)
        {
            var output = owner.Fresh(_prefix);
            var n = new NodeProto { OpType = op, Name = owner.Fresh($"{_prefix}/{op}") };
            n.Input.Add(inputs);
            n.Output.Add(output);
            n.Attribute.Add(attributes);
            Nodes.Add(n);
            return output;
        }

        /// <summary>Makes <paramref name="value"/> the replaced node's output (renaming the last node's output, or with an Identity).</summary>
        public void Finish(string value)
        {
            if (Nodes.Count > 0 && Nodes[^1].Output[0] == value)
            {
                Nodes[^1].Output[0] = node.Output[0];
            }
            else
            {
                var n = new NodeProto { OpType = "Identity", Name = owner.Fresh($"{_prefix}/Identity") };
                n.Input.Add(value);
                n.Output.Add(node.Output[0]);
                Nodes.Add(n);
            }
        }

        /// <summary>A float64 initializer of shape <paramref name="dims"/>.</summary>
        public string Const(double[] values, params long[] dims)
        {
            var t = DoubleTensor(values, dims);
            t.Name = owner.Fresh($"{_prefix}/const");
            _initializers.Add(t);
            return t.Name;
        }

        /// <summary>Adds the new initializers to the graph (only once the rewrite succeeded).</summary>
        public void Commit()
        {
            scope.Graph.Initializer.Add(_initializers);
            foreach (var (key, name) in _cache) scope.Cache[key] = name;
        }

        /// <summary>A float64 scalar initializer (shared within the graph).</summary>
        public string Scalar(double value) => Cached($"d:{BitConverter.DoubleToInt64Bits(value)}", () => DoubleTensor([value]));

        /// <summary>A 1-D int64 initializer (shared within the graph).</summary>
        public string Ints(params long[] values) => Cached($"i:{string.Join(",", values)}", () => Int64Tensor(values));

        private string Cached(string key, Func<TensorProto> make)
        {
            if (scope.Cache.TryGetValue(key, out var name) || _cache.TryGetValue(key, out name)) return name;
            var t = make();
            t.Name = owner.Fresh("f64const");
            _initializers.Add(t);
            _cache[key] = t.Name;
            return t.Name;
        }
    }
}
