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
            values[node.Output] = node.Plain([.. node.Inputs.Select(i => i.Length == 0 ? null : values[i])]);
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
        foreach (var node in Index.Suffixes[target])
        {
            values[node.Output] = node.Plain([.. node.Inputs.Select(i => i.Length == 0 ? null : values[i])]);
        }
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
        foreach (var node in Index.Suffixes[target])
        {
            var args = new JetArg[node.Inputs.Length];
            var anyJet = false;
            for (var i = 0; i < args.Length; i++)
            {
                args[i] = node.Inputs[i].Length == 0 ? default : values[node.Inputs[i]];
                anyJet |= args[i].Jet is not null;
            }
            values[node.Output] = anyJet ? node.Jet(args, activation.Order) : new JetArg(node.Plain([.. args.Select(a => a.Tensor)]), null);
        }
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
        var dependent = new HashSet<string>(StringComparer.Ordinal) { InputName };
        foreach (var node in _nodes)
        {
            if (node.Inputs.Any(dependent.Contains)) dependent.Add(node.Output);
        }
        var suffixes = new Dictionary<string, JetGraphNode[]>(StringComparer.Ordinal);
        var cuts = new List<string>();
        foreach (var candidate in _nodes.Where(n => dependent.Contains(n.Output) && n.Output != OutputName).Select(n => n.Output).Distinct())
        {
            var available = new HashSet<string>(_constantBuffers.Keys, StringComparer.Ordinal) { candidate };
            var downstream = new HashSet<string>(StringComparer.Ordinal) { candidate };
            var suffix = new List<JetGraphNode>();
            var operators = 0;
            foreach (var node in _nodes)
            {
                if (node.Output == candidate || !node.Inputs.All(i => i.Length == 0 || available.Contains(i))) continue;
                available.Add(node.Output);
                suffix.Add(node);
                if (node.Inputs.Any(downstream.Contains))
                {
                    downstream.Add(node.Output);
                    if (node.OpType != "Identity") operators++;
                }
            }
            if (!downstream.Contains(OutputName) || operators == 0) continue;
            cuts.Add(candidate);
            suffixes[candidate] = [.. suffix];
        }
        var values = cuts.ToDictionary(c => c, c => c, StringComparer.Ordinal);

        // Module scopes of torch.onnx node names: "/a/a.0/conv1/Conv" lies in scopes "a", "a.0", "conv1" and "a.a.0.conv1"
        // (the segments joined); a scope names the output of its last node when that output is a layer.
        var lastOfScope = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var node in _nodes)
        {
            if (!node.NodeName.StartsWith('/')) continue;
            var segments = node.NodeName.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segments.Length < 2) continue;
            var scopes = segments[..^1];
            foreach (var scope in scopes.Append(string.Join('.', scopes)).Distinct()) lastOfScope[scope] = node.Output;
        }
        var aliases = new List<string>();
        foreach (var (scope, output) in lastOfScope)
        {
            if (values.ContainsKey(scope) || scope == Taylor.Layers.Input || !suffixes.ContainsKey(output)) continue;
            values[scope] = output;
            aliases.Add(scope);
        }
        return new LayerIndex([.. aliases, .. cuts], values, suffixes);
    }

    private sealed record LayerIndex(IReadOnlyList<string> Names, Dictionary<string, string> Values, Dictionary<string, JetGraphNode[]> Suffixes);
}
