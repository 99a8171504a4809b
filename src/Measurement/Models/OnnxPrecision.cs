using Google.Protobuf;
using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>The result of <see cref="OnnxPrecision.ToFloat64WithReport"/>.</summary>
/// <param name="Model">The float64 model.</param>
/// <param name="Rewritten">
/// Nodes replaced by equivalent float64-capable subgraphs, as <c>OpType 'node name'</c>.
/// </param>
/// <param name="NotRewritten">
/// Nodes of operators that ONNX Runtime's CPU provider has no float64 kernel for and that remain in the graph,
/// as <c>OpType 'node name': reason</c>. When this is empty, every operator known to lack a float64 kernel was
/// rewritten (operators outside the known list may still fail at session creation).
/// </param>
public sealed record OnnxFloat64Conversion(ModelProto Model, IReadOnlyList<string> Rewritten, IReadOnlyList<string> NotRewritten);

/// <summary>
/// Rewrites a float32 ONNX graph to compute in float64.
/// </summary>
/// <remarks>
/// Two steps. (1) Every float32 tensor type, initializer, constant and cast target becomes float64.
/// (2) Operators that ONNX Runtime 1.31's CPU execution provider has no float64 kernel for are replaced by
/// subgraphs of operators that have one, each mathematically identical to the original (see
/// <see cref="OnnxFloat64Rewriter"/>): Conv (1-, 2- and 3-D, any group, kernel, stride, padding and
/// dilation) by Pad → Transpose to channels-last → one strided Slice per kernel offset → per kernel row, Concat
/// of its slices and MatMul with that row's weight block → accumulate → bias → Transpose back; AveragePool by a sum of strided Slices divided
/// by the window size (or by the count of non-padding elements); GlobalAveragePool/GlobalMaxPool by
/// ReduceMean/ReduceMax; Erf by fdlibm's piecewise rational approximations (within 1 ulp of a correctly
/// rounded erf on a dense test grid); Gelu, Softplus, LeakyRelu, PRelu, Elu, Selu, HardSigmoid, HardSwish,
/// Mish, Softsign, ThresholdedRelu and opset-11 Clip by their defining formulas. Nodes whose attributes the
/// rewrite does not cover (for example Conv with auto_pad SAME and stride &gt; 1, AveragePool with
/// ceil_mode = 1, a Conv weight that is not a constant) are left alone, so creating a session from the
/// result fails and callers fall back to float32. Some operators without float64 kernels (GRU, LSTM, RNN) are left
/// alone too and fail only when they first run: <see cref="OnnxRunner"/> runs one sample before it keeps a float64 session.
/// </remarks>
public static class OnnxPrecision
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Double = (int)TensorProto.Types.DataType.Double;

    /// <summary>
    /// Returns a copy of <paramref name="model"/> in which every float32 tensor type, initializer,
    /// constant and cast target is float64, and operators without float64 kernels in ONNX Runtime's CPU
    /// provider are replaced by equivalent float64-capable subgraphs where possible. Whether ONNX Runtime
    /// has float64 kernels for every remaining operator is only known when a session is created from the result.
    /// </summary>
    public static ModelProto ToFloat64(ModelProto model) => ToFloat64WithReport(model).Model;

    /// <summary>
    /// As <see cref="ToFloat64"/>, and says which nodes were rewritten and which nodes of operators known to
    /// lack float64 kernels remain (with the reason each was left alone).
    /// </summary>
    public static OnnxFloat64Conversion ToFloat64WithReport(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        ConvertGraph(copy.Graph);
        var (rewritten, notRewritten) = OnnxFloat64Rewriter.Rewrite(copy);
        return new OnnxFloat64Conversion(copy, rewritten, notRewritten);
    }

    private static void ConvertGraph(GraphProto graph)
    {
        foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo)) ConvertValueInfo(v);
        foreach (var t in graph.Initializer) ConvertTensor(t);
        foreach (var node in graph.Node)
        {
            if (node.OpType == "Constant" && node.Domain is "" or "ai.onnx") ConvertConstantFloats(node);
            foreach (var a in node.Attribute)
            {
                if (a.T is not null) ConvertTensor(a.T);
                foreach (var t in a.Tensors) ConvertTensor(t);
                if (a.G is not null) ConvertGraph(a.G);
                foreach (var g in a.Graphs) ConvertGraph(g);
                if ((a.Name == "to" || a.Name == "dtype") && a.Type == AttributeProto.Types.AttributeType.Int && a.I == Float) a.I = Double;
            }
        }
    }

    /// <summary>A Constant's <c>value_float</c> / <c>value_floats</c> (always float32) become a float64 <c>value</c> tensor.</summary>
    private static void ConvertConstantFloats(NodeProto node)
    {
        for (var i = 0; i < node.Attribute.Count; i++)
        {
            var a = node.Attribute[i];
            if (a.Name is not ("value_float" or "value_floats")) continue;
            var t = new TensorProto { DataType = Double };
            if (a.Name == "value_float")
            {
                t.DoubleData.Add(a.F);
            }
            else
            {
                t.Dims.Add(a.Floats.Count);
                t.DoubleData.Add(a.Floats.Select(f => (double)f));
            }
            node.Attribute[i] = new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = t };
        }
    }

    private static void ConvertValueInfo(ValueInfoProto v)
    {
        var tensor = v.Type?.TensorType;
        if (tensor is not null && tensor.ElemType == Float) tensor.ElemType = Double;
    }

    private static void ConvertTensor(TensorProto t)
    {
        if (t.DataType != Float) return;
        double[] values;
        if (t.FloatData.Count > 0)
        {
            values = t.FloatData.Select(f => (double)f).ToArray();
        }
        else
        {
            var raw = t.RawData.Span;
            values = new double[raw.Length / 4];
            for (var i = 0; i < values.Length; i++) values[i] = BitConverter.ToSingle(raw.Slice(4 * i, 4));
        }
        t.FloatData.Clear();
        t.RawData = ByteString.Empty;
        t.DoubleData.Clear();
        t.DoubleData.Add(values);
        t.DataType = Double;
    }
}
