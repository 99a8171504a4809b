using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Models;

namespace LambdaService.Measurement.Estimation;

/// <summary>One point of the fit: order n, <c>v_n</c> and <c>log v_n</c>.</summary>
public sealed record OrderNorm(int N, double LogNorm, double Norm, bool UsedInFit);

/// <summary>Quantiles of the per-point slopes (each point's own <c>log v_n</c> against n, averaged over its directions).</summary>
public sealed record SlopeQuantiles(int Count, double P05, double P25, double P50, double P75, double P95);

/// <summary>
/// The full configuration a measurement ran with, so that it can be repeated exactly. <see cref="At"/> is where the derivatives were
/// taken (<c>input</c> or a layer) and <see cref="LayerShape"/> the shape of one sample's activation there (null at the input);
/// <see cref="Passes"/> is how the engine split the lines into passes under <see cref="MemoryBudgetMb"/> (lines per pass, passes,
/// the estimated bytes per line and how they were measured; null for an engine given by the caller that does not say);
/// <see cref="Threads"/> the intra-op threads libtorch and ONNX Runtime had (<c>LAMBDASERVICE_THREADS</c>, <c>Jobs:ThreadsPerJob</c>);
/// <see cref="Precision"/> the precision option the exact engines ran with (<see cref="MeasurementOptions.Precision"/>, as
/// <see cref="Device"/> echoes the option): the result's own <c>precision</c> says what the derivatives were computed in, which is
/// float32 also where a TorchScript model cannot run in float64 or ONNX Runtime lacks a float64 kernel (a warning then says so).
/// </summary>
public sealed record ResolvedConfig(
    string Target,
    string Labels,
    int? Class,
    string Points,
    double[] Band,
    string[] Pairs,
    int MinOrder,
    int MaxOrder,
    int Directions,
    int MaxPoints,
    string Norm,
    string Normalization,
    string Engine,
    int Seed,
    int BootstrapResamples,
    string ModelSha256,
    string DataSha256,
    string ModelFormat,
    int[] SampleShape,
    double? FiniteDifferenceScale,
    double MaxDerivativeError,
    bool AllowUnreliable,
    string Device,
    string At,
    int[]? LayerShape,
    double MemoryBudgetMb,
    PassPlan? Passes,
    int Threads,
    string Precision);

/// <summary>
/// The curvature rate of a model on data, with everything needed to judge and repeat it. <see cref="Unreliable"/> is true
/// when the engine's own error estimate of an order in the fit exceeded <see cref="MeasurementOptions.MaxDerivativeError"/>
/// and the caller accepted the number anyway (<see cref="MeasurementOptions.AllowUnreliable"/>); a warning then says which orders.
/// </summary>
public sealed record MeasurementResult(
    double Lambda,
    double Intercept,
    double R2,
    double[] Ci95,
    IReadOnlyList<OrderNorm> Orders,
    SlopeQuantiles PerPointSlopes,
    int PointsUsed,
    int PointsEligible,
    string Engine,
    string Device,
    string Precision,
    IReadOnlyList<OrderError>? DerivativeErrors,
    bool Unreliable,
    ResolvedConfig Config,
    IReadOnlyList<string> Warnings,
    double? Accuracy,
    double? Ece,
    double? Hard20Accuracy,
    ModelSignature Model,
    double Seconds);
