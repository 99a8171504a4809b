using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Forward-only float32 convolutions through oneDNN, for passes that need no gradient (Taylor mode's measurement passes), while
/// <see cref="OneDnnConvolutions"/> keeps oneDNN off for every other convolution of the process.
/// </summary>
/// <remarks>
/// <para>
/// Why: with oneDNN off, libtorch runs a grouped convolution group by group, so a depthwise convolution (ConvNeXt's 7×7,
/// EfficientNet's and MobileNet's 3×3 and 5×5) in float32 was barely faster than in float64. Measured on this project's VM (one
/// thread, CPU time, batch 100): depthwise 7×7 on 32 channels at 32×32 took 236 ms natively and 17.7 ms through oneDNN; 672
/// channels at 4×4 (5×5) 144 and 4.5 ms; 96 channels at 32×32 (3×3) 143 and 33 ms; dense 3×3 convolutions 1.2–1.7× faster
/// (64→64 at 16×16: 64 and 37 ms); dense 1×1 convolutions were not faster (128→32: 8.7 and 14.8 ms), so they stay native.
/// </para>
/// <para>
/// Correctness: the oneDNN fault found here (<see cref="OneDnnConvolutions"/>) is in the float32 <em>backward</em> pass. The
/// forward pass agreed with a float64 convolution to float32 rounding (relative error ≤ 1.6·10⁻⁶ of the largest output, every one of
/// ten repetitions) on the channel counts where the backward failed (1→2, 2→3, 3→3, 4→8, 16→2 on 8×8 to 28×28) and on dense and
/// depthwise layers of the benchmark's networks (tests/Measurement.Tests/Models/OneDnnForwardTests.cs). Only calls that no gradient
/// can flow through take this path: float32 CPU tensors with grad mode off or no operand requiring grad. On its first use a small
/// convolution is checked against the native kernel; if oneDNN is missing from the libtorch build, or the check fails, every
/// convolution stays native (<see cref="Available"/> is false).
/// </para>
/// <para>
/// How: libtorch's <c>aten::mkldnn_convolution</c> runs oneDNN's kernel whatever the process-wide switch says. TorchSharp has no
/// binding for it, so a TorchScript function calling it is compiled once (<c>torch.jit.compile</c>).
/// </para>
/// </remarks>
public static class OneDnnForward
{
    private const string Script = """
        def conv2d(x: Tensor, w: Tensor, sh: int, sw: int, ph: int, pw: int, dh: int, dw: int, groups: int):
            return torch.mkldnn_convolution(x, w, None, [ph, pw], [sh, sw], [dh, dw], groups)

        """;

    private static readonly Lazy<TorchSharp.torch.jit.CompilationUnit?> Unit = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether forward convolutions can take oneDNN in this process (compiled and checked on first use).</summary>
    public static bool Available => Unit.Value is not null;

    /// <summary>
    /// <c>conv2d(input, weight)</c> without bias (torch.nn.functional.conv2d's arguments; null stride/padding/dilation mean 1/0/1):
    /// through oneDNN when <see cref="Applies"/>, else libtorch's native kernel.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, long[]? stride, long[]? padding, long[]? dilation, long groups)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(weight);
        if (Applies(input, weight, groups) && Unit.Value is { } unit)
        {
            var (sh, sw) = Pair(stride, 1);
            var (ph, pw) = Pair(padding, 0);
            var (dh, dw) = Pair(dilation, 1);
            return (Tensor)unit.invoke("conv2d", input, weight, sh, sw, ph, pw, dh, dw, groups);
        }
        return nn.functional.conv2d(input, weight, null, stride, padding, dilation, groups);
    }

    /// <summary>
    /// Whether a convolution takes oneDNN: float32 on the CPU, no gradient can flow (grad mode off, or neither operand requires
    /// grad), a 4-D input, and grouped or with a kernel larger than 1×1 (dense 1×1 convolutions were not faster).
    /// </summary>
    public static bool Applies(Tensor input, Tensor weight, long groups)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(weight);
        return input.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32
            && input.device_type == TorchSharp.DeviceType.CPU && weight.device_type == TorchSharp.DeviceType.CPU
            && input.dim() == 4 && weight.dim() == 4
            && !(is_grad_enabled() && (input.requires_grad || weight.requires_grad))
            && (groups > 1 || weight.shape[2] * weight.shape[3] > 1);
    }

    private static (long, long) Pair(long[]? values, long otherwise) => values switch
    {
        null or { Length: 0 } => (otherwise, otherwise),
        { Length: 1 } => (values[0], values[0]),
        _ => (values[0], values[1]),
    };

    private static TorchSharp.torch.jit.CompilationUnit? Compile()
    {
        TorchSharp.torch.jit.CompilationUnit? unit = null;
        try
        {
            unit = TorchSharp.torch.jit.compile(Script);   // TorchScript's parser wants the source to end with a newline
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            // A depthwise and a dense layer with stride, padding and dilation, against the native kernel.
            var generator = new Generator(seed: 20261208);
            var x = rand([2, 4, 9, 9], generator: generator) - 0.5;
            foreach (var (weight, stride, padding, dilation, groups) in new (Tensor, long[], long[], long[], long)[]
            {
                (rand([4, 1, 3, 3], generator: generator) - 0.5, [1, 1], [1, 1], [1, 1], 4),
                (rand([6, 4, 3, 2], generator: generator) - 0.5, [2, 1], [1, 0], [1, 2], 1),
            })
            {
                var native = nn.functional.conv2d(x, weight, null, stride, padding, dilation, groups);
                var fast = (Tensor)unit.invoke("conv2d", x, weight, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups);
                if (!native.shape.SequenceEqual(fast.shape) || (fast - native).abs().max().item<float>() > 1e-5f)
                {
                    unit.Dispose();
                    return null;
                }
            }
            return unit;
        }
        catch (Exception e) when (e is ExternalException or InvalidOperationException or ArgumentException or NotSupportedException)
        {
            unit?.Dispose();
            return null;
        }
    }
}
