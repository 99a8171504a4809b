using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;

namespace LambdaService.Measurement.Tests.Estimation;

/// <summary>
/// The engine and runtime choice that the service's check at submission and <see cref="CurvatureRate.CreateRunner"/> share
/// (<see cref="EngineResolution"/>): which runtime each engine gets, auto's fallback and its note, and the refusals with their fields.
/// </summary>
public class EngineResolutionTests
{
    private static readonly IReadOnlyList<string> Tan = ["Tan at node 'tan0_node'"];

    private static Func<IReadOnlyList<string>> Problems(IReadOnlyList<string> problems) => () => problems;

    private static Func<IReadOnlyList<string>> NotAsked => () => throw new InvalidOperationException("the import problems were asked for");

    [Theory]
    [InlineData(EngineChoice.Auto)]
    [InlineData(EngineChoice.Taylor)]
    [InlineData(EngineChoice.Autograd)]
    public void An_onnx_graph_that_imports_runs_in_libtorch_for_the_exact_engines_and_auto(EngineChoice engine)
    {
        Assert.Equal(new ResolvedRuntime(ModelRuntime.ImportedOnnxGraph), EngineResolution.Resolve(ModelFormat.Onnx, engine, ComputePrecision.Float32, Problems([])));
    }

    [Fact]
    public void Finite_differences_run_an_onnx_graph_in_onnx_runtime_without_importing_it_and_refuse_float32()
    {
        Assert.Equal(new ResolvedRuntime(ModelRuntime.OnnxRuntime), EngineResolution.Resolve(ModelFormat.Onnx, EngineChoice.FiniteDifference, ComputePrecision.Float64, NotAsked));
        var refused = Assert.Throws<MeasurementInputException>(() => EngineResolution.Resolve(ModelFormat.Onnx, EngineChoice.FiniteDifference, ComputePrecision.Float32, NotAsked));
        Assert.Equal("precision", refused.Field);
        Assert.Contains("engine finite-difference was chosen", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_falls_back_to_onnx_runtime_on_a_graph_it_cannot_import_and_says_why_in_a_note()
    {
        var resolved = EngineResolution.Resolve(ModelFormat.Onnx, EngineChoice.Auto, ComputePrecision.Float64, Problems(Tan));
        Assert.Equal(ModelRuntime.OnnxRuntime, resolved.Runtime);
        Assert.Equal("engine auto chose finite-difference: the exact engines (taylor, autograd) cannot run this ONNX graph (unsupported operators Tan at node 'tan0_node').", resolved.Note);
    }

    [Fact]
    public void Auto_in_float32_on_a_graph_it_cannot_import_is_refused_naming_precision()
    {
        var refused = Assert.Throws<MeasurementInputException>(() => EngineResolution.Resolve(ModelFormat.Onnx, EngineChoice.Auto, ComputePrecision.Float32, Problems(Tan)));
        Assert.Equal("precision", refused.Field);
        Assert.Contains("engine auto falls back to finite differences on this ONNX graph (unsupported operators Tan at node 'tan0_node')", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(EngineChoice.Taylor, "the taylor engine cannot run this ONNX graph: unsupported operators Tan at node 'tan0_node'. Use engine auto or finite-difference (")]
    [InlineData(EngineChoice.Autograd, "the autograd engine cannot run this ONNX graph: unsupported operators Tan at node 'tan0_node'. Use engine auto or finite-difference (")]
    public void An_exact_engine_on_a_graph_it_cannot_import_is_refused_naming_engine_and_the_operators(EngineChoice engine, string start)
    {
        var refused = Assert.Throws<MeasurementInputException>(() => EngineResolution.Resolve(ModelFormat.Onnx, engine, ComputePrecision.Float64, Problems(Tan)));
        Assert.Equal("engine", refused.Field);
        Assert.StartsWith(start, refused.Message, StringComparison.Ordinal);
        Assert.EndsWith("), or export the model with supported operators.", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(EngineChoice.Auto)]
    [InlineData(EngineChoice.Autograd)]
    [InlineData(EngineChoice.FiniteDifference)]
    public void TorchScript_runs_in_libtorch_without_asking_about_an_onnx_import(EngineChoice engine)
    {
        Assert.Equal(new ResolvedRuntime(ModelRuntime.TorchScript), EngineResolution.Resolve(ModelFormat.TorchScript, engine, ComputePrecision.Float64, NotAsked));
    }

    [Fact]
    public void Taylor_on_TorchScript_is_refused_naming_engine()
    {
        var refused = Assert.Throws<MeasurementInputException>(() => EngineResolution.Resolve(ModelFormat.TorchScript, EngineChoice.Taylor, ComputePrecision.Float64, NotAsked));
        Assert.Equal("engine", refused.Field);
        Assert.StartsWith("the taylor engine needs a model whose structure it can read", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_check_at_submission_reads_no_graph_for_auto_in_float64_and_refuses_as_the_choice_does_elsewhere()
    {
        EngineResolution.Check(ModelFormat.Onnx, EngineChoice.Auto, ComputePrecision.Float64, NotAsked);
        EngineResolution.Check(ModelFormat.Onnx, EngineChoice.Taylor, ComputePrecision.Float64, Problems([]));
        Assert.Equal("engine", Assert.Throws<MeasurementInputException>(() => EngineResolution.Check(ModelFormat.Onnx, EngineChoice.Autograd, ComputePrecision.Float64, Problems(Tan))).Field);
        Assert.Equal("precision", Assert.Throws<MeasurementInputException>(() => EngineResolution.Check(ModelFormat.Onnx, EngineChoice.Auto, ComputePrecision.Float32, Problems(Tan))).Field);
        Assert.Equal("engine", Assert.Throws<MeasurementInputException>(() => EngineResolution.Check(ModelFormat.TorchScript, EngineChoice.Taylor, ComputePrecision.Float64, NotAsked)).Field);
    }
}
