using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Cutting an imported ONNX graph at an intermediate value (see <see cref="ILayeredModule"/>). A value is a layer when
/// the output can be computed from it and the constants alone (every path from the input passes through it) and at
/// least one operator other than Identity lies between it and the output. Layers are named by their value (node output)
/// names, e.g. <c>/conv2/Conv_output_0</c> or <c>relu3</c>; a module scope of torch.onnx's node names (<c>/conv2/Conv</c> → <c>conv2</c>,
/// <c>/layer1/layer1.0/Add</c> → <c>layer1.0</c>) names the output of the scope's last node when that output is a layer.
/// </summary>
public sealed partial class JetGraph
{
    private LayerIndex? _layerIndex;

    /// <inheritdoc />
    public IReadOnlyList<string> Layers => Index.Names;

    private LayerIndex Index => _layerIndex ??= BuildLayerIndex();

    /// <inheritdoc />
    public Tensor ForwardTo(string layer, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var target = ValueOf(layer);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, constant) in Constants(input.dtype)) values[name] = constant;
        values[InputName] = input;
        foreach (var node in _nodes)
        {
            values[node.Output] = Evaluate(node, values);
            if (node.Output == target) return values[target];
        }
        throw new InvalidOperationException($"Layer '{layer}' was not computed.");
    }

    /// <inheritdoc />
    public Tensor ForwardFrom(string layer, Tensor activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        var target = ValueOf(layer);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, constant) in Constants(activation.dtype)) values[name] = constant;
        values[target] = activation;
        foreach (var node in Index.Suffixes[target]) values[node.Output] = Evaluate(node, values);
        return values[OutputName];
    }

    /// <inheritdoc />
    public Jet ForwardFrom(string layer, Jet activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        var target = ValueOf(layer);
        var values = new Dictionary<string, JetArg>(StringComparer.Ordinal);
        foreach (var (name, constant) in Constants(activation.DType)) values[name] = new JetArg(constant, null);
        values[target] = new JetArg(null, activation);
        foreach (var node in Index.Suffixes[target]) values[node.Output] = Evaluate(node, values, activation.Order);
        return values[OutputName].Jet ?? throw new InvalidOperationException($"The graph's output does not depend on layer '{layer}'.");
    }

    /// <summary>The value a layer name stands for (a value name, or the value a module scope resolves to).</summary>
    private string ValueOf(string layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        return Index.Values.TryGetValue(layer, out var value)
            ? value
            : throw new ArgumentException($"'{layer}' is not a layer of this graph; layers: {string.Join(", ", Index.Names)}.", nameof(layer));
    }

    private LayerIndex BuildLayerIndex()
    {
        var found = LayerAnalysis.Find(InputName, OutputName, [.. _nodes.Select(n => new LayerAnalysis.GraphNode(n.OpType, n.Inputs, [n.Output], n.NodeName))],
            _constantBuffers.Keys, [.. _nodes.Where(n => n.Internal).Select(n => n.Output)]);
        var suffixes = found.Suffixes.ToDictionary(p => p.Key, p => p.Value.Select(i => _nodes[i]).ToArray(), StringComparer.Ordinal);
        return new LayerIndex(found.Names, found.Values, suffixes);
    }

    private sealed record LayerIndex(IReadOnlyList<string> Names, Dictionary<string, string> Values, Dictionary<string, JetGraphNode[]> Suffixes);
}

/// <summary>
/// The layers of a graph (see <see cref="JetGraph"/>'s remarks on cuts and module scopes), found from its nodes' inputs and
/// outputs alone, so that an ONNX file can be checked without libtorch (<see cref="OnnxJetImporter.LayerNames"/>) and the
/// imported graph agrees with that check.
/// </summary>
internal static class LayerAnalysis
{
    /// <summary>A node: its operator, inputs ("" for an absent optional one), outputs and ONNX node name.</summary>
    internal sealed record GraphNode(string OpType, string[] Inputs, string[] Outputs, string Name);

    /// <summary>The layer names (module scopes first, then values in graph order), each name's value, and each cut value's suffix (node indices in order).</summary>
    internal sealed record Result(IReadOnlyList<string> Names, Dictionary<string, string> Values, Dictionary<string, int[]> Suffixes);

    /// <param name="input">The graph input.</param>
    /// <param name="output">The graph output.</param>
    /// <param name="nodes">The nodes in order.</param>
    /// <param name="constants">Initializer and constant names.</param>
    /// <param name="internals">Values that are no ONNX value (the importer's own, e.g. a recurrent node's stacked outputs): never layers.</param>
    internal static Result Find(string input, string output, IReadOnlyList<GraphNode> nodes, IEnumerable<string> constants, IReadOnlyCollection<string>? internals = null)
    {
        var constantSet = constants.ToHashSet(StringComparer.Ordinal);
        var dependent = new HashSet<string>(StringComparer.Ordinal) { input };
        foreach (var node in nodes)
        {
            if (node.Inputs.Any(dependent.Contains)) foreach (var o in node.Outputs) dependent.Add(o);
        }
        var suffixes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var cuts = new List<string>();
        var candidates = nodes.SelectMany(n => n.Outputs).Where(o => o.Length > 0 && dependent.Contains(o) && o != output && o != input && internals?.Contains(o) != true).Distinct(StringComparer.Ordinal);
        foreach (var candidate in candidates)
        {
            var available = new HashSet<string>(constantSet, StringComparer.Ordinal) { candidate };
            var downstream = new HashSet<string>(StringComparer.Ordinal) { candidate };
            var suffix = new List<int>();
            var operators = 0;
            for (var i = 0; i < nodes.Count; i++)
            {
                var node = nodes[i];
                if (node.Outputs.Contains(candidate) || !node.Inputs.All(n => n.Length == 0 || available.Contains(n))) continue;
                foreach (var o in node.Outputs) available.Add(o);
                suffix.Add(i);
                if (node.Inputs.Any(downstream.Contains))
                {
                    foreach (var o in node.Outputs) downstream.Add(o);
                    if (node.OpType != "Identity") operators++;
                }
            }
            if (!downstream.Contains(output) || operators == 0) continue;
            cuts.Add(candidate);
            suffixes[candidate] = [.. suffix];
        }
        var values = cuts.ToDictionary(c => c, c => c, StringComparer.Ordinal);

        // Module scopes of torch.onnx node names: "/a/a.0/conv1/Conv" lies in scopes "a", "a.0", "conv1" and "a.a.0.conv1"
        // (the segments joined); a scope names the output of its last node when that output is a layer.
        var lastOfScope = new Dictionary<string, string>(StringComparer.Ordinal);
        var scopeOrder = new List<string>();
        foreach (var node in nodes)
        {
            if (!node.Name.StartsWith('/') || node.Outputs.Length != 1) continue;
            var segments = node.Name.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segments.Length < 2) continue;
            var scopes = segments[..^1];
            foreach (var scope in scopes.Append(string.Join('.', scopes)).Distinct())
            {
                if (!lastOfScope.ContainsKey(scope)) scopeOrder.Add(scope);
                lastOfScope[scope] = node.Outputs[0];
            }
        }
        var aliases = new List<string>();
        foreach (var scope in scopeOrder)
        {
            var value = lastOfScope[scope];
            if (values.ContainsKey(scope) || scope == Layers.Input || !suffixes.ContainsKey(value)) continue;
            values[scope] = value;
            aliases.Add(scope);
        }
        return new Result([.. aliases, .. cuts], values, suffixes);
    }
}
