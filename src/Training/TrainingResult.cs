using LambdaService.Measurement.Estimation;

namespace LambdaService.Training;

/// <summary>Progress of a run, reported after every epoch.</summary>
/// <param name="Epoch">Epochs completed (1-based).</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="TrainLoss">Mean training cross-entropy of the epoch.</param>
/// <param name="TestError">Test error after the epoch.</param>
/// <param name="Lambda">λ after the epoch, when it was tracked.</param>
public sealed record TrainingProgress(int Epoch, int Epochs, double TrainLoss, double TestError, double? Lambda)
{
    /// <summary>Fraction of the run done, 0..1.</summary>
    public double Fraction => (double)Epoch / Epochs;
}

/// <summary>One epoch of the history.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean cross-entropy over the epoch's batches (weighted by batch size), before each step.</param>
/// <param name="Penalty">Mean CRR penalty P over the epoch's penalised batches (before scaling); null for other methods.</param>
/// <param name="TestError">Test error after the epoch.</param>
/// <param name="Lambda">λ on the test set after the epoch (no bootstrap), when tracked this epoch.</param>
/// <param name="Scale">crr-target: the CRR scale in force at the end of the epoch.</param>
/// <param name="MonitorLambda">crr-target: the last λ measured on the held-out monitor samples in the epoch.</param>
/// <param name="TimeInBand">crr-target: the fraction of the epoch's measurements of λ that lay inside the band.</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double? Penalty, double TestError, double? Lambda,
    double? Scale = null, double? MonitorLambda = null, double? TimeInBand = null);

/// <summary>λ measured on the test set of a trained network (a float64 copy of it, autograd engine).</summary>
/// <param name="Lambda">Slope of log v_n against n.</param>
/// <param name="Intercept">Intercept of the fit.</param>
/// <param name="R2">R² of the fit.</param>
/// <param name="Ci95">95% bootstrap interval over points (NaN when no bootstrap ran).</param>
/// <param name="Orders">Every (n, v_n, log v_n).</param>
/// <param name="Points">Point selection that was used: <c>boundary</c>, <c>all</c> (also when the band was empty) or <c>pair a-b</c>.</param>
/// <param name="PointsUsed">Points measured.</param>
/// <param name="PointsEligible">Points that qualified.</param>
/// <param name="Warnings">The estimator's warnings.</param>
public sealed record LambdaMeasurement(double Lambda, double Intercept, double R2, double[] Ci95, IReadOnlyList<OrderNorm> Orders,
    string Points, int PointsUsed, int PointsEligible, IReadOnlyList<string> Warnings);

/// <summary>λ on the test samples of one class pair.</summary>
/// <param name="Pair">The pair, e.g. <c>4-9</c>.</param>
/// <param name="Measurement">The measurement; null when it could not be made (see the result's warnings).</param>
public sealed record PairLambda(string Pair, LambdaMeasurement? Measurement);

/// <summary>Library and machine versions a run used.</summary>
/// <param name="Service">LambdaService.Training's informational version.</param>
/// <param name="TorchSharp">TorchSharp's informational version.</param>
/// <param name="Runtime">.NET runtime version.</param>
/// <param name="Os">Operating system.</param>
/// <param name="TorchThreads">libtorch intra-op threads.</param>
public sealed record RunVersions(string Service, string TorchSharp, string Runtime, string Os, int TorchThreads);

/// <summary>The configuration a run resolved to, enough to repeat it.</summary>
/// <param name="Request">The request with every default filled in (data and measurement seeds resolved).</param>
/// <param name="Objective">The method's objective as a formula, e.g. the exact CRR penalty.</param>
/// <param name="Widths">Layer widths of the network, input first.</param>
/// <param name="SampleShape">Shape of one sample.</param>
/// <param name="Classes">Number of classes.</param>
/// <param name="TrainSamples">Training samples.</param>
/// <param name="TestSamples">Test samples.</param>
/// <param name="NoisyTrainLabels">Training labels changed by label noise.</param>
/// <param name="DataSource">Where the data came from.</param>
/// <param name="DType">Precision of training (<c>float32</c>).</param>
/// <param name="Device">Where training ran.</param>
/// <param name="Versions">Library versions.</param>
/// <param name="CrrEngine">
/// crr and crr-target: what computed the penalty's derivatives on the penalised steps — <c>fused</c> (the managed kernel),
/// <c>taylor</c> (Taylor mode through libtorch) or <c>autograd</c> (nested reverse mode); several joined by <c>+</c> (in
/// alphabetical order) when a run used more than one. <c>crr.engine: auto</c> resolves to one of them. Null for other methods.
/// </param>
public sealed record ResolvedTraining(TrainingRequest Request, string Objective, int[] Widths, int[] SampleShape, int Classes, int TrainSamples, int TestSamples,
    int NoisyTrainLabels, string DataSource, string DType, string Device, RunVersions Versions, string? CrrEngine = null);

/// <summary>The outcome of a training run.</summary>
/// <param name="Method">baseline, crr or sam.</param>
/// <param name="TestAccuracy">Accuracy on the (clean) test labels.</param>
/// <param name="TestError">1 − accuracy.</param>
/// <param name="Ece">Expected calibration error on the test set (15 bins, <see cref="Measurement.Metrics.ClassificationMetrics"/>).</param>
/// <param name="Hard20Accuracy">Accuracy on the 20% least confident test samples.</param>
/// <param name="TrainAccuracy">Accuracy on the training labels as trained on (noisy ones included).</param>
/// <param name="FinalTrainLoss">Mean training cross-entropy of the last epoch.</param>
/// <param name="Lambda">λ on the test set; null when it could not be measured (the reason is among <paramref name="Warnings"/>).</param>
/// <param name="PairLambdas">λ per requested class pair.</param>
/// <param name="TrainingSeconds">Wall-clock seconds of the training loop (epochs, without λ tracking and final measurement).</param>
/// <param name="MeasurementSeconds">Wall-clock seconds of λ tracking and the final measurement.</param>
/// <param name="History">Per-epoch records.</param>
/// <param name="Config">The resolved configuration.</param>
/// <param name="Warnings">Notes about the run (e.g. an empty boundary band).</param>
/// <param name="TimeInBand">crr-target: the fraction of all measurements of λ on the monitor samples that lay inside the band.</param>
public sealed record TrainingResult(
    string Method,
    double TestAccuracy,
    double TestError,
    double Ece,
    double Hard20Accuracy,
    double TrainAccuracy,
    double FinalTrainLoss,
    LambdaMeasurement? Lambda,
    IReadOnlyList<PairLambda> PairLambdas,
    double TrainingSeconds,
    double MeasurementSeconds,
    IReadOnlyList<EpochRecord> History,
    ResolvedTraining Config,
    IReadOnlyList<string> Warnings,
    double? TimeInBand = null);
