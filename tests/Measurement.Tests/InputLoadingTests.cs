using System.Runtime.InteropServices;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;

namespace LambdaService.Measurement.Tests;

/// <summary>How a failure while loading a model or data file is reported (<see cref="MeasurementInputException.Loading{T}"/>, <see cref="CurvatureRate.Load"/>).</summary>
public class InputLoadingTests
{
    [Theory]
    [InlineData(typeof(ArgumentException))]
    [InlineData(typeof(ExternalException))]
    [InlineData(typeof(InvalidDataException))]
    [InlineData(typeof(EndOfStreamException))]
    [InlineData(typeof(InvalidOperationException))]
    public void A_file_its_runtime_refuses_becomes_an_input_error_naming_the_field_and_the_cause_in_one_line(Type thrown)
    {
        var cause = (Exception)Activator.CreateInstance(thrown, "mismatched total size\nat some native frame")!;
        var e = Assert.Throws<MeasurementInputException>(() => MeasurementInputException.Loading<int>("model", "the model", () => throw cause));
        Assert.Equal("model", e.Field);
        Assert.Equal($"the model could not be loaded: {thrown.Name}: mismatched total size", e.Message);
        Assert.Equal("The model could not be loaded", e.Title);
        Assert.Same(cause, e.InnerException);
    }

    [Fact]
    public void Faults_of_the_machine_and_input_errors_pass_unchanged()
    {
        Exception[] faults =
        [
            new OperationCanceledException(), new OutOfMemoryException(), new IOException("disk"), new UnauthorizedAccessException(),
            new DllNotFoundException("libtorch"), new MeasurementInputException("data", "no rows"),
        ];
        foreach (var fault in faults)
        {
            Assert.Same(fault, Assert.ThrowsAny<Exception>(() => MeasurementInputException.Loading<int>("model", "the model", () => throw fault)));
        }
    }

    [Fact]
    public void Loading_an_onnx_model_that_onnx_runtime_refuses_names_the_model()
    {
        var folder = Directory.CreateTempSubdirectory("lambdaservice-loading-").FullName;
        try
        {
            // Well-formed protobuf with consistent tensors (ModelFile accepts it), but an operator no runtime knows: the exact
            // engines cannot import it, and ONNX Runtime refuses it when it builds the session.
            var model = OnnxModelBuilder.Mlp([new float[4, 2], new float[2, 4]], [new float[4], new float[2]]);
            model.Graph.Node[0].OpType = "NoSuchOperator";
            var modelPath = Path.Combine(folder, "bad.onnx");
            OnnxModelBuilder.Save(model, modelPath);
            var dataPath = Path.Combine(folder, "points.csv");
            File.WriteAllText(dataPath, "f1,f2,label\n0.1,0.2,0\n0.3,-0.4,1\n");

            var e = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Load(modelPath, dataPath, new MeasurementOptions(), new DataReadOptions()));
            Assert.Equal("model", e.Field);
            Assert.StartsWith("ONNX Runtime cannot load the model: ", e.Message, StringComparison.Ordinal);
            Assert.Contains("NoSuchOperator", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("\n", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
