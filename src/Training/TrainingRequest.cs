using System.Globalization;
using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Training.Methods;

namespace LambdaService.Training;

/// <summary>An inclusive range of derivative orders <c>{ min, max }</c>.</summary>
/// <param name="Min">Lowest order (≥ 1).</param>
/// <param name="Max">Highest order (≥ Min).</param>
public sealed record OrderSpan(int Min, int Max);

/// <summary>
/// Where the samples come from. <c>two-moons</c> is generated here (<see cref="Datasets.TwoMoons"/>);
/// for other kinds (uploaded arrays, MNIST) the caller builds a <see cref="Datasets.TrainingData"/> and passes
/// it to <see cref="TrainingRun.Run(TrainingRequest, Datasets.TrainingData, IProgress{TrainingProgress}?, CancellationToken)"/>;
/// then only <see cref="Kind"/> is echoed and <see cref="LabelNoise"/>, <see cref="TestFraction"/> describe
/// what the caller applied.
/// </summary>
public sealed record DataSpec
{
    /// <summary><c>two-moons</c> (default), or a name of the caller's data (e.g. <c>dataset</c>, <c>mnist</c>).</summary>
    public string Kind { get; init; } = "two-moons";

    /// <summary>Two Moons: total samples (train + test).</summary>
    public int Samples { get; init; } = 1000;

    /// <summary>Two Moons: standard deviation σ of the Gaussian noise per coordinate.</summary>
    public double Noise { get; init; } = 0.2;

    /// <summary>Probability that a training label is replaced by a different class (test labels stay clean).</summary>
    public double LabelNoise { get; init; }

    /// <summary>Fraction of the samples held out for testing.</summary>
    public double TestFraction { get; init; } = 0.3;

    /// <summary>Seed of the data (points, split, label noise); default the run's <see cref="TrainingRequest.Seed"/>.</summary>
    public int? Seed { get; init; }
}

/// <summary>The network to train.</summary>
public sealed record ModelSpec
{
    /// <summary><c>mlp</c> (default) or <c>cnn</c> (the paper's MNIST network, for square images; layer sizes fixed, <see cref="Hidden"/> unused).</summary>
    public string Kind { get; init; } = "mlp";

    /// <summary>Hidden layer widths (MLP), default [64, 64].</summary>
    public int[] Hidden { get; init; } = [64, 64];

    /// <summary>Activation (MLP): tanh (default), relu, sigmoid, softplus or gelu.</summary>
    public string Activation { get; init; } = "tanh";

    /// <summary>
    /// The layers of this network that λ and the CRR penalty can be taken at (besides <c>input</c>): an mlp's <c>fc1</c>, <c>act1</c>, …
    /// (two per hidden layer: the affine map and its activation), the cnn's <c>conv1</c>, <c>act1</c>, <c>conv2</c>, <c>act2</c>,
    /// <c>pool</c>, <c>hidden</c>, <c>act3</c> (see <see cref="Models.Mlp.Layers"/>, <see cref="Models.Cnn.Layers"/>).
    /// </summary>
    public IReadOnlyList<string> Layers() => Kind == "cnn" ? Models.Cnn.LayerNames : Models.Mlp.LayerNames(Hidden?.Length ?? 0);

    /// <summary>Checks that <paramref name="at"/> is <c>input</c> or one of <see cref="Layers"/>; else a <see cref="MeasurementInputException"/> on <paramref name="field"/> listing them.</summary>
    public void CheckLayer(string? at, string field)
    {
        if (at == Measurement.Taylor.Layers.Input) return;
        var layers = Layers();
        if (at is null || !layers.Contains(at)) throw Measurement.Taylor.Layers.NotALayer(field, at ?? "", layers, $"this {Kind}");
    }
}

/// <summary>
/// λ-targeting CRR (method <c>crr-target</c>): the band λ is held in and the controller's constants (see
/// <see cref="Methods.LambdaBandController"/>). λ is measured on <see cref="MonitorPoints"/> training samples held out
/// from training, every <see cref="Every"/> steps, with the run's measurement settings (<c>measure</c>) and no bootstrap.
/// </summary>
public sealed record CrrTargetSettings
{
    /// <summary>Lower edge of the band.</summary>
    public double Min { get; init; } = double.NaN;

    /// <summary>Upper edge of the band (≥ Min).</summary>
    public double Max { get; init; } = double.NaN;

    /// <summary>Steps between two measurements of λ (the first is before step 0).</summary>
    public int Every { get; init; } = 10;

    /// <summary>The scale at the start (0: off until λ rises above the band).</summary>
    public double InitialScale { get; init; } = 0.001;

    /// <summary>Change of log s per unit of λ outside the band.</summary>
    public double Gain { get; init; } = 1.0;

    /// <summary>
    /// The part of the band, centred, where the controller holds the scale still, as a fraction of the band's width (default 0.5: the
    /// middle half; 1: the whole band). Outside it the scale moves toward the band's centre, so λ settles inside the band rather than on
    /// its edge, where measurement noise would put it out half of the time. Time in band always counts the whole band.
    /// </summary>
    public double Deadband { get; init; } = 0.5;

    /// <summary>Largest change of log s in one update (default 0.5: at most ×1.65 or ÷1.65).</summary>
    public double MaxStep { get; init; } = 0.5;

    /// <summary>Below this the scale becomes 0 (off); a restart from 0 begins here.</summary>
    public double MinScale { get; init; } = 1e-5;

    /// <summary>Largest scale.</summary>
    public double MaxScale { get; init; } = 10;

    /// <summary>Training samples held out for the measurements of λ (default: a fifth of the training samples, at most 200, at least 8).</summary>
    public int? MonitorPoints { get; init; }

    /// <summary>The monitor samples for <paramref name="trainCount"/> training samples: <see cref="MonitorPoints"/>, else min(200, max(8, trainCount / 5)).</summary>
    public int ResolvedMonitorPoints(int trainCount) => MonitorPoints ?? Math.Min(200, Math.Max(8, trainCount / 5));

    /// <summary>Checks every field; throws <see cref="MeasurementInputException"/> naming <c>crr.target.*</c>.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Min) || !double.IsFinite(Max)) throw new MeasurementInputException("crr.target", "method crr-target needs a band: crr.target { min, max } (or { value, tolerance }), e.g. { min: 1.2, max: 1.5 }.");
        if (Min > Max) throw new MeasurementInputException("crr.target", $"the band's min {Min} is above its max {Max}; give min ≤ max.");
        if (Every is < 1 or > 1_000_000) throw new MeasurementInputException("crr.target.every", $"every must be between 1 and 1000000 steps (got {Every}).");
        if (!(MinScale > 0) || !double.IsFinite(MinScale)) throw new MeasurementInputException("crr.target.minScale", $"minScale must be a finite number > 0 (got {MinScale}); e.g. 1e-5.");
        if (!(MaxScale >= MinScale) || !double.IsFinite(MaxScale)) throw new MeasurementInputException("crr.target.maxScale", $"maxScale must be finite and ≥ minScale {MinScale} (got {MaxScale}).");
        if (!(InitialScale >= 0) || InitialScale > MaxScale) throw new MeasurementInputException("crr.target.initialScale", $"initialScale must lie in [0, maxScale {MaxScale}] (got {InitialScale}).");
        if (!(Deadband is >= 0 and <= 1)) throw new MeasurementInputException("crr.target.deadband", $"deadband is a fraction of the band's width in [0, 1] (got {Deadband}); e.g. 0.5 holds still in the middle half.");
        if (!(Gain > 0) || !double.IsFinite(Gain)) throw new MeasurementInputException("crr.target.gain", $"gain must be a finite number > 0 (got {Gain}); e.g. 1.");
        if (!(MaxStep > 0) || MaxStep > 5) throw new MeasurementInputException("crr.target.maxStep", $"maxStep (largest change of log scale per update) must lie in (0, 5] (got {MaxStep}); e.g. 0.5.");
        if (MonitorPoints is { } m && m is < 8 or > 100_000) throw new MeasurementInputException("crr.target.monitorPoints", $"monitorPoints must be between 8 and 100000 (got {MonitorPoints}).");
    }
}

/// <summary>Curvature Rate Regularization settings (see <see cref="Methods.CrrMethod"/>).</summary>
public sealed record CrrSettings
{
    /// <summary>Penalty weight (paper: 0.002–0.01 on Two Moons; 0.01–200 on MNIST).</summary>
    public double Scale { get; init; } = 0.003;

    /// <summary>Penalised orders, default 2–3 (the paper's Two Moons penalty).</summary>
    public OrderSpan Orders { get; init; } = new(2, 3);

    /// <summary>Random unit directions per batch point.</summary>
    public int Directions { get; init; } = 1;

    /// <summary>The penalty is applied on every k-th step.</summary>
    public int Every { get; init; } = 1;

    /// <summary>
    /// Derivative engine of the penalty, all exact: <c>auto</c> (default: <c>fused</c> where it applies and is the faster — on the CPU, up to
    /// <see cref="CrrMethod.AutoFusedWorkLimit"/> multiply-adds a pass — else <c>taylor</c> for the project's mlp and cnn), <c>fused</c> (Taylor mode and its reverse in one pass of managed code: an mlp with tanh, sigmoid, softplus or relu,
    /// at the input or a layer), <c>taylor</c> (Taylor mode through libtorch operations and autograd) or
    /// <c>autograd</c> (nested reverse mode).
    /// </summary>
    public string Engine { get; init; } = "auto";

    /// <summary>The band and controller of method <c>crr-target</c> (null for the other methods).</summary>
    public CrrTargetSettings? Target { get; init; }

    /// <summary>
    /// Where the penalty's derivatives are taken: <c>input</c> (default, the paper's CRR) or a layer L of the network
    /// (<see cref="ModelSpec.Layers"/>): the loss of the rest of the network is differentiated at L's activation along random unit
    /// directions in L's space (paper §7). With crr-target, the monitor's λ is measured there too.
    /// </summary>
    public string At { get; init; } = Measurement.Taylor.Layers.Input;

    /// <summary>
    /// Class pairs whose samples alone are penalised, e.g. ["4-9", "3-8", "5-6"] (paper §7's class-filtered experiment): the penalty
    /// averages over the batch points whose (training) label is a class of one of the pairs; empty (default) for every point.
    /// </summary>
    public string[] Pairs { get; init; } = [];

    /// <summary>The classes <see cref="Pairs"/> name, or null when every point is penalised.</summary>
    public int[]? PenalisedClasses() => Pairs is { Length: > 0 }
        ? [.. Pairs.Select(p => TrainingRequest.ParsePair(p, "crr.pairs")).SelectMany(p => new[] { p.A, p.B }).Distinct().Order()]
        : null;
}

/// <summary>Sharpness-Aware Minimization settings (see <see cref="Methods.SamMethod"/>).</summary>
public sealed record SamSettings
{
    /// <summary>Neighbourhood radius ρ &gt; 0.</summary>
    public double Rho { get; init; } = 0.05;

    /// <summary>ASAM (perturbation scaled by |w|) instead of SAM.</summary>
    public bool Adaptive { get; init; }
}

/// <summary>How λ is measured on the test set (defaults: the paper's Two Moons protocol).</summary>
public sealed record LambdaSettings
{
    /// <summary><c>boundary</c> (default: test points whose largest predicted probability lies in <see cref="Band"/>, all test points when none does) or <c>all</c>.</summary>
    public string Points { get; init; } = "boundary";

    /// <summary>Band of the largest predicted probability, default [0.45, 0.65].</summary>
    public double[] Band { get; init; } = [0.45, 0.65];

    /// <summary>Orders of the fit, default 1–4.</summary>
    public OrderSpan Orders { get; init; } = new(1, 4);

    /// <summary>Random unit directions per point.</summary>
    public int Directions { get; init; } = 4;

    /// <summary>At most this many points (a seeded subset).</summary>
    public int MaxPoints { get; init; } = 256;

    /// <summary>Class pairs for per-pair λ (test samples of either class), e.g. ["4-9"]; empty for none.</summary>
    public string[] Pairs { get; init; } = [];

    /// <summary>Where λ is measured: <c>input</c> (default) or a layer of the network (<see cref="ModelSpec.Layers"/>).</summary>
    public string At { get; init; } = Measurement.Taylor.Layers.Input;

    /// <summary>Bootstrap resamples of the final λ's 95% interval (tracked λ uses none).</summary>
    public int BootstrapResamples { get; init; } = 1000;

    /// <summary>Seed of the measurement's points, directions and bootstrap; default the run's seed.</summary>
    public int? Seed { get; init; }
}

/// <summary>What is recorded during training.</summary>
public sealed record TrackSettings
{
    /// <summary>Measure λ on the test set every k epochs (and after the last); 0 (default) for never.</summary>
    public int LambdaEvery { get; init; }
}

/// <summary>
/// A training run: data, network, method, optimiser (Adam) and measurement. Every field has a default, so
/// <c>{}</c> trains a 2-64-64-2 tanh MLP on Two Moons with plain cross-entropy. Field names in errors are the
/// JSON paths (camelCase), e.g. <c>crr.scale</c>.
/// </summary>
public sealed record TrainingRequest
{
    /// <summary>The data.</summary>
    public DataSpec Data { get; init; } = new();

    /// <summary>The network.</summary>
    public ModelSpec Model { get; init; } = new();

    /// <summary><c>baseline</c> (default), <c>crr</c> or <c>sam</c>.</summary>
    public string Method { get; init; } = "baseline";

    /// <summary>CRR settings (used when <see cref="Method"/> is crr).</summary>
    public CrrSettings Crr { get; init; } = new();

    /// <summary>SAM settings (used when <see cref="Method"/> is sam).</summary>
    public SamSettings Sam { get; init; } = new();

    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 50;

    /// <summary>Samples per batch (the last batch of an epoch may be smaller).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Adam's weight decay (L2 term <c>wd·w</c> added to the gradient, as torch.optim.Adam).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Seed of the initialisation (torch.manual_seed), batch order, CRR directions, and the default of the data and measurement seeds.</summary>
    public int Seed { get; init; }

    /// <summary>λ measurement on the test set.</summary>
    public LambdaSettings Measure { get; init; } = new();

    /// <summary>What is recorded per epoch.</summary>
    public TrackSettings Track { get; init; } = new();

    /// <summary>Where training runs: <c>auto</c> (CUDA where this process has a device, else the CPU), <c>cpu</c> or <c>cuda</c> (see <see cref="Measurement.Models.ComputeDevice"/>).</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Largest accepted CRR order.</summary>
    public const int CrrOrderLimit = 8;

    /// <summary>Checks every field; throws <see cref="MeasurementInputException"/> naming the first one at fault.</summary>
    public void Validate()
    {
        if (Data is null) throw new MeasurementInputException("data", "data is missing.");
        if (Model is null) throw new MeasurementInputException("model", "model is missing.");
        if (Crr is null) throw new MeasurementInputException("crr", "crr is missing.");
        if (Sam is null) throw new MeasurementInputException("sam", "sam is missing.");
        if (Measure is null) throw new MeasurementInputException("measure", "measure is missing.");
        if (Track is null) throw new MeasurementInputException("track", "track is missing.");

        if (Method is not ("baseline" or "crr" or "sam" or "crr-target")) throw new MeasurementInputException("method", $"method '{Method}' is not known; use baseline, crr, sam or crr-target.");
        if (Method == "crr-target")
        {
            if (Crr.Target is null) throw new MeasurementInputException("crr.target", "method crr-target needs a band: crr.target { min, max } (or { value, tolerance }), e.g. { min: 1.2, max: 1.5 }.");
            Crr.Target.Validate();
        }
        else if (Crr.Target is not null)
        {
            throw new MeasurementInputException("crr.target", $"crr.target goes with method crr-target (this request's method is {Method}); remove it or set method crr-target.");
        }
        Measurement.Models.ComputeDevice.Check(Device);
        if (Epochs is < 1 or > 100_000) throw new MeasurementInputException("epochs", $"epochs must be between 1 and 100000 (got {Epochs}).");
        if (BatchSize is < 1 or > 1_000_000) throw new MeasurementInputException("batchSize", $"batchSize must be between 1 and 1000000 (got {BatchSize}).");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new MeasurementInputException("learningRate", $"learningRate must be a finite number > 0 (got {LearningRate}); e.g. 0.001.");
        if (!(WeightDecay >= 0) || !double.IsFinite(WeightDecay)) throw new MeasurementInputException("weightDecay", $"weightDecay must be a finite number ≥ 0 (got {WeightDecay}).");

        if (Data.Kind == "two-moons")
        {
            if (Data.Samples is < 4 or > 10_000_000) throw new MeasurementInputException("data.samples", $"samples must be between 4 and 10000000 (got {Data.Samples}).");
            if (!(Data.Noise >= 0) || !double.IsFinite(Data.Noise)) throw new MeasurementInputException("data.noise", $"noise is a standard deviation: a finite number ≥ 0 (got {Data.Noise}); e.g. 0.2.");
        }
        if (!(Data.LabelNoise >= 0 && Data.LabelNoise <= 1)) throw new MeasurementInputException("data.labelNoise", $"labelNoise is a probability between 0 and 1 (got {Data.LabelNoise}); e.g. 0.3.");
        if (!(Data.TestFraction > 0 && Data.TestFraction < 1)) throw new MeasurementInputException("data.testFraction", $"testFraction must lie strictly between 0 and 1 (got {Data.TestFraction}); e.g. 0.3.");

        if (Model.Kind is not ("mlp" or "cnn")) throw new MeasurementInputException("model.kind", $"model kind '{Model.Kind}' is not known; use mlp or cnn.");
        if (Model.Hidden is null || Model.Hidden.Length > 16 || Model.Hidden.Any(w => w is < 1 or > 4096))
        {
            throw new MeasurementInputException("model.hidden", "hidden lists up to 16 layer widths between 1 and 4096, e.g. [64, 64].");
        }
        if (Model.Activation is not ("tanh" or "relu" or "sigmoid" or "softplus" or "gelu"))
        {
            throw new MeasurementInputException("model.activation", $"activation '{Model.Activation}' is not known; use tanh, relu, sigmoid, softplus or gelu.");
        }

        if (!(Crr.Scale >= 0) || !double.IsFinite(Crr.Scale)) throw new MeasurementInputException("crr.scale", $"crr scale must be a finite number ≥ 0 (got {Crr.Scale}); e.g. 0.003.");
        if (Crr.Orders is null || Crr.Orders.Min < 1 || Crr.Orders.Max > CrrOrderLimit || Crr.Orders.Min > Crr.Orders.Max)
        {
            throw new MeasurementInputException("crr.orders", $"crr orders must satisfy 1 ≤ min ≤ max ≤ {CrrOrderLimit} (got {Crr.Orders?.Min}-{Crr.Orders?.Max}); e.g. {{ min: 2, max: 3 }}.");
        }
        if (Crr.Directions is < 1 or > 64) throw new MeasurementInputException("crr.directions", $"crr directions must be between 1 and 64 (got {Crr.Directions}).");
        if (Crr.Engine is not ("auto" or "fused" or "taylor" or "autograd")) throw new MeasurementInputException("crr.engine", $"crr engine '{Crr.Engine}' is not known; use auto, fused, taylor or autograd.");
        if (Crr.Engine == "fused" && (Model.Kind != "mlp" || !MlpCrrKernel<float>.Supports(Model.Activation)))
        {
            throw new MeasurementInputException("crr.engine",
                "crr engine 'fused' computes the penalty of an mlp with activation tanh, sigmoid, softplus or relu; "
                + $"this run has a {Model.Kind}{(Model.Kind == "mlp" ? $" with {Model.Activation}" : "")}. Use crr engine auto or taylor.");
        }
        if (Crr.Every is < 1 or > 1_000_000) throw new MeasurementInputException("crr.every", $"crr every must be ≥ 1 (got {Crr.Every}); 1 applies the penalty on every step.");
        Model.CheckLayer(Crr.At, "crr.at");
        if (Crr.Pairs is null) throw new MeasurementInputException("crr.pairs", "crr pairs must be a list, e.g. [\"4-9\", \"3-8\"].");
        _ = Crr.PenalisedClasses();

        if (!(Sam.Rho > 0) || !double.IsFinite(Sam.Rho)) throw new MeasurementInputException("sam.rho", $"sam rho must be a finite number > 0 (got {Sam.Rho}); e.g. 0.05.");

        if (Measure.Points is not ("boundary" or "all")) throw new MeasurementInputException("measure.points", $"measure points '{Measure.Points}' is not known; use boundary or all.");
        Model.CheckLayer(Measure.At, "measure.at");
        if (Track.LambdaEvery < 0) throw new MeasurementInputException("track.lambdaEvery", $"lambdaEvery must be ≥ 0 (got {Track.LambdaEvery}); 0 turns tracking off.");
        _ = MeasurementOptions(null);
    }

    /// <summary>
    /// The measurement options for the final λ (or a tracked one when <paramref name="bootstrap"/> is 0), over
    /// all points or the band; validated with the fields renamed to their JSON paths.
    /// </summary>
    internal MeasurementOptions MeasurementOptions(int? bootstrap, PointSelection? points = null, (int, int)? pair = null)
    {
        if (Measure.Band is not [var low, var high]) throw new MeasurementInputException("measure.band", "band must be two numbers [low, high], e.g. [0.45, 0.65].");
        if (Measure.Orders is null) throw new MeasurementInputException("measure.orders", "orders are missing; e.g. { min: 1, max: 4 }.");
        foreach (var text in Measure.Pairs ?? throw new MeasurementInputException("measure.pairs", "pairs must be a list, e.g. [\"0-1\"].")) _ = ParsePair(text);
        var options = new MeasurementOptions
        {
            Target = "loss",
            Labels = LabelSource.True,
            Points = points ?? (Measure.Points == "all" ? PointSelection.All : PointSelection.Boundary),
            Band = (low, high),
            Pairs = pair is { } p ? [p] : [],
            MinOrder = Measure.Orders.Min,
            MaxOrder = Measure.Orders.Max,
            Directions = Measure.Directions,
            MaxPoints = Measure.MaxPoints,
            Seed = Measure.Seed ?? Seed,
            BootstrapResamples = bootstrap ?? Measure.BootstrapResamples,
            At = Measure.At,
        };
        try
        {
            options.Validate();
        }
        catch (MeasurementInputException e)
        {
            throw new MeasurementInputException("measure." + (e.Field == "bootstrap" ? "bootstrapResamples" : e.Field), e.Message, e);
        }
        return options;
    }

    /// <summary>Parses a class pair written <c>"a-b"</c>; an error names <paramref name="field"/>.</summary>
    internal static (int A, int B) ParsePair(string text, string field = "measure.pairs")
    {
        if (ClassPair.TryParse(text, out var a, out var b) && a != b) return (a, b);
        throw new MeasurementInputException(field, $"'{text}' is not a pair of two different classes; write pairs like \"0-1\" or \"4-9\".");
    }
}
