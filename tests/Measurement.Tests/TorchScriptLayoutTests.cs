using System.IO.Compression;
using System.Text;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests;

/// <summary>
/// The archive layouts <c>torch.jit.save</c> of PyTorch 1.13 … 2.x writes (no PyTorch-made archive is available from a
/// package here, so <see cref="TorchScriptWriter"/> writes them in the same layout): format versions 3 … 10 and the record
/// that holds the version, <c>byteorder</c>, <c>.data/serialization_id</c>, <c>extra/</c> files, <c>.debug_pkl</c>
/// records, tensor constants, folder names, and the code of torch.jit.trace and torch.jit.script. Each archive goes
/// through the service's own path (<see cref="ModelFile.FromBytes"/>, <see cref="CurvatureRate.CreateRunner"/>) and its
/// outputs and third derivatives are checked against arithmetic done here by hand in double precision.
/// </summary>
public sealed class TorchScriptLayoutTests
{
    private const int Points = 4;
    private const int Directions = 2;
    private const int Order = 3;

    private static readonly ReferenceMlp Network = new([2, 4, 3], seed: 11, weightScale: 1.5);
    private static readonly float[] Offset = [0.25f, -0.5f];

    public static TheoryData<int, TorchScriptCodeStyle> VersionsAndStyles()
    {
        var data = new TheoryData<int, TorchScriptCodeStyle>();
        for (var version = 3; version <= 10; version++)
            foreach (var style in Enum.GetValues<TorchScriptCodeStyle>())
                data.Add(version, style);
        return data;
    }

    [Theory]
    [MemberData(nameof(VersionsAndStyles))]
    public void Each_format_version_from_3_to_10_in_each_code_style_loads_and_matches_the_hand_computed_network(int version, TorchScriptCodeStyle style)
    {
        // As torch.jit.save writes it: the version in 'version' below 6 and in '.data/version' from 6 on.
        var layout = new TorchScriptLayout { FormatVersion = version, ArchiveName = "model" };
        var bytes = Archive(style, layout);

        var expected = version >= 6 ? "model/.data/version" : "model/version";
        var entries = EntryNames(bytes);
        Assert.Contains(expected, entries);
        Assert.DoesNotContain(version >= 6 ? "model/version" : "model/.data/version", entries);
        Assert.Equal($"{version}\n", ReadText(bytes, expected));

        AssertMatchesHandArithmetic(bytes, offset: null);
    }

    [Theory]
    [InlineData("pytorch-1.13", TorchScriptCodeStyle.Traced)]
    [InlineData("pytorch-1.13", TorchScriptCodeStyle.Scripted)]
    [InlineData("pytorch-2.x", TorchScriptCodeStyle.Traced)]
    [InlineData("pytorch-2.x", TorchScriptCodeStyle.TracedInlined)]
    [InlineData("pytorch-2.x", TorchScriptCodeStyle.Scripted)]
    [InlineData("both-version-records", TorchScriptCodeStyle.Scripted)]
    [InlineData("high-version-in-version-record", TorchScriptCodeStyle.Traced)]
    [InlineData("tensor-constants", TorchScriptCodeStyle.Flat)]
    [InlineData("tensor-constants", TorchScriptCodeStyle.Traced)]
    [InlineData("tensor-constants", TorchScriptCodeStyle.Scripted)]
    public void Archives_with_and_without_byteorder_data_version_extra_files_debug_records_and_tensor_constants_load_and_match_the_hand_computed_network(
        string variant, TorchScriptCodeStyle style)
    {
        var extra = new Dictionary<string, byte[]> { ["producer.json"] = Encoding.UTF8.GetBytes("{\"torch\": \"2.4.0\"}"), ["notes/readme.txt"] = [1, 2, 3] };
        var (layout, offset) = variant switch
        {
            // 1.13: no byteorder, no serialization id, the version in 'version', code with debug records, a named folder.
            "pytorch-1.13" => (new TorchScriptLayout { FormatVersion = 3, IncludeByteOrder = false, IncludeDebugInfo = true, ArchiveName = "traced_mlp" }, null),
            // 2.x: byteorder, .data/serialization_id, extra files, debug records.
            "pytorch-2.x" => (new TorchScriptLayout
            {
                FormatVersion = 8, IncludeSerializationId = true, IncludeDebugInfo = true, ExtraFiles = extra, ArchiveName = "archive",
            }, null),
            "both-version-records" => (new TorchScriptLayout { FormatVersion = 7, VersionRecords = TorchScriptVersionRecords.Version | TorchScriptVersionRecords.DataVersion }, null),
            "high-version-in-version-record" => (new TorchScriptLayout { FormatVersion = 10, VersionRecords = TorchScriptVersionRecords.Version, IncludeByteOrder = false }, null),
            "tensor-constants" => (new TorchScriptLayout { FormatVersion = 4, IncludeDebugInfo = true }, Offset),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };
        var bytes = Archive(style, layout, offset);

        var entries = EntryNames(bytes);
        var folder = layout.ArchiveName;
        Assert.All(entries, e => Assert.StartsWith(folder + "/", e));
        Assert.Equal(layout.IncludeByteOrder, entries.Contains(folder + "/byteorder"));
        Assert.Equal(layout.IncludeSerializationId, entries.Contains(folder + "/.data/serialization_id"));
        foreach (var name in (layout.ExtraFiles ?? new Dictionary<string, byte[]>()).Keys) Assert.Contains(folder + "/extra/" + name, entries);
        var code = entries.Where(e => e.EndsWith(".py", StringComparison.Ordinal)).ToList();
        Assert.Contains(folder + "/code/__torch__.py", code);
        if (style != TorchScriptCodeStyle.Flat)
        {
            // A 2-4-3 network has two Linear types: (2, 4) and, mangled as torch names it, (4, 3).
            Assert.Contains(folder + "/code/__torch__/torch/nn/modules/linear.py", code);
            Assert.Contains(folder + "/code/__torch__/torch/nn/modules/linear/___torch_mangle_0.py", code);
        }
        if (layout.IncludeDebugInfo) Assert.All(code, c => Assert.Contains(c + ".debug_pkl", entries));
        Assert.Equal(offset is null ? 0 : 1, entries.Count(e => e.StartsWith(folder + "/constants/", StringComparison.Ordinal)));

        AssertMatchesHandArithmetic(bytes, offset);
    }

    [Fact]
    public void Traced_and_scripted_code_reads_as_torch_prints_it()
    {
        var traced = ReadText(Archive(TorchScriptCodeStyle.Traced, TorchScriptLayout.Default), "archive/code/__torch__.py");
        Assert.Contains("  fc0 : __torch__.torch.nn.modules.linear.Linear\n", traced);
        Assert.Contains("  fc1 : __torch__.torch.nn.modules.linear.___torch_mangle_0.Linear\n", traced);
        Assert.Contains("    fc0 = self.fc0\n", traced);
        Assert.Contains("    _0 = torch.tanh((fc0).forward(x, ))\n", traced);
        var tracedLinear = ReadText(Archive(TorchScriptCodeStyle.Traced, TorchScriptLayout.Default), "archive/code/__torch__/torch/nn/modules/linear.py");
        Assert.Contains("  def forward(self: __torch__.torch.nn.modules.linear.Linear,\n    argument_1: Tensor) -> Tensor:\n", tracedLinear);
        Assert.Contains("  in_features : Final[int] = 2\n", tracedLinear);

        var inlined = ReadText(Archive(TorchScriptCodeStyle.TracedInlined, TorchScriptLayout.Default), "archive/code/__torch__.py");
        Assert.Contains("torch.linear(x, self.fc0.weight, self.fc0.bias)", inlined);

        var scripted = ReadText(Archive(TorchScriptCodeStyle.Scripted, TorchScriptLayout.Default), "archive/code/__torch__.py");
        Assert.Contains("  def forward(self: __torch__.Mlp,\n    x: Tensor) -> Tensor:\n", scripted);
        Assert.Contains("(self.fc0).forward(x, )", scripted);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    public void An_archive_whose_version_libtorch_does_not_read_is_refused_with_an_error_that_names_the_version(int version)
    {
        // The writer refuses these versions itself, so the test rewrites the record of a valid archive.
        var bytes = WithRecord(Archive(TorchScriptCodeStyle.Traced, new TorchScriptLayout { FormatVersion = 10 }), "archive/.data/version", $"{version}\n");
        var file = ModelFile.FromBytes("model.pt", bytes);

        var error = Assert.Throws<MeasurementInputException>(() => CurvatureRate.CreateRunner(file, Data(), engine: EngineChoice.Autograd));

        Assert.Equal("model", error.Field);
        Assert.Contains("libtorch cannot load the TorchScript model", error.Message);
        Assert.Contains($"version {version}", error.Message);
        Assert.Contains(version == 0 ? "minimum supported version" : "maximum supported version", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    public void The_writer_refuses_a_format_version_outside_1_to_10(int version)
    {
        var spec = TorchScriptWriter.Mlp(Network.Weights, Network.Biases);
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec, new TorchScriptLayout { FormatVersion = version }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void The_writer_refuses_an_archive_name_that_is_not_a_plain_folder_name(string name)
    {
        var spec = TorchScriptWriter.Mlp(Network.Weights, Network.Biases);
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec, new TorchScriptLayout { ArchiveName = name }));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("/absolute")]
    [InlineData("a//b")]
    [InlineData("back\\slash")]
    public void The_writer_refuses_an_extra_file_name_that_is_not_a_plain_relative_path(string name)
    {
        var spec = TorchScriptWriter.Mlp(Network.Weights, Network.Biases);
        var layout = new TorchScriptLayout { ExtraFiles = new Dictionary<string, byte[]> { [name] = [1] } };
        Assert.Throws<ArgumentException>(() => TorchScriptWriter.Write(new MemoryStream(), spec, layout));
    }

    [Theory]
    [InlineData(3, -3.0)]
    [InlineData(10, -3.5)]
    public void The_version_in_data_version_wins_over_the_version_record_and_chooses_the_operator_semantics(int dataVersion, double expected)
    {
        // torch.div of integer tensors truncated before file format version 4; libtorch's upgrader keeps that meaning
        // for old archives. The archive says 3 in 'version' and dataVersion in '.data/version': the reader must use the latter.
        var spec = new TorchScriptModuleSpec("Div", [], "return torch.div(torch.to(x, 4), 2)");
        var bytes = Write(spec, new TorchScriptLayout { FormatVersion = 3, VersionRecords = TorchScriptVersionRecords.Version });
        bytes = WithRecord(bytes, "archive/.data/version", $"{dataVersion}\n", add: true);

        var data = TestData.Make([-7], 1, [1]);
        using var runner = CurvatureRate.CreateRunner(ModelFile.FromBytes("div.pt", bytes), data, engine: EngineChoice.Autograd);

        Assert.Equal([expected], runner.Forward([-7.0], 1));
    }

    /// <summary>
    /// Loads the archive as the service does and checks outputs (to 1e-6) and third directional derivatives of the
    /// cross-entropy loss (through the autograd engine, to 1e-9 relative) against <see cref="ReferenceMlp"/>'s hand arithmetic.
    /// </summary>
    private static void AssertMatchesHandArithmetic(byte[] bytes, float[]? offset)
    {
        var data = Data();
        var file = ModelFile.FromBytes("model.pt", bytes);
        using var runner = Assert.IsType<TorchModelRunner>(CurvatureRate.CreateRunner(file, data, engine: EngineChoice.Autograd));
        Assert.Equal("float64", runner.Precision);

        var shifted = Shift(data.X, offset);
        var outputs = runner.Forward(data.X, Points);
        Assert.Equal(Points * 3, outputs.Length);
        for (var p = 0; p < Points; p++)
        {
            var expected = ForwardByHand(shifted.AsSpan(2 * p, 2));
            for (var k = 0; k < 3; k++)
                Assert.True(Math.Abs(outputs[3 * p + k] - expected[k]) <= 1e-6, $"point {p}, output {k}: libtorch {outputs[3 * p + k]:R}, by hand {expected[k]:R}");
        }

        var v = CurvatureRate.Directions(Points, Directions, 2, seed: 5);
        var labels = data.Labels!;
        var result = new AutogradEngine(runner).Compute(new DerivativeRequest(data.X, Points, v, Directions, TargetKind.Loss, labels, Order), null, default);
        for (var p = 0; p < Points; p++)
        {
            for (var d = 0; d < Directions; d++)
            {
                var line = Network.Loss(shifted[(2 * p)..(2 * p + 2)], v[((p * Directions + d) * 2)..((p * Directions + d) * 2 + 2)], labels[p], Order);
                for (var n = 0; n <= Order; n++)
                {
                    var reference = line.Derivative(n);
                    Assert.True(Math.Abs(result[p, d, n] - reference) <= 1e-9 * Math.Max(1, Math.Abs(reference)),
                        $"p={p} d={d} n={n}: autograd {result[p, d, n]:R}, exact {reference:R}");
                }
            }
        }
    }

    /// <summary>tanh(x W₀ᵀ + b₀) W₁ᵀ + b₁ in double loops.</summary>
    private static double[] ForwardByHand(ReadOnlySpan<double> x)
    {
        double[] h = x.ToArray();
        for (var layer = 0; layer < Network.Weights.Length; layer++)
        {
            var w = Network.Weights[layer];
            var next = new double[w.GetLength(0)];
            for (var r = 0; r < next.Length; r++)
            {
                double sum = Network.Biases[layer][r];
                for (var c = 0; c < h.Length; c++) sum += (double)w[r, c] * h[c];
                next[r] = layer < Network.Weights.Length - 1 ? Math.Tanh(sum) : sum;
            }
            h = next;
        }
        return h;
    }

    private static double[] Shift(double[] x, float[]? offset) =>
        offset is null ? x : x.Select((value, i) => value - offset[i % offset.Length]).ToArray();

    private static LambdaService.Measurement.Data.Dataset Data() =>
        TestData.Make(TestData.Uniform(Points * 2, seed: 4, low: -1.5, high: 1.5), Points, [2], Enumerable.Range(0, Points).Select(i => i % 3).ToArray());

    private static byte[] Archive(TorchScriptCodeStyle style, TorchScriptLayout layout, float[]? offset = null) =>
        Write(TorchScriptWriter.Mlp(Network.Weights, Network.Biases, "tanh", style, offset), layout);

    private static byte[] Write(TorchScriptModuleSpec spec, TorchScriptLayout layout)
    {
        using var buffer = new MemoryStream();
        TorchScriptWriter.Write(buffer, spec, layout);
        return buffer.ToArray();
    }

    private static List<string> EntryNames(byte[] bytes)
    {
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        return zip.Entries.Select(e => e.FullName).ToList();
    }

    private static string ReadText(byte[] bytes, string name)
    {
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        using var reader = new StreamReader(zip.GetEntry(name)!.Open(), Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>A copy of the archive with the record <paramref name="name"/> holding <paramref name="text"/> (added at the end when asked).</summary>
    private static byte[] WithRecord(byte[] bytes, string name, string text, bool add = false)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            var found = false;
            foreach (var entry in source.Entries)
            {
                var copy = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression);
                using var to = copy.Open();
                if (entry.FullName == name)
                {
                    found = true;
                    to.Write(Encoding.ASCII.GetBytes(text));
                }
                else
                {
                    using var from = entry.Open();
                    from.CopyTo(to);
                }
            }
            Assert.True(found != add, $"record {name} {(add ? "already exists" : "is missing")}");
            if (add)
            {
                using var to = target.CreateEntry(name, CompressionLevel.NoCompression).Open();
                to.Write(Encoding.ASCII.GetBytes(text));
            }
        }
        return output.ToArray();
    }
}
