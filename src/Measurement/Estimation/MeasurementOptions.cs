namespace LambdaService.Measurement.Estimation;

/// <summary>Label source for the loss target.</summary>
public enum LabelSource
{
    /// <summary>The data's own labels.</summary>
    True,

    /// <summary>The model's predicted classes.</summary>
    Predicted,
}

/// <summary>How points are chosen.</summary>
public enum PointSelection
{
    /// <summary>Every sample (up to MaxPoints).</summary>
    All,

    /// <summary>Samples whose largest predicted probability lies inside <see cref="MeasurementOptions.Band"/>.</summary>
    Boundary,

    /// <summary>Samples whose label belongs to one of <see cref="MeasurementOptions.Pairs"/>.</summary>
    Pairs,
}

/// <summary>How derivatives are averaged into <c>v_n</c>.</summary>
public enum NormKind
{
    /// <summary><c>v_n = mean |Dⁿ_v f(x)|</c>.</summary>
    MeanAbs,

    /// <summary><c>v_n = sqrt(mean (Dⁿ_v f(x))²)</c>.</summary>
    Rms,
}

/// <summary>Whether <c>v_n</c> is divided by n! before the fit.</summary>
public enum Normalization
{
    /// <summary>Derivatives as they are (the paper's choice for networks).</summary>
    Raw,

    /// <summary>Taylor coefficients <c>Dⁿf / n!</c>; for analytic functions the slope is <c>−log R</c>.</summary>
    Taylor,
}

/// <summary>Which derivative engine runs. Declared in the order the words are listed on the wire (auto, taylor, autograd,
/// finite-difference); the numbers are those the members always had.</summary>
public enum EngineChoice
{
    /// <summary>
    /// Taylor mode where the model's structure is known (ONNX graphs of supported operators, the project's own
    /// networks), nested autograd for other TorchScript, finite differences for ONNX graphs with other operators.
    /// </summary>
    Auto = 0,

    /// <summary>Truncated Taylor series pushed through the network: every order exactly in one pass.</summary>
    Taylor = 3,

    /// <summary>Nested reverse mode (TorchScript, TorchSharp models, imported ONNX graphs).</summary>
    Autograd = 1,

    /// <summary>Forward passes along each line with a float64 polynomial fit.</summary>
    FiniteDifference = 2,
}

/// <summary>
/// Floating-point precision of the exact engines (taylor, autograd): the model's parameters, the points, the directions and every
/// intermediate of the pass are in this type; derivative values leave as float64 either way. float32 halves the memory per line and
/// its roundoff (unit roundoff 2⁻²⁴ ≈ 6·10⁻⁸, amplified per order; README, Engines: "Precision") is far below the spread of λ over
/// points on the networks measured there. Finite differences fit in float64 where the model allows and do not take this option.
/// </summary>
public enum ComputePrecision
{
    /// <summary>IEEE double precision (default).</summary>
    Float64,

    /// <summary>IEEE single precision.</summary>
    Float32,
}

/// <summary>What to measure. Defaults follow the paper (orders 1–4, 4 directions, band 0.45–0.65).</summary>
public sealed record MeasurementOptions
{
    /// <summary><c>loss</c> (cross-entropy) or <c>logit</c> (one output).</summary>
    public string Target { get; init; } = "loss";

    /// <summary>Labels for the loss: true (default when the data has labels) or predicted (default otherwise).</summary>
    public LabelSource? Labels { get; init; }

    /// <summary>Class whose logit is differentiated (target logit); default the predicted class of each point.</summary>
    public int? Class { get; init; }

    /// <summary>Point selection.</summary>
    public PointSelection Points { get; init; } = PointSelection.All;

    /// <summary>Band of the largest predicted probability for boundary points.</summary>
    public (double Low, double High) Band { get; init; } = (0.45, 0.65);

    /// <summary>Class pairs for pair points, e.g. (4, 9).</summary>
    public IReadOnlyList<(int A, int B)> Pairs { get; init; } = [];

    /// <summary>Lowest order nmin ≥ 1.</summary>
    public int MinOrder { get; init; } = 1;

    /// <summary>Highest order nmax.</summary>
    public int MaxOrder { get; init; } = 4;

    /// <summary>Random unit directions per point.</summary>
    public int Directions { get; init; } = 4;

    /// <summary>Largest number of points used (a seeded random subset when more qualify).</summary>
    public int MaxPoints { get; init; } = 256;

    /// <summary>Norm of the derivatives.</summary>
    public NormKind Norm { get; init; } = NormKind.MeanAbs;

    /// <summary>Raw derivatives or Taylor coefficients.</summary>
    public Normalization Normalization { get; init; } = Normalization.Raw;

    /// <summary>Engine.</summary>
    public EngineChoice Engine { get; init; } = EngineChoice.Auto;

    /// <summary>
    /// Precision of the exact engines (<see cref="ComputePrecision"/>, default float64). float32 with <see cref="EngineChoice.FiniteDifference"/>
    /// is refused naming <c>precision</c>; so is float32 with <see cref="EngineChoice.Auto"/> on a model only finite differences can run.
    /// </summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float64;

    /// <summary>Where the engine runs: <c>auto</c> (CUDA where this process has a device, else the CPU), <c>cpu</c> or <c>cuda</c> (see <see cref="Models.ComputeDevice"/>).</summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// Where the derivatives are taken: <c>input</c> (default: λ in input space) or the name of a layer L, when the model's
    /// structure is readable (an ONNX graph the exact engines import: a value name or a torch.onnx module scope; the project's
    /// networks: <c>fc1</c>, <c>act1</c>, …). At a layer, <c>f = ℓ ∘ g_L</c> is differentiated at <c>h_L(x)</c> along random
    /// unit directions in the layer's space (see <see cref="Taylor.ILayeredModule"/>); only the exact engines run there.
    /// </summary>
    public string At { get; init; } = Taylor.Layers.Input;

    /// <summary>Seed of the point subset, the directions and the bootstrap.</summary>
    public int Seed { get; init; }

    /// <summary>Shape of one sample as fed to the model (e.g. [1, 28, 28] for 784 CSV columns); default: the ONNX model's input shape or the data's own.</summary>
    public int[]? SampleShape { get; init; }

    /// <summary>Bootstrap resamples for the 95% interval.</summary>
    public int BootstrapResamples { get; init; } = 1000;

    /// <summary>
    /// Largest accepted median relative error estimate of an order in the fit, as a fraction (0.05 = 5%). Only engines that
    /// estimate their error (finite differences) are checked; above it the measurement fails unless <see cref="AllowUnreliable"/>.
    /// </summary>
    public double MaxDerivativeError { get; init; } = DefaultMaxDerivativeError;

    /// <summary>Return λ even when the derivative error estimates exceed <see cref="MaxDerivativeError"/>, flagged as unreliable.</summary>
    public bool AllowUnreliable { get; init; }

    /// <summary>
    /// Memory one pass of the engine may take, in MiB (default 1024): the lines per pass follow from it and a probe of the model's
    /// bytes per line (<see cref="Engines.PassPlanner"/>). Chunking changes no number, only memory and time.
    /// </summary>
    public double MemoryBudgetMb { get; init; } = Engines.LineBudget.DefaultMemoryBudgetMb;

    /// <summary>Largest <see cref="MemoryBudgetMb"/> accepted (1 TiB).</summary>
    public const double MemoryBudgetLimitMb = 1024 * 1024;

    /// <summary>Default of <see cref="MaxDerivativeError"/>: 5%.</summary>
    public const double DefaultMaxDerivativeError = 0.05;

    /// <summary>Largest <see cref="MaxDerivativeError"/> accepted (100 = 10000%, far beyond any useful derivative).</summary>
    public const double MaxDerivativeErrorLimit = 100;

    /// <summary>Largest order accepted.</summary>
    public const int OrderLimit = 12;

    /// <summary>Checks ranges; throws <see cref="MeasurementInputException"/> naming the option.</summary>
    public void Validate()
    {
        if (Target is not ("loss" or "logit")) throw new MeasurementInputException("target", $"target '{Target}' is not known; use loss or logit.");
        Models.ComputeDevice.Check(Device);
        if (string.IsNullOrWhiteSpace(At) || At.Length > 1000 || At.Any(char.IsControl))
        {
            throw new MeasurementInputException("at", "at names where the derivatives are taken: 'input' or a layer of the model (e.g. act1); it must be a non-empty name of at most 1000 characters.");
        }
        if (MinOrder < 1) throw new MeasurementInputException("orders", $"the lowest order is {MinOrder}; orders start at 1 (e.g. 1-4).");
        if (MaxOrder > OrderLimit) throw new MeasurementInputException("orders", $"the highest order is {MaxOrder}; at most {OrderLimit} is supported.");
        if (MaxOrder - MinOrder < 1) throw new MeasurementInputException("orders", $"orders {MinOrder}-{MaxOrder} give fewer than two points for the fit; use a range such as 1-4.");
        if (Directions is < 1 or > 1024) throw new MeasurementInputException("directions", $"directions must be between 1 and 1024 (got {Directions}).");
        if (MaxPoints is < 1 or > 1_000_000) throw new MeasurementInputException("maxPoints", $"maxPoints must be between 1 and 1000000 (got {MaxPoints}).");
        if (!(Band.Low >= 0 && Band.Low < Band.High && Band.High <= 1)) throw new MeasurementInputException("band", $"band {Band.Low},{Band.High} is not an interval inside [0, 1]; use e.g. 0.45,0.65.");
        if (Points == PointSelection.Pairs && Pairs.Count == 0) throw new MeasurementInputException("pairs", "points 'pairs' needs at least one class pair, e.g. 4-9.");
        if (Pairs.Any(p => p.A < 0 || p.B < 0 || p.A == p.B)) throw new MeasurementInputException("pairs", "a class pair needs two different non-negative classes, e.g. 4-9.");
        if (Class is < 0) throw new MeasurementInputException("class", $"class {Class} is negative.");
        if (BootstrapResamples is < 0 or > 100_000) throw new MeasurementInputException("bootstrap", "bootstrap resamples must be between 0 and 100000.");
        if (Precision == ComputePrecision.Float32 && Engine == EngineChoice.FiniteDifference) throw PrecisionNeedsExactEngine("engine finite-difference was chosen");
        if (!(MaxDerivativeError > 0 && MaxDerivativeError <= MaxDerivativeErrorLimit))
        {
            throw new MeasurementInputException("maxDerivativeError",
                $"maxDerivativeError must be a fraction > 0 and ≤ {MaxDerivativeErrorLimit} (got {MaxDerivativeError}); e.g. 0.05 accepts derivatives whose estimated median error is at most 5%.");
        }
        if (!(MemoryBudgetMb > 0 && MemoryBudgetMb <= MemoryBudgetLimitMb))
        {
            throw new MeasurementInputException("memoryBudgetMb",
                $"memoryBudgetMb must be > 0 and ≤ {MemoryBudgetLimitMb} MiB (got {MemoryBudgetMb}); e.g. 1024 lets one pass of the engine take about 1 GiB.");
        }
    }

    /// <summary>The refusal of <c>precision: float32</c> where finite differences run (<paramref name="why"/> says why they run).</summary>
    public static MeasurementInputException PrecisionNeedsExactEngine(string why) => new("precision",
        $"precision float32 applies to the exact engines taylor and autograd; finite differences fit in float64 where the model allows, and {why}. "
        + "Use precision float64 (the default), or engine taylor or autograd on a model they can run.");

    /// <summary><c>float64</c> or <c>float32</c>: the name of <paramref name="precision"/> in requests and results.</summary>
    public static string Name(ComputePrecision precision) => Models.TorchRuntime.PrecisionName(DType(precision));

    /// <summary>The libtorch dtype of <paramref name="precision"/>.</summary>
    public static TorchSharp.torch.ScalarType DType(ComputePrecision precision) =>
        precision == ComputePrecision.Float32 ? TorchSharp.torch.ScalarType.Float32 : TorchSharp.torch.ScalarType.Float64;
}
