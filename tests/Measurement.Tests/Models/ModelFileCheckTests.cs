using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using Onnx;

namespace LambdaService.Measurement.Tests.Models;

/// <summary>
/// What <see cref="ModelFile"/> refuses before native code sees a model, and the real and written files it still accepts.
/// The damaged TorchScript archives are the writer's own (which libtorch loads) with one entry rewritten.
/// </summary>
public class ModelFileCheckTests
{
    // A 2-16-3 tanh MLP of dyadic weights (exact in float32): w0 is 16 × 2, so archive/data/0 holds 128 bytes.
    private static readonly float[][,] Weights = [Dyadic(16, 2, 1), Dyadic(3, 16, 2)];
    private static readonly float[][] Biases = [[.. Enumerable.Range(0, 16).Select(i => (i - 8) / 32f)], [0.25f, -0.5f, 0.125f]];

    [Fact]
    public void The_intact_archive_is_accepted_and_libtorch_loads_it_and_computes_the_hand_computed_outputs()
    {
        var file = ModelFile.FromBytes("mlp.pt", Archive());
        using var runner = TorchModelRunner.LoadTorchScript(file, [2]);
        double[] x = [0.75, -0.5];
        var y = runner.Forward(x, 1);
        var expected = Mlp(Weights, Biases, x);
        Assert.Equal(expected.Length, y.Length);
        for (var k = 0; k < y.Length; k++) Assert.True(Math.Abs(y[k] - expected[k]) < 1e-12, $"output {k}: {y[k]} vs {expected[k]}");
    }

    [Fact]
    public void A_storage_entry_cut_from_128_to_4_bytes_is_refused_naming_the_entry_and_the_bytes_it_needs()
    {
        var bytes = Rewrite(Archive(), "archive/data/0", data => data[..4]);
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", bytes));
        Assert.Equal("model", ex.Field);
        Assert.Contains("storage 'archive/data/0' holds 4 bytes", ex.Message);
        Assert.Contains("need 128", ex.Message);
        Assert.Contains("torch.jit.save", ex.Message);
    }

    [Fact]
    public void A_storage_entry_the_pickle_names_but_the_archive_lacks_is_refused()
    {
        var bytes = Rewrite(Archive(), "archive/data/1", _ => null);
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", bytes));
        Assert.Contains("'archive/data/1', which the archive does not contain", ex.Message);
    }

    [Fact]
    public void A_tensor_whose_offset_moves_its_extent_past_the_end_of_its_storage_is_refused()
    {
        // The writer pickles w0's storage offset as BININT1 0 right after the persistent id (BINPERSID); make it 1.
        var bytes = Rewrite(Archive(), "archive/data.pkl", pickle => Replace(pickle, "QK\0"u8, "QK\u0001"u8));
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", bytes));
        Assert.Contains("size [16, 2], stride [2, 1] and offset 1", ex.Message);
        Assert.Contains("reaches element 33 of storage 'archive/data/0', which holds 32", ex.Message);
    }

    [Theory]
    [InlineData("archive/data/0")]
    [InlineData("archive/DATA.PKL")]
    public void An_archive_with_a_duplicate_entry_name_is_refused_even_when_the_names_differ_only_in_case(string duplicate)
    {
        var bytes = Rewrite(Archive(), null, null, (duplicate, [0x80, 2, (byte)'N', (byte)'.']));
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", bytes));
        Assert.Contains($"'{duplicate}' more than once", ex.Message);
    }

    [Theory]
    [InlineData("archive/data.pkl", "os", "system")]
    [InlineData("archive/data.pkl", "posix", "system")]
    [InlineData("archive/data.pkl", "subprocess", "check_output")]
    [InlineData("archive/data.pkl", "builtins", "eval")]
    [InlineData("archive/data.pkl", "torch._utils", "_rebuild_tensor")]
    [InlineData("archive/constants.pkl", "os", "system")]
    public void A_pickle_naming_a_global_torch_jit_save_never_writes_is_refused_and_the_message_names_it(string entry, string module, string name)
    {
        // GLOBAL module name, BINUNICODE 'echo pwned', TUPLE1, REDUCE, STOP: module.name('echo pwned') to an unpickler that runs it.
        var pickle = Encoding.Latin1.GetBytes($"\u0080\u0002c{module}\n{name}\nX\u000a\0\0\0echo pwned\u0085R.");
        var bytes = Rewrite(Archive(), entry, _ => pickle);
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", bytes));
        Assert.Equal("model", ex.Field);
        Assert.Contains($"'{entry}' names the Python global '{module}.{name}'", ex.Message);
    }

    [Fact]
    public void A_pickle_whose_name_differs_only_in_case_is_still_read_since_libtorch_finds_it_by_that_name()
    {
        var pickle = Encoding.Latin1.GetBytes("\u0080\u0002cos\nsystem\nX\u000a\0\0\0echo pwned\u0085R.");
        var bytes = Rewrite(Archive(), "archive/constants.pkl", _ => null, ("archive/CONSTANTS.PKL", pickle));
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", bytes));
        Assert.Contains("'archive/CONSTANTS.PKL' names the Python global 'os.system'", ex.Message);
    }

    [Fact]
    public void A_pickle_cut_short_and_one_in_a_protocol_libtorch_does_not_read_are_refused()
    {
        var cut = Rewrite(Archive(), "archive/data.pkl", pickle => pickle[..(pickle.Length / 2)]);
        Assert.Contains("'archive/data.pkl' is truncated", Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", cut)).Message);
        var protocol4 = Rewrite(Archive(), "archive/data.pkl", _ => [0x80, 4, (byte)'N', (byte)'.']);
        Assert.Contains("pickle protocol 4", Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("mlp.pt", protocol4)).Message);
    }

    /// <summary>
    /// Files torch.jit.save wrote (Models/fixtures/make_fixtures.py, PyTorch 1.13.1): a traced tanh MLP, a scripted CNN
    /// with BatchNorm, and a scripted module whose attributes hold a dict, lists of tensors, floats and ints, a device,
    /// complex and half tensors and a strided view (restore_type_tag, build_*list, torch.device, BINFLOAT, TUPLE2 …).
    /// </summary>
    [Theory]
    [InlineData("traced_tanh_mlp.pt")]
    [InlineData("scripted_batchnorm_cnn.pt")]
    [InlineData("scripted_attributes.pt")]
    public void Archives_written_by_torch_jit_save_are_accepted(string fixture)
    {
        var file = ModelFile.Open(Fixture(fixture));
        Assert.Equal(ModelFormat.TorchScript, file.Format);
    }

    [Fact]
    public void The_traced_mlp_written_by_torch_loads_and_computes_the_outputs_of_its_own_stored_weights()
    {
        var path = Fixture("traced_tanh_mlp.pt");
        // Storages 0 … 3 are fc1.weight [16, 2], fc1.bias, fc2.weight [3, 16], fc2.bias, in the order data.pkl names them.
        using var zip = ZipFile.OpenRead(path);
        float[] Storage(int key)
        {
            using var stream = new MemoryStream();
            using (var entry = zip.GetEntry($"traced_tanh_mlp/data/{key}")!.Open()) entry.CopyTo(stream);
            var bytes = stream.ToArray();
            return Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToSingle(bytes, 4 * i)).ToArray();
        }
        float[,] Matrix(float[] values, int rows, int cols)
        {
            var m = new float[rows, cols];
            Buffer.BlockCopy(values, 0, m, 0, values.Length * sizeof(float));
            return m;
        }
        float[][,] weights = [Matrix(Storage(0), 16, 2), Matrix(Storage(2), 3, 16)];
        float[][] biases = [Storage(1), Storage(3)];

        using var runner = TorchModelRunner.LoadTorchScript(ModelFile.Open(path), [2]);
        double[] x = [0.3, -1.1];
        var y = runner.Forward(x, 1);
        var expected = Mlp(weights, biases, x);
        for (var k = 0; k < 3; k++) Assert.True(Math.Abs(y[k] - expected[k]) < 1e-12, $"output {k}: {y[k]} vs {expected[k]}");
    }

    [Fact]
    public void The_scripted_batchnorm_cnn_written_by_torch_loads_and_gives_ten_finite_outputs_per_image()
    {
        using var runner = TorchModelRunner.LoadTorchScript(ModelFile.Open(Fixture("scripted_batchnorm_cnn.pt")), [64]);
        var y = runner.Forward(Enumerable.Range(0, 128).Select(i => Math.Sin(i)).ToArray(), 2);
        Assert.Equal(20, y.Length);
        Assert.All(y, v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void An_onnx_initializer_whose_raw_data_is_shorter_than_its_dims_need_is_refused()
    {
        var model = SmallMlp();
        var w = model.Graph.Initializer[0];
        w.FloatData.Clear();
        w.RawData = ByteString.CopyFrom(new byte[20]);
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.onnx", model.ToByteArray()));
        Assert.Equal("model", ex.Field);
        Assert.Contains($"initializer '{w.Name}' with dims [3, 2] (float32, 6 elements), which need 24 bytes of raw_data, but it holds 20", ex.Message);
        Assert.Contains("export the model again", ex.Message);
    }

    [Fact]
    public void An_onnx_initializer_whose_typed_values_do_not_fill_its_dims_is_refused()
    {
        var model = SmallMlp();
        var w = model.Graph.Initializer[0];
        w.Dims[0] = 4;
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.onnx", model.ToByteArray()));
        Assert.Contains($"initializer '{w.Name}' with dims [4, 2] (float32, 8 elements), which need 8 values in float_data, but it holds 6", ex.Message);
    }

    [Fact]
    public void An_onnx_initializer_with_a_negative_dim_is_refused_even_when_the_product_matches_its_data()
    {
        var model = SmallMlp();
        var w = model.Graph.Initializer[0];
        w.Dims.Clear();
        w.Dims.Add([-3, -2]);
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.onnx", model.ToByteArray()));
        Assert.Contains($"initializer '{w.Name}' with dims [-3, -2]: a dimension is negative", ex.Message);
    }

    [Fact]
    public void A_constant_nodes_value_that_does_not_fill_its_dims_is_refused()
    {
        var model = SmallMlp();
        var value = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64 };
        value.Dims.Add(2);
        value.Int64Data.Add(7);
        var node = new NodeProto { OpType = "Constant", Name = "shape", Output = { "unused" } };
        node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
        model.Graph.Node.Add(node);
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.onnx", model.ToByteArray()));
        Assert.Contains("in attribute 'value' of Constant node 'shape' with dims [2] (int64, 2 elements), which need 2 values in int64_data, but it holds 1", ex.Message);
    }

    [Fact]
    public void Onnx_models_whose_tensors_fill_their_dims_still_open_in_raw_and_typed_form_with_scalars_and_empty_tensors()
    {
        Assert.Equal(ModelFormat.Onnx, ModelFile.FromBytes("m.onnx", SmallMlp().ToByteArray()).Format);

        var model = SmallMlp();
        var w = model.Graph.Initializer[0];
        var raw = w.FloatData.SelectMany(BitConverter.GetBytes).ToArray();
        w.FloatData.Clear();
        w.RawData = ByteString.CopyFrom(raw);
        var scalar = new TensorProto { Name = "scalar", DataType = (int)TensorProto.Types.DataType.Double, DoubleData = { 2.5 } };
        var empty = new TensorProto { Name = "empty", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 0, 4 } };
        var half = new TensorProto { Name = "half", DataType = (int)TensorProto.Types.DataType.Float16, Dims = { 3 }, Int32Data = { 1, 2, 3 } };
        var int4 = new TensorProto { Name = "int4", DataType = (int)TensorProto.Types.DataType.Int4, Dims = { 3 }, RawData = ByteString.CopyFrom(0x21, 0x03) };
        model.Graph.Initializer.Add(new[] { scalar, empty, half, int4 });
        var file = ModelFile.FromBytes("m.onnx", model.ToByteArray());
        using var runner = OnnxRunner.Create(file, [2]);
        Assert.Equal(3, runner.Forward([0.5, -0.5], 1).Length);
    }

    [Fact]
    public void The_sandbox_s_front_door_refuses_stored_files_that_fail_the_checks_before_measuring_anything()
    {
        // A job's sandbox measures through CurvatureRate.Measure, which opens the stored model with ModelFile.Open.
        var dir = Path.Combine(Path.GetTempPath(), "lambdaservice-modelcheck-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var data = Path.Combine(dir, "points.csv");
            File.WriteAllText(data, "f1,f2\n0.5,-0.25\n0.125,0.75\n-0.5,0.5\n");
            var truncated = Path.Combine(dir, "model.pt");
            File.WriteAllBytes(truncated, Rewrite(Archive(), "archive/data/0", bytes => bytes[..4]));
            var onnx = SmallMlp();
            onnx.Graph.Initializer[0].Dims[0] = 4;
            var mismatched = Path.Combine(dir, "model.onnx");
            OnnxModelBuilder.Save(onnx, mismatched);
            foreach (var (model, expected) in new[] { (truncated, "holds 4 bytes"), (mismatched, "dims [4, 2]") })
            {
                var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Measure(model, data,
                    new MeasurementOptions { Engine = EngineChoice.Auto, MaxPoints = 2, Directions = 1, BootstrapResamples = 0 }, null, null, default));
                Assert.Equal("model", ex.Field);
                Assert.Contains(expected, ex.Message);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static ModelProto SmallMlp() => OnnxModelBuilder.Mlp([new float[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }], [[0.1f, 0.2f, 0.3f]]);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Models", "fixtures", name);

    private static byte[] Archive()
    {
        using var stream = new MemoryStream();
        TorchScriptWriter.Write(stream, TorchScriptWriter.Mlp(Weights, Biases));
        return stream.ToArray();
    }

    /// <summary>
    /// A copy of <paramref name="archive"/> with entry <paramref name="name"/> changed by <paramref name="change"/>
    /// (dropped when it returns null) and <paramref name="added"/> entries appended, names kept as given.
    /// </summary>
    private static byte[] Rewrite(byte[] archive, string? name, Func<byte[], byte[]?>? change, params (string Name, byte[] Content)[] added)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(archive), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            var found = name is null;
            foreach (var entry in source.Entries)
            {
                using var content = new MemoryStream();
                using (var from = entry.Open()) from.CopyTo(content);
                var bytes = content.ToArray();
                if (entry.FullName == name)
                {
                    found = true;
                    if (change!(bytes) is not { } changed) continue;
                    bytes = changed;
                }
                using var to = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open();
                to.Write(bytes);
            }
            Assert.True(found, $"the archive has no entry {name}");
            foreach (var (addedName, addedContent) in added)
            {
                using var to = target.CreateEntry(addedName, CompressionLevel.NoCompression).Open();
                to.Write(addedContent);
            }
        }
        return output.ToArray();
    }

    /// <summary><paramref name="bytes"/> with the first occurrence of <paramref name="from"/> replaced by <paramref name="to"/> (same length).</summary>
    private static byte[] Replace(byte[] bytes, ReadOnlySpan<byte> from, ReadOnlySpan<byte> to)
    {
        var at = bytes.AsSpan().IndexOf(from);
        Assert.True(at >= 0, "pattern not found");
        var copy = bytes.ToArray();
        to.CopyTo(copy.AsSpan(at));
        return copy;
    }

    private static double[] Mlp(float[][,] weights, float[][] biases, double[] x)
    {
        var h = x;
        for (var l = 0; l < weights.Length; l++)
        {
            var w = weights[l];
            var next = new double[w.GetLength(0)];
            for (var i = 0; i < next.Length; i++)
            {
                var sum = (double)biases[l][i];
                for (var j = 0; j < h.Length; j++) sum += w[i, j] * h[j];
                next[i] = l < weights.Length - 1 ? Math.Tanh(sum) : sum;
            }
            h = next;
        }
        return h;
    }

    private static float[,] Dyadic(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var m = new float[rows, cols];
        for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) m[i, j] = rng.Next(-64, 65) / 64f;
        return m;
    }
}
