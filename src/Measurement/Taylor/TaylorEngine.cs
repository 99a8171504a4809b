using LambdaService.Measurement.Engines;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Taylor-mode ("jet") engine for measurement: for each line <c>g(t) = f(x_p + t v_{p,d})</c> the jet of the line
/// is pushed through the network once (<see cref="TaylorMode"/>), giving <c>gⁿ(0) = n!·gₙ</c> for every n ≤ K
/// exactly. Same request/result layout as <see cref="AutogradEngine"/> (values <c>[point, direction, order 0..K]</c>,
/// order 0 is f itself); runs without a graph (no_grad), in float64 by default, in passes sized from <paramref name="budget"/>
/// (<see cref="PassPlanner"/>). The module must be in evaluation mode (no batch statistics, no dropout).
/// </summary>
/// <remarks>
/// A point's D lines share their value coefficient <c>f_L(x_p)</c> at every layer L: passes hold whole points (the planned
/// lines per pass are a multiple of D; a fixed size is rounded down to one where it is at least D) and go in as <see cref="Jet.PointLines"/>-style groups, so that the convolutions
/// and linear layers (and ReLU, max pooling) compute c_0 once per point (see <see cref="Jet.SharedValueRows"/>). On the paper's ReLU CNN
/// with 4 directions this takes the convolutions from 2·B to 1.25·B images.
/// </remarks>
/// <param name="model">The network as a jet module.</param>
/// <param name="sampleShape">Shape of one input sample (without the batch axis).</param>
/// <param name="dtype">Float64 (default) or Float32: the precision of the pass (parameters are cast to it).</param>
/// <param name="budget">Memory budget (or fixed size) of a pass; default <see cref="LineBudget.Default"/>.</param>
/// <param name="device">Where the module's parameters live and the pass runs (default the CPU).</param>
public sealed class TaylorEngine(IJetModule model, int[] sampleShape, ScalarType dtype = ScalarType.Float64, LineBudget? budget = null, Device? device = null) : IDerivativeEngine
{
    private readonly Device _device = device ?? CPU;

    private readonly IJetModule _model = model ?? throw new ArgumentNullException(nameof(model));
    private readonly int[] _shape = sampleShape is { Length: > 0 } && sampleShape.All(d => d > 0)
        ? sampleShape
        : throw new ArgumentException("Give the sample shape as positive lengths (e.g. [2] or [1, 28, 28]).", nameof(sampleShape));
    private readonly ScalarType _dtype = dtype is ScalarType.Float64 or ScalarType.Float32
        ? dtype
        : throw new ArgumentException($"Taylor mode computes in float64 or float32, not {dtype}.", nameof(dtype));
    private readonly LineBudget _budget = budget ?? LineBudget.Default;

    /// <inheritdoc />
    public string Name => "taylor";

    /// <inheritdoc />
    public string Device => Models.ComputeDevice.Name(_device);

    /// <summary><c>float64</c> or <c>float32</c>.</summary>
    public string Precision => Models.TorchRuntime.PrecisionName(_dtype);

    /// <inheritdoc />
    public DerivativeResult Compute(DerivativeRequest request, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var size = _shape.Aggregate(1, (a, b) => a * b);
        var lines = request.PointCount * request.DirectionsPerPoint;
        var k = request.MaxOrder;
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1, nameof(request));
        if (request.Points.Length != (long)request.PointCount * size || request.Directions.Length != (long)lines * size)
        {
            throw new ArgumentException($"Expected {request.PointCount}×{size} point values and {lines}×{size} direction values for samples of [{string.Join(",", _shape)}].", nameof(request));
        }
        // Passes hold whole points where they can (a multiple of D lines), so that each point's lines share its value coefficient.
        var d = request.DirectionsPerPoint;
        // A pass of a multiple of D lines starts at a point's first line (passes smaller than D hold fewer than D lines each).
        var (values, plan) = LinePasses.Run(request, size, _budget, d, Name,
            (x, v, cls, n) => TaylorMode.ObjectiveDerivatives(_model, x, v, n, _shape, k, request.Target, cls, _dtype, _device, n % d == 0 ? d : 1),
            progress, cancellationToken, _device);
        return new DerivativeResult(values, request.PointCount, request.DirectionsPerPoint, k, Precision, null, plan);
    }
}

/// <summary>
/// Differentiable Taylor-mode directional derivatives, for training losses built from them (Curvature Rate
/// Regularization): the counterpart of <see cref="AutogradDifferentiableEngine"/> for a network given as an
/// <see cref="IJetModule"/> (the jet rules need the network's structure, which an opaque function does not expose).
/// The graph of the result has the size of one forward pass of K+1 coefficients, where nested autograd's grows
/// about threefold per order.
/// </summary>
public sealed class TaylorDifferentiableEngine
{
    /// <summary><c>taylor</c>.</summary>
    public string Name => "taylor";

    /// <summary>
    /// For each line b: <c>D[b, n−1] = dⁿ/dtⁿ f(x_b + t v_b)</c> at t = 0, n = 1..<paramref name="maxOrder"/>, with f
    /// the objective <paramref name="target"/> of <paramref name="model"/>'s output. The result <c>[B, maxOrder]</c> has
    /// x's dtype and carries a graph to the module's parameters (and to x, v when they require grad); it is computed
    /// with grad mode enabled. Orders that vanish identically come back as zeros.
    /// </summary>
    /// <param name="model">The network (in evaluation mode).</param>
    /// <param name="target">Loss, Logit or Output.</param>
    /// <param name="classes">int64 <c>[B]</c> labels (Loss) or classes (Logit); may be null for Output.</param>
    /// <param name="x">Base points <c>[B, sample…]</c>.</param>
    /// <param name="v">Directions, same shape (not normalised here).</param>
    /// <param name="maxOrder">Highest order K ≥ 1.</param>
    public Tensor DirectionalDerivatives(IJetModule model, TargetKind target, Tensor? classes, Tensor x, Tensor v, int maxOrder)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOrder, 1);
        using var grad = enable_grad();
        return TaylorMode.DirectionalDerivatives(model, x, v, maxOrder, target, classes);
    }
}
