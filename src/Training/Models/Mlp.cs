using LambdaService.Measurement.Taylor;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Models;

/// <summary>
/// A multilayer perceptron <c>x → act(W₀x + b₀) → … → W_L h + b_L</c> (no activation after the last layer),
/// flattening its input first. Weights follow torch.nn.Linear (<c>W_i</c> of shape <c>[out, in]</c>).
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>, IJetModule, ILayeredModule
{
    private readonly ModuleList<Linear> layers;
    private readonly string activation;
    private readonly string[] layerNames;

    /// <summary>Creates the network with torch.nn.Linear's default initialisation under the current torch seed.</summary>
    /// <param name="widths">Input width, hidden widths…, output width (at least two numbers).</param>
    /// <param name="activation"><c>tanh</c> (default), <c>relu</c>, <c>sigmoid</c>, <c>softplus</c> or <c>gelu</c>.</param>
    public Mlp(IReadOnlyList<int> widths, string activation = "tanh") : base(nameof(Mlp))
    {
        ArgumentNullException.ThrowIfNull(widths);
        if (widths.Count < 2 || widths.Any(w => w < 1)) throw new ArgumentException("Give at least an input and an output width, all positive.", nameof(widths));
        if (activation is not ("tanh" or "relu" or "sigmoid" or "softplus" or "gelu"))
        {
            throw new ArgumentException($"Unknown activation '{activation}'; use tanh, relu, sigmoid, softplus or gelu.", nameof(activation));
        }
        this.activation = activation;
        layers = new ModuleList<Linear>();
        for (var i = 0; i + 1 < widths.Count; i++) layers.Add(nn.Linear(widths[i], widths[i + 1]));
        Widths = [.. widths];
        layerNames = LayerNames(widths.Count - 2);
        RegisterComponents();
    }

    /// <summary>The layer widths, input first.</summary>
    public int[] Widths { get; }

    /// <summary>The activation's name.</summary>
    public string Activation => activation;

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Stages(input.dim() > 2 ? input.flatten(1) : input, 0, LastStage);

    /// <summary>
    /// Taylor mode (see <see cref="IJetModule"/>): the same network on jets, <c>h ↦ act(h Wᵢᵀ + bᵢ)</c> by
    /// <see cref="JetOps.Linear"/> and the activation's rule, flattening inputs of rank &gt; 2 first. Output coefficients
    /// <c>[K+1, B, out]</c>.
    /// </summary>
    public Jet Forward(Jet input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Stages(input.Shape.Length > 2 ? JetOps.Flatten(input, 1) : input, 0);
    }

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseLinearOperators => activation == "relu" ? ["Relu"] : [];

    /// <summary>
    /// Hidden layer i (1-based) gives two layers: <c>fc{i}</c>, its affine map <c>W h + b</c>, and <c>act{i}</c>, the activation
    /// after it (the ONNX export names its values the same way). The output layer is not one (its value is the logits).
    /// </summary>
    public IReadOnlyList<string> Layers => layerNames;

    /// <summary>The layer names of an MLP with <paramref name="hiddenLayers"/> hidden layers: <c>fc1, act1, fc2, act2, …</c>.</summary>
    public static string[] LayerNames(int hiddenLayers) => [.. Enumerable.Range(1, hiddenLayers).SelectMany(i => new[] { $"fc{i}", $"act{i}" })];

    /// <inheritdoc />
    public Tensor ForwardTo(string layer, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Stages(input.dim() > 2 ? input.flatten(1) : input, 0, Stage(layer));
    }

    /// <inheritdoc />
    public Tensor ForwardFrom(string layer, Tensor activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        return Stages(activation, Stage(layer) + 1, LastStage);
    }

    /// <inheritdoc />
    public Jet ForwardFrom(string layer, Jet activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        return Stages(activation, Stage(layer) + 1);
    }

    /// <summary>The stage of a layer: 0 = fc1, 1 = act1, 2 = fc2, …; <see cref="LastStage"/> (2L − 2) is the output layer.</summary>
    private int Stage(string layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var index = Array.IndexOf(layerNames, layer);
        return index >= 0 ? index : throw new ArgumentException($"'{layer}' is not a layer of this network; layers: {string.Join(", ", layerNames)}.", nameof(layer));
    }

    private int LastStage => 2 * layers.Count - 2;

    /// <summary>Stages <paramref name="first"/>..<paramref name="last"/>: even stages are the linear layers, odd ones their activations.</summary>
    private Tensor Stages(Tensor h, int first, int last)
    {
        for (var stage = first; stage <= last; stage++) h = stage % 2 == 0 ? layers[stage / 2].call(h) : Activate(h);
        return h;
    }

    /// <summary>Stages <paramref name="first"/>..<see cref="LastStage"/> on jets.</summary>
    private Jet Stages(Jet h, int first)
    {
        for (var stage = first; stage <= LastStage; stage++) h = stage % 2 == 0 ? JetOps.Linear(h, layers[stage / 2].weight!, layers[stage / 2].bias) : Activate(h);
        return h;
    }

    private Jet Activate(Jet h) => activation switch
    {
        "tanh" => JetOps.Tanh(h),
        "relu" => JetOps.Relu(h),
        "sigmoid" => JetOps.Sigmoid(h),
        "softplus" => JetOps.Softplus(h),
        _ => JetOps.Gelu(h),
    };

    private Tensor Activate(Tensor h) => activation switch
    {
        "tanh" => h.tanh(),
        "relu" => nn.functional.relu(h),
        "sigmoid" => h.sigmoid(),
        "softplus" => nn.functional.softplus(h),
        _ => nn.functional.gelu(h),
    };

    /// <summary>The linear layers' parameters, input layer first: weight <c>[out, in]</c> and bias <c>[out]</c>.</summary>
    public IReadOnlyList<(Parameter Weight, Parameter Bias)> LinearParameters() => [.. layers.Select(l => (l.weight!, l.bias!))];

    /// <summary>The weights and biases as plain arrays (float32, torch.nn.Linear layout), for export.</summary>
    public (float[,] Weight, float[] Bias)[] Parameters() =>
        [.. layers.Select(l => LayerArrays.Linear(l)).Select(p => (p.Weight, p.Bias))];
}
