using Google.Protobuf;
using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>Rewrites a float32 ONNX graph to compute in float64.</summary>
public static class OnnxPrecision
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Double = (int)TensorProto.Types.DataType.Double;

    /// <summary>
    /// Returns a copy of <paramref name="model"/> in which every float32 tensor type, initializer,
    /// constant and cast target is float64. Whether ONNX Runtime has float64 kernels for every operator
    /// is only known when a session is created from the result.
    /// </summary>
    public static ModelProto ToFloat64(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = model.Clone();
        ConvertGraph(copy.Graph);
        return copy;
    }

    private static void ConvertGraph(GraphProto graph)
    {
        foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo)) ConvertValueInfo(v);
        foreach (var t in graph.Initializer) ConvertTensor(t);
        foreach (var node in graph.Node)
        {
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
