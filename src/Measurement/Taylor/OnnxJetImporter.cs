using System.Runtime.InteropServices;
using Google.Protobuf;
using LambdaService.Measurement.Models;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Reads an ONNX model (OnnxSharp <see cref="ModelProto"/>) into a <see cref="JetGraph"/>: a TorchSharp module that
/// also propagates Taylor jets. One float input with a leading batch axis and one output are supported.
/// </summary>
/// <remarks>
/// <para>
/// Operators (ONNX semantics; default domain): Gemm, MatMul, Add, Sub, Mul, Div, Neg, Conv (2-D, any pads, strides,
/// dilations, groups, auto_pad), Relu, LeakyRelu, Tanh, Sigmoid, Softplus, Gelu (exact form), Erf, Exp, Log, Sin, Cos,
/// Softmax, LogSoftmax, MaxPool and AveragePool (2-D, symmetric pads), GlobalAveragePool, BatchNormalization
/// (inference), Dropout (inference: identity), Flatten, Reshape, Transpose, Concat, Unsqueeze, Squeeze, Identity,
/// Constant, Shape, Gather, Cast. Values that do not depend on the input (initializers, Constant nodes, Shape and the
/// arithmetic on shapes that exporters emit) are evaluated on plain tensors at run time, so shape computations such as
/// <c>Shape → Gather → Unsqueeze → Concat → Reshape</c> work with any batch size.
/// </para>
/// <para>
/// A dependence analysis marks every value that depends on the graph input; operands that the jet rules need constant
/// (weights of Conv, statistics of BatchNormalization, shapes, gather indices) must not depend on it. Everything else is
/// listed as unsupported: the operator type, with the reason in parentheses when an attribute or operand is the problem.
/// Cast of the input-dependent value to another float type keeps the jet's dtype (the jet computes in the precision it was
/// given; a float-to-float Cast is the identity in both the plain and the jet evaluation).
/// </para>
/// </remarks>
public static class OnnxJetImporter
{
    /// <summary>The operator types the importer knows (default ONNX domain).</summary>
    public static IReadOnlyList<string> SupportedOperators { get; } =
    [
        "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Conv", "Relu", "LeakyRelu", "Tanh", "Sigmoid", "Softplus", "Gelu", "Erf",
        "Exp", "Log", "Sin", "Cos", "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
        "Dropout", "Flatten", "Reshape", "Transpose", "Concat", "Unsqueeze", "Squeeze", "Identity", "Constant", "Shape", "Gather", "Cast",
    ];

    /// <summary>
    /// Imports <paramref name="model"/>. Returns false, with <paramref name="graph"/> null, when some operator (or the
    /// graph's structure) is not supported; <paramref name="unsupportedOperators"/> then names each problem once.
    /// </summary>
    /// <param name="model">The ONNX model.</param>
    /// <param name="graph">The imported graph (owned by the caller: dispose it).</param>
    /// <param name="unsupportedOperators">Operator types (with a reason in parentheses where an attribute or operand is the
    /// problem) or graph-level problems; empty on success.</param>
    /// <param name="dtype">When given (Float32 or Float64), floating initializers and constants are converted to it.</param>
    public static bool TryImport(ModelProto model, out JetGraph? graph, out IReadOnlyList<string> unsupportedOperators, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (dtype is not (null or ScalarType.Float32 or ScalarType.Float64))
        {
            throw new ArgumentException($"Constants can be converted to float32 or float64, not {dtype}.", nameof(dtype));
        }
        TorchRuntime.EnsureConfigured();
        var importer = new Importer(model, dtype);
        graph = importer.Build();
        unsupportedOperators = importer.Problems;
        return graph is not null;
    }

    /// <summary>Parses serialised ONNX bytes and imports them (see <see cref="TryImport(ModelProto, out JetGraph?, out IReadOnlyList{string}, ScalarType?)"/>).</summary>
    /// <exception cref="ArgumentException">The bytes are not an ONNX model.</exception>
    public static bool TryImport(byte[] bytes, out JetGraph? graph, out IReadOnlyList<string> unsupportedOperators, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ArgumentException($"The bytes are not a readable ONNX model: {e.Message}", nameof(bytes), e);
        }
        return TryImport(model, out graph, out unsupportedOperators, dtype);
    }

    private sealed class Importer(ModelProto model, ScalarType? dtype)
    {
        private readonly List<string> _problems = [];
        private readonly Dictionary<string, Tensor> _constants = new(StringComparer.Ordinal);
        private readonly List<string> _constantOrder = [];
        private readonly HashSet<string> _dependent = new(StringComparer.Ordinal);
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        private readonly int _opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => (int)o.Version).DefaultIfEmpty(13).Max();

        public IReadOnlyList<string> Problems => [.. _problems.Distinct(StringComparer.Ordinal)];

        public JetGraph? Build()
        {
            var g = model.Graph;
            if (g is null)
            {
                _problems.Add("graph (the model has no graph)");
                return null;
            }
            try
            {
                return BuildGraph(g);
            }
            finally
            {
                if (_problems.Count > 0) foreach (var t in _constants.Values) t.Dispose();
            }
        }

        private JetGraph? BuildGraph(GraphProto g)
        {
            foreach (var init in g.Initializer) AddConstant(init.Name, ReadTensor(init, $"initializer '{init.Name}'"));
            if (g.SparseInitializer.Count > 0) _problems.Add("sparse initializers");
            var inputs = g.Input.Where(i => !_constants.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1)
            {
                _problems.Add($"graph inputs ({inputs.Count} inputs besides initializers; exactly one is supported)");
                return null;
            }
            var input = inputs[0];
            var elem = input.Type?.TensorType?.ElemType ?? 0;
            if (elem is not ((int)TensorProto.Types.DataType.Float or (int)TensorProto.Types.DataType.Double))
            {
                _problems.Add($"graph input '{input.Name}' of type {OnnxGraphChecks.ElementTypeName(elem)} (a float32 or float64 input is needed)");
            }
            if (g.Output.Count != 1) _problems.Add($"graph outputs ({g.Output.Count}; exactly one is supported)");
            foreach (var n in g.Node) foreach (var i in n.Input) _used.Add(i);
            foreach (var o in g.Output) _used.Add(o.Name);
            _dependent.Add(input.Name);
            var defined = new HashSet<string>(_constants.Keys, StringComparer.Ordinal) { input.Name };
            var nodes = new List<JetGraphNode>();
            var operators = new List<string>();
            foreach (var node in g.Node)
            {
                if (!operators.Contains(node.OpType)) operators.Add(node.OpType);
                var missing = node.Input.FirstOrDefault(i => i.Length > 0 && !defined.Contains(i));
                if (missing is not null) _problems.Add($"{node.OpType} (its input '{missing}' is not computed before it)");
                foreach (var o in node.Output) defined.Add(o);
                if (node.Domain is not ("" or "ai.onnx"))
                {
                    _problems.Add($"{node.Domain}.{node.OpType}");
                    continue;
                }
                if (node.Input.Any(_dependent.Contains) && node.OpType != "Shape") foreach (var o in node.Output) _dependent.Add(o);
                if (node.Output.Skip(1).Any(o => o.Length > 0 && _used.Contains(o))) _problems.Add($"{node.OpType} (its second or later output is used)");
                if (node.OpType == "Constant")
                {
                    AddConstant(node.Output[0], ConstantValue(node));
                    continue;
                }
                var built = Node(node);
                if (built is not null) nodes.Add(built);
            }
            if (g.Output.Count == 1 && !_dependent.Contains(g.Output[0].Name)) _problems.Add($"graph output '{g.Output[0].Name}' (it does not depend on the input)");
            if (_problems.Count > 0) return null;
            return new JetGraph(input.Name, g.Output[0].Name, nodes, [.. _constantOrder.Select(n => new KeyValuePair<string, Tensor>(n, _constants[n]))], operators);
        }

        private void AddConstant(string name, Tensor? value)
        {
            if (value is null) return;
            if (dtype is { } d && value.is_floating_point() && value.dtype != d) value = value.to(d, disposeAfter: true);
            value = value.DetachFromDisposeScope();          // owned by the graph, whatever scope the caller has open
            if (_constants.TryGetValue(name, out var old)) old.Dispose();
            else _constantOrder.Add(name);
            _constants[name] = value;
        }

        private Tensor? ConstantValue(NodeProto node)
        {
            var a = node.Attribute.FirstOrDefault();
            if (a is null || node.Attribute.Count != 1)
            {
                _problems.Add("Constant (needs exactly one value attribute)");
                return null;
            }
            switch (a.Name)
            {
                case "value": return ReadTensor(a.T, $"Constant '{node.Output[0]}'");
                case "value_float": return tensor(a.F);
                case "value_floats": return tensor(a.Floats.ToArray());
                case "value_int": return tensor(a.I);
                case "value_ints": return tensor(a.Ints.ToArray());
                default:
                    _problems.Add($"Constant ({a.Name})");
                    return null;
            }
        }

        private Tensor? ReadTensor(TensorProto t, string what)
        {
            if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            {
                _problems.Add($"{what} (external data)");
                return null;
            }
            var dims = t.Dims.ToArray();
            var raw = t.RawData.Span;
            switch ((TensorProto.Types.DataType)t.DataType)
            {
                case TensorProto.Types.DataType.Float:
                    return tensor(t.FloatData.Count > 0 ? t.FloatData.ToArray() : MemoryMarshal.Cast<byte, float>(raw).ToArray(), dims);
                case TensorProto.Types.DataType.Double:
                    return tensor(t.DoubleData.Count > 0 ? t.DoubleData.ToArray() : MemoryMarshal.Cast<byte, double>(raw).ToArray(), dims);
                case TensorProto.Types.DataType.Int64:
                    return tensor(t.Int64Data.Count > 0 ? t.Int64Data.ToArray() : MemoryMarshal.Cast<byte, long>(raw).ToArray(), dims);
                case TensorProto.Types.DataType.Int32:
                    var ints = t.Int32Data.Count > 0 ? t.Int32Data.ToArray() : MemoryMarshal.Cast<byte, int>(raw).ToArray();
                    return tensor(ints.Select(i => (long)i).ToArray(), dims);
                default:
                    _problems.Add($"{what} of type {OnnxGraphChecks.ElementTypeName(t.DataType)}");
                    return null;
            }
        }

        private bool Varies(NodeProto node, int input) => input < node.Input.Count && _dependent.Contains(node.Input[input]);

        private void NeedConstant(NodeProto node, int input, string role)
        {
            if (Varies(node, input)) _problems.Add($"{node.OpType} ({role} depends on the input)");
        }

        private JetGraphNode? Node(NodeProto node)
        {
            var a = new Attributes(node);
            var op = node.OpType;
            JetGraphNode Make(Func<Tensor?[], Tensor> plain, Func<JetArg[], int, JetArg> jet) => new(op, [.. node.Input], node.Output[0], plain, jet);
            JetGraphNode Unary(Func<Tensor, Tensor> plain, Func<Jet, Jet> jet) =>
                Make(t => plain(t[0]!), (j, _) => new JetArg(null, jet(j[0].Jet!)));
            switch (op)
            {
                case "Identity":
                    return Unary(t => t, j => j);
                case "Dropout":
                    if (node.Input.Count > 2 && node.Input[2].Length > 0 && _constants.TryGetValue(node.Input[2], out var mode) && Truthy(mode))
                    {
                        _problems.Add("Dropout (training mode)");
                    }
                    NeedConstant(node, 2, "training_mode");
                    return Unary(t => t, j => JetOps.Dropout(j));
                case "Relu":
                    return Unary(t => nn.functional.relu(t), JetOps.Relu);
                case "LeakyRelu":
                    var alpha = a.Float("alpha", 0.01f);
                    return Unary(t => nn.functional.leaky_relu(t, alpha), j => JetOps.LeakyRelu(j, alpha));
                case "Tanh":
                    return Unary(t => t.tanh(), JetOps.Tanh);
                case "Sigmoid":
                    return Unary(t => t.sigmoid(), JetOps.Sigmoid);
                case "Softplus":
                    return Unary(t => nn.functional.softplus(t), JetOps.Softplus);
                case "Exp":
                    return Unary(t => t.exp(), JetOps.Exp);
                case "Log":
                    return Unary(t => t.log(), JetOps.Log);
                case "Sin":
                    return Unary(t => t.sin(), JetOps.Sin);
                case "Cos":
                    return Unary(t => t.cos(), JetOps.Cos);
                case "Erf":
                    return Unary(t => t.erf(), JetOps.Erf);
                case "Neg":
                    return Unary(t => -t, JetOps.Neg);
                case "Gelu":
                    if (a.String("approximate", "none") != "none")
                    {
                        _problems.Add($"Gelu (approximate={a.String("approximate", "none")})");
                        return null;
                    }
                    return Unary(t => nn.functional.gelu(t), JetOps.Gelu);
                case "Add":
                    return Make(t => t[0]! + t[1]!, (j, _) => Wrap(j[0].IsJet && j[1].IsJet ? JetOps.Add(j[0].Jet!, j[1].Jet!)
                        : j[0].IsJet ? JetOps.Add(j[0].Jet!, j[1].Constant) : JetOps.Add(j[1].Jet!, j[0].Constant)));
                case "Sub":
                    return Make(t => t[0]! - t[1]!, (j, _) => Wrap(j[0].IsJet && j[1].IsJet ? JetOps.Sub(j[0].Jet!, j[1].Jet!)
                        : j[0].IsJet ? JetOps.Sub(j[0].Jet!, j[1].Constant) : JetOps.Sub(j[0].Constant, j[1].Jet!)));
                case "Mul":
                    return Make(t => t[0]! * t[1]!, (j, _) => Wrap(j[0].IsJet && j[1].IsJet ? JetOps.Mul(j[0].Jet!, j[1].Jet!)
                        : j[0].IsJet ? JetOps.Mul(j[0].Jet!, j[1].Constant) : JetOps.Mul(j[1].Jet!, j[0].Constant)));
                case "Div":
                    return Make(t => t[0]!.is_floating_point() || t[1]!.is_floating_point() ? t[0]! / t[1]! : t[0]!.div(t[1]!, RoundingMode.trunc),
                        (j, _) => Wrap(j[0].IsJet && j[1].IsJet ? JetOps.Div(j[0].Jet!, j[1].Jet!)
                            : j[0].IsJet ? JetOps.Div(j[0].Jet!, j[1].Constant) : JetOps.Div(j[0].Constant, j[1].Jet!)));
                case "MatMul":
                    return Make(t => t[0]!.matmul(t[1]!), (j, _) => Wrap(MatMul(j[0], j[1])));
                case "Gemm":
                    return Gemm(node, a, Make);
                case "Conv":
                    return Conv(node, a, Make);
                case "MaxPool":
                case "AveragePool":
                    return Pool(node, a, Make);
                case "GlobalAveragePool":
                    return Make(t => t[0]!.mean([.. Enumerable.Range(2, (int)t[0]!.dim() - 2).Select(i => (long)i)], keepdim: true),
                        (j, _) => Wrap(JetOps.Mean(j[0].Jet!, [.. Enumerable.Range(2, j[0].Jet!.Shape.Length - 2).Select(i => (long)i)], keepdim: true)));
                case "BatchNormalization":
                    if (a.Int("training_mode", 0) != 0) _problems.Add("BatchNormalization (training mode)");
                    for (var i = 1; i <= 4; i++) NeedConstant(node, i, "a scale, bias or statistic");
                    var eps = a.Float("epsilon", 1e-5f);
                    return Make(t => nn.functional.batch_norm(t[0]!, t[3]!, t[4]!, t[1]!, t[2]!, false, 0.1, eps),
                        (j, _) => Wrap(JetOps.BatchNormEval(j[0].Jet!, j[3].Constant, j[4].Constant, j[1].Constant, j[2].Constant, eps)));
                case "Flatten":
                    var flattenAxis = a.Int("axis", 1);
                    return Make(t => t[0]!.reshape(FlattenShape(t[0]!.shape, flattenAxis)), (j, _) => Wrap(JetOps.Reshape(j[0].Jet!, FlattenShape(j[0].Jet!.Shape, flattenAxis))));
                case "Reshape":
                    NeedConstant(node, 1, "the target shape");
                    var allowZero = a.Int("allowzero", 0) != 0;
                    return Make(t => t[0]!.reshape(ReshapeTarget(t[0]!.shape, t[1]!, allowZero)),
                        (j, _) => Wrap(JetOps.Reshape(j[0].Jet!, ReshapeTarget(j[0].Jet!.Shape, j[1].Constant, allowZero))));
                case "Transpose":
                    var perm = a.Ints("perm");
                    return Make(t => t[0]!.permute(perm ?? Reversed((int)t[0]!.dim())), (j, _) => Wrap(JetOps.Permute(j[0].Jet!, perm ?? Reversed(j[0].Jet!.Shape.Length))));
                case "Concat":
                    var concatAxis = a.Int("axis", 0);
                    return Make(t => cat(t.Select(x => x!).ToArray(), concatAxis < 0 ? concatAxis + t[0]!.dim() : concatAxis),
                        (j, order) => Wrap(JetOps.Concat([.. j.Select(x => x.AsJet(order))], concatAxis)));
                case "Unsqueeze":
                case "Squeeze":
                    return Squeeze(node, a, Make);
                case "Shape":
                    var start = a.Int("start", 0);
                    var end = a.Attribute("end") is null ? (long?)null : a.Int("end", 0);
                    return Make(t => ShapeTensor(t[0]!.shape, start, end), (j, _) => new JetArg(ShapeTensor(j[0].Jet!.Shape, start, end), null));
                case "Gather":
                    NeedConstant(node, 1, "the indices");
                    var gatherAxis = a.Int("axis", 0);
                    return Make(t => Gather(t[0]!, t[1]!, gatherAxis, 0), (j, _) => Wrap(new Jet(Gather(j[0].Jet!.Leading, j[1].Constant, gatherAxis, 1), j[0].Jet!.Order)));
                case "Cast":
                    var to = (TensorProto.Types.DataType)a.Int("to", 0);
                    ScalarType? target = to switch
                    {
                        TensorProto.Types.DataType.Float => ScalarType.Float32,
                        TensorProto.Types.DataType.Double => ScalarType.Float64,
                        TensorProto.Types.DataType.Int64 => ScalarType.Int64,
                        TensorProto.Types.DataType.Int32 => ScalarType.Int32,
                        TensorProto.Types.DataType.Bool => ScalarType.Bool,
                        _ => null,
                    };
                    if (target is null || (Varies(node, 0) && target is not (ScalarType.Float32 or ScalarType.Float64)))
                    {
                        _problems.Add($"Cast (to {OnnxGraphChecks.ElementTypeName((int)to)}{(Varies(node, 0) ? " of the input-dependent value" : "")})");
                        return null;
                    }
                    // Float-to-float casts keep the value's dtype: the graph computes in the precision it is run in.
                    return Make(t => t[0]!.is_floating_point() && target is ScalarType.Float32 or ScalarType.Float64 ? t[0]! : t[0]!.to(target.Value), (j, _) => j[0]);
                case "Softmax":
                case "LogSoftmax":
                    return Softmax(node, a, Make);
                default:
                    _problems.Add(op);
                    return null;
            }
        }

        private static JetArg Wrap(Jet j) => new(null, j);

        private static Jet MatMul(JetArg a, JetArg b) =>
            a.IsJet && b.IsJet ? JetOps.MatMul(a.Jet!, b.Jet!) : a.IsJet ? JetOps.MatMul(a.Jet!, b.Constant) : JetOps.MatMul(a.Constant, b.Jet!);

        private JetGraphNode? Gemm(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var alpha = a.Float("alpha", 1f);
            var beta = a.Float("beta", 1f);
            var transA = a.Int("transA", 0) != 0;
            var transB = a.Int("transB", 0) != 0;
            if (transA && Varies(node, 0)) _problems.Add("Gemm (transA on the input-dependent operand)");
            return make(t =>
            {
                var y = (transA ? t[0]!.t() : t[0]!).matmul(transB ? t[1]!.t() : t[1]!);
                if (alpha != 1) y = y * alpha;
                return t.Length > 2 && t[2] is not null ? (beta == 1 ? y + t[2]! : y + beta * t[2]!) : y;
            }, (j, order) =>
            {
                var left = j[0].IsJet ? j[0] : new JetArg(transA ? j[0].Constant.t() : j[0].Constant, null);
                var right = j[1].IsJet ? new JetArg(null, transB ? JetOps.Transpose(j[1].Jet!, 0, 1) : j[1].Jet) : new JetArg(transB ? j[1].Constant.t() : j[1].Constant, null);
                var y = MatMul(left, right);
                if (alpha != 1) y = JetOps.Scale(y, alpha);
                if (j.Length > 2 && (j[2].IsJet || j[2].Tensor is not null))
                {
                    var c = j[2];
                    y = c.IsJet ? JetOps.Add(y, beta == 1 ? c.Jet! : JetOps.Scale(c.Jet!, beta)) : JetOps.Add(y, beta == 1 ? c.Constant : beta * c.Constant);
                }
                return Wrap(y);
            });
        }

        private JetGraphNode? Conv(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            NeedConstant(node, 1, "the weight");
            NeedConstant(node, 2, "the bias");
            var kernel = a.Ints("kernel_shape");
            var rank = kernel?.Length ?? (_constants.TryGetValue(node.Input[1], out var w) ? (int)w.dim() - 2 : 2);
            if (rank != 2)
            {
                _problems.Add($"Conv ({rank}-D; only 2-D convolutions are supported)");
                return null;
            }
            var strides = a.Ints("strides") ?? [1, 1];
            var dilations = a.Ints("dilations") ?? [1, 1];
            var group = a.Int("group", 1);
            var autoPad = a.String("auto_pad", "NOTSET");
            var pads = a.Ints("pads") ?? [0, 0, 0, 0];
            if (autoPad is not ("NOTSET" or "VALID" or "SAME_UPPER" or "SAME_LOWER"))
            {
                _problems.Add($"Conv (auto_pad={autoPad})");
                return null;
            }
            (long[] Symmetric, long[]? Explicit) Padding(long[] inputShape, long[] weightShape)
            {
                long[] p;
                if (autoPad is "SAME_UPPER" or "SAME_LOWER")
                {
                    p = new long[4];
                    for (var i = 0; i < 2; i++)
                    {
                        var size = inputShape[2 + i];
                        var k = weightShape[2 + i];
                        var total = Math.Max(0, (((size + strides[i] - 1) / strides[i]) - 1) * strides[i] + (k - 1) * dilations[i] + 1 - size);
                        var small = total / 2;
                        p[i] = autoPad == "SAME_UPPER" ? small : total - small;
                        p[i + 2] = total - p[i];
                    }
                }
                else
                {
                    p = autoPad == "VALID" ? new long[4] : pads;
                }
                return p[0] == p[2] && p[1] == p[3] ? (new long[] { p[0], p[1] }, null) : (new long[] { 0, 0 }, new long[] { p[1], p[3], p[0], p[2] });
            }
            return make(t =>
            {
                var (sym, pad) = Padding(t[0]!.shape, t[1]!.shape);
                var x = pad is null ? t[0]! : nn.functional.pad(t[0]!, pad);
                return nn.functional.conv2d(x, t[1]!, t.Length > 2 ? t[2] : null, strides, sym, dilations, group);
            }, (j, _) =>
            {
                var x = j[0].Jet!;
                var weight = j[1].Constant;
                var (sym, pad) = Padding(x.Shape, weight.shape);
                if (pad is not null) x = JetOps.Pad(x, pad);
                return Wrap(JetOps.Conv2d(x, weight, j.Length > 2 ? j[2].Tensor : null, strides, sym, dilations, group));
            });
        }

        private JetGraphNode? Pool(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var op = node.OpType;
            var kernel = a.Ints("kernel_shape");
            if (kernel is null || kernel.Length != 2)
            {
                _problems.Add($"{op} ({kernel?.Length ?? 0}-D; only 2-D pooling is supported)");
                return null;
            }
            var autoPad = a.String("auto_pad", "NOTSET");
            if (autoPad is not ("NOTSET" or "VALID"))
            {
                _problems.Add($"{op} (auto_pad={autoPad})");
                return null;
            }
            var strides = a.Ints("strides") ?? [1, 1];
            long[] pads = autoPad == "VALID" ? [0, 0, 0, 0] : a.Ints("pads") ?? [0, 0, 0, 0];
            if (pads[0] != pads[2] || pads[1] != pads[3])
            {
                _problems.Add($"{op} (asymmetric pads)");
                return null;
            }
            long[] padding = [pads[0], pads[1]];
            var dilations = a.Ints("dilations") ?? [1, 1];
            var ceil = a.Int("ceil_mode", 0) != 0;
            if (op == "MaxPool")
            {
                return make(t => nn.functional.max_pool2d(t[0]!, kernel, strides, padding, dilations, ceil),
                    (j, _) => Wrap(JetOps.MaxPool2d(j[0].Jet!, kernel, strides, padding, dilations, ceil)));
            }
            if (dilations.Any(d => d != 1))
            {
                _problems.Add("AveragePool (dilations)");
                return null;
            }
            var includePad = a.Int("count_include_pad", 0) != 0;
            return make(t => nn.functional.avg_pool2d(t[0]!, kernel, strides, padding, ceil, includePad),
                (j, _) => Wrap(JetOps.AvgPool2d(j[0].Jet!, kernel, strides, padding, ceil, includePad)));
        }

        private JetGraphNode? Squeeze(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var unsqueeze = node.OpType == "Unsqueeze";
            var fromInput = _opset >= 13;
            if (fromInput) NeedConstant(node, 1, "the axes");
            var attrAxes = a.Ints("axes");
            if (unsqueeze && !fromInput && attrAxes is null)
            {
                _problems.Add("Unsqueeze (no axes)");
                return null;
            }
            long[]? Axes(Tensor?[] t) => fromInput ? (t.Length > 1 && t[1] is not null ? t[1]!.to(ScalarType.Int64).data<long>().ToArray() : null) : attrAxes;
            long[]? JetAxes(JetArg[] j) => fromInput ? (j.Length > 1 && j[1].Tensor is not null ? j[1].Tensor!.to(ScalarType.Int64).data<long>().ToArray() : null) : attrAxes;
            if (unsqueeze)
            {
                return make(t =>
                {
                    var x = t[0]!;
                    foreach (var axis in Normalized(Axes(t)!, (int)x.dim() + Axes(t)!.Length).Order()) x = x.unsqueeze(axis);
                    return x;
                }, (j, _) =>
                {
                    var x = j[0].Jet!;
                    var axes = JetAxes(j)!;
                    foreach (var axis in Normalized(axes, x.Shape.Length + axes.Length).Order()) x = JetOps.Unsqueeze(x, axis);
                    return Wrap(x);
                });
            }
            return make(t =>
            {
                var x = t[0]!;
                var axes = Axes(t) is { } given ? Normalized(given, (int)x.dim()) : [.. Enumerable.Range(0, (int)x.dim()).Where(i => x.shape[i] == 1).Select(i => (long)i)];
                foreach (var axis in axes.OrderDescending()) x = x.squeeze(axis);
                return x;
            }, (j, _) =>
            {
                var x = j[0].Jet!;
                var shape = x.Shape;
                var axes = JetAxes(j) is { } given ? Normalized(given, shape.Length) : [.. Enumerable.Range(0, shape.Length).Where(i => shape[i] == 1).Select(i => (long)i)];
                foreach (var axis in axes.OrderDescending()) x = JetOps.Squeeze(x, axis);
                return Wrap(x);
            });
        }

        private JetGraphNode Softmax(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var log = node.OpType == "LogSoftmax";
            var axis = a.Int("axis", _opset >= 13 ? -1 : 1);
            if (_opset >= 13)
            {
                return make(t => log ? t[0]!.log_softmax(axis) : t[0]!.softmax(axis),
                    (j, _) => Wrap(log ? JetOps.LogSoftmax(j[0].Jet!, axis) : JetOps.Softmax(j[0].Jet!, axis)));
            }
            // Before opset 13 the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])] and normalised along axis 1.
            return make(t =>
            {
                var shape = t[0]!.shape;
                var flat = t[0]!.reshape(FlattenShape(shape, axis));
                return (log ? flat.log_softmax(1) : flat.softmax(1)).reshape(shape);
            }, (j, _) =>
            {
                var shape = j[0].Jet!.Shape;
                var flat = JetOps.Reshape(j[0].Jet!, FlattenShape(shape, axis));
                return Wrap(JetOps.Reshape(log ? JetOps.LogSoftmax(flat, 1) : JetOps.Softmax(flat, 1), shape));
            });
        }

        private static long[] FlattenShape(long[] shape, long axis)
        {
            var ax = axis < 0 ? axis + shape.Length : axis;
            long before = 1, after = 1;
            for (var i = 0; i < shape.Length; i++)
            {
                if (i < ax) before *= shape[i];
                else after *= shape[i];
            }
            return [before, after];
        }

        private static long[] ReshapeTarget(long[] input, Tensor shape, bool allowZero)
        {
            var target = shape.to(ScalarType.Int64).data<long>().ToArray();
            if (!allowZero)
            {
                for (var i = 0; i < target.Length; i++) if (target[i] == 0 && i < input.Length) target[i] = input[i];
            }
            return target;
        }

        /// <summary>Whether a constant scalar is non-zero (the converted tensor is held until its value is read).</summary>
        private static bool Truthy(Tensor constant)
        {
            using var b = constant.to(ScalarType.Bool);
            return b.item<bool>();
        }

        private static long[] Reversed(int rank) => [.. Enumerable.Range(0, rank).Reverse().Select(i => (long)i)];

        private static long[] Normalized(long[] axes, int rank) => [.. axes.Select(x => x < 0 ? x + rank : x)];

        private static Tensor ShapeTensor(long[] shape, long start, long? end)
        {
            var r = shape.Length;
            var s = (int)Math.Clamp(start < 0 ? start + r : start, 0, r);
            var e = (int)Math.Clamp(end is { } v ? (v < 0 ? v + r : v) : r, s, r);
            return tensor(shape[s..e]);
        }

        /// <summary>ONNX Gather along <paramref name="axis"/> of the data's own axes, skipping <paramref name="offset"/> leading axes (the coefficient axis of a jet).</summary>
        private static Tensor Gather(Tensor data, Tensor indices, long axis, int offset)
        {
            var rank = (int)data.dim() - offset;
            var ax = (axis < 0 ? axis + rank : axis) + offset;
            var size = data.shape[ax];
            var idx = indices.to(ScalarType.Int64);
            idx = where(idx.lt(0), idx + size, idx);
            var picked = data.index_select(ax, idx.flatten());
            var shape = data.shape;
            return picked.reshape([.. shape[..(int)ax], .. idx.shape, .. shape[((int)ax + 1)..]]);
        }
    }

    private sealed class Attributes(NodeProto node)
    {
        public AttributeProto? Attribute(string name) => node.Attribute.FirstOrDefault(a => a.Name == name);

        public long Int(string name, long fallback) => Attribute(name) is { } a ? a.I : fallback;

        public float Float(string name, float fallback) => Attribute(name) is { } a ? a.F : fallback;

        public string String(string name, string fallback) => Attribute(name) is { } a ? a.S.ToStringUtf8() : fallback;

        public long[]? Ints(string name) => Attribute(name) is { } a ? [.. a.Ints] : null;
    }
}
