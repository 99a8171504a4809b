using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Models;

/// <summary>
/// Forward-only float32 convolutions through oneDNN (<see cref="OneDnnForward"/>): the path Taylor mode's float32 measurement passes
/// take while oneDNN stays off for everything else (its float32 backward pass gave wrong input gradients here).
/// </summary>
public class OneDnnForwardTests
{
    public OneDnnForwardTests() => TorchRuntime.EnsureConfigured();

    /// <summary>
    /// Input channels, output channels, side, kernel, stride, padding, dilation, groups: the channel counts where oneDNN's float32
    /// backward pass failed (1→2, 2→3, 3→3, 4→8, 16→2 on 8×8 to 28×28: OneDnnConvolutions), dense layers of the benchmark's networks,
    /// and depthwise and grouped layers (ConvNeXt's 7×7, EfficientNet's 3×3 and 5×5 with stride 2), with and without padding and dilation.
    /// </summary>
    public static TheoryData<int, int, int, int, int, int, int, int> Layers => new()
    {
        { 1, 2, 28, 3, 1, 1, 1, 1 },
        { 2, 3, 8, 3, 1, 0, 1, 1 },
        { 3, 3, 12, 3, 2, 1, 1, 1 },
        { 4, 8, 8, 3, 1, 1, 2, 1 },
        { 16, 2, 10, 3, 1, 1, 1, 1 },
        { 3, 64, 32, 7, 2, 3, 1, 1 },
        { 64, 64, 16, 3, 1, 1, 1, 1 },
        { 32, 32, 32, 7, 1, 3, 1, 32 },
        { 96, 96, 16, 3, 2, 1, 1, 96 },
        { 40, 40, 9, 5, 2, 2, 1, 40 },
        { 8, 16, 12, 3, 1, 1, 1, 4 },
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void A_float32_convolution_without_gradient_takes_onednn_and_agrees_with_float64_to_float32_rounding_every_time(
        int inChannels, int outChannels, int side, int kernel, int stride, int padding, int dilation, int groups)
    {
        Assert.True(OneDnnForward.Available, "oneDNN forward convolutions are available with this libtorch build");
        using var scope = NewDisposeScope();
        var generator = new Generator(seed: (ulong)(inChannels * 1000 + outChannels * 10 + kernel));
        var x = rand([6, inChannels, side, side], generator: generator) * 2 - 1;
        var w = (rand([outChannels, inChannels / groups, kernel, kernel], generator: generator) * 2 - 1) / Math.Sqrt(inChannels / groups * kernel * kernel);
        long[] s = [stride, stride], p = [padding, padding], d = [dilation, dilation];
        var reference = nn.functional.conv2d(x.to(float64), w.to(float64), null, s, p, d, groups);
        var scale = reference.abs().max().item<double>();
        using var noGrad = no_grad();
        Assert.True(OneDnnForward.Applies(x, w, groups));
        // Ten repetitions: the backward fault was intermittent. Float32 rounding of a sum of C·k² products of values below 1 stays
        // near 1e-7 of the largest output; 1e-5 leaves a margin and is far below the 10-60% errors of the fault.
        for (var repetition = 0; repetition < 10; repetition++)
        {
            var y = OneDnnForward.Conv2d(x, w, s, p, d, groups);
            Assert.Equal(reference.shape, y.shape);
            Assert.Equal(ScalarType.Float32, y.dtype);
            var error = (y.to(float64) - reference).abs().max().item<double>() / scale;
            Assert.True(error <= 1e-5, $"repetition {repetition}: relative error {error:E2}");
        }
    }

    [Fact]
    public void Float64_tensors_dense_1x1_kernels_and_operands_that_carry_a_gradient_stay_on_the_native_kernel()
    {
        using var scope = NewDisposeScope();
        var x = rand([2, 4, 8, 8]);
        var w = rand([4, 4, 3, 3]);
        Assert.False(OneDnnForward.Applies(x.to(float64), w.to(float64), 1));
        Assert.False(OneDnnForward.Applies(x, rand([8, 4, 1, 1]), 1));
        Assert.True(OneDnnForward.Applies(x, rand([4, 1, 1, 1]), 4));   // a depthwise 1×1 is grouped
        var trained = w.clone().requires_grad_(true);
        Assert.False(OneDnnForward.Applies(x, trained, 1));
        using (no_grad())
        {
            Assert.True(OneDnnForward.Applies(x, trained, 1));
        }
        // With a gradient the result is libtorch's own convolution, and the gradient flows.
        var y = OneDnnForward.Conv2d(x, trained, null, [1, 1], null, 1);
        y.sum().backward();
        Assert.NotNull(trained.grad);
        Assert.Equal(0, (y - nn.functional.conv2d(x, trained, padding: [1, 1])).abs().max().item<float>());
    }

    [Fact]
    public void Taylor_mode_in_float32_through_a_depthwise_network_matches_float64_taylor_per_order()
    {
        // A ConvNeXt-like block: depthwise 7×7, then a dense 1×1 and tanh, on 1 point × 3 directions; Taylor in float64 is the reference.
        using var scope = NewDisposeScope();
        var generator = new Generator(seed: 77);
        var dw = (rand([8, 1, 7, 7], generator: generator) * 2 - 1) / 7;
        var pw = (rand([4, 8, 1, 1], generator: generator) * 2 - 1) / Math.Sqrt(8);
        var x = rand([3, 8, 12, 12], generator: generator) * 2 - 1;
        var v = rand([3, 8, 12, 12], generator: generator) - 0.5;
        double[] Orders(ScalarType dtype)
        {
            using var inner = NewDisposeScope();
            using var noGrad = no_grad();
            var jet = new Jet(stack([x.to(dtype), v.to(dtype)]), 4);
            var y = JetOps.Tanh(JetOps.Conv2d(JetOps.Conv2d(jet, dw.to(dtype), null, null, [3, 3], null, 8), pw.to(dtype)));
            return y.Coefficients.to(float64).abs().sum([1, 2, 3, 4]).data<double>().ToArray();
        }
        var exact = Orders(ScalarType.Float64);
        var single = Orders(ScalarType.Float32);
        for (var n = 0; n <= 4; n++)
        {
            // Relative to each order's size: float32 rounding (6e-8) amplified through the Taylor recurrences, well inside 1e-4.
            Assert.True(Math.Abs(single[n] - exact[n]) <= 1e-4 * exact[n], $"order {n}: {single[n]:R} vs {exact[n]:R}");
        }
    }
}
