using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// An ONNX graph imported by <see cref="OnnxJetImporter"/>, runnable two ways: as a TorchSharp module on tensors
/// (<see cref="forward"/>: <c>[B, sample…]</c> → the graph's output, so <see cref="Models.TorchModelRunner"/> and
/// the autograd engines can run it) and as a jet module (<see cref="Forward(Jet)"/>, Taylor mode). Both evaluate
/// the nodes in graph order; a node whose inputs are all constant (initializers, Constant nodes, Shape of a tensor,
/// arithmetic on those) runs on plain tensors in both.
/// </summary>
/// <remarks>
/// Initializers and Constant-node values are registered as buffers (<c>c0</c>, <c>c1</c>, …), so
/// <c>module.to(ScalarType.Float64)</c> converts the floating ones. Floating constants whose dtype differs from the
/// input's are cast to it on every pass (autograd-free copies), so a float32 graph can run in float64 without a
/// conversion of its own.
/// </remarks>
public sealed partial class JetGraph : nn.Module<Tensor, Tensor>, IJetModule, ILayeredModule
{
    private readonly IReadOnlyList<JetGraphNode> _nodes;
    private readonly Dictionary<string, string> _constantBuffers = new(StringComparer.Ordinal);

    internal JetGraph(string input, string output, IReadOnlyList<JetGraphNode> nodes, IReadOnlyList<KeyValuePair<string, Tensor>> constants,
        IReadOnlyList<string> operators)
        : base(nameof(JetGraph))
    {
        InputName = input;
        OutputName = output;
        _nodes = nodes;
        Operators = operators;
        PiecewiseLinearOperators = [.. operators.Where(OnnxJetImporter.PiecewiseLinearOperators.Contains)];
        PiecewiseOperators = [.. operators.Where(OnnxJetImporter.PiecewiseOperators.Contains)];
        var i = 0;
        foreach (var (name, value) in constants)
        {
            var buffer = $"c{i++}";
            register_buffer(buffer, value);
            _constantBuffers[name] = buffer;
        }
    }

    /// <summary>Name of the graph input.</summary>
    public string InputName { get; }

    /// <summary>Name of the graph output.</summary>
    public string OutputName { get; }

    /// <summary>The distinct operator types of the graph, in order of first appearance.</summary>
    public IReadOnlyList<string> Operators { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseLinearOperators { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseOperators { get; }

    /// <summary>
    /// Imports <paramref name="model"/> (see <see cref="OnnxJetImporter.TryImport(ModelProto, out JetGraph?, out IReadOnlyList{string}, ScalarType?)"/>).
    /// </summary>
    public static bool TryImport(ModelProto model, out JetGraph? graph, out IReadOnlyList<string> unsupportedOperators, ScalarType? dtype = null) =>
        OnnxJetImporter.TryImport(model, out graph, out unsupportedOperators, dtype);

    /// <summary>Imports a serialised ONNX model (see <see cref="OnnxJetImporter.TryImport(byte[], out JetGraph?, out IReadOnlyList{string}, ScalarType?)"/>).</summary>
    public static bool TryImport(byte[] bytes, out JetGraph? graph, out IReadOnlyList<string> unsupportedOperators, ScalarType? dtype = null) =>
        OnnxJetImporter.TryImport(bytes, out graph, out unsupportedOperators, dtype);

    /// <summary>The graph on plain tensors: <paramref name="input"/> <c>[B, sample…]</c> → the graph's output.</summary>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, constant) in Constants(input.dtype)) values[name] = constant;
        values[InputName] = input;
        foreach (var node in _nodes) values[node.Output] = Evaluate(node, values);
        return values[OutputName];
    }

    /// <summary>One node on plain tensors (an absent optional input is null).</summary>
    private static Tensor Evaluate(JetGraphNode node, Dictionary<string, Tensor> values)
    {
        var args = new Tensor?[node.Inputs.Length];
        for (var i = 0; i < args.Length; i++) args[i] = node.Inputs[i].Length == 0 ? null : values[node.Inputs[i]];
        return node.Plain(args);
    }

    /// <summary>The graph on jets: input coefficients <c>[K+1, B, sample…]</c> → the output's jet.</summary>
    /// <exception cref="InvalidOperationException">The output does not depend on the input.</exception>
    public Jet Forward(Jet input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var values = new Dictionary<string, JetArg>(StringComparer.Ordinal);
        foreach (var (name, constant) in Constants(input.DType)) values[name] = new JetArg(constant, null);
        values[InputName] = new JetArg(null, input);
        foreach (var node in _nodes) values[node.Output] = Evaluate(node, values, input.Order);
        return values[OutputName].Jet ?? throw new InvalidOperationException($"The graph's output '{OutputName}' does not depend on its input '{InputName}'.");
    }

    /// <summary>One node on jets: its jet rule when an input is a jet, else its plain rule on the constants.</summary>
    private static JetArg Evaluate(JetGraphNode node, Dictionary<string, JetArg> values, int order)
    {
        var args = new JetArg[node.Inputs.Length];
        var anyJet = false;
        for (var i = 0; i < args.Length; i++)
        {
            args[i] = node.Inputs[i].Length == 0 ? default : values[node.Inputs[i]];
            anyJet |= args[i].Jet is not null;
        }
        return anyJet ? node.Jet(args, order) : new JetArg(node.Plain([.. args.Select(a => a.Tensor)]), null);
    }

    private IEnumerable<KeyValuePair<string, Tensor>> Constants(ScalarType dtype)
    {
        var buffers = named_buffers(recurse: false).ToDictionary(b => b.name, b => b.buffer, StringComparer.Ordinal);
        foreach (var (name, buffer) in _constantBuffers)
        {
            var t = buffers[buffer];
            yield return new(name, t.is_floating_point() && t.dtype != dtype ? t.to(dtype) : t);
        }
    }
}

/// <summary>A value during jet evaluation of a <see cref="JetGraph"/>: a constant tensor or a jet (or neither: an absent optional input).</summary>
internal readonly record struct JetArg(Tensor? Tensor, Jet? Jet)
{
    public bool IsJet => Jet is not null;

    /// <summary>The jet, or the constant as a jet of the given order.</summary>
    public Jet AsJet(int order) => Jet ?? Taylor.Jet.Constant(Tensor ?? throw new InvalidOperationException("A required input is missing."), order);

    /// <summary>The constant; jets are refused (the importer checks this statically).</summary>
    public Tensor Constant => Tensor ?? throw new InvalidOperationException("An operand that must be constant depends on the graph's input.");
}

/// <summary>One node of a <see cref="JetGraph"/>: its plain tensor rule and its jet rule (used when an input is a jet).</summary>
internal sealed record JetGraphNode(string OpType, string[] Inputs, string Output, Func<Tensor?[], Tensor> Plain, Func<JetArg[], int, JetArg> Jet)
{
    /// <summary>The ONNX node's name (e.g. <c>/conv2/Conv</c> from torch.onnx), empty when it has none.</summary>
    public string NodeName { get; init; } = "";

    /// <summary>Whether <see cref="Output"/> is the importer's own intermediate value, not one of the ONNX graph's (never offered as a layer).</summary>
    public bool Internal { get; init; }
}
