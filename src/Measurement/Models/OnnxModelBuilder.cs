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

    /// <summary>Adds an int64 initializer (for shapes and axes) and returns its name.</summary>
    public string ConstantInt64(long[] values, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != shape.Aggregate(1L, (a, b) => a * b)) throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(",", shape)}].", nameof(values));
        var name = $"c{_counter++}";
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(shape);
        t.Int64Data.Add(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>A fully connected layer <c>h·Wᵀ + b</c> (Gemm, transB = 1) with <paramref name="weight"/> <c>[out, in]</c> as in torch.nn.Linear; <paramref name="input"/> is <c>[N, in]</c>.</summary>
    public string Linear(string input, float[,] weight, float[] bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        int rows = weight.GetLength(0), cols = weight.GetLength(1);
        if (bias.Length != rows) throw new ArgumentException($"The bias has {bias.Length} values; the layer has {rows} outputs.", nameof(bias));
        var flat = new float[rows * cols];
        Buffer.BlockCopy(weight, 0, flat, 0, flat.Length * sizeof(float));
        return Node("Gemm", [input, Constant(flat, rows, cols), Constant(bias, rows)], ("transB", 1L));
    }

    /// <summary>
    /// A 2-D convolution (Conv, stride 1, no padding unless <paramref name="padding"/>) with <paramref name="weight"/>
    /// <c>[out, in, kh, kw]</c> and <paramref name="bias"/> <c>[out]</c> as in torch.nn.Conv2d; <paramref name="input"/> is <c>[N, in, H, W]</c>.
    /// </summary>
    public string Conv2d(string input, float[,,,] weight, float[] bias, int padding = 0)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        int o = weight.GetLength(0), i = weight.GetLength(1), kh = weight.GetLength(2), kw = weight.GetLength(3);
        if (bias.Length != o) throw new ArgumentException($"The bias has {bias.Length} values; the convolution has {o} output channels.", nameof(bias));
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        var flat = new float[o * i * kh * kw];
        Buffer.BlockCopy(weight, 0, flat, 0, flat.Length * sizeof(float));
        return Node("Conv", [input, Constant(flat, o, i, kh, kw), Constant(bias, o)],
            ("kernel_shape", new long[] { kh, kw }), ("strides", new long[] { 1, 1 }), ("pads", new long[] { padding, padding, padding, padding }));
    }

    /// <summary>2-D max pooling (MaxPool) with a square <paramref name="kernel"/> and <paramref name="stride"/> (torch.nn.MaxPool2d without padding).</summary>
    public string MaxPool2d(string input, int kernel, int stride) =>
        Node("MaxPool", [input], ("kernel_shape", new long[] { kernel, kernel }), ("strides", new long[] { stride, stride }));

    /// <summary>Flattens all dimensions from <paramref name="axis"/> on into one (Flatten): <c>[N, C, H, W]</c> → <c>[N, C·H·W]</c> for axis 1.</summary>
    public string Flatten(string input, int axis = 1) => Node("Flatten", [input], ("axis", (long)axis));

    /// <summary>Reshapes to <paramref name="shape"/> (Reshape; −1 infers one dimension, 0 keeps the input's).</summary>
    public string Reshape(string input, params long[] shape) => Node("Reshape", [input, ConstantInt64(shape, shape.Length)]);

    /// <summary>The exact GELU <c>x·Φ(x) = 0.5·x·(1 + erf(x/√2))</c> from Mul, Add and Erf (opset 17 has no Gelu operator).</summary>
    public string Gelu(string input)
    {
        var scaled = Node("Mul", [input, Constant([(float)(1 / Math.Sqrt(2))])]);
        var onePlusErf = Node("Add", [Node("Erf", [scaled]), Constant([1f])]);
        return Node("Mul", [Node("Mul", [input, Constant([0.5f])]), onePlusErf]);
    }

    /// <summary>Adds a node <paramref name="op"/> with the given inputs and returns the name of its single output.</summary>
    /// <param name="op">Operator type (default domain).</param>
    /// <param name="inputs">Input value names ("" for an absent optional input).</param>
    /// <param name="attributes">Attributes: long/int, float, long[], float[], string or a <see cref="TensorProto"/>.</param>
    public string Node(string op, IEnumerable<string> inputs, params (string Name, object Value)[] attributes) => Nodes(op, inputs, 1, attributes)[0];

    /// <summary>Adds a node with <paramref name="outputs"/> outputs (e.g. Split) and returns their names.</summary>
    public string[] Nodes(string op, IEnumerable<string> inputs, int outputs, params (string Name, object Value)[] attributes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outputs, 1);
        var first = $"{op.ToLowerInvariant()}{_counter++}";
        var names = Enumerable.Range(0, outputs).Select(i => i == 0 ? first : $"{first}_{i}").ToArray();
        var node = new NodeProto { OpType = op, Name = first + "_node" };
        node.Input.Add(inputs);
        node.Output.Add(names);
        foreach (var (name, value) in attributes)
        {
            var a = new AttributeProto { Name = name };
            switch (value)
            {
                case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
                case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.Add(ls); break;
                case float[] fs: a.Type = AttributeProto.Types.AttributeType.Floats; a.Floats.Add(fs); break;
                case string text: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(text); break;
                case TensorProto t: a.Type = AttributeProto.Types.AttributeType.Tensor; a.T = t; break;
                default: throw new ArgumentException($"Unsupported attribute type {value.GetType().Name}.", nameof(attributes));
            }
            node.Attribute.Add(a);
        }
        _graph.Node.Add(node);
        return names;
    }

    /// <summary>
    /// Renames <paramref name="value"/>, the output of the last node added, to <paramref name="name"/> (e.g. a layer's name such
    /// as <c>act1</c>, so that a measurement can be taken at it by that name) and returns the new name.
    /// </summary>
    public string Name(string value, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var node = _graph.Node.LastOrDefault(n => n.Output.Contains(value))
            ?? throw new ArgumentException($"No node computes '{value}'.", nameof(value));
        if (_graph.Node.Any(n => n.Input.Contains(value))) throw new InvalidOperationException($"'{value}' is already used by a node; name it right after it is computed.");
        if (_graph.Node.Any(n => n.Output.Contains(name)) || _graph.Initializer.Any(i => i.Name == name) || name == Input)
            throw new ArgumentException($"The name '{name}' is taken.", nameof(name));
        node.Output[node.Output.IndexOf(value)] = name;
        return name;
    }

    /// <summary>
    /// Declares <paramref name="value"/> as the graph output named <paramref name="outputName"/> with shape <c>[N, width]</c>
    /// (or <c>[N]</c> when width is 0), importing the default domain at <paramref name="opset"/>.
    /// </summary>
    public ModelProto Build(string value, string outputName, long width, int opset = 17)
    {
        var identity = new NodeProto { OpType = "Identity", Name = outputName + "_node" };
        identity.Input.Add(value);
        identity.Output.Add(outputName);
        _graph.Node.Add(identity);
        _graph.Output.Add(ValueInfo(outputName, width > 0 ? [-1, width] : [-1]));
        var model = new ModelProto { IrVersion = opset <= 18 ? 8 : opset <= 20 ? 9 : 10, ProducerName = "LambdaService", Graph = _graph.Clone() };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }

    /// <summary>
    /// A multilayer perceptron <c>x → act(W₀x + b₀) → … → W_L h + b_L</c> (no activation after the last layer),
    /// with <c>W_i</c> of shape <c>[out, in]</c> as in torch.nn.Linear, computed with Gemm (transB = 1). The activation
    /// is tanh, relu, sigmoid, softplus or gelu (exact, built from Erf: see <see cref="Gelu"/>).
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
            "gelu" => "Gelu",
            _ => throw new ArgumentException($"Unknown activation '{activation}'; use tanh, relu, sigmoid, softplus or gelu.", nameof(activation)),
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
            if (i < weights.Count - 1)
            {
                // The values carry the layer names of the project's Mlp (fc1, act1, …), so `at` means the same in both.
                h = b.Name(h, $"fc{i + 1}");
                h = b.Name(op == "Gelu" ? b.Gelu(h) : b.Node(op, [h]), $"act{i + 1}");
            }
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
