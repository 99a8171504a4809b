using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;

namespace LambdaService.Measurement.Estimation;

/// <summary>Where a model runs for the engine a measurement asks for (<see cref="EngineResolution.Resolve"/>).</summary>
public enum ModelRuntime
{
    /// <summary>ONNX Runtime: forward passes only, so finite differences.</summary>
    OnnxRuntime,

    /// <summary>The ONNX graph imported into libtorch, where the exact engines (taylor, autograd) run it.</summary>
    ImportedOnnxGraph,

    /// <summary>libtorch running a TorchScript archive (autograd; its structure is opaque to taylor).</summary>
    TorchScript,
}

/// <summary>The runtime a model gets, and the note a measurement carries about the choice when engine auto fell back.</summary>
/// <param name="Runtime">Where the model runs.</param>
/// <param name="Note">For engine auto on an ONNX graph the exact engines cannot import: why finite differences run; else null.</param>
public sealed record ResolvedRuntime(ModelRuntime Runtime, string? Note = null);

/// <summary>
/// The one place that decides, from the model's format and (for ONNX) the problems of importing its graph, which runtime runs a
/// model for the requested engine and precision, and refuses the combinations that cannot run. The service's check at submission
/// (with the operators read from the file) and <see cref="CurvatureRate.CreateRunner"/> (with the import's own problems) both ask
/// it, so the two give the same answers and the same errors.
/// </summary>
public static class EngineResolution
{
    /// <summary>The runtime for <paramref name="engine"/> on a model of <paramref name="format"/>.</summary>
    /// <param name="format">The model's format.</param>
    /// <param name="engine">The engine asked for.</param>
    /// <param name="precision">The precision asked for: float32 where only finite differences can run is refused naming <c>precision</c>.</param>
    /// <param name="importProblems">
    /// For an ONNX graph, what keeps the exact engines from importing it (operators, attributes; empty when it imports). Asked only
    /// when the answer depends on it — never for finite differences or TorchScript — so a caller may import (or read the file) in it.
    /// </param>
    /// <exception cref="MeasurementInputException">
    /// <c>engine</c>: taylor or autograd on an ONNX graph they cannot import, taylor on TorchScript; <c>precision</c>: float32 where
    /// finite differences run (chosen, or auto's fallback).
    /// </exception>
    public static ResolvedRuntime Resolve(ModelFormat format, EngineChoice engine, ComputePrecision precision, Func<IReadOnlyList<string>> importProblems)
    {
        ArgumentNullException.ThrowIfNull(importProblems);
        if (format == ModelFormat.TorchScript)
        {
            if (engine == EngineChoice.Taylor)
            {
                throw new MeasurementInputException("engine",
                    "the taylor engine needs a model whose structure it can read: an ONNX graph of supported operators (or the project's own exports); TorchScript is opaque to it. Use engine autograd or auto for TorchScript.");
            }
            return new ResolvedRuntime(ModelRuntime.TorchScript);
        }
        if (engine == EngineChoice.FiniteDifference)
        {
            if (precision == ComputePrecision.Float32) throw MeasurementOptions.PrecisionNeedsExactEngine("engine finite-difference was chosen");
            return new ResolvedRuntime(ModelRuntime.OnnxRuntime);
        }
        var problems = importProblems();
        if (problems.Count == 0) return new ResolvedRuntime(ModelRuntime.ImportedOnnxGraph);
        var names = string.Join("; ", problems);
        if (engine != EngineChoice.Auto)
        {
            throw new MeasurementInputException("engine",
                $"the {(engine == EngineChoice.Taylor ? "taylor" : "autograd")} engine cannot run this ONNX graph: unsupported operators {names}. "
                + $"Use engine auto or finite-difference ({OnnxJetImporter.AutoFallback}), or export the model with supported operators.");
        }
        if (precision == ComputePrecision.Float32)
        {
            throw MeasurementOptions.PrecisionNeedsExactEngine($"engine auto falls back to finite differences on this ONNX graph (unsupported operators {names})");
        }
        return new ResolvedRuntime(ModelRuntime.OnnxRuntime,
            $"engine auto chose finite-difference: the exact engines (taylor, autograd) cannot run this ONNX graph (unsupported operators {names}).");
    }

    /// <summary>
    /// Refuses what <see cref="Resolve"/> would refuse, without choosing: <paramref name="importProblems"/> is asked only where the
    /// answer can be a refusal. Engine auto in float64 never is (it runs the imported graph or falls back to finite differences), so
    /// a check at submission does not read such a graph — a graph that cannot be read then fails its job, as before.
    /// </summary>
    /// <exception cref="MeasurementInputException">As <see cref="Resolve"/>.</exception>
    public static void Check(ModelFormat format, EngineChoice engine, ComputePrecision precision, Func<IReadOnlyList<string>> importProblems)
    {
        var cannotFail = format == ModelFormat.Onnx && engine == EngineChoice.Auto && precision != ComputePrecision.Float32;
        Resolve(format, engine, precision, cannotFail ? () => [] : importProblems);
    }
}
