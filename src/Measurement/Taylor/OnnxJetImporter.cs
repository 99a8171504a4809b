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
/// Operators (ONNX semantics, opsets 7–21; default domain): see <see cref="SupportedOperators"/>. Among them the forms that
/// <c>torch.onnx.export</c> emits at opsets 13–18: LayerNormalization or its decomposition ReduceMean → Sub → Pow → ReduceMean →
/// Add → Sqrt → Div; Pad (constant, reflect, edge, wrap; pads as an attribute before opset 11, an input since); Reduce* with
/// axes as an attribute or (ReduceSum since 13, the others since 18) an input; Split with sizes as an attribute, an input
/// (13) or num_outputs (18); Slice with attributes (before 10) or inputs and any steps; Clip with attribute bounds (before 11)
/// or inputs (ReLU6); ConvTranspose (2-D, pads, output_padding, dilations, groups); InstanceNormalization;
/// GroupNormalization (scale per group at 18, per channel at 21); MatMul with broadcasting and the attention pattern
/// MatMul → Div → Softmax → MatMul with Transpose and multi-head Reshape; GRU, LSTM and RNN unrolled over the time steps (see
/// the Recurrent rule in OnnxJetImporter.Recurrent.cs for the formulas and what is refused). Values that do not depend on the input
/// (initializers, Constant nodes, Shape and the arithmetic and comparisons on shapes that exporters emit: Range,
/// ConstantOfShape, Equal, Where, …) are evaluated on plain tensors at run time, so shape computations such as
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
public static partial class OnnxJetImporter
{
    /// <summary>The operator types the importer knows (default ONNX domain).</summary>
    public static IReadOnlyList<string> SupportedOperators { get; } =
    [
        "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Sqrt", "Reciprocal", "Conv", "ConvTranspose", "Relu", "LeakyRelu", "PRelu", "Tanh",
        "Sigmoid", "Softplus", "Gelu", "Erf", "Exp", "Log", "Sin", "Cos", "Abs", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu", "Mish", "Min",
        "Max", "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "LayerNormalization",
        "InstanceNormalization", "GroupNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "Dropout", "Flatten", "Reshape",
        "Transpose", "Concat", "Split", "Slice", "Pad", "Expand", "Where", "Unsqueeze", "Squeeze", "Identity", "Constant", "ConstantOfShape",
        "Range", "Shape", "Gather", "Cast", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Not", "GRU", "LSTM", "RNN",
    ];

    /// <summary>Operators whose rule picks a branch per element from the value at t = 0 (the side rule of <see cref="JetOps.Relu"/>).</summary>
    public static IReadOnlyList<string> PiecewiseOperators { get; } =
        ["Relu", "LeakyRelu", "PRelu", "MaxPool", "Abs", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu", "Min", "Max", "ReduceMax", "ReduceMin"];

    /// <summary>The piecewise operators whose pieces are affine (so a network of only these and linear maps has zero logit derivatives of order ≥ 2).</summary>
    public static IReadOnlyList<string> PiecewiseLinearOperators { get; } =
        ["Relu", "LeakyRelu", "PRelu", "MaxPool", "Abs", "Clip", "HardSigmoid", "Min", "Max", "ReduceMax", "ReduceMin"];

    /// <summary>
    /// The nodes of <paramref name="model"/> whose operator type the importer does not know at all, as
    /// <c>Tan at node 'n'</c> (without loading the graph; attribute-level problems are found by <see cref="TryImport(ModelProto, out JetGraph?, out IReadOnlyList{string}, ScalarType?)"/>).
    /// </summary>
    public static IReadOnlyList<string> UnknownOperators(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return [.. (model.Graph?.Node ?? [])
            .Where(n => n.Domain is not ("" or "ai.onnx") || !SupportedOperators.Contains(n.OpType))
            .GroupBy(n => n.Domain is "" or "ai.onnx" ? n.OpType : $"{n.Domain}.{n.OpType}", StringComparer.Ordinal)
            .Select(g => Importer.Describe(g.Key, [.. g.Select(Importer.NodeLabel)]))];
    }

    /// <summary>
    /// The layers an imported <paramref name="model"/> can be cut at (see <see cref="JetGraph.Layers"/>), read from the file alone
    /// (no libtorch), so that a request naming a layer can be checked when it is submitted. Empty when the graph does not have exactly
    /// one input besides its initializers and one output.
    /// </summary>
    public static IReadOnlyList<string> LayerNames(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var g = model.Graph;
        if (g is null) return [];
        var constants = g.Initializer.Select(i => i.Name).Concat(g.Node.Where(n => n.OpType == "Constant").SelectMany(n => n.Output)).ToHashSet(StringComparer.Ordinal);
        var inputs = g.Input.Where(i => !constants.Contains(i.Name)).ToList();
        if (inputs.Count != 1 || g.Output.Count != 1) return [];
        var nodes = g.Node.Where(n => n.OpType != "Constant").Select(n => new LayerAnalysis.GraphNode(n.OpType, [.. n.Input], [.. n.Output], n.Name)).ToList();
        return LayerAnalysis.Find(inputs[0].Name, g.Output[0].Name, nodes, constants).Names;
    }

    /// <summary>
    /// What engine auto does instead when the exact engines cannot read a graph, for messages: the sentence ends a
    /// refusal of engine taylor/autograd or the note of an auto measurement.
    /// </summary>
    public const string AutoFallback = "engine auto measures such a model with finite differences on ONNX Runtime instead (every order from forward passes; " +
        "the result fails as 'derivatives unreliable' when their error estimate exceeds maxDerivativeError)";

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

    private sealed partial class Importer(ModelProto model, ScalarType? dtype)
    {
        private readonly List<(string What, string? Node)> _problems = [];
        private NodeProto? _current;
        private readonly Dictionary<string, Tensor> _constants = new(StringComparer.Ordinal);
        private readonly List<string> _constantOrder = [];
        private readonly HashSet<string> _dependent = new(StringComparer.Ordinal);
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        private readonly int _opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => (int)o.Version).DefaultIfEmpty(13).Max();

        /// <summary>Each problem once, with the nodes it occurs at: <c>Tan at node 'tan_3'</c>, <c>Pad (mode=wrap) at nodes 'a', 'b'</c>.</summary>
        public IReadOnlyList<string> Problems => [.. _problems.GroupBy(p => p.What, StringComparer.Ordinal).Select(g => Describe(g.Key, [.. g.Select(p => p.Node).OfType<string>().Distinct(StringComparer.Ordinal)]))];

        private void Problem(string what) => _problems.Add((what, _current is null ? null : NodeLabel(_current)));

        public JetGraph? Build()
        {
            var g = model.Graph;
            if (g is null)
            {
                Problem("graph (the model has no graph)");
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
            if (g.SparseInitializer.Count > 0) Problem("sparse initializers");
            var inputs = g.Input.Where(i => !_constants.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1)
            {
                Problem($"graph inputs ({inputs.Count} inputs besides initializers; exactly one is supported)");
                return null;
            }
            var input = inputs[0];
            var elem = input.Type?.TensorType?.ElemType ?? 0;
            if (elem is not ((int)TensorProto.Types.DataType.Float or (int)TensorProto.Types.DataType.Double))
            {
                Problem($"graph input '{input.Name}' of type {OnnxGraphChecks.ElementTypeName(elem)} (a float32 or float64 input is needed)");
            }
            if (g.Output.Count != 1) Problem($"graph outputs ({g.Output.Count}; exactly one is supported)");
            foreach (var n in g.Node) foreach (var i in n.Input) _used.Add(i);
            foreach (var o in g.Output) _used.Add(o.Name);
            _dependent.Add(input.Name);
            var defined = new HashSet<string>(_constants.Keys, StringComparer.Ordinal) { input.Name };
            var nodes = new List<JetGraphNode>();
            var operators = new List<string>();
            foreach (var node in g.Node)
            {
                _current = node;
                if (!operators.Contains(node.OpType)) operators.Add(node.OpType);
                var missing = node.Input.FirstOrDefault(i => i.Length > 0 && !defined.Contains(i));
                if (missing is not null) Problem($"{node.OpType} (its input '{missing}' is not computed before it)");
                foreach (var o in node.Output) defined.Add(o);
                if (node.Domain is not ("" or "ai.onnx"))
                {
                    Problem($"{node.Domain}.{node.OpType}");
                    continue;
                }
                if (node.Input.Any(_dependent.Contains) && node.OpType != "Shape") foreach (var o in node.Output) _dependent.Add(o);
                if (node.OpType is not ("Split" or "GRU" or "LSTM" or "RNN") && node.Output.Skip(1).Any(o => o.Length > 0 && _used.Contains(o)))
                {
                    Problem($"{node.OpType} (its second or later output is used)");
                }
                if (node.OpType == "Constant")
                {
                    AddConstant(node.Output[0], ConstantValue(node));
                    continue;
                }
                if (node.OpType == "Split")
                {
                    nodes.AddRange(Split(node, new Attributes(node)));
                    continue;
                }
                if (node.OpType is "GRU" or "LSTM" or "RNN")
                {
                    var recurrent = Recurrent(node, new Attributes(node), out var relu);
                    nodes.AddRange(recurrent.Select(r => r with { NodeName = node.Name }));
                    // A ReLU cell is piecewise linear like a Relu node: the graph's operator list carries it, so results warn alike.
                    if (relu && !operators.Contains("Relu")) operators.Add("Relu");
                    continue;
                }
                var built = Node(node);
                if (built is not null) nodes.Add(built with { NodeName = node.Name });
            }
            _current = null;
            if (g.Output.Count == 1 && !_dependent.Contains(g.Output[0].Name)) Problem($"graph output '{g.Output[0].Name}' (it does not depend on the input)");
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
                Problem("Constant (needs exactly one value attribute)");
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
                    Problem($"Constant ({a.Name})");
                    return null;
            }
        }

        private Tensor? ReadTensor(TensorProto t, string what)
        {
            if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            {
                Problem($"{what} (external data)");
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
                    Problem($"{what} of type {OnnxGraphChecks.ElementTypeName(t.DataType)}");
                    return null;
            }
        }

        private bool Varies(NodeProto node, int input) => input < node.Input.Count && _dependent.Contains(node.Input[input]);

        private void NeedConstant(NodeProto node, int input, string role)
        {
            if (Varies(node, input)) Problem($"{node.OpType} ({role} depends on the input)");
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
                        Problem("Dropout (training mode)");
                    }
                    NeedConstant(node, 2, "training_mode");
                    return Unary(t => t, j => JetOps.Dropout(j));
                case "Relu":
                    return Unary(t => nn.functional.relu(t), JetOps.Relu);
                case "LeakyRelu":
                    var alpha = a.Float("alpha", 0.01f);
                    return Unary(t => nn.functional.leaky_relu(t, alpha), j => JetOps.LeakyRelu(j, alpha));
                case "PRelu":
                    NeedConstant(node, 1, "the slope");
                    return Make(t => where(t[0]!.gt(0), t[0]!, t[0]! * t[1]!), (j, _) => Wrap(JetOps.PRelu(j[0].Jet!, j[1].Constant)));
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
                        Problem($"Gelu (approximate={a.String("approximate", "none")})");
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
                    return Make(t =>
                    {
                        JetOps.CheckMatMul(t[0]!.shape, t[1]!.shape);
                        return t[0]!.matmul(t[1]!);
                    }, (j, _) => Wrap(MatMul(j[0], j[1])));
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
                    if (a.Int("training_mode", 0) != 0) Problem("BatchNormalization (training mode)");
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
                        Problem($"Cast (to {OnnxGraphChecks.ElementTypeName((int)to)}{(Varies(node, 0) ? " of the input-dependent value" : "")})");
                        return null;
                    }
                    // Float-to-float casts keep the value's dtype: the graph computes in the precision it is run in.
                    return Make(t => t[0]!.is_floating_point() && target is ScalarType.Float32 or ScalarType.Float64 ? t[0]! : t[0]!.to(target.Value), (j, _) => j[0]);
                case "Softmax":
                case "LogSoftmax":
                    return Softmax(node, a, Make);
                case "Sqrt":
                    return Unary(t => t.sqrt(), JetOps.Sqrt);
                case "Reciprocal":
                    return Unary(t => t.reciprocal(), JetOps.Reciprocal);
                case "Abs":
                    return Unary(t => t.abs(), JetOps.Abs);
                case "Mish":
                    return Unary(t => t * nn.functional.softplus(t).tanh(), JetOps.Mish);
                case "Elu":
                    var eluAlpha = a.Float("alpha", 1f);
                    return Unary(t => where(t.gt(0), t, (t.exp() - 1) * eluAlpha), j => JetOps.Elu(j, eluAlpha));
                case "Selu":
                    var seluAlpha = a.Float("alpha", 1.67326319217681884765625f);
                    var seluGamma = a.Float("gamma", 1.05070102214813232421875f);
                    return Unary(t => where(t.gt(0), t, (t.exp() - 1) * seluAlpha) * seluGamma, j => JetOps.Selu(j, seluAlpha, seluGamma));
                case "HardSigmoid":
                    var hsAlpha = a.Float("alpha", 0.2f);
                    var hsBeta = a.Float("beta", 0.5f);
                    return Unary(t => (t * hsAlpha + hsBeta).clamp(0, 1), j => JetOps.HardSigmoid(j, hsAlpha, hsBeta));
                case "HardSwish":
                    return Unary(t => t * (t * (1.0 / 6) + 0.5).clamp(0, 1), JetOps.HardSwish);
                case "Pow":
                    return Pow(node, Make);
                case "Max":
                case "Min":
                    var max = op == "Max";
                    return Make(t => t.Skip(1).Aggregate(t[0]!, (acc, v) => max ? maximum(acc, v!) : minimum(acc, v!)),
                        (j, order) => Wrap(j.Skip(1).Aggregate(j[0].AsJet(order), (acc, v) => max ? JetOps.Max(acc, v.AsJet(order)) : JetOps.Min(acc, v.AsJet(order)))));
                case "Clip":
                    return Clip(node, a, Make);
                case "Where":
                    NeedConstant(node, 0, "the condition");
                    return Make(t => where(t[0]!.to(ScalarType.Bool), t[1]!, t[2]!), (j, order) => Wrap(JetOps.Where(j[0].Constant, j[1].AsJet(order), j[2].AsJet(order))));
                case "Expand":
                    NeedConstant(node, 1, "the shape");
                    return Make(t => ExpandPlain(t[0]!, Longs(t[1]!)), (j, _) => Wrap(JetOps.Expand(j[0].Jet!, Longs(j[1].Constant))));
                case "Slice":
                    return Slice(node, a, Make);
                case "Pad":
                    return Pad(node, a, Make);
                case "ReduceMean":
                case "ReduceSum":
                case "ReduceMax":
                case "ReduceMin":
                    return Reduce(node, a, Make);
                case "LayerNormalization":
                    for (var i = 1; i <= 2; i++) NeedConstant(node, i, "the scale or bias");
                    var lnAxis = a.Int("axis", -1);
                    var lnEps = a.Float("epsilon", 1e-5f);
                    return Make(t => LayerNormPlain(t[0]!, lnAxis, t.Length > 1 ? t[1] : null, t.Length > 2 ? t[2] : null, lnEps),
                        (j, _) => Wrap(JetOps.LayerNorm(j[0].Jet!, lnAxis, j.Length > 1 ? j[1].Tensor : null, j.Length > 2 ? j[2].Tensor : null, lnEps)));
                case "InstanceNormalization":
                    for (var i = 1; i <= 2; i++) NeedConstant(node, i, "the scale or bias");
                    var inEps = a.Float("epsilon", 1e-5f);
                    return Make(t => GroupNormPlain(t[0]!, t[0]!.shape[1], t[1], t[2], inEps, false),
                        (j, _) => Wrap(JetOps.InstanceNorm(j[0].Jet!, j[1].Tensor, j[2].Tensor, inEps)));
                case "GroupNormalization":
                    for (var i = 1; i <= 2; i++) NeedConstant(node, i, "the scale or bias");
                    var groups = a.Int("num_groups", 0);
                    if (groups < 1)
                    {
                        Problem("GroupNormalization (num_groups missing)");
                        return null;
                    }
                    var gnEps = a.Float("epsilon", 1e-5f);
                    var perGroup = _opset < 21;                  // opset 18: one scale and bias per group; 21: per channel
                    return Make(t => GroupNormPlain(t[0]!, groups, t[1], t[2], gnEps, perGroup),
                        (j, _) => Wrap(JetOps.GroupNorm(j[0].Jet!, groups, j[1].Tensor, j[2].Tensor, gnEps, perGroup)));
                case "ConvTranspose":
                    return ConvTranspose(node, a, Make);
                case "ConstantOfShape":
                    NeedConstant(node, 0, "the shape");
                    var fill = a.Attribute("value") is { } fillValue ? ReadTensor(fillValue.T, "ConstantOfShape value") : tensor(new float[] { 0 });
                    if (fill is null) return null;
                    var filler = fill.DetachFromDisposeScope();
                    return Make(t => filler.reshape(1).expand(Longs(t[0]!)).clone(), (_, _) => throw new InvalidOperationException("ConstantOfShape has no input-dependent form."));
                case "Range":
                    for (var i = 0; i < 3; i++) NeedConstant(node, i, "a bound");
                    return Make(t => t[0]!.is_floating_point()
                            ? arange(t[0]!.ToDouble(), t[1]!.ToDouble(), t[2]!.ToDouble(), dtype: t[0]!.dtype)
                            : arange(t[0]!.ToInt64(), t[1]!.ToInt64(), t[2]!.ToInt64(), dtype: t[0]!.dtype),
                        (_, _) => throw new InvalidOperationException("Range has no input-dependent form."));
                case "Equal":
                case "Greater":
                case "Less":
                case "GreaterOrEqual":
                case "LessOrEqual":
                case "And":
                case "Or":
                case "Not":
                    for (var i = 0; i < node.Input.Count; i++) NeedConstant(node, i, "an operand (comparisons are supported on constants and shapes only)");
                    return Make(t => op switch
                    {
                        "Equal" => t[0]!.eq(t[1]!),
                        "Greater" => t[0]!.gt(t[1]!),
                        "Less" => t[0]!.lt(t[1]!),
                        "GreaterOrEqual" => t[0]!.ge(t[1]!),
                        "LessOrEqual" => t[0]!.le(t[1]!),
                        "And" => t[0]!.logical_and(t[1]!),
                        "Or" => t[0]!.logical_or(t[1]!),
                        _ => t[0]!.logical_not(),
                    }, (_, _) => throw new InvalidOperationException($"{op} has no input-dependent form."));
                default:
                    Problem(op);
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
            if (transA && Varies(node, 0)) Problem("Gemm (transA on the input-dependent operand)");
            return make(t =>
            {
                var left = transA ? t[0]!.t() : t[0]!;
                var right = transB ? t[1]!.t() : t[1]!;
                JetOps.CheckMatMul(left.shape, right.shape);
                var y = left.matmul(right);
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
                Problem($"Conv ({rank}-D; only 2-D convolutions are supported)");
                return null;
            }
            var strides = a.Ints("strides") ?? [1, 1];
            var dilations = a.Ints("dilations") ?? [1, 1];
            var group = a.Int("group", 1);
            var autoPad = a.String("auto_pad", "NOTSET");
            var pads = a.Ints("pads") ?? [0, 0, 0, 0];
            if (autoPad is not ("NOTSET" or "VALID" or "SAME_UPPER" or "SAME_LOWER"))
            {
                Problem($"Conv (auto_pad={autoPad})");
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
                Problem($"{op} ({kernel?.Length ?? 0}-D; only 2-D pooling is supported)");
                return null;
            }
            var autoPad = a.String("auto_pad", "NOTSET");
            if (autoPad is not ("NOTSET" or "VALID"))
            {
                Problem($"{op} (auto_pad={autoPad})");
                return null;
            }
            var strides = a.Ints("strides") ?? [1, 1];
            long[] pads = autoPad == "VALID" ? [0, 0, 0, 0] : a.Ints("pads") ?? [0, 0, 0, 0];
            if (pads[0] != pads[2] || pads[1] != pads[3])
            {
                Problem($"{op} (asymmetric pads)");
                return null;
            }
            long[] padding = [pads[0], pads[1]];
            var dilations = a.Ints("dilations") ?? [1, 1];
            var ceil = a.Int("ceil_mode", 0) != 0;
            if (op == "MaxPool")
            {
                return make(t => MaxPooling.Pool(t[0]!, kernel, strides, padding, dilations, ceil),
                    (j, _) => Wrap(JetOps.MaxPool2d(j[0].Jet!, kernel, strides, padding, dilations, ceil)));
            }
            if (dilations.Any(d => d != 1))
            {
                Problem("AveragePool (dilations)");
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
                Problem("Unsqueeze (no axes)");
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

        private JetGraphNode? Pow(NodeProto node, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            if (Varies(node, 0) && Varies(node, 1))
            {
                Problem("Pow (the base and the exponent both depend on the input)");
                return null;
            }
            if (Varies(node, 0) && _constants.TryGetValue(node.Input[1], out var exponent) && exponent.numel() != 1)
            {
                Problem("Pow (an exponent that is not one number)");
                return null;
            }
            // x^p for a constant p; c^y = exp(y·log c) for a constant base c > 0.
            return make(t => t[0]!.pow(t[1]!), (j, _) => Wrap(j[0].IsJet
                ? JetOps.Pow(j[0].Jet!, Scalar(j[1].Constant, "Pow's exponent"))
                : JetOps.Exp(JetOps.Mul(j[1].Jet!, j[0].Constant.to(j[1].Jet!.DType).log()))));
        }

        private JetGraphNode Clip(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            if (_opset < 11)
            {
                // Opset 6: min and max are attributes (absent: no bound).
                var low = a.Attribute("min") is null ? (double?)null : a.Float("min", 0);
                var high = a.Attribute("max") is null ? (double?)null : a.Float("max", 0);
                Tensor? Bound(double? b, Tensor like) => b is { } v ? tensor(v, like.dtype, like.device) : null;
                return make(t => ClipPlain(t[0]!, Bound(low, t[0]!), Bound(high, t[0]!)),
                    (j, _) => Wrap(JetOps.Clip(j[0].Jet!, Bound(low, j[0].Jet!.Leading), Bound(high, j[0].Jet!.Leading))));
            }
            NeedConstant(node, 1, "the lower bound");
            NeedConstant(node, 2, "the upper bound");
            return make(t => ClipPlain(t[0]!, t.Length > 1 ? t[1] : null, t.Length > 2 ? t[2] : null),
                (j, _) => Wrap(JetOps.Clip(j[0].Jet!, j.Length > 1 ? j[1].Tensor : null, j.Length > 2 ? j[2].Tensor : null)));
        }

        private static Tensor ClipPlain(Tensor x, Tensor? low, Tensor? high)
        {
            if (low is not null) x = maximum(x, low.to(x.dtype));
            return high is null ? x : minimum(x, high.to(x.dtype));
        }

        private JetGraphNode? Slice(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var fromInputs = _opset >= 10;                     // opset 1: starts, ends and axes are attributes
            if (fromInputs) for (var i = 1; i < node.Input.Count; i++) NeedConstant(node, i, "starts, ends, axes or steps");
            var attrStarts = a.Ints("starts");
            var attrEnds = a.Ints("ends");
            var attrAxes = a.Ints("axes");
            if (!fromInputs && (attrStarts is null || attrEnds is null))
            {
                Problem("Slice (starts or ends missing)");
                return null;
            }
            SliceSpec Spec(Tensor?[] t) => fromInputs
                ? new(Longs(t[1]!), Longs(t[2]!), t.Length > 3 && t[3] is not null ? Longs(t[3]!) : null, t.Length > 4 && t[4] is not null ? Longs(t[4]!) : null)
                : new(attrStarts!, attrEnds!, attrAxes, null);
            return make(t =>
            {
                var x = t[0]!;
                foreach (var (axis, start, count, index) in Spec(t).Along(x.shape)) x = index is null ? x.narrow(axis, start, count) : x.index_select(axis, index);
                return x;
            }, (j, _) =>
            {
                var x = j[0].Jet!;
                foreach (var (axis, start, count, index) in Spec([.. j.Select(v => v.Tensor)]).Along(x.Shape))
                {
                    x = index is null ? JetOps.Narrow(x, axis, start, count) : JetOps.IndexSelect(x, axis, index);
                }
                return Wrap(x);
            });
        }

        private JetGraphNode? Pad(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var mode = a.String("mode", "constant");
            if (mode is not ("constant" or "reflect" or "edge" or "wrap"))
            {
                Problem($"Pad (mode={mode})");
                return null;
            }
            var fromInputs = _opset >= 11;                     // opset 2: pads and value are attributes
            if (fromInputs) for (var i = 1; i < node.Input.Count; i++) NeedConstant(node, i, "the pads, value or axes");
            var attrPads = a.Ints("pads");
            var attrValue = a.Float("value", 0f);
            if (!fromInputs && attrPads is null)
            {
                Problem("Pad (pads missing)");
                return null;
            }
            var torchMode = mode switch
            {
                "reflect" => PaddingModes.Reflect,
                "edge" => PaddingModes.Replicate,
                "wrap" => PaddingModes.Circular,
                _ => PaddingModes.Constant,
            };
            (long[] Amounts, double Value) Spec(Tensor?[] t, int rank)
            {
                var pads = fromInputs ? Longs(t[1]!) : attrPads!;
                var value = fromInputs ? (t.Length > 2 && t[2] is { } v && v.numel() == 1 ? v.ToDouble() : 0) : attrValue;
                var axes = fromInputs && t.Length > 3 && t[3] is { } ax ? Normalized(Longs(ax), rank) : [.. Enumerable.Range(0, rank).Select(i => (long)i)];
                return (TorchPads(pads, axes, rank), value);
            }
            return make(t =>
            {
                var (amounts, value) = Spec(t, (int)t[0]!.dim());
                return amounts.Length == 0 ? t[0]! : nn.functional.pad(t[0]!, amounts, torchMode, value);
            }, (j, _) =>
            {
                var x = j[0].Jet!;
                var (amounts, value) = Spec([.. j.Select(v => v.Tensor)], x.Shape.Length);
                return Wrap(amounts.Length == 0 ? x : JetOps.Pad(x, amounts, torchMode, value));
            });
        }

        /// <summary>ONNX pads (all begins, then all ends, for <paramref name="axes"/>) as torch's list: last axis first, trailing unpadded axes left out.</summary>
        private static long[] TorchPads(long[] pads, long[] axes, int rank)
        {
            if (pads.Length != 2 * axes.Length) throw new InvalidOperationException($"Pad: {pads.Length} pads for {axes.Length} axes (two per axis are needed).");
            var begin = new long[rank];
            var end = new long[rank];
            for (var k = 0; k < axes.Length; k++)
            {
                begin[axes[k]] = pads[k];
                end[axes[k]] = pads[k + axes.Length];
            }
            if (begin[0] != 0 || end[0] != 0) throw new InvalidOperationException("Pad: padding the batch axis (axis 0) is not supported.");
            var first = Enumerable.Range(1, rank - 1).FirstOrDefault(i => begin[i] != 0 || end[i] != 0, rank);
            var list = new List<long>();
            for (var i = rank - 1; i >= first; i--)
            {
                list.Add(begin[i]);
                list.Add(end[i]);
            }
            return [.. list];
        }

        private JetGraphNode Reduce(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            var op = node.OpType;
            var axesFromInput = op == "ReduceSum" ? _opset >= 13 : _opset >= 18;
            if (axesFromInput) NeedConstant(node, 1, "the axes");
            var keep = a.Int("keepdims", 1) != 0;
            var noop = a.Int("noop_with_empty_axes", 0) != 0;
            var attrAxes = a.Ints("axes");
            long[]? AxesOf(Tensor?[] t) => axesFromInput
                ? (t.Length > 1 && t[1] is { } ax && ax.numel() > 0 ? Longs(ax) : null)
                : (attrAxes is { Length: > 0 } ? attrAxes : null);
            long[] Dims(long[]? axes, int rank) => axes is null ? [.. Enumerable.Range(0, rank).Select(i => (long)i)] : Normalized(axes, rank);
            return make(t =>
            {
                var x = t[0]!;
                var axes = AxesOf(t);
                if (axes is null && noop) return x;
                var dims = Dims(axes, (int)x.dim());
                return op switch
                {
                    "ReduceMean" => x.mean(dims, keep),
                    "ReduceSum" => x.sum(dims, keep),
                    "ReduceMax" => x.amax(dims, keep),
                    _ => x.amin(dims, keep),
                };
            }, (j, _) =>
            {
                var x = j[0].Jet!;
                var axes = AxesOf([.. j.Select(v => v.Tensor)]);
                if (axes is null && noop) return Wrap(x);
                var dims = Dims(axes, x.Shape.Length);
                return Wrap(op switch
                {
                    "ReduceMean" => JetOps.Mean(x, dims, keep),
                    "ReduceSum" => JetOps.Sum(x, dims, keep),
                    "ReduceMax" => JetOps.ReduceMax(x, dims, keep),
                    _ => JetOps.ReduceMin(x, dims, keep),
                });
            });
        }

        private JetGraphNode? ConvTranspose(NodeProto node, Attributes a, Func<Func<Tensor?[], Tensor>, Func<JetArg[], int, JetArg>, JetGraphNode> make)
        {
            NeedConstant(node, 1, "the weight");
            NeedConstant(node, 2, "the bias");
            var kernel = a.Ints("kernel_shape");
            var rank = kernel?.Length ?? (_constants.TryGetValue(node.Input[1], out var w) ? (int)w.dim() - 2 : 2);
            if (rank != 2)
            {
                Problem($"ConvTranspose ({rank}-D; only 2-D transposed convolutions are supported)");
                return null;
            }
            if (a.Attribute("output_shape") is not null)
            {
                Problem("ConvTranspose (output_shape; give pads and output_padding instead)");
                return null;
            }
            var autoPad = a.String("auto_pad", "NOTSET");
            if (autoPad is not ("NOTSET" or "VALID"))
            {
                Problem($"ConvTranspose (auto_pad={autoPad})");
                return null;
            }
            var strides = a.Ints("strides") ?? [1, 1];
            var dilations = a.Ints("dilations") ?? [1, 1];
            var group = a.Int("group", 1);
            long[] pads = autoPad == "VALID" ? [0, 0, 0, 0] : a.Ints("pads") ?? [0, 0, 0, 0];
            var outputPadding = a.Ints("output_padding") ?? [0, 0];
            return make(t => JetOps.ConvTranspose2dPlain(t[0]!, t[1]!, t.Length > 2 ? t[2] : null, strides, pads, outputPadding, dilations, group),
                (j, _) => Wrap(JetOps.ConvTranspose2d(j[0].Jet!, j[1].Constant, j.Length > 2 ? j[2].Tensor : null, strides, pads, outputPadding, dilations, group)));
        }

        /// <summary>Split: one graph node per used output, each narrowing the input to its part.</summary>
        private List<JetGraphNode> Split(NodeProto node, Attributes a)
        {
            var axis = a.Int("axis", 0);
            var count = node.Output.Count;
            var fromInput = _opset >= 13;                      // before opset 13 the sizes are an attribute
            if (fromInput) NeedConstant(node, 1, "the split sizes");
            var attrSplit = a.Ints("split");
            var numOutputs = a.Attribute("num_outputs") is null ? (long?)null : a.Int("num_outputs", count);
            long[] Sizes(long size, Tensor? split)
            {
                var given = fromInput ? (split is null ? null : Longs(split)) : attrSplit;
                if (given is not null)
                {
                    if (given.Length != count || given.Sum() != size)
                    {
                        throw new InvalidOperationException($"Split: sizes [{string.Join(",", given)}] do not split an axis of length {size} into {count} parts.");
                    }
                    return given;
                }
                var parts = numOutputs ?? count;
                if (numOutputs is null && size % parts != 0) throw new InvalidOperationException($"Split: an axis of length {size} does not split into {parts} equal parts.");
                var chunk = (size + parts - 1) / parts;        // opset 18's num_outputs: the last part may be smaller
                return [.. Enumerable.Range(0, count).Select(i => Math.Max(0, Math.Min(chunk, size - i * chunk)))];
            }
            var nodes = new List<JetGraphNode>();
            for (var i = 0; i < count; i++)
            {
                if (node.Output[i].Length == 0) continue;
                var index = i;
                nodes.Add(new JetGraphNode("Split", [.. node.Input], node.Output[i], t =>
                {
                    var x = t[0]!;
                    var ax = axis < 0 ? axis + x.dim() : axis;
                    var sizes = Sizes(x.shape[ax], t.Length > 1 ? t[1] : null);
                    return x.narrow(ax, sizes.Take(index).Sum(), sizes[index]);
                }, (j, _) =>
                {
                    var x = j[0].Jet!;
                    var ax = axis < 0 ? axis + x.Shape.Length : axis;
                    var sizes = Sizes(x.Shape[ax], j.Length > 1 ? j[1].Tensor : null);
                    return Wrap(JetOps.Narrow(x, ax, sizes.Take(index).Sum(), sizes[index]));
                }));
            }
            return nodes;
        }

        private static Tensor ExpandPlain(Tensor x, long[] shape)
        {
            var target = JetOps.BroadcastShape(x.shape, shape);
            var aligned = x.dim() < target.Length ? x.reshape([.. Enumerable.Repeat(1L, target.Length - (int)x.dim()), .. x.shape]) : x;
            return aligned.expand(target);
        }

        /// <summary>LayerNormalization from elementary operations (libtorch's fused layer_norm is not differentiated exactly beyond order 2 by nested autograd).</summary>
        private static Tensor LayerNormPlain(Tensor x, long axis, Tensor? scale, Tensor? bias, double eps)
        {
            var rank = (int)x.dim();
            var first = axis < 0 ? axis + rank : axis;
            long[] dims = [.. Enumerable.Range((int)first, rank - (int)first).Select(i => (long)i)];
            var centered = x - x.mean(dims, keepdim: true);
            var y = centered / ((centered * centered).mean(dims, keepdim: true) + eps).sqrt();
            if (scale is not null) y = y * scale;
            return bias is null ? y : y + bias;
        }

        /// <summary>Group (and, with one group per channel, instance) normalisation from elementary operations.</summary>
        private static Tensor GroupNormPlain(Tensor x, long groups, Tensor? scale, Tensor? bias, double eps, bool perGroupAffine)
        {
            var shape = x.shape;
            var g = x.reshape(shape[0], groups, -1);
            var centered = g - g.mean([2], keepdim: true);
            var y = (centered / ((centered * centered).mean([2], keepdim: true) + eps).sqrt()).reshape(shape);
            long[] view = [-1, .. Enumerable.Repeat(1L, shape.Length - 2)];
            Tensor PerChannel(Tensor t) => (perGroupAffine ? t.reshape(-1).repeat_interleave(shape[1] / groups) : t).reshape(view);
            if (scale is not null) y = y * PerChannel(scale);
            return bias is null ? y : y + PerChannel(bias);
        }

        private static long[] Longs(Tensor t) => t.to(ScalarType.Int64).contiguous().data<long>().ToArray();

        private static double Scalar(Tensor t, string what) =>
            t.numel() == 1 ? t.to(ScalarType.Float64).ToDouble() : throw new InvalidOperationException($"{what} must be one number; it has shape [{string.Join(",", t.shape)}].");

        internal static string NodeLabel(NodeProto node) => node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault(o => o.Length > 0) ?? node.OpType;

        internal static string Describe(string what, IReadOnlyList<string> nodes) => nodes.Count switch
        {
            0 => what,
            1 => $"{what} at node '{nodes[0]}'",
            <= 5 => $"{what} at nodes {string.Join(", ", nodes.Select(n => $"'{n}'"))}",
            _ => $"{what} at nodes {string.Join(", ", nodes.Take(5).Select(n => $"'{n}'"))} and {nodes.Count - 5} more",
        };

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

    /// <summary>ONNX Slice's operands; <see cref="Along"/> yields per sliced axis either a contiguous range or the indices to pick.</summary>
    private sealed record SliceSpec(long[] Starts, long[] Ends, long[]? Axes, long[]? Steps)
    {
        public IEnumerable<(long Axis, long Start, long Count, Tensor? Index)> Along(long[] shape)
        {
            if (Ends.Length != Starts.Length) throw new InvalidOperationException($"Slice: {Starts.Length} starts but {Ends.Length} ends.");
            for (var k = 0; k < Starts.Length; k++)
            {
                var axis = Axes is null ? k : Axes[k] < 0 ? Axes[k] + shape.Length : Axes[k];
                var step = Steps is null ? 1 : Steps[k];
                var indices = JetOps.SliceIndices(shape[axis], Starts[k], Ends[k], step);
                if (step == 1) yield return (axis, indices.Length > 0 ? indices[0] : 0, indices.Length, null);
                else yield return (axis, 0, indices.Length, tensor(indices));
            }
        }
    }
}
