using LambdaService.Measurement.Taylor;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Models;

/// <summary>
/// A multilayer perceptron <c>x → act(W₀x + b₀) → … → W_L h + b_L</c> (no activation after the last layer),
/// flattening its input first. Weights follow torch.nn.Linear (<c>W_i</c> of shape <c>[out, in]</c>).
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>, IJetModule
{
    private readonly ModuleList<Linear> layers;
    private readonly string activation;

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
        RegisterComponents();
    }

    /// <summary>The layer widths, input first.</summary>
    public int[] Widths { get; }

    /// <summary>The activation's name.</summary>
    public string Activation => activation;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var h = input.dim() > 2 ? input.flatten(1) : input;
        for (var i = 0; i < layers.Count; i++)
        {
            h = layers[i].call(h);
            if (i < layers.Count - 1) h = Activate(h);
        }
        return h;
    }

    /// <summary>
    /// Taylor mode (see <see cref="IJetModule"/>): the same network on jets, <c>h ↦ act(h Wᵢᵀ + bᵢ)</c> by
    /// <see cref="JetOps.Linear"/> and the activation's rule, flattening inputs of rank &gt; 2 first. Output coefficients
    /// <c>[K+1, B, out]</c>.
    /// </summary>
    public Jet Forward(Jet input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var h = input.Shape.Length > 2 ? JetOps.Flatten(input, 1) : input;
        for (var i = 0; i < layers.Count; i++)
        {
            h = JetOps.Linear(h, layers[i].weight!, layers[i].bias);
            if (i < layers.Count - 1) h = Activate(h);
        }
        return h;
    }

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseLinearOperators => activation == "relu" ? ["Relu"] : [];

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

    /// <summary>The weights and biases as plain arrays (float32, torch.nn.Linear layout), for export.</summary>
    public (float[,] Weight, float[] Bias)[] Parameters() =>
        [.. layers.Select(l => LayerArrays.Linear(l)).Select(p => (p.Weight, p.Bias))];
}
