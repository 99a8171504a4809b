using System.ComponentModel;
using LambdaService.Api.Contracts;
using LambdaService.Api.Measurements;
using LambdaService.Measurement;
using LambdaService.Measurement.Models;
using LambdaService.Training;

namespace LambdaService.Api.Training;

/// <summary>Where a training run's samples come from: a built-in set or an uploaded dataset.</summary>
public sealed record TrainingDatasetRequest(
    [property: Description("two-moons (default when no datasetId) or mnist (the 10,000-digit set, fixed 8,000 / 2,000 split by seed)."), Words("builtin dataset '{0}' is not known; use {2}, or upload data and pass datasetId.")] BuiltinDataset? Builtin = null,
    [property: Description("Id of an uploaded dataset with labels (POST /v1/datasets), instead of builtin.")] string? DatasetId = null,
    [property: Description("Id of an uploaded dataset used as the test set; without it testFraction of datasetId is held out.")] string? TestDatasetId = null,
    [property: Description("two-moons: samples in all (default 1000).")] int? Samples = null,
    [property: Description("two-moons: Gaussian noise σ per coordinate (default 0.2).")] double? Noise = null,
    [property: Description("Probability that a training label is replaced by another class (test labels stay clean), default 0.")] double? LabelNoise = null,
    [property: Description("Fraction held out for testing (two-moons and datasetId without testDatasetId; default 0.3).")] double? TestFraction = null,
    [property: Description("Seed of the data (points, split, label noise); default the run's seed.")] int? Seed = null);

/// <summary>The network to train.</summary>
public sealed record TrainingModelRequest(
    [property: Description("mlp (default) or cnn (the paper's MNIST network; default for builtin mnist)."), Words("model kind '{0}' is not known; use {2}.")] NetworkKind? Kind = null,
    [property: Description("mlp: hidden widths, default [64, 64].")] int[]? Hidden = null,
    [property: Description("tanh (mlp default), relu (cnn default), sigmoid, softplus or gelu (mlp only)."), Words("activation '{0}' is not known; use {2}.")] ActivationChoice? Activation = null);

/// <summary>Curvature Rate Regularization settings.</summary>
public sealed record TrainingCrrRequest(
    [property: Description("Penalty weight (default 0.003).")] double? Scale = null,
    [property: Description("Penalised orders, default { min: 2, max: 3 }.")] OrderRange? Orders = null,
    [property: Description("Random unit directions per batch point (default 1).")] int? Directions = null,
    [property: Description("Penalty on every k-th step (default 1).")] int? Every = null,
    [property: Description("auto (default: fused where it applies and is the faster — small and medium MLPs on the CPU — else Taylor mode), fused (Taylor mode and its reverse in one pass of managed code: an mlp with tanh, sigmoid, softplus or relu), taylor (Taylor mode through libtorch operations) or autograd (nested reverse mode, slower; for comparison). All exact."), Words("crr engine '{0}' is not known; use {2}.")] CrrEngine? Engine = null,
    [property: Description("method crr-target: the band λ is held in, and the controller.")] TrainingCrrTargetRequest? Target = null,
    [property: Description("Where the penalty's derivatives are taken: input (default) or a layer of the network (mlp: fc1, act1, fc2, act2, …; "
        + "cnn: conv1, act1, conv2, act2, pool, hidden, act3): the loss of the rest of the network is differentiated at the layer's activation along "
        + "random unit directions in its space (paper §7). crr-target measures its monitor λ there too. An unknown name is a 400 listing the valid ones.")] string? At = null,
    [property: Description("Class pairs whose samples alone are penalised, e.g. [\"4-9\", \"3-8\", \"5-6\"] (paper §7's class-filtered experiment); default every sample.")] string[]? Pairs = null);

/// <summary>
/// The band of λ-targeting CRR (method crr-target) and its controller: every <c>every</c> steps λ is measured on
/// <c>monitorPoints</c> held-out training samples and <c>log scale += clamp(gain · e, −maxStep, maxStep)</c>, with e the distance
/// of λ outside the middle part of the band (deadband: its fraction of the band; 0 inside).
/// </summary>
public sealed record TrainingCrrTargetRequest(
    [property: Description("Lower edge of the band (with max), e.g. 1.2.")] double? Min = null,
    [property: Description("Upper edge of the band (with min), e.g. 1.5.")] double? Max = null,
    [property: Description("Centre of the band (with tolerance), instead of min and max.")] double? Value = null,
    [property: Description("Half-width of the band around value, ≥ 0.")] double? Tolerance = null,
    [property: Description("Steps between two measurements of λ (default 10).")] int? Every = null,
    [property: Description("Scale at the start (default 0.001; 0: off until λ rises above the band).")] double? InitialScale = null,
    [property: Description("Change of log scale per unit of λ outside the band (default 1).")] double? Gain = null,
    [property: Description("Largest change of log scale per measurement (default 0.5, i.e. at most ×1.65).")] double? MaxStep = null,
    [property: Description("Below this the scale is 0 (default 1e-5).")] double? MinScale = null,
    [property: Description("Largest scale (default 10).")] double? MaxScale = null,
    [property: Description("Training samples held out to measure λ on (default a fifth of the training samples, at most 200).")] int? MonitorPoints = null,
    [property: Description("The middle part of the band, as a fraction of its width, where the scale is held still (default 0.5; 1: the whole band). "
        + "Outside it the scale moves toward the band's centre.")] double? Deadband = null)
{
    /// <summary>The library's settings; a band given both ways, or half of one, names <c>crr.target</c>.</summary>
    public CrrTargetSettings ToSettings()
    {
        var d = new CrrTargetSettings();
        double min, max;
        if (Value is { } value)
        {
            if (Min is not null || Max is not null) throw new MeasurementInputException("crr.target", "give the band as { min, max } or as { value, tolerance }, not both.");
            if (Tolerance is not ({ } t and >= 0)) throw new MeasurementInputException("crr.target.tolerance", "a band given by value needs a tolerance ≥ 0, e.g. { value: 1.35, tolerance: 0.15 }.");
            (min, max) = (value - t, value + t);
        }
        else
        {
            if (Tolerance is not null) throw new MeasurementInputException("crr.target.value", "tolerance goes with value, e.g. { value: 1.35, tolerance: 0.15 }.");
            if (Min is null || Max is null) throw new MeasurementInputException("crr.target", "give the band as { min, max } (both) or as { value, tolerance }, e.g. { min: 1.2, max: 1.5 }.");
            (min, max) = (Min.Value, Max.Value);
        }
        return d with
        {
            Min = min,
            Max = max,
            Every = Every ?? d.Every,
            InitialScale = InitialScale ?? d.InitialScale,
            Gain = Gain ?? d.Gain,
            MaxStep = MaxStep ?? d.MaxStep,
            MinScale = MinScale ?? d.MinScale,
            MaxScale = MaxScale ?? d.MaxScale,
            MonitorPoints = MonitorPoints ?? d.MonitorPoints,
            Deadband = Deadband ?? d.Deadband,
        };
    }
}

/// <summary>Sharpness-Aware Minimization settings.</summary>
public sealed record TrainingSamRequest(
    [property: Description("Neighbourhood radius ρ (default 0.05).")] double? Rho = null,
    [property: Description("ASAM: perturbation scaled by |w| (default false).")] bool? Adaptive = null);

/// <summary>How λ is measured on the test set after training (defaults: the paper's Two Moons protocol).</summary>
public sealed record TrainingMeasureRequest(
    [property: Description("boundary (default) or all."), Words("measure points '{0}' is not known; use {2}.")] TrainingPoints? Points = null,
    [property: Description("Band of the largest predicted probability for boundary points, default [0.45, 0.65].")] double[]? Band = null,
    [property: Description("Orders of the fit, default { min: 1, max: 4 }.")] OrderRange? Orders = null,
    [property: Description("Random unit directions per point (default 4).")] int? Directions = null,
    [property: Description("At most this many points (default 256).")] int? MaxPoints = null,
    [property: Description("Bootstrap resamples of λ's 95% interval (default 1000).")] int? BootstrapResamples = null,
    [property: Description("Seed of the measurement; default the run's seed.")] int? Seed = null,
    [property: Description("Where λ is measured: input (default) or a layer of the network (the names crr.at takes).")] string? At = null);

/// <summary>What is recorded during and after training.</summary>
public sealed record TrainingTrackRequest(
    [property: Description("Measure λ on the test set every k epochs and after the last (0 = never, default).")] int? LambdaEvery = null,
    [property: Description("Class pairs for per-pair λ after training, e.g. [\"4-9\", \"3-8\", \"6-7\"].")] string[]? Pairs = null);

/// <summary>
/// A training run (POST /v1/training-runs). Every field is optional: <c>{}</c> trains a 2-64-64-2 tanh MLP on Two Moons
/// with plain cross-entropy for 50 epochs. The same settings as the command line's <c>train</c> verb.
/// </summary>
public sealed record TrainingRunRequest(
    TrainingDatasetRequest? Dataset = null,
    TrainingModelRequest? Model = null,
    [property: Description("baseline (default), crr, sam or crr-target (CRR whose scale holds λ inside crr.target's band)."), Words("method '{0}' is not known; use {2}.")] TrainingMethod? Method = null,
    TrainingCrrRequest? Crr = null,
    TrainingSamRequest? Sam = null,
    [property: Description("Passes over the training set (default 50).")] int? Epochs = null,
    [property: Description("Samples per batch (default 32).")] int? BatchSize = null,
    [property: Description("Adam's learning rate (default 0.001).")] double? LearningRate = null,
    [property: Description("Adam's weight decay (default 0).")] double? WeightDecay = null,
    [property: Description("Seed of initialisation, batch order, CRR directions, and the default of the data and measurement seeds (default 0).")] int? Seed = null,
    TrainingMeasureRequest? Measure = null,
    TrainingTrackRequest? Track = null,
    [property: Description("Queue the run waits on: cpu or gpu (one of Jobs:AvailableQueues; default Jobs:DefaultQueue). Workers take jobs from the queues they list.")] string? Queue = null,
    [property: Description("Where the run trains and measures: auto (default: CUDA where the node running the job has a device, else the CPU), cpu or cuda. "
        + "cuda on a node without a device fails the run with a 503 problem titled 'CUDA unavailable'; send such runs to the gpu queue."), Words("device '{0}' is not known; use auto (the default: CUDA where there is a device, else the CPU), cpu or cuda.")] DeviceChoice? Device = null)
{
    /// <summary>
    /// The library's request this body stands for, validated. Errors name the field as it is written in this body
    /// (<c>dataset.labelNoise</c>, <c>track.pairs</c>, …).
    /// </summary>
    /// <exception cref="MeasurementInputException">A value out of range or a combination that does not go together.</exception>
    public TrainingRequest ToTrainingRequest()
    {
        var d = Dataset ?? new TrainingDatasetRequest();
        if (d.Builtin is not null && d.DatasetId is not null)
        {
            throw new MeasurementInputException("dataset", "give either dataset.builtin or dataset.datasetId, not both.");
        }
        if (d.TestDatasetId is not null && d.DatasetId is null)
        {
            throw new MeasurementInputException("dataset.testDatasetId", "testDatasetId goes with an uploaded training set: pass datasetId too (built-in sets have their own test split).");
        }
        var kind = d.DatasetId is not null ? "dataset" : ClosedSet.Word(d.Builtin ?? BuiltinDataset.TwoMoons);
        if (kind != "two-moons" && (d.Samples is not null || d.Noise is not null))
        {
            throw new MeasurementInputException(d.Samples is not null ? "dataset.samples" : "dataset.noise", "samples and noise describe the generated two-moons set; leave them out for this dataset.");
        }
        if (kind == "mnist" && d.TestFraction is not null)
        {
            throw new MeasurementInputException("dataset.testFraction", "MNIST has a fixed split of 8,000 training and 2,000 test digits (chosen by dataset.seed); leave testFraction out.");
        }
        if (d.TestDatasetId is not null && d.TestFraction is not null)
        {
            throw new MeasurementInputException("dataset.testFraction", "with testDatasetId the test set is given; leave testFraction out.");
        }

        var defaults = new TrainingRequest();
        var m = Model ?? new TrainingModelRequest();
        var modelKind = ClosedSet.Word(m.Kind ?? (kind == "mnist" ? NetworkKind.Cnn : NetworkKind.Mlp));
        var crr = Crr ?? new TrainingCrrRequest();
        var sam = Sam ?? new TrainingSamRequest();
        var measure = Measure ?? new TrainingMeasureRequest();
        var track = Track ?? new TrainingTrackRequest();
        var request = defaults with
        {
            Data = defaults.Data with
            {
                Kind = kind,
                Samples = d.Samples ?? defaults.Data.Samples,
                Noise = d.Noise ?? defaults.Data.Noise,
                LabelNoise = d.LabelNoise ?? 0,
                TestFraction = d.TestFraction ?? defaults.Data.TestFraction,
                Seed = d.Seed,
            },
            Model = defaults.Model with
            {
                Kind = modelKind,
                Hidden = m.Hidden ?? defaults.Model.Hidden,
                Activation = m.Activation is { } activation ? ClosedSet.Word(activation) : modelKind == "cnn" ? "relu" : defaults.Model.Activation,
            },
            Method = Method is { } method ? ClosedSet.Word(method) : defaults.Method,
            Crr = defaults.Crr with
            {
                Scale = crr.Scale ?? defaults.Crr.Scale,
                Orders = crr.Orders is { } o ? new OrderSpan(o.Min, o.Max) : defaults.Crr.Orders,
                Directions = crr.Directions ?? defaults.Crr.Directions,
                Every = crr.Every ?? defaults.Crr.Every,
                Engine = crr.Engine is { } engine ? ClosedSet.Word(engine) : defaults.Crr.Engine,
                Target = crr.Target?.ToSettings(),
                At = crr.At ?? defaults.Crr.At,
                Pairs = crr.Pairs ?? [],
            },
            Sam = defaults.Sam with { Rho = sam.Rho ?? defaults.Sam.Rho, Adaptive = sam.Adaptive ?? false },
            Epochs = Epochs ?? defaults.Epochs,
            BatchSize = BatchSize ?? defaults.BatchSize,
            LearningRate = LearningRate ?? defaults.LearningRate,
            WeightDecay = WeightDecay ?? 0,
            Seed = Seed ?? 0,
            Measure = defaults.Measure with
            {
                Points = measure.Points is { } points ? ClosedSet.Word(points) : defaults.Measure.Points,
                Band = measure.Band ?? defaults.Measure.Band,
                Orders = measure.Orders is { } mo ? new OrderSpan(mo.Min, mo.Max) : defaults.Measure.Orders,
                Directions = measure.Directions ?? defaults.Measure.Directions,
                MaxPoints = measure.MaxPoints ?? defaults.Measure.MaxPoints,
                BootstrapResamples = measure.BootstrapResamples ?? defaults.Measure.BootstrapResamples,
                Seed = measure.Seed,
                Pairs = track.Pairs ?? [],
                At = measure.At ?? defaults.Measure.At,
            },
            Track = defaults.Track with { LambdaEvery = track.LambdaEvery ?? 0 },
            Device = Device is { } device ? ClosedSet.Word(device) : defaults.Device,
        };
        try
        {
            request.Validate();
        }
        catch (MeasurementInputException e)
        {
            throw new MeasurementInputException(HttpField(e.Field), e.Message, e);
        }
        return request;
    }

    /// <summary>The name of a library field (<c>data.labelNoise</c>, <c>measure.pairs</c>) in this body.</summary>
    public static string HttpField(string field) => field switch
    {
        "data.kind" => "dataset.builtin",
        "measure.pairs" => "track.pairs",
        _ when field.StartsWith("data.", StringComparison.Ordinal) => "dataset." + field["data.".Length..],
        _ => field,
    };
}
