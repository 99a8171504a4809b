using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Training.Export;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

/// <summary>Small networks, briefly trained, and data for the export tests.</summary>
internal static class ExportFixtures
{
    /// <summary>A tiny CNN: 2 and 3 channels on 10×10 images (pooled 3×3, 27 features), 8 hidden units, 3 classes.</summary>
    public static CnnOptions TinyCnn(string activation = "relu") => new()
    {
        ImageSize = 10, Conv1Channels = 2, Conv2Channels = 3, Hidden = 8, Classes = 3, Activation = activation,
    };

    public static double[] Uniform(int count, int seed, double low = 0, double high = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => low + (high - low) * rng.NextDouble()).ToArray();
    }

    public static int[] Labels(int count, int classes) => Enumerable.Range(0, count).Select(i => i * 7 % classes).ToArray();

    /// <summary>
    /// A few Adam steps (learning rate 0.05 unless given) on fixed data, full batch or cycling through mini-batches of
    /// <paramref name="batch"/> samples, with dropout active, so that the exported weights are trained ones, not
    /// TorchSharp's initialisation. Leaves the module in evaluation mode.
    /// </summary>
    public static void Train(nn.Module<Tensor, Tensor> module, double[] x, int[] sampleShape, int[] labels, int steps = 10, double lr = 0.05, int batch = 0)
    {
        using var scope = NewDisposeScope();
        var input = tensor(x.Select(v => (float)v).ToArray(), [labels.Length, .. sampleShape.Select(d => (long)d)]);
        var target = tensor(labels.Select(l => (long)l).ToArray());
        var optimizer = optim.Adam(module.parameters(), lr: lr);
        var size = batch > 0 ? Math.Min(batch, labels.Length) : labels.Length;
        module.train();
        for (var step = 0; step < steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var start = step * size % (labels.Length - size + 1);
            optimizer.zero_grad();
            nn.functional.cross_entropy(module.call(input.narrow(0, start, size)), target.narrow(0, start, size)).backward();
            optimizer.step();
        }
        module.eval();
    }

    /// <summary>
    /// Sets every parameter from <see cref="Random"/>(<paramref name="seed"/>), uniform in ±1/√fan_in as torch.nn's
    /// default initialisation (a bias takes its layer's fan_in). Unlike <c>manual_seed</c>, which sets torch's global
    /// generator that test classes running in parallel share, this gives the same weights whatever else runs.
    /// </summary>
    public static void Initialize(nn.Module<Tensor, Tensor> module, int seed)
    {
        var rng = new Random(seed);
        using var noGrad = no_grad();
        long fanIn = 1;
        foreach (var (_, p) in module.named_parameters())
        {
            if (p.dim() > 1) fanIn = p.numel() / p.shape[0];
            var bound = 1 / Math.Sqrt(fanIn);
            var values = new float[p.numel()];
            for (var i = 0; i < values.Length; i++) values[i] = (float)((2 * rng.NextDouble() - 1) * bound);
            using var t = tensor(values, p.shape);
            p.copy_(t);
        }
    }

    /// <summary>Logits of the module in float32 (evaluation mode, no gradient), as the trained network computes them.</summary>
    public static double[] Logits(nn.Module<Tensor, Tensor> module, double[] x, int rows, int[] sampleShape)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        module.eval();
        var input = tensor(x.Select(v => (float)v).ToArray(), [rows, .. sampleShape.Select(d => (long)d)]);
        return module.call(input).to(ScalarType.Float64).reshape(-1).data<double>().ToArray();
    }

    public static Dataset Data(double[] x, int rows, int[] sampleShape, int[] labels) => new(x, rows, sampleShape, labels, "npz", "export-test");

    /// <summary>A copy of a CNN with the same options and parameter values.</summary>
    public static Cnn Copy(Cnn cnn)
    {
        var copy = new Cnn(cnn.Options);
        using var noGrad = no_grad();
        foreach (var ((_, target), (_, source)) in copy.named_parameters().Zip(cnn.named_parameters())) target.copy_(source);
        copy.eval();
        return copy;
    }
}

public class ExportTests
{
    private static void AssertClose(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst <= tolerance, $"largest logit difference {worst:E2} exceeds {tolerance:E0}: {string.Join(",", expected.Take(6))} vs {string.Join(",", actual.Take(6))}");
    }

    [Fact]
    public void An_exported_mlp_gives_the_trained_modules_logits_in_onnx_runtime_and_libtorch()
    {
        manual_seed(11);
        using var mlp = new Mlp([4, 12, 12, 3]);
        var x = ExportFixtures.Uniform(30 * 4, seed: 1, low: -1, high: 1);
        ExportFixtures.Train(mlp, x, [4], ExportFixtures.Labels(30, 3));
        var expected = ExportFixtures.Logits(mlp, x, 30, [4]);

        using var onnx = OnnxRunner.Create(ModelFile.FromBytes("mlp.onnx", ModelExport.OnnxBytes(mlp)), [4]);
        using var script = TorchModelRunner.LoadTorchScript(ModelFile.FromBytes("mlp.pt", ModelExport.TorchScriptBytes(mlp)), [4]);
        AssertClose(expected, onnx.Forward(x, 30), 1e-5);
        AssertClose(expected, script.Forward(x, 30), 1e-5);
    }

    [Theory]
    [InlineData("gelu")]
    [InlineData("softplus")]
    [InlineData("relu")]
    public void Mlps_with_other_activations_export_to_both_formats_with_the_same_logits(string activation)
    {
        manual_seed(12);
        using var mlp = new Mlp([3, 6, 2], activation);
        var x = ExportFixtures.Uniform(10 * 3, seed: 2, low: -2, high: 2);
        var expected = ExportFixtures.Logits(mlp, x, 10, [3]);
        using var onnx = OnnxRunner.Create(ModelFile.FromBytes("mlp.onnx", ModelExport.OnnxBytes(mlp)), [3]);
        using var script = TorchModelRunner.LoadTorchScript(ModelFile.FromBytes("mlp.pt", ModelExport.TorchScriptBytes(mlp)), [3]);
        AssertClose(expected, onnx.Forward(x, 10), 1e-5);
        AssertClose(expected, script.Forward(x, 10), 1e-5);
    }

    [Theory]
    [InlineData("relu")]
    [InlineData("tanh")]
    public void An_exported_cnn_gives_the_trained_modules_logits_in_onnx_runtime_and_libtorch(string activation)
    {
        manual_seed(13);
        using var cnn = new Cnn(ExportFixtures.TinyCnn(activation));
        int[] shape = [1, 10, 10];
        var x = ExportFixtures.Uniform(24 * 100, seed: 3);
        ExportFixtures.Train(cnn, x, shape, ExportFixtures.Labels(24, 3));
        var expected = ExportFixtures.Logits(cnn, x, 24, shape);

        var onnxFile = ModelFile.FromBytes("cnn.onnx", ModelExport.OnnxBytes(cnn));
        Assert.Equal([-1L, 1, 10, 10], onnxFile.Inputs[0].Shape);
        using var onnx = OnnxRunner.Create(onnxFile, shape);
        AssertClose(expected, onnx.Forward(x, 24), 1e-5);

        var scriptFile = ModelFile.FromBytes("cnn.pt", ModelExport.TorchScriptBytes(cnn));
        using (var script = TorchModelRunner.LoadTorchScript(scriptFile, shape)) AssertClose(expected, script.Forward(x, 24), 1e-5);
        // The TorchScript forward reshapes flattened samples itself, as the module does.
        using (var flat = TorchModelRunner.LoadTorchScript(scriptFile, [100])) AssertClose(expected, flat.Forward(x, 24), 1e-5);
    }

    [Fact]
    public void A_small_cnn_trained_on_mnist_digits_learns_and_exports_with_the_same_logits()
    {
        var mnist = Datasets.Mnist.Load(new Datasets.MnistOptions { TrainSize = 480, TestSize = 128 });
        // No dropout and weights from a local generator: the run does not depend on torch's global generator, which
        // test classes running in parallel reseed (a tiny ReLU network can collapse to one class for some seeds).
        using var cnn = new Cnn(new CnnOptions { Conv1Channels = 4, Conv2Channels = 8, Hidden = 32, PoolDropout = 0, HiddenDropout = 0 });
        ExportFixtures.Initialize(cnn, seed: 15);
        int[] shape = [1, 28, 28];
        var train = Array.ConvertAll(mnist.Train.Features, v => (double)v);
        ExportFixtures.Train(cnn, train, shape, mnist.Train.Labels, steps: 45, lr: 0.01, batch: 32);
        var test = Array.ConvertAll(mnist.Test.Features, v => (double)v);
        var expected = ExportFixtures.Logits(cnn, test, 128, shape);
        Assert.DoesNotContain(expected, double.IsNaN);
        var predicted = Enumerable.Range(0, 128).Select(i => Array.IndexOf(expected, expected.Skip(i * 10).Take(10).Max(), i * 10) - i * 10).ToArray();
        var accuracy = predicted.Zip(mnist.Test.Labels, (p, y) => p == y ? 1.0 : 0.0).Average();
        Assert.True(accuracy > 0.6, $"test accuracy {accuracy} after 3 epochs over 480 digits");

        using var onnx = OnnxRunner.Create(ModelFile.FromBytes("mnist.onnx", ModelExport.OnnxBytes(cnn)), shape);
        using var script = TorchModelRunner.LoadTorchScript(ModelFile.FromBytes("mnist.pt", ModelExport.TorchScriptBytes(cnn)), [784]);
        AssertClose(expected, onnx.Forward(test, 128), 1e-5);
        AssertClose(expected, script.Forward(test, 128), 1e-5);
    }

    [Fact]
    public void Write_puts_both_files_in_the_directory_and_they_open_as_their_formats()
    {
        manual_seed(14);
        using var cnn = new Cnn(ExportFixtures.TinyCnn());
        var directory = Path.Combine(Path.GetTempPath(), "export-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var exported = ModelExport.Write(cnn, Path.Combine(directory, "nested"), "tiny");
            Assert.Equal(Path.Combine(directory, "nested", "tiny.onnx"), exported.OnnxPath);
            Assert.Equal(Path.Combine(directory, "nested", "tiny.pt"), exported.TorchScriptPath);
            Assert.Equal([1, 10, 10], exported.SampleShape);
            Assert.Equal(3, exported.Classes);
            Assert.Equal(ModelFormat.Onnx, ModelFile.Open(exported.OnnxPath).Format);
            Assert.Equal(ModelFormat.TorchScript, ModelFile.Open(exported.TorchScriptPath).Format);
            // Deterministic: exporting the same weights again gives the same bytes.
            Assert.Equal(File.ReadAllBytes(exported.TorchScriptPath), ModelExport.TorchScriptBytes(cnn));
            Assert.Equal(File.ReadAllBytes(exported.OnnxPath), ModelExport.OnnxBytes(cnn));
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Other_modules_and_unsafe_names_are_refused()
    {
        using var linear = new LinearModule();
        Assert.Throws<ArgumentException>(() => ModelExport.ToOnnx(linear));
        Assert.Throws<ArgumentException>(() => ModelExport.ToTorchScript(linear));
        using var mlp = new Mlp([2, 2]);
        Assert.Throws<ArgumentException>(() => ModelExport.Write(mlp, Path.GetTempPath(), "../escape"));
    }

    private sealed class LinearModule : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear layer = nn.Linear(2, 2);

        public LinearModule() : base(nameof(LinearModule)) => RegisterComponents();

        public override Tensor forward(Tensor input) => layer.call(input);
    }
}

public class ExportLambdaTests
{
    [Fact]
    public void A_tanh_mlp_has_the_same_lambda_from_torchscript_with_autograd_and_from_onnx_with_finite_differences()
    {
        using var mlp = new Mlp([2, 16, 16, 3]);
        ExportFixtures.Initialize(mlp, seed: 21);
        var x = ExportFixtures.Uniform(60 * 2, seed: 4, low: -1.5, high: 1.5);
        var labels = ExportFixtures.Labels(60, 3);
        ExportFixtures.Train(mlp, x, [2], labels, steps: 20);
        var data = ExportFixtures.Data(x, 60, [2], labels);
        var options = new MeasurementOptions { Seed = 5, BootstrapResamples = 100 };

        using var script = CurvatureRate.CreateRunner(ModelFile.FromBytes("mlp.pt", ModelExport.TorchScriptBytes(mlp)), data);
        using var onnx = CurvatureRate.CreateRunner(ModelFile.FromBytes("mlp.onnx", ModelExport.OnnxBytes(mlp)), data);
        var viaScript = CurvatureRate.Estimate(script, data, options, null, default);
        var viaOnnx = CurvatureRate.Estimate(onnx, data, options, null, default);

        Assert.Equal("autograd", viaScript.Engine);
        Assert.Equal("finite-difference", viaOnnx.Engine);
        Assert.True(Math.Abs(viaScript.Lambda - viaOnnx.Lambda) < 1e-3, $"λ {viaScript.Lambda} (TorchScript) vs {viaOnnx.Lambda} (ONNX)");
        Assert.Equal(viaScript.Accuracy, viaOnnx.Accuracy);
    }

    [Fact]
    public void A_relu_cnn_exported_to_torchscript_has_the_lambda_of_the_live_module()
    {
        using var cnn = new Cnn(ExportFixtures.TinyCnn() with { PoolDropout = 0, HiddenDropout = 0 });
        ExportFixtures.Initialize(cnn, seed: 22);
        int[] shape = [1, 10, 10];
        var x = ExportFixtures.Uniform(16 * 100, seed: 6);
        var labels = ExportFixtures.Labels(16, 3);
        ExportFixtures.Train(cnn, x, shape, labels, steps: 10, lr: 0.01);
        var data = ExportFixtures.Data(x, 16, shape, labels);
        var options = new MeasurementOptions { Seed = 7, MinOrder = 2, MaxOrder = 4, BootstrapResamples = 100 };

        using var script = TorchModelRunner.LoadTorchScript(ModelFile.FromBytes("cnn.pt", ModelExport.TorchScriptBytes(cnn)), shape);
        // FromModule turns the module to float64 in place: measure a copy, so the trained module stays as it was.
        using var copy = ExportFixtures.Copy(cnn);
        using var live = TorchModelRunner.FromModule(copy, shape);
        var viaScript = CurvatureRate.Estimate(script, data, options, null, default);
        var viaModule = CurvatureRate.Estimate(live, data, options, null, default);

        // Two engines: TorchScript is opaque (nested autograd); the live module has jet rules (Taylor mode).
        Assert.Equal("autograd", viaScript.Engine);
        Assert.Equal("taylor", viaModule.Engine);
        Assert.True(double.IsFinite(viaScript.Lambda));
        Assert.True(Math.Abs(viaScript.Lambda - viaModule.Lambda) < 1e-9, $"λ {viaScript.Lambda} (TorchScript) vs {viaModule.Lambda} (module)");
        // Small but not vanishing: v_2..v_4 ≈ e^-10, e^-16, e^-19 for this small-gain network (|J·v| ≪ 1), all from non-zero derivatives.
        Assert.All(viaScript.Orders, o => Assert.True(o.Norm > 0 && double.IsFinite(o.LogNorm)));
        for (var i = 0; i < viaScript.Orders.Count; i++) Assert.Equal(viaModule.Orders[i].LogNorm, viaScript.Orders[i].LogNorm, 9);
        // The original module is untouched (still float32).
        Assert.Equal(ScalarType.Float32, cnn.parameters().First().dtype);
    }
}
