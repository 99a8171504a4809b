using System.ComponentModel;
using System.Globalization;
using LambdaService.Api.Contracts;
using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Measurements;

/// <summary>What a measurement differentiates (<see cref="MeasurementOptions.Target"/> holds its word).</summary>
public enum MeasurementTarget
{
    /// <summary>The cross-entropy loss (default).</summary>
    Loss,

    /// <summary>One logit.</summary>
    Logit,
}

/// <summary>An order range <c>{ min, max }</c>.</summary>
public sealed record OrderRange(
    [property: Description("Lowest order (≥ 1).")] int Min,
    [property: Description("Highest order (≤ 12).")] int Max);

/// <summary>
/// A measurement: a model and a dataset of the caller's, and options with the same names, meanings and
/// defaults as the command line's <c>measure</c> verb.
/// </summary>
public sealed record MeasurementRequest(
    [property: Description("Id of an uploaded model (POST /v1/models).")] string ModelId,
    [property: Description("Id of an uploaded dataset (POST /v1/datasets).")] string DatasetId,
    [property: Description("loss (default) or logit."), Words("target '{0}' is not known; use one of {1}.")] MeasurementTarget? Target = null,
    [property: Description("true or predicted labels for the loss (default: true when the dataset has labels)."), Words("labels '{0}' is not known; use one of {1}.")] LabelSource? Labels = null,
    [property: Description("Class whose logit is differentiated (target logit); default: each point's predicted class.")] int? Class = null,
    [property: Description("all (default), boundary or pairs."), Words("points '{0}' is not known; use one of {1}.")] PointSelection? Points = null,
    [property: Description("Band of the largest predicted probability for boundary points, default [0.45, 0.65].")] double[]? Band = null,
    [property: Description("Class pairs for pair points, e.g. [\"4-9\", \"3-8\"].")] string[]? Pairs = null,
    [property: Description("Orders, default { min: 1, max: 4 }.")] OrderRange? Orders = null,
    [property: Description("Random unit directions per point (default 4).")] int? Directions = null,
    [property: Description("At most this many points (default 256).")] int? MaxPoints = null,
    [property: Description("mean-abs (default) or rms."), Words("norm '{0}' is not known; use one of {1}.")] NormKind? Norm = null,
    [property: Description("raw (default) or taylor (divide by n!)."), Words("normalization '{0}' is not known; use one of {1}.")] Measurement.Estimation.Normalization? Normalization = null,
    [property: Description("auto (default: taylor where the model's structure is known, autograd for other TorchScript, finite-difference for ONNX graphs with unsupported operators), taylor, autograd or finite-difference."), Words("engine '{0}' is not known; use one of {1}.")] EngineChoice? Engine = null,
    [property: Description("Seed of the point subset, directions and bootstrap (default 0).")] int? Seed = null,
    [property: Description("Shape of one sample as the model takes it, e.g. [1, 28, 28].")] int[]? InputShape = null,
    [property: Description("Queue the job waits on: cpu or gpu (one of Jobs:AvailableQueues; default Jobs:DefaultQueue). Workers take jobs from the queues they list.")] string? Queue = null,
    [property: Description("Largest accepted median error estimate of the derivatives of an order in the fit, as a fraction (default 0.05 = 5%; > 0 and ≤ 100). "
        + "Only finite differences estimate their error; above it the measurement fails with a 'Derivatives unreliable' problem unless allowUnreliable is true.")] double? MaxDerivativeError = null,
    [property: Description("Return λ even when the derivative error estimates exceed maxDerivativeError: the result then has unreliable: true and a warning (default false).")] bool? AllowUnreliable = null,
    [property: Description("Where the engine runs: auto (default: CUDA where the node running the job has a device, else the CPU), cpu or cuda. "
        + "cuda on a node without a device fails the job with a 503 problem titled 'CUDA unavailable'; send such jobs to the gpu queue."), Words("device '{0}' is not known; use one of {1}.")] DeviceChoice? Device = null,
    [property: Description("Where the derivatives are taken: input (default) or a layer L of the model, e.g. act3 or /conv2/Conv_output_0. At a layer, the loss (or logit) "
        + "of the rest of the network g_L is differentiated at the activation h_L(x) along random unit directions in the layer's space (paper §7). Layers are the ONNX "
        + "graph's values that every path from the input passes through (also named by torch.onnx module scopes such as conv2) and the project's own names "
        + "(mlp: fc1, act1, …; cnn: conv1, act1, conv2, act2, pool, hidden, act3); an unknown name gets a 400 listing the valid ones. Exact engines only.")] string? At = null,
    [property: Description("Memory one pass of the engine may take, in MiB (default the service's Measurement:MemoryBudgetMb, which is an eighth of Jobs:MemoryLimitMb: 1024 at the defaults; > 0 and below Jobs:MemoryLimitMb). The lines per pass follow from it and a probe of the model's bytes per line; "
        + "the result's config echoes the plan (config.passes). A budget below one line's (for taylor: one point's lines) needs gets a 400 naming the MiB needed.")] double? MemoryBudgetMb = null,
    [property: Description("Precision of the exact engines (taylor, autograd): float64 (default) or float32. float32 runs the model, the points and directions and every "
        + "intermediate in single precision (about half the memory per line); derivative values still come back as float64 numbers and the result's precision says what ran. "
        + "Finite differences fit in float64 where the model allows: float32 with engine finite-difference, or with engine auto on an ONNX graph only finite differences "
        + "can run, gets a 400 naming precision."), Words("precision '{0}' is not known; use one of {1}.")] ComputePrecision? Precision = null)
{
    /// <summary>
    /// The measurement options this request stands for. Out-of-range values raise <see cref="MeasurementInputException"/> naming
    /// the JSON field (an unknown word never gets here: its field's <see cref="WordsAttribute"/> refuses it when the body is read).
    /// </summary>
    public MeasurementOptions ToOptions()
    {
        var options = new MeasurementOptions
        {
            Target = ClosedSet.Word(Target ?? MeasurementTarget.Loss),
            Labels = Labels,
            Class = Class,
            Points = Points ?? PointSelection.All,
            Band = Band switch
            {
                null => (0.45, 0.65),
                [var low, var high] => (low, high),
                _ => throw new MeasurementInputException("band", "band must be two numbers [low, high], e.g. [0.45, 0.65]."),
            },
            Pairs = (Pairs ?? []).Select(ParsePair).ToList(),
            MinOrder = Orders?.Min ?? 1,
            MaxOrder = Orders?.Max ?? 4,
            Directions = Directions ?? 4,
            MaxPoints = MaxPoints ?? 256,
            Norm = Norm ?? NormKind.MeanAbs,
            Normalization = Normalization ?? Measurement.Estimation.Normalization.Raw,
            Engine = Engine ?? EngineChoice.Auto,
            Seed = Seed ?? 0,
            SampleShape = InputShape,
            MaxDerivativeError = MaxDerivativeError ?? MeasurementOptions.DefaultMaxDerivativeError,
            AllowUnreliable = AllowUnreliable ?? false,
            Device = ClosedSet.Word(Device ?? DeviceChoice.Auto),
            At = At ?? Measurement.Taylor.Layers.Input,
            MemoryBudgetMb = MemoryBudgetMb ?? Measurement.Engines.LineBudget.DefaultMemoryBudgetMb,
            Precision = Precision ?? ComputePrecision.Float64,
        };
        if (InputShape is { } shape && (shape.Length == 0 || shape.Any(d => d < 1)))
        {
            throw new MeasurementInputException("inputShape", "inputShape must list positive dimensions, e.g. [1, 28, 28].");
        }
        options.Validate();
        return options;
    }

    private static (int, int) ParsePair(string text)
    {
        if (ClassPair.TryParse(text, out var a, out var b)) return (a, b);
        throw new MeasurementInputException("pairs", $"'{text}' is not a class pair; write pairs like \"4-9\".");
    }
}
