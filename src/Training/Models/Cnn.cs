using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Models;

/// <summary>
/// Sizes of <see cref="Cnn"/>. The defaults are this project's MNIST network (see <see cref="Cnn"/> for why they are
/// half the paper's widths); tests use much smaller ones.
/// </summary>
public sealed record CnnOptions
{
    /// <summary>Input channels (1 for MNIST).</summary>
    public int InputChannels { get; init; } = 1;

    /// <summary>Height and width of the (square) input images (28 for MNIST).</summary>
    public int ImageSize { get; init; } = 28;

    /// <summary>Output channels of the first 3×3 convolution (default 16; the paper's Keras network has 32).</summary>
    public int Conv1Channels { get; init; } = 16;

    /// <summary>Output channels of the second 3×3 convolution (default 32; the paper's Keras network has 64).</summary>
    public int Conv2Channels { get; init; } = 32;

    /// <summary>Units of the fully connected hidden layer (128, as in the paper).</summary>
    public int Hidden { get; init; } = 128;

    /// <summary>Number of classes (10 for MNIST).</summary>
    public int Classes { get; init; } = 10;

    /// <summary>Dropout probability after the pooling layer, in training mode only (0.25, as in the paper).</summary>
    public double PoolDropout { get; init; } = 0.25;

    /// <summary>Dropout probability after the hidden layer, in training mode only (0.5, as in the paper).</summary>
    public double HiddenDropout { get; init; } = 0.5;

    /// <summary><c>relu</c> (default, the paper's) or <c>tanh</c> (a smooth variant, for comparisons with finite differences).</summary>
    public string Activation { get; init; } = "relu";

    /// <summary>Side of the feature map after the two unpadded 3×3 convolutions and the 2×2 pooling: <c>(ImageSize − 4) / 2</c>.</summary>
    public int PooledSize => (ImageSize - 4) / 2;

    /// <summary>Inputs of the hidden layer: <c>Conv2Channels · PooledSize²</c>.</summary>
    public int FlatFeatures => Conv2Channels * PooledSize * PooledSize;

    /// <summary>Values per input sample: <c>InputChannels · ImageSize²</c>.</summary>
    public int SampleSize => InputChannels * ImageSize * ImageSize;

    /// <summary>Throws <see cref="ArgumentException"/> when a size or probability is out of range.</summary>
    public void Validate()
    {
        if (InputChannels < 1 || Conv1Channels < 1 || Conv2Channels < 1 || Hidden < 1)
            throw new ArgumentException("Channel counts and the hidden width must be positive.");
        if (Classes < 2) throw new ArgumentException($"A classifier needs at least 2 classes, not {Classes}.");
        if (ImageSize < 6) throw new ArgumentException($"Images must be at least 6×6 (two 3×3 convolutions and a 2×2 pooling); got {ImageSize}.");
        if (PoolDropout is < 0 or >= 1 || HiddenDropout is < 0 or >= 1 || double.IsNaN(PoolDropout) || double.IsNaN(HiddenDropout))
            throw new ArgumentException("Dropout probabilities must lie in [0, 1).");
        if (Activation is not ("relu" or "tanh")) throw new ArgumentException($"Unknown activation '{Activation}'; use relu or tanh.");
    }
}

/// <summary>The weights and bias of a 2-D convolution, in torch.nn.Conv2d's layout: weight <c>[out, in, kh, kw]</c>, bias <c>[out]</c>.</summary>
public sealed record ConvParameters(float[,,,] Weight, float[] Bias);

/// <summary>The weights and bias of a fully connected layer, in torch.nn.Linear's layout: weight <c>[out, in]</c>, bias <c>[out]</c>.</summary>
public sealed record LinearParameters(float[,] Weight, float[] Bias);

/// <summary>All parameters of a <see cref="Cnn"/> as plain float32 arrays, for export.</summary>
public sealed record CnnParameters(ConvParameters Conv1, ConvParameters Conv2, LinearParameters Hidden, LinearParameters Output);

/// <summary>
/// The paper's MNIST convolutional network (the Keras "mnist_cnn" layout):
/// <c>conv 3×3 → act → conv 3×3 → act → max-pool 2×2 → dropout → flatten → linear(Hidden) → act → dropout → linear(Classes)</c>,
/// convolutions unpadded with stride 1. Input <c>[N, C, H, W]</c>, or <c>[N, C·H·W]</c> (reshaped); output logits <c>[N, Classes]</c>.
/// Dropout acts in training mode only; in evaluation mode (and in every export) it is the identity.
/// </summary>
/// <remarks>
/// Default sizes (MNIST, 28×28): 1→16→32 channels, 28 → 26 → 24 → pooled 12, 32·12·12 = 4,608 features → 128 → 10;
/// 596,042 parameters and about 3.3 million multiply-adds per image. The paper's widths (32 and 64 channels: 1,199,882
/// parameters, 12 million multiply-adds) train about 2.5× slower: on one torch thread of this project's 2-core machine,
/// with oneDNN off (see <see cref="OneDnnConvolutions"/>), an epoch over 8,000 digits (batch 64, Adam, cross-entropy
/// only) took about 26 s with the defaults and 67 s with the paper's widths. Pass <see cref="CnnOptions.Conv1Channels"/>
/// = 32 and <see cref="CnnOptions.Conv2Channels"/> = 64 for the paper's network.
/// </remarks>
public sealed class Cnn : nn.Module<Tensor, Tensor>, IJetModule, ILayeredModule, IModeIndependentPrefix
{
    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Dropout poolDropout;
    private readonly Linear hidden;
    private readonly Dropout hiddenDropout;
    private readonly Linear output;

    /// <summary>
    /// Creates the network with TorchSharp's default initialisation under the current torch seed. The first network
    /// created in a process switches libtorch's oneDNN convolutions off (see <see cref="OneDnnConvolutions"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range (see <see cref="CnnOptions.Validate"/>).</exception>
    public Cnn(CnnOptions? options = null) : base(nameof(Cnn))
    {
        TorchRuntime.EnsureConfigured();   // among others, switches libtorch's oneDNN convolutions off
        Options = options ?? new CnnOptions();
        Options.Validate();
        var o = Options;
        conv1 = nn.Conv2d(o.InputChannels, o.Conv1Channels, 3);
        conv2 = nn.Conv2d(o.Conv1Channels, o.Conv2Channels, 3);
        poolDropout = nn.Dropout(o.PoolDropout);
        hidden = nn.Linear(o.FlatFeatures, o.Hidden);
        hiddenDropout = nn.Dropout(o.HiddenDropout);
        output = nn.Linear(o.Hidden, o.Classes);
        RegisterComponents();
    }

    /// <summary>The sizes this network was built with.</summary>
    public CnnOptions Options { get; }

    /// <summary>Shape of one input sample, <c>[C, H, W]</c>.</summary>
    public int[] SampleShape => [Options.InputChannels, Options.ImageSize, Options.ImageSize];

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Stages(Images(input), 0, OutputStage);

    /// <summary>Input <c>[N, C, H, W]</c>, or <c>[N, C·H·W]</c> reshaped to it.</summary>
    private Tensor Images(Tensor input) => input.dim() == 4 ? input : input.reshape(-1, Options.InputChannels, Options.ImageSize, Options.ImageSize);

    /// <summary>The same for jets: coefficients <c>[K+1, N, C, H, W]</c>, or <c>[K+1, N, C·H·W]</c> reshaped to it.</summary>
    private Jet Images(Jet input) =>
        input.Shape.Length == 4 ? input : JetOps.Reshape(input, [input.Shape[0], Options.InputChannels, Options.ImageSize, Options.ImageSize]);

    private Tensor Activate(Tensor h) => Options.Activation == "tanh" ? h.tanh() : nn.functional.relu(h);

    /// <summary>
    /// Taylor mode (see <see cref="IJetModule"/>): the same layers on jets (<see cref="JetOps.Conv2d"/>, the activation's
    /// rule, <see cref="JetOps.MaxPool2d"/>, dropout as the identity, <see cref="JetOps.Linear"/>). Input coefficients
    /// <c>[K+1, B, C, H, W]</c> or <c>[K+1, B, C·H·W]</c>; output <c>[K+1, B, Classes]</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is in training mode (dropout would draw random masks).</exception>
    public Jet Forward(Jet input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Stages(Images(input), 0);
    }

    /// <inheritdoc />
    public IReadOnlyList<string> PiecewiseLinearOperators => Options.Activation == "tanh" ? ["MaxPool"] : ["Relu", "MaxPool"];

    /// <summary>
    /// <c>conv1</c>, <c>act1</c> (after it), <c>conv2</c>, <c>act2</c>, <c>pool</c> (the pooled map <c>[C, H, W]</c>, before its dropout),
    /// <c>hidden</c> (the fully connected layer's affine map) and <c>act3</c> (its activation: the last hidden layer, before its
    /// dropout). The ONNX export names its values the same way.
    /// </summary>
    public IReadOnlyList<string> Layers => LayerNames;

    /// <summary>The layer names of every <see cref="Cnn"/>, in order; stage i of the network ends at <c>LayerNames[i]</c>.</summary>
    public static IReadOnlyList<string> LayerNames => Names;

    private static readonly string[] Names = ["conv1", "act1", "conv2", "act2", "pool", "hidden", "act3"];

    /// <summary>The stage after the last layer: the output layer.</summary>
    private static int OutputStage => Names.Length;

    /// <inheritdoc />
    public Tensor ForwardTo(string layer, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Stages(Images(input), 0, Stage(layer));
    }

    /// <inheritdoc />
    public Tensor ForwardFrom(string layer, Tensor activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        return Stages(activation, Stage(layer) + 1, OutputStage);
    }

    /// <summary><c>pool</c>: both dropout layers come after the pooled map, so conv1 … pool compute the same in either mode.</summary>
    public string ModeIndependentThrough => "pool";

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The network is in training mode (dropout would draw random masks).</exception>
    public Jet ForwardTo(string layer, Jet input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Stages(Images(input), 0, Stage(layer));
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The network is in training mode (dropout would draw random masks).</exception>
    public Jet ForwardFrom(string layer, Jet activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        return Stages(activation, Stage(layer) + 1);
    }

    /// <summary>Stages <paramref name="first"/>..<paramref name="last"/> of the network (0 = conv1 … 7 = the output layer), so that cutting anywhere composes to the same network.</summary>
    private Tensor Stages(Tensor h, int first, int last)
    {
        for (var stage = first; stage <= last; stage++)
        {
            h = stage switch
            {
                0 => conv1.call(h),
                2 => conv2.call(h),
                1 or 3 or 6 => Activate(h),
                4 => MaxPooling.Pool(h, [2, 2], [2, 2]),   // torch's max_pool2d, faster on the CPU
                5 => hidden.call(poolDropout.call(h).flatten(1)),
                _ => output.call(hiddenDropout.call(h)),
            };
        }
        return h;
    }

    /// <summary>Stages <paramref name="first"/>..<paramref name="last"/> (default: through the output layer) on jets (dropout as the identity: evaluation mode only).</summary>
    /// <exception cref="InvalidOperationException">The network is in training mode (dropout would draw random masks).</exception>
    private Jet Stages(Jet h, int first, int? last = null)
    {
        if (training)
        {
            throw new InvalidOperationException("The Cnn is in training mode, where dropout draws random masks; Taylor jets need evaluation mode (call eval()).");
        }
        for (var stage = first; stage <= (last ?? OutputStage); stage++)
        {
            h = stage switch
            {
                0 => JetOps.Conv2d(h, conv1.weight!, conv1.bias),
                2 => JetOps.Conv2d(h, conv2.weight!, conv2.bias),
                1 or 3 or 6 => Activate(h),
                4 => JetOps.MaxPool2d(h, [2, 2], [2, 2]),
                5 => JetOps.Linear(JetOps.Flatten(JetOps.Dropout(h, poolDropout.training), 1), hidden.weight!, hidden.bias),
                _ => JetOps.Linear(JetOps.Dropout(h, hiddenDropout.training), output.weight!, output.bias),
            };
        }
        return h;
    }

    private static int Stage(string layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var index = Array.IndexOf(Names, layer);
        return index >= 0 ? index : throw new ArgumentException($"'{layer}' is not a layer of this network; layers: {string.Join(", ", Names)}.", nameof(layer));
    }

    private Jet Activate(Jet h) => Options.Activation == "tanh" ? JetOps.Tanh(h) : JetOps.Relu(h);

    /// <summary>The weights and biases as plain float32 arrays (torch layouts), for export.</summary>
    public CnnParameters Parameters() => new(LayerArrays.Conv(conv1), LayerArrays.Conv(conv2), LayerArrays.Linear(hidden), LayerArrays.Linear(output));
}
