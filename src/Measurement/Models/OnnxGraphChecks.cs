using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>Structural checks and descriptions of ONNX graphs.</summary>
internal static class OnnxGraphChecks
{
    /// <summary>Rejects any tensor whose data lives in another file (ONNX "external data").</summary>
    public static void RejectExternalData(ModelProto model, string name)
    {
        foreach (var tensor in AllTensors(model.Graph))
        {
            if (tensor.DataLocation == TensorProto.Types.DataLocation.External || tensor.ExternalData.Count > 0)
            {
                throw new MeasurementInputException("model",
                    $"ONNX model '{name}' keeps tensor '{tensor.Name}' in an external file; upload a self-contained model (onnx.save_model(m, path, save_as_external_data=False)).");
            }
        }
    }

    private static IEnumerable<TensorProto> AllTensors(GraphProto graph)
    {
        foreach (var t in graph.Initializer) yield return t;
        foreach (var s in graph.SparseInitializer)
        {
            if (s.Values is not null) yield return s.Values;
            if (s.Indices is not null) yield return s.Indices;
        }
        foreach (var node in graph.Node)
        {
            foreach (var a in node.Attribute)
            {
                if (a.T is not null) yield return a.T;
                foreach (var t in a.Tensors) yield return t;
                if (a.G is not null) foreach (var t in AllTensors(a.G)) yield return t;
                foreach (var g in a.Graphs) foreach (var t in AllTensors(g)) yield return t;
            }
        }
    }

    public static TensorInfo Describe(ValueInfoProto v)
    {
        var tensor = v.Type?.TensorType;
        if (tensor is null) return new TensorInfo(v.Name, [], v.Type?.ValueCase.ToString().ToLowerInvariant() ?? "unknown");
        var shape = tensor.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0 ? d.DimValue : -1L).ToArray() ?? [];
        return new TensorInfo(v.Name, shape, ElementTypeName(tensor.ElemType));
    }

    public static string ElementTypeName(int elemType) => (TensorProto.Types.DataType)elemType switch
    {
        TensorProto.Types.DataType.Float => "float32",
        TensorProto.Types.DataType.Double => "float64",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        TensorProto.Types.DataType.Int64 => "int64",
        TensorProto.Types.DataType.Int32 => "int32",
        TensorProto.Types.DataType.Int8 => "int8",
        TensorProto.Types.DataType.Uint8 => "uint8",
        TensorProto.Types.DataType.Bool => "bool",
        TensorProto.Types.DataType.String => "string",
        var other => other.ToString().ToLowerInvariant(),
    };
}
