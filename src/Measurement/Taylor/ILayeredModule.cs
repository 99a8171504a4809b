using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// A network that can be cut at a named intermediate activation: <c>F(x) = g_L(h_L(x))</c>, where <c>h_L</c> maps the
/// input to the activation of layer L (<see cref="ForwardTo"/>) and <c>g_L</c> is the rest of the network
/// (<see cref="ForwardFrom(string, Tensor)"/>, and on jets <see cref="ForwardFrom(string, Jet)"/>). The curvature rate at
/// L differentiates the objective of <c>g_L</c> at <c>h = h_L(x)</c> along unit directions u in h-space:
/// <c>Dⁿ_u f(h) = dⁿ/dtⁿ ℓ(g_L(h + t u))|_{t=0}</c> (paper §7: curvature of feature maps rather than raw inputs).
/// </summary>
/// <remarks>
/// Only cuts are layers: values through which every path from the input to the output passes, so that <c>g_L</c>
/// depends on the input through h alone and the derivatives are those of one function of h. A residual block's
/// output is a cut; a value inside the block (with the skip path beside it) is not.
/// </remarks>
public interface ILayeredModule
{
    /// <summary>The names of the layers the network can be cut at, input side first (never <c>input</c> or the output).</summary>
    IReadOnlyList<string> Layers { get; }

    /// <summary><c>h_L(x)</c>: <paramref name="input"/> <c>[B, sample…]</c> → the activation of <paramref name="layer"/> <c>[B, …]</c> (plain tensors, differentiable).</summary>
    Tensor ForwardTo(string layer, Tensor input);

    /// <summary><c>g_L(h)</c>: the activation <c>[B, …]</c> of <paramref name="layer"/> → the network's output.</summary>
    Tensor ForwardFrom(string layer, Tensor activation);

    /// <summary><c>g_L</c> on jets: the jet of the activation of <paramref name="layer"/> → the output's jet.</summary>
    Jet ForwardFrom(string layer, Jet activation);
}

/// <summary>Layer names: resolution with errors that list the valid names, and the suffix network of a cut.</summary>
public static class Layers
{
    /// <summary>The name that means the network's input (no cut): today's λ.</summary>
    public const string Input = "input";

    /// <summary>True when <paramref name="at"/> names the input (null, empty or <c>input</c>).</summary>
    public static bool IsInput(string? at) => string.IsNullOrEmpty(at) || at == Input;

    /// <summary>
    /// Checks that <paramref name="module"/> can be cut at <paramref name="at"/>; throws <see cref="MeasurementInputException"/>
    /// on <paramref name="field"/> with the list of valid names otherwise (or saying that the model has no named layers).
    /// </summary>
    public static ILayeredModule Resolve(object? module, string at, string field)
    {
        if (module is not ILayeredModule layered)
        {
            throw new MeasurementInputException(field,
                $"layer '{at}' cannot be found: this model's structure is not readable (TorchScript is opaque), so only '{Input}' is accepted. "
                + "Export the model to ONNX (the exact engines import its graph) to measure at a named layer.");
        }
        if (!layered.Layers.Contains(at)) throw NotALayer(field, at, layered.Layers, "this model");
        return layered;
    }

    /// <summary>
    /// The error for a name that is not one of <paramref name="layers"/> of <paramref name="what"/> (e.g. <c>this model</c>,
    /// <c>this mlp</c>), on <paramref name="field"/>, listing the valid names.
    /// </summary>
    public static MeasurementInputException NotALayer(string field, string at, IReadOnlyList<string> layers, string what)
    {
        var names = layers.Count == 0 ? "none (no intermediate value lies on every path from the input to the output)" : string.Join(", ", layers);
        return new MeasurementInputException(field, $"{field} '{at}' is not a layer of {what}; use '{Input}' or one of: {names}.");
    }

    /// <summary>The error for a layer named with the finite-difference engine (field <c>engine</c>): only the exact engines start at a layer.</summary>
    public static MeasurementInputException NeedsExactEngine(string at) => new("engine",
        $"at '{at}' needs an exact engine: finite differences run the whole model in ONNX Runtime and cannot start at a layer; use engine auto, taylor or autograd.");

    /// <summary>
    /// The rest of the network after <paramref name="layer"/> as a module of its own (<c>h ↦ g_L(h)</c>, on tensors and on
    /// jets), calling <paramref name="network"/> (see <see cref="LayerSuffix"/>).
    /// </summary>
    public static LayerSuffix Suffix(object network, string layer, string field = "at")
    {
        ArgumentNullException.ThrowIfNull(network);
        return new LayerSuffix(Resolve(network, layer, field), layer);
    }

    /// <summary>Shape of one sample's activation at <paramref name="layer"/> (without the batch axis), from one pass of a zero sample.</summary>
    public static int[] ActivationShape(ILayeredModule module, string layer, int[] sampleShape, ScalarType dtype, Device device)
    {
        ArgumentNullException.ThrowIfNull(module);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var h = module.ForwardTo(layer, zeros([1, .. sampleShape.Select(d => (long)d)], dtype: dtype, device: device));
        return [.. h.shape.Skip(1).Select(d => checked((int)d))];
    }
}

/// <summary>
/// <c>g_L</c>: the part of a network after its layer L, fed with L's activation. It calls the network and holds no
/// parameters of its own: the network is not registered as a submodule, so disposing the suffix leaves it alone, and
/// <c>to()</c>, <c>eval()</c> act on the network only when called on the network itself (set its dtype, device and mode first).
/// </summary>
public sealed class LayerSuffix : nn.Module<Tensor, Tensor>, IJetModule
{
    private readonly ILayeredModule layered;

    internal LayerSuffix(ILayeredModule layered, string layer) : base(nameof(LayerSuffix))
    {
        this.layered = layered;
        Layer = layer;
    }

    /// <summary>The layer whose activation is this module's input.</summary>
    public string Layer { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => layered.ForwardFrom(Layer, input);

    /// <inheritdoc />
    public Jet Forward(Jet input) => layered.ForwardFrom(Layer, input);

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseLinearOperators => (layered as IJetModule)?.PiecewiseLinearOperators ?? [];

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseOperators => (layered as IJetModule)?.PiecewiseOperators ?? [];
}
