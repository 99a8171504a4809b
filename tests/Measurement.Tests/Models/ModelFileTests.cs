using System.IO.Compression;
using Google.Protobuf;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;
using Onnx;

namespace LambdaService.Measurement.Tests.Models;

public class ModelFileTests
{
    private static ModelProto SmallMlp() => OnnxModelBuilder.Mlp([new float[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }], [[0.1f, 0.2f, 0.3f]]);

    [Fact]
    public void An_onnx_model_reports_its_input_and_output_signature()
    {
        var file = TestData.Onnx(SmallMlp());
        Assert.Equal(ModelFormat.Onnx, file.Format);
        var input = Assert.Single(file.Inputs);
        Assert.Equal("x", input.Name);
        Assert.Equal([-1L, 2L], input.Shape);
        Assert.Equal("float32", input.ElementType);
        Assert.Equal([-1L, 3L], file.Outputs[0].Shape);
        Assert.Equal(64, file.Sha256.Length);
    }

    [Fact]
    public void A_truncated_onnx_file_is_rejected_as_unreadable()
    {
        var bytes = SmallMlp().ToByteArray();
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.onnx", bytes[..(bytes.Length / 2)]));
        Assert.Equal("model", ex.Field);
        Assert.Contains("truncated", ex.Message);
    }

    [Fact]
    public void An_empty_file_and_a_random_file_are_rejected()
    {
        Assert.Contains("empty", Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m", [])).Message);
        var noise = new byte[1000];
        new Random(1).NextBytes(noise);
        Assert.Equal("model", Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m", noise)).Field);
    }

    [Fact]
    public void An_onnx_model_with_external_data_is_rejected_without_opening_the_named_file()
    {
        var model = SmallMlp();
        var w = model.Graph.Initializer[0];
        w.FloatData.Clear();
        w.DataLocation = TensorProto.Types.DataLocation.External;
        w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "../../etc/passwd" });
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.onnx", model.ToByteArray()));
        Assert.Contains("external file", ex.Message);
        Assert.Contains(w.Name, ex.Message);
    }

    [Fact]
    public void A_url_is_never_loaded()
    {
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.Open("https://example.org/model.onnx"));
        Assert.Contains("URL", ex.Message);
    }

    [Fact]
    public void A_missing_file_is_named_in_the_error()
    {
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.Open("/nonexistent/m.onnx"));
        Assert.Contains("/nonexistent/m.onnx", ex.Message);
    }

    [Fact]
    public void A_zip_that_is_not_a_torchscript_archive_is_rejected()
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var w = new StreamWriter(zip.CreateEntry("notes.txt").Open());
            w.Write("hello");
        }
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.pt", ms.ToArray()));
        Assert.Contains("not a TorchScript archive", ex.Message);
    }

    [Fact]
    public void A_state_dict_without_code_is_rejected_with_advice()
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry("archive/data.pkl").Open().Dispose();
        }
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.pt", ms.ToArray()));
        Assert.Contains("torch.jit.save", ex.Message);
    }

    [Fact]
    public void A_truncated_torchscript_archive_is_rejected_before_libtorch_sees_it()
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry("archive/data.pkl").Open().Dispose();
            using var code = new StreamWriter(zip.CreateEntry("archive/code/__torch__.py").Open());
            code.Write(new string('#', 5000));
        }
        var bytes = ms.ToArray();
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("m.pt", bytes[..(bytes.Length - 40)]));
        Assert.Equal("model", ex.Field);
    }

    [Fact]
    public void A_model_with_two_inputs_is_rejected_when_it_is_prepared_to_run()
    {
        var model = SmallMlp();
        model.Graph.Input.Add(model.Graph.Input[0].Clone());
        model.Graph.Input[1].Name = "mask";
        var ex = Assert.Throws<MeasurementInputException>(() => OnnxRunner.Create(TestData.Onnx(model), [2]));
        Assert.Contains("2 inputs", ex.Message);
    }

    [Fact]
    public void A_model_taking_integers_is_rejected()
    {
        var model = SmallMlp();
        model.Graph.Input[0].Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Int64;
        var ex = Assert.Throws<MeasurementInputException>(() => OnnxRunner.Create(TestData.Onnx(model), [2]));
        Assert.Contains("int64", ex.Message);
    }

    [Fact]
    public void Data_of_the_wrong_width_is_rejected_with_the_runtime_message()
    {
        var ex = Assert.Throws<MeasurementInputException>(() => OnnxRunner.Create(TestData.Onnx(SmallMlp()), [5]));
        Assert.Equal("data", ex.Field);
        Assert.Contains("[5]", ex.Message);
    }
}

public class ModelArchiveLimitTests
{
    [Fact]
    public void A_torchscript_archive_with_too_many_entries_is_refused()
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry("archive/data.pkl").Open().Dispose();
            zip.CreateEntry("archive/code/__torch__.py").Open().Dispose();
            for (var i = 0; i < ModelFile.MaxArchiveEntries; i++) zip.CreateEntry($"archive/data/{i}").Open().Dispose();
        }
        var ex = Assert.Throws<MeasurementInputException>(() => ModelFile.FromBytes("many.pt", ms.ToArray()));
        Assert.Contains("entries", ex.Message);
    }
}
