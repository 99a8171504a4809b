using System.IO.Compression;
using System.Text;
using LambdaService.Measurement.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests;

/// <summary>
/// Archives written by <see cref="TorchScriptWriter"/> are loaded by libtorch (through TorchSharp's
/// <c>torch.jit.load</c>) and checked against arithmetic done here by hand, in double precision.
/// Only valid forward code is ever loaded: a TorchScript compile error inside libtorch's loader ends the
/// process (README, Native objects and memory), so invalid specs are tested only up to the writer's own validation.
/// </summary>
public sealed class TorchScriptWriterTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lambdaservice-ts-tests-" + Guid.NewGuid().ToString("N"));

    public TorchScriptWriterTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void A_2_16_16_3_tanh_mlp_archive_loads_and_its_forward_matches_hand_computed_outputs_within_1e_5()
    {
        var rng = new Random(20240611);
        var weights = new[] { RandomMatrix(rng, 16, 2), RandomMatrix(rng, 16, 16), RandomMatrix(rng, 3, 16) };
        var biases = new[] { RandomVector(rng, 16), RandomVector(rng, 16), RandomVector(rng, 3) };
        var path = WriteToTemp(TorchScriptWriter.Mlp(weights, biases, "tanh"));
        const int batch = 5;
        var inputs = new float[batch * 2];
        for (var i = 0; i < inputs.Length; i++) inputs[i] = (float)(rng.NextDouble() * 4 - 2);

        using var scope = torch.NewDisposeScope();
        using var module = torch.jit.load<Tensor, Tensor>(path);
        var output = module.call(torch.tensor(inputs, new long[] { batch, 2 }));

        Assert.Equal(new long[] { batch, 3 }, output.shape);
        var actual = output.data<float>().ToArray();
        for (var n = 0; n < batch; n++)
        {
            var expected = MlpByHand(weights, biases, [inputs[2 * n], inputs[2 * n + 1]], Math.Tanh);
            for (var k = 0; k < 3; k++)
                Assert.True(Math.Abs(actual[3 * n + k] - expected[k]) <= 1e-5,
                    $"row {n}, output {k}: libtorch {actual[3 * n + k]}, by hand {expected[k]}");
        }
    }

    [Fact]
    public void The_loaded_module_lists_its_parameters_by_name_and_shape_and_in_float64_matches_double_arithmetic_within_1e_6_relative()
    {
        // Multiples of 1/64 in [-1, 1] are exact in float32, so the float64 module holds exactly these weights.
        var rng = new Random(7);
        var weights = new[] { DyadicMatrix(rng, 4, 3), DyadicMatrix(rng, 2, 4) };
        var biases = new[] { DyadicVector(rng, 4), DyadicVector(rng, 2) };
        var path = WriteToTemp(TorchScriptWriter.Mlp(weights, biases, "tanh"));
        double[] inputs = [0.1234567890123, -0.9876543210987, 0.5, 1.3333333333333333, -0.2, 0.7071067811865476];

        using var scope = torch.NewDisposeScope();
        using var module = torch.jit.load<Tensor, Tensor>(path);

        var parameters = module.named_parameters().Select(p => (p.name, shape: p.parameter.shape)).ToList();
        Assert.Equal(["w0", "b0", "w1", "b1"], parameters.Select(p => p.name));
        Assert.Equal(new long[] { 4, 3 }, parameters[0].shape);
        Assert.Equal(new long[] { 4 }, parameters[1].shape);
        Assert.Equal(new long[] { 2, 4 }, parameters[2].shape);
        Assert.Equal(new long[] { 2 }, parameters[3].shape);
        Assert.All(module.parameters(), p => Assert.True(p.requires_grad));

        module.to(ScalarType.Float64);
        Assert.All(module.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        var output = module.call(torch.tensor(inputs, new long[] { 2, 3 }));
        Assert.Equal(ScalarType.Float64, output.dtype);

        var actual = output.data<double>().ToArray();
        for (var n = 0; n < 2; n++)
        {
            var expected = MlpByHand(weights, biases, inputs.AsSpan(3 * n, 3).ToArray(), Math.Tanh);
            for (var k = 0; k < 2; k++)
                Assert.True(Math.Abs(actual[2 * n + k] - expected[k]) <= 1e-6 * Math.Abs(expected[k]) + 1e-12,
                    $"row {n}, output {k}: libtorch {actual[2 * n + k]:R}, by hand {expected[k]:R}");
        }
    }

    [Fact]
    public void The_input_gradient_through_a_loaded_one_layer_tanh_module_matches_the_hand_derived_gradient_within_1e_5()
    {
        // y_n = tanh(w·x_n + b), so ∂(Σ_n y_n)/∂x_n = (1 - tanh²(w·x_n + b)) w.
        float[] w = [0.75f, -1.5f, 0.25f];
        const float b = 0.125f;
        var spec = new TorchScriptModuleSpec("OneLayerTanh",
            [new TorchScriptParameter("w", [1, 3], w), new TorchScriptParameter("b", [1], [b])],
            "return torch.tanh(torch.linear(x, self.w, self.b))");
        var path = WriteToTemp(spec);
        float[] inputs = [0.3f, -0.2f, 0.9f, -1.1f, 0.4f, 0.05f];

        using var scope = torch.NewDisposeScope();
        using var module = torch.jit.load<Tensor, Tensor>(path);
        var x = torch.tensor(inputs, new long[] { 2, 3 }).requires_grad_(true);
        var y = module.call(x);
        var gradient = torch.autograd.grad([y.sum()], [x])[0].data<float>().ToArray();

        for (var n = 0; n < 2; n++)
        {
            var z = b + Enumerable.Range(0, 3).Sum(j => (double)w[j] * inputs[3 * n + j]);
            var slope = 1 - Math.Tanh(z) * Math.Tanh(z);
            for (var j = 0; j < 3; j++)
                Assert.True(Math.Abs(gradient[3 * n + j] - slope * w[j]) <= 1e-5,
                    $"row {n}, input {j}: libtorch {gradient[3 * n + j]}, by hand {slope * w[j]}");
        }
    }

    [Fact]
    public void A_custom_forward_with_a_one_element_omega_computes_sin_of_omega_x_within_1e_6()
    {
        var spec = new TorchScriptModuleSpec("Sine",
            [new TorchScriptParameter("omega", [1], [2.5f])],
            "return torch.sin(x * self.omega)");
        var path = WriteToTemp(spec);
        float[] inputs = [-1f, -0.3f, 0f, 0.25f, 0.6f, 1f];

        using var scope = torch.NewDisposeScope();
        using var module = torch.jit.load<Tensor, Tensor>(path);
        var actual = module.call(torch.tensor(inputs)).data<float>().ToArray();

        Assert.Equal(["omega"], module.named_parameters().Select(p => p.name));
        for (var i = 0; i < inputs.Length; i++)
            Assert.True(Math.Abs(actual[i] - Math.Sin(2.5 * inputs[i])) <= 1e-6, $"x = {inputs[i]}: {actual[i]} vs {Math.Sin(2.5 * inputs[i])}");
    }

    [Fact]
    public void A_forward_body_with_a_nested_block_and_common_indentation_keeps_its_structure_and_scalar_parameters_work()
    {
        // f(x) = 2·(sum(x) < 0 ? -x : x) + 0.5, with the phase a 0-dimensional parameter.
        var spec = new TorchScriptModuleSpec("Branch",
            [new TorchScriptParameter("scale", [1], [2f]), new TorchScriptParameter("phase", [], [0.5f])],
            "    y = x\r\n    if bool(torch.lt(torch.sum(x), 0)):\r\n        y = torch.neg(x)\r\n\r\n    return y * self.scale + self.phase\r\n");
        var path = WriteToTemp(spec);

        using var scope = torch.NewDisposeScope();
        using var module = torch.jit.load<Tensor, Tensor>(path);

        Assert.Equal([-1.5f, 6.5f], module.call(torch.tensor(new float[] { 1, -3 })).data<float>().ToArray());
        Assert.Equal([2.5f, 4.5f], module.call(torch.tensor(new float[] { 1, 2 })).data<float>().ToArray());
        Assert.Equal(Array.Empty<long>(), module.named_parameters().Single(p => p.name == "phase").parameter.shape);
    }

    [Theory]
    [InlineData("tanh")]
    [InlineData("relu")]
    [InlineData("sigmoid")]
    [InlineData("gelu")]
    [InlineData("softplus")]
    public void Each_mlp_activation_maps_to_the_torch_function_of_that_name_within_1e_12_in_float64(string activation)
    {
        // A 1-1-1 network with unit weights and zero biases computes act(x) itself.
        var weights = new[] { new float[,] { { 1 } }, new float[,] { { 1 } } };
        var biases = new[] { new float[] { 0 }, new float[] { 0 } };
        var path = WriteToTemp(TorchScriptWriter.Mlp(weights, biases, activation));
        double[] xs = [-1, 0.5, 2];
        // Φ(-1), Φ(0.5), Φ(2): the standard normal distribution function, for exact GELU x·Φ(x).
        double[] phi = [0.15865525393145707, 0.6914624612740131, 0.9772498680518208];
        var expected = activation switch
        {
            "tanh" => xs.Select(Math.Tanh).ToArray(),
            "relu" => xs.Select(x => Math.Max(x, 0)).ToArray(),
            "sigmoid" => xs.Select(x => 1 / (1 + Math.Exp(-x))).ToArray(),
            "gelu" => xs.Select((x, i) => x * phi[i]).ToArray(),
            "softplus" => xs.Select(x => Math.Log(1 + Math.Exp(x))).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(activation)),
        };

        using var scope = torch.NewDisposeScope();
        using var module = torch.jit.load<Tensor, Tensor>(path);
        module.to(ScalarType.Float64);
        var actual = module.call(torch.tensor(xs, new long[] { 3, 1 })).data<double>().ToArray();

        for (var i = 0; i < xs.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-12, $"{activation}({xs[i]}): libtorch {actual[i]:R}, by hand {expected[i]:R}");
    }

    [Fact]
    public void The_archive_holds_the_records_libtorch_reads_under_one_folder_and_the_same_spec_gives_the_same_bytes()
    {
        var spec = TorchScriptWriter.Mlp([new float[,] { { 1, 2 } }], [[3f]]);
        var path = WriteToTemp(spec);
        using var seekable = new MemoryStream();
        TorchScriptWriter.Write(seekable, spec);
        using var forwardOnly = new MemoryStream();
        using (var wrapper = new ForwardOnlyStream(forwardOnly)) TorchScriptWriter.Write(wrapper, spec);

        var bytes = File.ReadAllBytes(path);
        Assert.Equal(bytes, seekable.ToArray());
        Assert.Equal(bytes, forwardOnly.ToArray());

        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        Assert.Equal(
            ["archive/data.pkl", "archive/code/__torch__.py", "archive/constants.pkl", "archive/data/0", "archive/data/1",
             "archive/.data/version", "archive/byteorder"],
            zip.Entries.Select(e => e.FullName));
        Assert.Equal("10\n", ReadText(zip, "archive/.data/version"));
        Assert.Equal("little", ReadText(zip, "archive/byteorder"));
        Assert.Contains("class Mlp(Module):\n  __parameters__ = [\"w0\", \"b0\", ]\n", ReadText(zip, "archive/code/__torch__.py"));
        Assert.Equal([0x80, 0x02, (byte)')', (byte)'.'], ReadBytes(zip, "archive/constants.pkl"));
        Assert.Equal(new byte[] { 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40 }, ReadBytes(zip, "archive/data/0")); // 1f, 2f little-endian
    }

    [Fact]
    public void An_empty_class_name_is_rejected()
    {
        var spec = new TorchScriptModuleSpec("", [], "return x");
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec));
    }

    [Theory]
    [InlineData("2Model")]
    [InlineData("My-Model")]
    [InlineData("class")]
    [InlineData("Tensor")]
    public void A_class_name_that_is_not_a_usable_python_identifier_is_rejected(string className)
    {
        var spec = new TorchScriptModuleSpec(className, [], "return x");
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec));
    }

    [Theory]
    [InlineData(new long[] { 2, 3 }, 5)]
    [InlineData(new long[] { 2, 3 }, 7)]
    [InlineData(new long[] { }, 0)]
    [InlineData(new long[] { 0, 4 }, 1)]
    [InlineData(new long[] { 2, -3 }, 6)]
    public void Parameter_data_whose_length_does_not_match_the_shape_is_rejected(long[] shape, int length)
    {
        var spec = new TorchScriptModuleSpec("M", [new TorchScriptParameter("w", shape, new float[length])], "return x");
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec));
    }

    [Theory]
    [InlineData("")]
    [InlineData("0w")]
    [InlineData("w-1")]
    [InlineData("w.b")]
    [InlineData("lambda")]
    [InlineData("training")]
    [InlineData("forward")]
    [InlineData("__parameters__")]
    public void A_parameter_name_that_is_not_a_python_identifier_or_is_reserved_is_rejected(string name)
    {
        var spec = new TorchScriptModuleSpec("M", [new TorchScriptParameter(name, [1], [1f])], "return x");
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec));
    }

    [Fact]
    public void Two_parameters_with_the_same_name_or_a_blank_forward_body_are_rejected()
    {
        var twice = new TorchScriptModuleSpec("M", [new TorchScriptParameter("w", [1], [1f]), new TorchScriptParameter("w", [1], [2f])], "return x");
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), twice));
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), new TorchScriptModuleSpec("M", [], " \n ")));
    }

    [Fact]
    public void An_mlp_with_an_unknown_activation_or_layers_that_do_not_chain_is_rejected()
    {
        float[,] w0 = { { 1, 2 }, { 3, 4 } }, w1 = { { 1, 2, 3 } };
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Mlp([w0], [[0f, 0f]], "swish"));
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Mlp([w0, w1], [[0f, 0f], [0f]]));
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Mlp([w0], [[0f]]));
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Mlp([w0], []));
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Mlp([], []));
    }

    private string WriteToTemp(TorchScriptModuleSpec spec)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".pt");
        TorchScriptWriter.Write(path, spec);
        return path;
    }

    /// <summary>The network by hand in double precision: h ← act(W h + b) for all layers but the last, then W h + b.</summary>
    private static double[] MlpByHand(float[][,] weights, float[][] biases, double[] input, Func<double, double> activation)
    {
        var h = input;
        for (var layer = 0; layer < weights.Length; layer++)
        {
            var w = weights[layer];
            var next = new double[w.GetLength(0)];
            for (var r = 0; r < next.Length; r++)
            {
                double sum = biases[layer][r];
                for (var c = 0; c < h.Length; c++) sum += (double)w[r, c] * h[c];
                next[r] = layer < weights.Length - 1 ? activation(sum) : sum;
            }
            h = next;
        }
        return h;
    }

    private static double[] MlpByHand(float[][,] weights, float[][] biases, float[] input, Func<double, double> activation) =>
        MlpByHand(weights, biases, input.Select(v => (double)v).ToArray(), activation);

    private static float[,] RandomMatrix(Random rng, int rows, int cols)
    {
        var m = new float[rows, cols];
        var scale = 1 / Math.Sqrt(cols);
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < cols; c++)
                m[r, c] = (float)((rng.NextDouble() * 2 - 1) * 2 * scale);
        return m;
    }

    private static float[] RandomVector(Random rng, int length) =>
        Enumerable.Range(0, length).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();

    private static float[,] DyadicMatrix(Random rng, int rows, int cols)
    {
        var m = new float[rows, cols];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < cols; c++)
                m[r, c] = rng.Next(-64, 65) / 64f;
        return m;
    }

    private static float[] DyadicVector(Random rng, int length) =>
        Enumerable.Range(0, length).Select(_ => rng.Next(-64, 65) / 64f).ToArray();

    private static byte[] ReadBytes(ZipArchive zip, string name)
    {
        using var stream = zip.GetEntry(name)!.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string ReadText(ZipArchive zip, string name) => Encoding.UTF8.GetString(ReadBytes(zip, name));

    /// <summary>A stream that can only be written forwards, like a network response.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }
}
