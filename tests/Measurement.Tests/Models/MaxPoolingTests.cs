using LambdaService.Measurement.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Models;

/// <summary>
/// <see cref="MaxPooling"/> against libtorch's own NCHW kernel (<c>max_pool2d_with_indices</c>, the independent reference):
/// values, indices and gradients must be identical, bit for bit, including ties, overlapping windows, padding, dilation,
/// ceil mode and NaN.
/// </summary>
public class MaxPoolingTests
{
    public static TheoryData<string, long[], long[], long[], long[], bool> Settings => new()
    {
        { "2x2 stride 2 (the Cnn's)", [2, 2], [2, 2], [0, 0], [1, 1], false },
        { "3x3 stride 1, overlapping windows", [3, 3], [1, 1], [0, 0], [1, 1], false },
        { "3x3 stride 2, padding 1", [3, 3], [2, 2], [1, 1], [1, 1], false },
        { "2x3 stride 2x1, dilation 2", [2, 3], [2, 1], [0, 0], [2, 2], false },
        { "3x3 stride 2, ceil mode", [3, 3], [2, 2], [0, 0], [1, 1], true },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void Values_indices_and_gradients_equal_libtorchs_nchw_kernel(string name, long[] kernel, long[] stride, long[] padding, long[] dilation, bool ceil)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            // Rounded to a quarter and clipped at 0 as after a ReLU: many windows hold ties, some only zeros.
            var x = (randn([3, 5, 11, 9], dtype: dtype, generator: generator) * 4).round().clamp_min(0) / 4;
            x[1, 2, 3, 4] = tensor(double.NaN, dtype: dtype);   // a NaN wins its windows in both kernels

            var (expected, expectedIndex) = nn.functional.max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil);
            var (values, indices) = MaxPooling.WithIndices(x, kernel, stride, padding, dilation, ceil);
            Assert.True(values.shape.SequenceEqual(expected.shape), $"{name}: shape [{string.Join(",", values.shape)}]");
            Assert.True(indices.equal(expectedIndex).all().item<bool>(), $"{name} {dtype}: indices differ");
            Assert.True(values.isnan().equal(expected.isnan()).all().item<bool>(), $"{name} {dtype}: NaNs differ");
            Assert.True(values.nan_to_num(-1).equal(expected.nan_to_num(-1)).all().item<bool>(), $"{name} {dtype}: values differ");
            Assert.True(MaxPooling.Pool(x, kernel, stride, padding, dilation, ceil).nan_to_num(-1).equal(expected.nan_to_num(-1)).all().item<bool>(), $"{name} {dtype}: Pool differs");
            Assert.True(MaxPooling.Winners(x, kernel, stride, padding, dilation, ceil).equal(expectedIndex).all().item<bool>(), $"{name} {dtype}: Winners differ");

            // Gradients of Σ w·y with a finite x: each output's weight goes to its window's winner, summed where windows overlap.
            var finite = x.nan_to_num(0);
            var weights = randn(expected.shape, dtype: dtype, generator: generator);
            var a = finite.clone().requires_grad_(true);
            var b = finite.clone().requires_grad_(true);
            (nn.functional.max_pool2d(a, kernel, stride, padding, dilation, ceil) * weights).sum().backward();
            (MaxPooling.Pool(b, kernel, stride, padding, dilation, ceil) * weights).sum().backward();
            Assert.True(b.grad!.equal(a.grad!).all().item<bool>(), $"{name} {dtype}: gradients differ (largest gap {(b.grad! - a.grad!).abs().max().ToDouble()})");
        }
    }

    [Fact]
    public void A_hand_worked_window_picks_the_first_of_tied_maxima()
    {
        using var scope = NewDisposeScope();
        // Two channels (the channels-last path needs more than one) of one 2×4 image, 2×2 windows:
        // channel 0: windows [1 3 / 3 2] and [0 0 / 0 0] → 3 at index 1 (the first 3, row-major), 0 at index 2;
        // channel 1: windows [5 1 / 1 1] and [2 7 / 7 7] → 5 at index 0, 7 at index 3.
        var x = tensor(new double[] { 1, 3, 0, 0, 3, 2, 0, 0, 5, 1, 2, 7, 1, 1, 7, 7 }).view(1, 2, 2, 4);
        var (values, indices) = MaxPooling.WithIndices(x, [2, 2], [2, 2]);
        Assert.Equal(new double[] { 3, 0, 5, 7 }, values.flatten().data<double>().ToArray());
        Assert.Equal(new long[] { 1, 2, 0, 3 }, indices.flatten().data<long>().ToArray());
    }

    [Fact]
    public void An_empty_batch_pools_to_an_empty_batch_of_the_pooled_shape()
    {
        using var scope = NewDisposeScope();
        var (values, indices) = MaxPooling.WithIndices(zeros(0, 4, 6, 6), [2, 2], [2, 2]);
        Assert.Equal(new long[] { 0, 4, 3, 3 }, values.shape);
        Assert.Equal(new long[] { 0, 4, 3, 3 }, indices.shape);
    }
}
