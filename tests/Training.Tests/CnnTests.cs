using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

public class CnnTests
{
    [Fact]
    public void The_default_network_takes_mnist_images_or_flattened_rows_and_gives_ten_logits()
    {
        manual_seed(1);
        using var cnn = new Cnn();
        cnn.eval();
        // conv 1→16 (3×3), conv 16→32 (3×3), pool 2×2 → 32·12·12 = 4608 → 128 → 10.
        Assert.Equal(16 * 9 + 16 + 32 * 16 * 9 + 32 + 4608 * 128 + 128 + 128 * 10 + 10, cnn.parameters().Sum(p => p.numel()));
        Assert.Equal([1, 28, 28], cnn.SampleShape);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = rand(3, 1, 28, 28);
        var a = cnn.call(x);
        var b = cnn.call(x.reshape(3, 784));
        Assert.Equal([3L, 10], a.shape);
        Assert.Equal(0f, (a - b).abs().max().item<float>());
    }

    [Fact]
    public void A_tiny_network_computes_what_hand_written_loops_compute_from_its_exported_parameters()
    {
        manual_seed(2);
        var options = new CnnOptions { ImageSize = 8, Conv1Channels = 2, Conv2Channels = 3, Hidden = 4, Classes = 3 };
        using var cnn = new Cnn(options);
        cnn.eval();
        var p = cnn.Parameters();
        var rng = new Random(3);
        var image = new double[64];
        for (var i = 0; i < 64; i++) image[i] = rng.NextDouble();

        // conv 8×8 → 6×6 → 4×4, relu after each, max-pool 2×2 → 3·2·2 = 12 features.
        var c1 = Relu(Conv([image], 8, p.Conv1));
        var c2 = Relu(Conv(c1, 6, p.Conv2));
        var flat = new List<double>();
        foreach (var map in c2)
        {
            for (var i = 0; i < 2; i++)
                for (var j = 0; j < 2; j++)
                    flat.Add(new[] { map[(2 * i) * 4 + 2 * j], map[(2 * i) * 4 + 2 * j + 1], map[(2 * i + 1) * 4 + 2 * j], map[(2 * i + 1) * 4 + 2 * j + 1] }.Max());
        }
        var hidden = Dense([.. flat], p.Hidden).Select(v => Math.Max(0, v)).ToArray();
        var expected = Dense(hidden, p.Output);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var actual = cnn.call(tensor(image.Select(v => (float)v).ToArray(), [1, 1, 8, 8])).data<float>().ToArray();
        for (var k = 0; k < 3; k++) Assert.Equal(expected[k], actual[k], 5);
    }

    private static double[][] Conv(double[][] input, int size, ConvParameters p)
    {
        var outSize = size - 2;
        var result = new double[p.Weight.GetLength(0)][];
        for (var o = 0; o < result.Length; o++)
        {
            result[o] = new double[outSize * outSize];
            for (var r = 0; r < outSize; r++)
            {
                for (var c = 0; c < outSize; c++)
                {
                    double s = p.Bias[o];
                    for (var i = 0; i < input.Length; i++)
                        for (var kr = 0; kr < 3; kr++)
                            for (var kc = 0; kc < 3; kc++)
                                s += p.Weight[o, i, kr, kc] * input[i][(r + kr) * size + c + kc];
                    result[o][r * outSize + c] = s;
                }
            }
        }
        return result;
    }

    private static double[][] Relu(double[][] maps) => maps.Select(m => m.Select(v => Math.Max(0, v)).ToArray()).ToArray();

    private static double[] Dense(double[] x, LinearParameters p) =>
        Enumerable.Range(0, p.Bias.Length).Select(o => p.Bias[o] + Enumerable.Range(0, x.Length).Sum(i => p.Weight[o, i] * x[i])).ToArray();

    [Fact]
    public void Dropout_acts_in_training_mode_only()
    {
        manual_seed(4);
        using var cnn = new Cnn(ExportFixtures.TinyCnn() with { PoolDropout = 0.5, HiddenDropout = 0.5 });
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = rand(8, 1, 10, 10);
        cnn.eval();
        var e1 = cnn.call(x);
        var e2 = cnn.call(x);
        Assert.Equal(0f, (e1 - e2).abs().max().item<float>());
        cnn.train();
        var t1 = cnn.call(x);
        var t2 = cnn.call(x);
        Assert.True((t1 - t2).abs().max().item<float>() > 0, "dropout should make two training-mode passes differ");
    }

    [Fact]
    public void Out_of_range_options_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new Cnn(new CnnOptions { Classes = 1 }));
        Assert.Throws<ArgumentException>(() => new Cnn(new CnnOptions { ImageSize = 5 }));
        Assert.Throws<ArgumentException>(() => new Cnn(new CnnOptions { Conv1Channels = 0 }));
        Assert.Throws<ArgumentException>(() => new Cnn(new CnnOptions { HiddenDropout = 1 }));
        Assert.Throws<ArgumentException>(() => new Cnn(new CnnOptions { Activation = "gelu" }));
    }

    /// <summary>
    /// The shapes for which libtorch's oneDNN float32 convolution backward gave wrong or NaN input gradients on some
    /// repetitions (see <see cref="LambdaService.Measurement.Models.OneDnnConvolutions"/>): with it switched off, every repetition agrees with float64.
    /// </summary>
    [Theory]
    [InlineData(16, 2, 8, 24)]
    [InlineData(2, 3, 8, 24)]
    [InlineData(1, 2, 8, 24)]
    [InlineData(3, 3, 8, 24)]
    [InlineData(2, 3, 28, 64)]
    public void Float32_convolution_input_gradients_agree_with_float64_on_every_repetition(int inChannels, int outChannels, int size, int batch)
    {
        using var owner = new Cnn(ExportFixtures.TinyCnn());
        if (OperatingSystem.IsLinux()) Assert.True(LambdaService.Measurement.Models.OneDnnConvolutions.Disabled);
        using var scope = NewDisposeScope();
        manual_seed(5);
        var x = rand(batch, inChannels, size, size);
        var w = randn(outChannels, inChannels, 3, 3);
        var x64 = x.to(ScalarType.Float64).requires_grad_(true);
        nn.functional.conv2d(x64, w.to(ScalarType.Float64)).tanh().sum().backward();
        var reference = x64.grad!;
        var scale = reference.abs().max().item<double>();
        for (var repetition = 0; repetition < 10; repetition++)
        {
            var x32 = x.clone().requires_grad_(true);
            nn.functional.conv2d(x32, w).tanh().sum().backward();
            var error = (x32.grad!.to(ScalarType.Float64) - reference).abs().max().item<double>() / scale;
            Assert.True(error < 1e-5, $"repetition {repetition}: relative error {error:E1}");
        }
    }

    [Fact]
    public void A_few_adam_steps_on_a_tiny_network_lower_the_loss_and_keep_the_weights_finite()
    {
        using var cnn = new Cnn(ExportFixtures.TinyCnn("tanh") with { PoolDropout = 0, HiddenDropout = 0 });
        ExportFixtures.Initialize(cnn, seed: 6);
        var x = ExportFixtures.Uniform(24 * 100, seed: 7);
        var labels = ExportFixtures.Labels(24, 3);
        using var scope = NewDisposeScope();
        var input = tensor(x.Select(v => (float)v).ToArray(), [24, 1, 10, 10]);
        var target = tensor(labels.Select(l => (long)l).ToArray());
        cnn.eval();
        float Loss() { using var g = no_grad(); return nn.functional.cross_entropy(cnn.call(input), target).item<float>(); }
        var before = Loss();
        ExportFixtures.Train(cnn, x, [1, 10, 10], labels, steps: 30);
        var after = Loss();
        Assert.True(after < before, $"loss {before} → {after}");
        Assert.All(cnn.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
    }
}
