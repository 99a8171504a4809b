using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Models;

/// <summary>
/// 2-D max pooling with torch's semantics (<c>torch.nn.functional.max_pool2d_with_indices</c>: each window's winner is the
/// first maximum in row-major window order, a NaN wins; indices count positions in each unpadded <c>H·W</c> plane), faster
/// on the CPU: the winners are found on a channels-last copy of the input and the values gathered from the input itself,
/// <c>y[n, c, i] = x[n, c, winner(n, c, i)]</c>. The values equal libtorch's bit for bit, and the gradient (the gather's
/// scatter-add) is max pooling's: the output gradient goes to each window's winner, summed where windows overlap.
/// </summary>
/// <remarks>
/// Why: libtorch's CPU kernel for contiguous NCHW input (oneDNN is off, see <see cref="OneDnnConvolutions"/>) walks one
/// plane at a time without vectorizing across channels, while its channels-last kernel vectorizes over the channels.
/// Measured 2026-12-07 on this project's VM (one thread, float32, the default Cnn's pooled layer: 128 × 32 × 24 × 24,
/// 2×2 windows): the NCHW kernel took 19–23 ms forward, the channels-last kernel 1.8–2.3 ms plus 2.5 ms for the copy.
/// Pooling the channels-last copy with gradients instead made the backward pass 5× slower (3 → 15 ms); gathering the
/// values from the NCHW input keeps the backward at its cost. On other devices (cuDNN pools NCHW well) and for inputs
/// that are not 4-D this is libtorch's own pooling.
/// </remarks>
public static class MaxPooling
{
    /// <summary>The pooled values <c>[N, C, H', W']</c> (differentiable in <paramref name="x"/>) and the winners' indices (int64, same shape).</summary>
    /// <param name="x">Input <c>[N, C, H, W]</c>.</param>
    /// <param name="kernel">Window height and width.</param>
    /// <param name="stride">Strides (default: the kernel).</param>
    /// <param name="padding">Implicit −∞ padding on each side.</param>
    /// <param name="dilation">Dilation of the window.</param>
    /// <param name="ceilMode">Whether partial windows at the end count (torch's ceil_mode).</param>
    public static (Tensor Values, Tensor Indices) WithIndices(Tensor x, long[] kernel, long[]? stride = null, long[]? padding = null, long[]? dilation = null, bool ceilMode = false)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(kernel);
        if (!ChannelsLastHelps(x)) return nn.functional.max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceilMode);
        var indices = Winners(x, kernel, stride, padding, dilation, ceilMode);
        return (Gathered(x, indices), indices);
    }

    /// <summary>The pooled values alone, see <see cref="WithIndices"/>.</summary>
    public static Tensor Pool(Tensor x, long[] kernel, long[]? stride = null, long[]? padding = null, long[]? dilation = null, bool ceilMode = false)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(kernel);
        if (!ChannelsLastHelps(x)) return nn.functional.max_pool2d(x, kernel, stride, padding, dilation, ceilMode);
        using var indices = Winners(x, kernel, stride, padding, dilation, ceilMode);
        return Gathered(x, indices);
    }

    /// <summary>The winners' indices alone (no gradient), see <see cref="WithIndices"/>.</summary>
    public static Tensor Winners(Tensor x, long[] kernel, long[]? stride = null, long[]? padding = null, long[]? dilation = null, bool ceilMode = false)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(kernel);
        using var noGrad = no_grad();
        if (!ChannelsLastHelps(x))
        {
            var (values, index) = nn.functional.max_pool2d_with_indices(x.detach(), kernel, stride, padding, dilation, ceilMode);
            values.Dispose();
            return index;
        }
        using var nhwc = x.detach().permute(0, 2, 3, 1).contiguous();
        using var channelsLast = nhwc.permute(0, 3, 1, 2);       // NCHW shape with channels-last strides: libtorch's vectorized kernel
        var (pooled, winners) = nn.functional.max_pool2d_with_indices(channelsLast, kernel, stride, padding, dilation, ceilMode);
        pooled.Dispose();
        return winners.contiguous();   // channels-last strides as well; the gather wants NCHW
    }

    /// <summary><c>y[n, c, i] = x[n, c, indices[n, c, i]]</c>, in the shape of <paramref name="indices"/>.</summary>
    private static Tensor Gathered(Tensor x, Tensor indices) => x.flatten(2).gather(2, indices.flatten(2)).view(indices.shape);

    private static bool ChannelsLastHelps(Tensor x) => x.device_type == DeviceType.CPU && x.dim() == 4 && x.shape[1] > 1;
}
