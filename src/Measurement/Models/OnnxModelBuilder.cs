using Google.Protobuf;
using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Builds small float32 ONNX models in code (opset 17): multilayer perceptrons for export and test
/// fixtures, and elementwise scalar models. The result is an ordinary <see cref="ModelProto"/>.
/// </summary>
public sealed class OnnxModelBuilder
{
    private readonly GraphProto _graph = new() { Name = "lambdaservice" };
    private int _counter;

    /// <summary>Starts a graph with one float32 input <paramref name="inputName"/> of shape <c>[N, features...]</c> (N dynamic).</summary>
    public OnnxModelBuilder(string inputName, params long[] sampleShape)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(inputName);
        Input = inputName;
        _graph.Input.Add(ValueInfo(inputName, [-1, .. sampleShape]));
    }

    /// <summary>Name of the graph input.</summary>
    public string Input { get; }

    /// <summary>Adds a float32 initializer and returns its name.</summary>
    public string Constant(float[] values, params long[] shape)
    {
        if (values.Length != shape.Aggregate(1L, (a, b) => a * b)) throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(",", shape)}].", nameof(values));
        var name = $"c{_counter++}";
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.Add(shape);
        t.FloatData.Add(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a node <paramref name="op"/> with the given inputs and returns the name of its single output.</summary>
    public string Node(string op, IEnumerable<string> inputs, params (string Name, object Value)[] attributes)
    {
        var output = $"{op.ToLowerInvariant()}{_counter++}";
        var node = new NodeProto { OpType = op, Name = output + "_node" };
        node.Input.Add(inputs);
        node.Output.Add(output);
        foreach (var (name, value) in attributes)
        {
            var a = new AttributeProto { Name = name };
            switch (value)
            {
                case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
                case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.Add(ls); break;
                default: throw new ArgumentException($"Unsupported attribute type {value.GetType().Name}.", nameof(attributes));
            }
            node.Attribute.Add(a);
        }
        _graph.Node.Add(node);
        return output;
    }

    /// <summary>Declares <paramref name="value"/> as the graph output named <paramref name="outputName"/> with shape <c>[N, width]</c> (or <c>[N]</c> when width is 0).</summary>
    public ModelProto Build(string value, string outputName, long width)
    {
        var identity = new NodeProto { OpType = "Identity", Name = outputName + "_node" };
        identity.Input.Add(value);
        identity.Output.Add(outputName);
        _graph.Node.Add(identity);
        _graph.Output.Add(ValueInfo(outputName, width > 0 ? [-1, width] : [-1]));
        var model = new ModelProto { IrVersion = 8, ProducerName = "LambdaService", Graph = _graph.Clone() };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model;
    }

    /// <summary>
    /// A multilayer perceptron <c>x → act(W₀x + b₀) → … → W_L h + b_L</c> (no activation after the last layer),
    /// with <c>W_i</c> of shape <c>[out, in]</c> as in torch.nn.Linear, computed with Gemm (transB = 1).
    /// </summary>
    public static ModelProto Mlp(IReadOnlyList<float[,]> weights, IReadOnlyList<float[]> biases, string activation = "tanh", string inputName = "x", string outputName = "logits")
    {
        if (weights.Count == 0 || weights.Count != biases.Count) throw new ArgumentException("Give one bias per weight matrix and at least one layer.", nameof(biases));
        var op = activation switch
        {
            "tanh" => "Tanh",
            "relu" => "Relu",
            "sigmoid" => "Sigmoid",
            "softplus" => "Softplus",
            _ => throw new ArgumentException($"Unknown activation '{activation}'; use tanh, relu, sigmoid or softplus.", nameof(activation)),
        };
        var b = new OnnxModelBuilder(inputName, weights[0].GetLength(1));
        var h = b.Input;
        for (var i = 0; i < weights.Count; i++)
        {
            var w = weights[i];
            int rows = w.GetLength(0), cols = w.GetLength(1);
            if (biases[i].Length != rows) throw new ArgumentException($"Bias {i} has {biases[i].Length} values; layer {i} has {rows} outputs.", nameof(biases));
            if (i > 0 && cols != weights[i - 1].GetLength(0)) throw new ArgumentException($"Layer {i} takes {cols} inputs but layer {i - 1} gives {weights[i - 1].GetLength(0)}.", nameof(weights));
            var flat = new float[rows * cols];
            Buffer.BlockCopy(w, 0, flat, 0, flat.Length * sizeof(float));
            h = b.Node("Gemm", [h, b.Constant(flat, rows, cols), b.Constant(biases[i], rows)], ("transB", 1L));
            if (i < weights.Count - 1) h = b.Node(op, [h]);
        }
        return b.Build(h, outputName, weights[^1].GetLength(0));
    }

    /// <summary>Writes a model to a file.</summary>
    public static void Save(ModelProto model, string path) => File.WriteAllBytes(path, model.ToByteArray());

    private static ValueInfoProto ValueInfo(string name, long[] shape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (var d in shape)
        {
            tensorType.Shape.Dim.Add(d > 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }
}
