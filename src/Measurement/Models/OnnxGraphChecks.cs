using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>Structural checks and descriptions of ONNX graphs.</summary>
internal static class OnnxGraphChecks
{
    /// <summary>Rejects any tensor whose data lives in another file (ONNX "external data").</summary>
    public static void RejectExternalData(ModelProto model, string name)
    {
        foreach (var (tensor, _) in AllTensors(model.Graph))
        {
            if (tensor.DataLocation == TensorProto.Types.DataLocation.External || tensor.ExternalData.Count > 0)
            {
                throw new MeasurementInputException("model",
                    $"ONNX model '{name}' keeps tensor '{tensor.Name}' in an external file; upload a self-contained model (onnx.save_model(m, path, save_as_external_data=False)).");
            }
        }
    }

    /// <summary>
    /// Rejects any tensor (initializers, sparse initializers' values and indices, Constant values and other tensor
    /// attributes, in subgraphs too) whose data does not fill its dims, as ONNX Runtime would only find in the sandbox.
    /// Every dim dᵢ ≥ 0 and numel = Πᵢ dᵢ (1 for a scalar); the data is either <c>raw_data</c> of ⌈numel × bits / 8⌉
    /// bytes or, when <c>raw_data</c> is empty, the element type's typed field with numel values: <c>float_data</c>
    /// (float; complex64 two per element), <c>int32_data</c> (int32, int16, int8, uint16, uint8, bool, float16,
    /// bfloat16, float8; 4-bit types two per value, so ⌈numel / 2⌉), <c>int64_data</c>, <c>double_data</c> (double;
    /// complex128 two per element), <c>uint64_data</c> (uint32, uint64), <c>string_data</c> (strings, which have no raw form).
    /// Tensors of other element types are left to the runtime. Run after <see cref="RejectExternalData"/>.
    /// </summary>
    public static void RejectMismatchedTensorData(ModelProto model, string name)
    {
        foreach (var (tensor, where) in AllTensors(model.Graph))
        {
            var what = $"ONNX model '{name}' has {where} with dims [{string.Join(", ", tensor.Dims)}]";
            if (tensor.Dims.Any(d => d < 0))
            {
                throw new MeasurementInputException("model", $"{what}: a dimension is negative; export the model again.");
            }
            Int128 numel = 1;
            foreach (var d in tensor.Dims)
            {
                numel *= d;
                if (numel > long.MaxValue) throw new MeasurementInputException("model", $"{what}: more elements than a tensor can hold; export the model again.");
            }
            if (Layout((TensorProto.Types.DataType)tensor.DataType) is not { } layout) continue;
            var typed = layout.Count(tensor);
            var described = $"{what} ({ElementTypeName(tensor.DataType)}, {numel} elements)";
            if (tensor.RawData.Length > 0 || typed == 0 && numel > 0 && layout.Bits > 0)
            {
                var bytes = (numel * layout.Bits + 7) / 8;
                if (layout.Bits == 0 || tensor.RawData.Length != bytes)
                {
                    var needs = layout.Bits == 0 ? $"{numel} values in {layout.Field}" : $"{bytes} bytes of raw_data";
                    throw new MeasurementInputException("model", $"{described}, which need {needs}, but it holds {tensor.RawData.Length} bytes of raw_data; export the model again.");
                }
                continue;
            }
            var values = layout.Bits == 4 ? (numel + 1) / 2 : numel * layout.ValuesPerElement;
            if (typed != values)
            {
                throw new MeasurementInputException("model", $"{described}, which need {values} values in {layout.Field}, but it holds {typed}; export the model again.");
            }
        }
    }

    /// <summary>How a tensor of one element type keeps its data: bits per element in raw_data (0: never raw) and its typed field.</summary>
    private sealed record DataLayout(int Bits, string Field, Func<TensorProto, int> Count, int ValuesPerElement = 1);

    private static DataLayout? Layout(TensorProto.Types.DataType type)
    {
        static DataLayout Int32(int bits) => new(bits, "int32_data", t => t.Int32Data.Count);
        return type switch
        {
            TensorProto.Types.DataType.Float => new(32, "float_data", t => t.FloatData.Count),
            TensorProto.Types.DataType.Complex64 => new(64, "float_data", t => t.FloatData.Count, 2),
            TensorProto.Types.DataType.Double => new(64, "double_data", t => t.DoubleData.Count),
            TensorProto.Types.DataType.Complex128 => new(128, "double_data", t => t.DoubleData.Count, 2),
            TensorProto.Types.DataType.Int64 => new(64, "int64_data", t => t.Int64Data.Count),
            TensorProto.Types.DataType.Uint32 => new(32, "uint64_data", t => t.Uint64Data.Count),
            TensorProto.Types.DataType.Uint64 => new(64, "uint64_data", t => t.Uint64Data.Count),
            TensorProto.Types.DataType.String => new(0, "string_data", t => t.StringData.Count),
            TensorProto.Types.DataType.Int32 => Int32(32),
            TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16 or TensorProto.Types.DataType.Float16
                or TensorProto.Types.DataType.Bfloat16 => Int32(16),
            TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool
                or TensorProto.Types.DataType.Float8E4M3Fn or TensorProto.Types.DataType.Float8E4M3Fnuz
                or TensorProto.Types.DataType.Float8E5M2 or TensorProto.Types.DataType.Float8E5M2Fnuz => Int32(8),
            TensorProto.Types.DataType.Int4 or TensorProto.Types.DataType.Uint4 or TensorProto.Types.DataType.Float4E2M1 => Int32(4),
            _ => null,
        };
    }

    /// <summary>Every tensor the graph holds, with where it sits (for messages).</summary>
    private static IEnumerable<(TensorProto Tensor, string Where)> AllTensors(GraphProto graph)
    {
        foreach (var t in graph.Initializer) yield return (t, $"initializer '{t.Name}'");
        foreach (var s in graph.SparseInitializer)
        {
            if (s.Values is not null) yield return (s.Values, $"the values of sparse initializer '{s.Values.Name}'");
            if (s.Indices is not null) yield return (s.Indices, $"the indices of sparse initializer '{s.Values?.Name}'");
        }
        foreach (var node in graph.Node)
        {
            foreach (var a in node.Attribute)
            {
                var at = $"attribute '{a.Name}' of {node.OpType} node '{node.Name}'";
                if (a.T is not null) yield return (a.T, $"tensor '{a.T.Name}' in {at}");
                foreach (var t in a.Tensors) yield return (t, $"tensor '{t.Name}' in {at}");
                if (a.SparseTensor is { } sparse)
                {
                    if (sparse.Values is not null) yield return (sparse.Values, $"the values of the sparse tensor in {at}");
                    if (sparse.Indices is not null) yield return (sparse.Indices, $"the indices of the sparse tensor in {at}");
                }
                foreach (var s in a.SparseTensors)
                {
                    if (s.Values is not null) yield return (s.Values, $"the values of a sparse tensor in {at}");
                    if (s.Indices is not null) yield return (s.Indices, $"the indices of a sparse tensor in {at}");
                }
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
