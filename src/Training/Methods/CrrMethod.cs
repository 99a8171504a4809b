using System.Globalization;
using System.Numerics;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Taylor;
using LambdaService.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Methods;

/// <summary>
/// Curvature Rate Regularization (paper §5.2, §5.4–5.6): cross-entropy plus a penalty on the input-space
/// directional derivatives of the per-sample loss.
/// </summary>
/// <remarks>
/// On a batch of B points <c>(x_i, y_i)</c>, with <c>ℓ_i(x) = CE(f_w(x), y_i) = log Σ_k exp f_w(x)_k − f_w(x)_{y_i}</c>,
/// D unit directions <c>v_{i,d}</c> per point (independent Gaussian components, normalised; a fresh draw each
/// penalised step from the method's own seeded stream) and orders <c>n = nmin..nmax</c>:
/// <code>
/// Dⁿ_v ℓ_i(x_i) = dⁿ/dtⁿ ℓ_i(x_i + t v)|_{t=0}
/// P(w)          = Σ_{n=nmin}^{nmax} (1/(B·D)) Σ_{i=1}^{B} Σ_{d=1}^{D} (Dⁿ_{v_{i,d}} ℓ_i(x_i))²
/// J(w)          = mean_i CE(f_w(x_i), y_i) + scale · P(w)     on steps s with s mod every = 0
/// J(w)          = mean_i CE(f_w(x_i), y_i)                    on the other steps
/// </code>
/// and one optimizer step along <c>∇_w J</c>. The derivatives come from an
/// engine: for the project's <see cref="Mlp"/> (tanh, sigmoid, softplus, ReLU; penalty at the input, every point) the fused kernel
/// <see cref="MlpCrrKernel{T}"/>, which computes J and <c>∇_w J</c> in one pass of managed code; Taylor mode
/// (<see cref="TaylorDifferentiableEngine"/>, libtorch operations differentiated by autograd) for the project's other networks;
/// nested autograd for any other — all exact, so <c>∇_w P</c> is exact.
/// The penalty's forward passes run with the network in evaluation mode (lines must be independent: no
/// batch statistics); the mode is restored afterwards. Labels are the training labels as given (noisy ones
/// included).
/// </remarks>
public sealed class CrrMethod : ITrainingMethod
{
    private readonly Random directionStream;
    private readonly IDifferentiableDerivativeEngine? engine;
    private readonly bool taylor;
    private static readonly TaylorDifferentiableEngine TaylorEngine = new();

    /// <summary>Creates the method.</summary>
    /// <param name="scale">Penalty weight ≥ 0.</param>
    /// <param name="minOrder">Lowest order nmin ≥ 1.</param>
    /// <param name="maxOrder">Highest order nmax ≥ nmin.</param>
    /// <param name="directions">Directions D ≥ 1 per point.</param>
    /// <param name="every">The penalty is added on every <paramref name="every"/>-th step (steps 0, k, 2k, …).</param>
    /// <param name="directionStream">Seeded source of the directions.</param>
    /// <param name="engine">
    /// Derivative engine for networks given as a function; null (default) means Taylor mode for networks with jet rules
    /// (<see cref="IJetModule"/>: the project's <c>mlp</c> and <c>cnn</c>) and <see cref="DifferentiableDerivatives.Default"/>
    /// (nested autograd) for any other.
    /// </param>
    /// <param name="taylor">With a null <paramref name="engine"/>: use Taylor mode where the network allows it (default true).</param>
    /// <param name="at">
    /// <c>input</c> (default) or a layer L of the network (<see cref="ILayeredModule"/>): the penalty then differentiates the loss of the
    /// rest of the network at L's activation, along unit directions in L's space.
    /// </param>
    /// <param name="classes">When given, only batch points whose label is one of these classes are penalised (paper §7's class filter).</param>
    /// <param name="fused">
    /// The fused kernel (<see cref="MlpCrrKernel{T}"/>) for penalised steps: null (default) where it applies and pays — an <see cref="Mlp"/> it has
    /// rules for, on the CPU, in Taylor mode, parameters in the batch's dtype, and a step's arithmetic
    /// within <see cref="AutoFusedWorkLimit"/>; true: always (on any device, computed on the host), an error where it does not apply; false:
    /// never (Taylor mode through libtorch operations).
    /// </param>
    public CrrMethod(double scale, int minOrder, int maxOrder, int directions, int every, Random directionStream, IDifferentiableDerivativeEngine? engine = null,
        bool taylor = true, string at = Layers.Input, IReadOnlyList<int>? classes = null, bool? fused = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(at);
        if (classes is { Count: 0 }) throw new ArgumentException("Give at least one penalised class, or null for all.", nameof(classes));
        At = at;
        Classes = classes is null ? null : [.. classes.Distinct().Order()];
        if (!(scale >= 0) || !double.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "Scale must be finite and ≥ 0.");
        if (minOrder < 1 || maxOrder < minOrder) throw new ArgumentOutOfRangeException(nameof(maxOrder), $"Orders {minOrder}-{maxOrder} are not a range within 1..∞.");
        ArgumentOutOfRangeException.ThrowIfLessThan(directions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(every, 1);
        ArgumentNullException.ThrowIfNull(directionStream);
        Scale = scale;
        MinOrder = minOrder;
        MaxOrder = maxOrder;
        Directions = directions;
        Every = every;
        this.directionStream = directionStream;
        this.engine = engine;
        this.taylor = taylor && engine is null;
        this.fused = this.taylor ? fused : false;
        if (fused == true && !this.taylor) throw new ArgumentException("The fused kernel is Taylor mode: it cannot run with another engine.", nameof(fused));
    }

    private readonly bool? fused;
    private object? fusedState;

    /// <summary>Penalty weight (finite, ≥ 0); <see cref="CrrTargetMethod"/> changes it between steps.</summary>
    public double Scale
    {
        get;
        set => field = value >= 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Scale must be finite and ≥ 0.");
    }

    /// <summary>Lowest penalised order.</summary>
    public int MinOrder { get; }

    /// <summary>Highest penalised order.</summary>
    public int MaxOrder { get; }

    /// <summary>Directions per point.</summary>
    public int Directions { get; }

    /// <summary>Penalty period in steps.</summary>
    public int Every { get; }

    /// <summary>Where the derivatives are taken: <c>input</c> or a layer's name.</summary>
    public string At { get; }

    /// <summary>The classes whose points are penalised, or null for all.</summary>
    public int[]? Classes { get; }

    /// <summary>Name of the derivative engine: <c>taylor</c> for jet-capable networks unless an engine was given or Taylor mode was turned off.</summary>
    public string Engine => engine?.Name ?? (taylor ? TaylorEngine.Name : DifferentiableDerivatives.Default.Name);

    /// <summary>
    /// The engine the penalised steps used so far, as <see cref="StepEngine"/> names them (several joined by <c>+</c>), or <see cref="Engine"/>
    /// before the first penalised step.
    /// </summary>
    public string EngineUsed => used.Count == 0 ? Engine : string.Join("+", used);

    private readonly SortedSet<string> used = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public string Name => "crr";

    /// <inheritdoc />
    public string Formula => string.Create(CultureInfo.InvariantCulture,
        $"J(w) = mean_i CE(f_w(x_i), y_i) + {Scale:R} * P(w) on steps s with s mod {Every} = 0; P(w) = sum_{{n={MinOrder}..{MaxOrder}}} mean_{{i{Filter}, d=1..{Directions}}} {Lines}; derivatives by {EngineUsed}");

    private string Lines => Layers.IsInput(At)
        ? "(d^n/dt^n CE(f_w(x_i + t v_id), y_i) at t=0)^2, v_id random unit directions"
        : $"(d^n/dt^n CE(g_w(h_w(x_i) + t u_id), y_i) at t=0)^2, h_w(x) the activation of layer {At}, g_w the rest of the network, u_id random unit directions in {At}'s space";

    private string Filter => Classes is null ? "" : $": y_i in {{{string.Join(",", Classes)}}}";

    /// <summary>
    /// Draws the directions for a batch of <paramref name="batch"/> points: <c>[batch·D, sample…]</c>, point-major
    /// (the D directions of point 0 first), from the method's stream.
    /// </summary>
    public Tensor DrawDirections(long batch, long[] sampleShape, ScalarType dtype, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        var size = (int)sampleShape.Aggregate(1L, (a, b) => a * b);
        var values = DrawDirectionValues(batch, size);
        // `raw` is referenced until the conversion returns: an unreferenced temporary could be finalized during it.
        using var raw = tensor(values, [batch * Directions, .. sampleShape]);
        return raw.to(dtype, device ?? CPU);
    }

    /// <summary>The values of <see cref="DrawDirections"/>: <c>batch·D</c> unit vectors of <paramref name="size"/> numbers, row-major.</summary>
    private float[] DrawDirectionValues(long batch, int size)
    {
        var lines = (int)batch * Directions;
        var values = new float[(long)lines * size];
        for (var l = 0; l < lines; l++) Seeds.UnitVector(directionStream, values.AsSpan(l * size, size));
        return values;
    }

    /// <summary>
    /// The penalty <c>P(w)</c> of the remarks for batch (<paramref name="x"/>, <paramref name="y"/>) and given
    /// directions <paramref name="v"/> (<c>[B·D, sample…]</c>, point-major; at a layer, <c>[B·D, activation…]</c> in the layer's
    /// space), as a scalar tensor differentiable with respect to the network's parameters. Every given point is penalised
    /// (the class filter acts in <see cref="Step"/>).
    /// </summary>
    public Tensor Penalty(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(v);
        if (v.shape[0] != x.shape[0] * Directions) throw new ArgumentException($"Expected {x.shape[0] * Directions} directions, got {v.shape[0]}.", nameof(v));
        return InEvaluation(network, () => LinePenalty(network, LineStarts(network, x), y, v));
    }

    /// <summary>
    /// The penalty of the points of batch (<paramref name="x"/>, <paramref name="y"/>) that it applies to (all, or those of
    /// <see cref="Classes"/>) with fresh directions (in the input's space, or in layer <see cref="At"/>'s); null when no point of
    /// the batch is penalised.
    /// </summary>
    private Tensor? BatchPenalty(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y)
    {
        if (Classes is not null)
        {
            using var allowed = tensor(Classes.Select(c => (long)c).ToArray()).to(y.device);
            using var mask = isin(y, allowed);
            using var rows = mask.nonzero().flatten();
            if (rows.shape[0] == 0) return null;
            x = x.index_select(0, rows);
            y = y.index_select(0, rows);
        }
        return InEvaluation(network, () =>
        {
            // The directions live where the lines start (the input's or the layer's space), so they are drawn after it is known.
            var starts = LineStarts(network, x);
            return LinePenalty(network, starts, y, DrawDirections(starts.shape[0], starts.shape[1..], starts.dtype, starts.device));
        });
    }

    /// <summary>Where the lines start: x at the input; at layer L, <c>h_L(x)</c> (keeping its graph to the parameters before L).</summary>
    private Tensor LineStarts(nn.Module<Tensor, Tensor> network, Tensor x) => Layers.IsInput(At) ? x : Cut(network).Layers.ForwardTo(At, x);

    /// <summary>
    /// <c>P(w)</c> for lines from <paramref name="starts"/> (<c>[B, …]</c>: points, or their activations at <see cref="At"/>) along
    /// <paramref name="v"/> (<c>[B·D, …]</c>, point-major), with the network in evaluation mode.
    /// </summary>
    private Tensor LinePenalty(nn.Module<Tensor, Tensor> network, Tensor starts, Tensor y, Tensor v)
    {
        if (!Layers.IsInput(At) && (v.shape[0] != starts.shape[0] * Directions || !v.shape[1..].SequenceEqual(starts.shape[1..])))
        {
            throw new ArgumentException($"Directions at layer {At} need the shape [{starts.shape[0] * Directions}, {string.Join(",", starts.shape[1..])}], not [{string.Join(",", v.shape)}].", nameof(v));
        }
        using var scope = NewDisposeScope();
        var xr = starts.repeat_interleave(Directions, 0);
        var yr = y.repeat_interleave(Directions, 0);
        var general = engine ?? DifferentiableDerivatives.Default;
        Tensor d;
        if (Layers.IsInput(At))
        {
            d = taylor && network is IJetModule jet
                ? TaylorEngine.DirectionalDerivatives(jet, TargetKind.Loss, yr, xr, v, MaxOrder)
                : general.DirectionalDerivatives(input => Objective.Evaluate(TargetKind.Loss, network.call(input), yr), xr, v, MaxOrder);
        }
        else
        {
            var cut = Cut(network);
            d = taylor && network is IJetModule
                ? TaylorEngine.DirectionalDerivatives(cut.Suffix, TargetKind.Loss, yr, xr, v, MaxOrder)
                : general.DirectionalDerivatives(h => Objective.Evaluate(TargetKind.Loss, cut.Layers.ForwardFrom(At, h), yr), xr, v, MaxOrder);
        }
        return Penalty(d, orderAxis: 1, firstOrder: 1).MoveToOuterDisposeScope();
    }

    private Tensor Penalty(Tensor derivatives, int orderAxis, int firstOrder) => Penalty(derivatives, orderAxis, firstOrder, MinOrder, MaxOrder);

    /// <summary>
    /// <c>P = Σ_{n=nmin..nmax} mean_lines (dⁿ/dtⁿ ℓ)²</c> from a matrix of derivatives along the lines whose axis
    /// <paramref name="orderAxis"/> (0 or 1) holds the orders from <paramref name="firstOrder"/> up and whose other axis holds the lines.
    /// </summary>
    public static Tensor Penalty(Tensor derivatives, int orderAxis, int firstOrder, int minOrder, int maxOrder)
    {
        ArgumentNullException.ThrowIfNull(derivatives);
        return derivatives.narrow(orderAxis, minOrder - firstOrder, maxOrder - minOrder + 1).square().mean([1 - orderAxis]).sum();
    }

    /// <summary>Runs <paramref name="penalty"/> with the network in evaluation mode (lines must be independent), restoring its mode.</summary>
    private static T InEvaluation<T>(nn.Module network, Func<T> penalty)
    {
        var wasTraining = network.training;
        if (wasTraining) network.eval();
        try
        {
            return penalty();
        }
        finally
        {
            if (wasTraining) network.train();
        }
    }

    private (nn.Module Network, ILayeredModule Layers, LayerSuffix Suffix)? cut;

    /// <summary>The network cut at <see cref="At"/>: its layers and the part after L as a jet module (resolved once per network).</summary>
    private (nn.Module Network, ILayeredModule Layers, LayerSuffix Suffix) Cut(nn.Module<Tensor, Tensor> network)
    {
        if (cut is not { } c || !ReferenceEquals(c.Network, network))
        {
            var suffix = Layers.Suffix(network, At, "crr.at");
            cut = (network, (ILayeredModule)network, suffix);
        }
        return cut.Value;
    }

    /// <summary>
    /// Whether the network computes differently in training mode (dropout, batch normalisation): then the penalty's pass (in
    /// evaluation mode) cannot stand in for the training-mode forward pass of the loss.
    /// </summary>
    private static bool ModeDependent(nn.Module network) =>
        network.modules().Any(m => m.GetType().Name.Contains("Dropout", StringComparison.Ordinal) || m.GetType().Name.Contains("BatchNorm", StringComparison.Ordinal));

    /// <inheritdoc />
    public StepLoss Step(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, optim.Optimizer optimizer, long step)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(optimizer);
        if (step % Every == 0)
        {
            var mlp = FusedNetwork(network, x);
            used.Add(mlp is null ? UnfusedEngine(network) : "fused");
            if (mlp is not null)
            {
                return x.dtype == ScalarType.Float64 ? Fused<double>.For(this, mlp).Step(x, y, optimizer) : Fused<float>.For(this, mlp).Step(x, y, optimizer);
            }
        }
        optimizer.zero_grad();
        if (step % Every == 0 && taylor && network is IJetModule jet && !ModeDependent(network) && Layers.IsInput(At) && Classes is null)
        {
            // One jet pass gives both terms: its order-0 coefficient along a point's first line is the plain forward pass, so
            // CE(f(x_i), y_i) is read from it instead of being computed (and differentiated) a second time.
            var v = DrawDirections(x.shape[0], x.shape[1..], x.dtype, x.device);
            var lines = TaylorMode.ObjectiveDerivatives(jet, x.repeat_interleave(Directions, 0), v, MaxOrder, TargetKind.Loss, y.repeat_interleave(Directions, 0));
            var pointLoss = lines.select(1, 0).view(x.shape[0], Directions).select(1, 0);
            var sharedCe = pointLoss.mean();
            var p = Penalty(lines, orderAxis: 1, firstOrder: 0);
            (sharedCe + Scale * p).backward();
            optimizer.step();
            return new StepLoss(sharedCe.ToDouble(), p.ToDouble());
        }
        if (step % Every == 0 && taylor && network is IModeIndependentPrefix prefix && Layers.IsInput(At) && Classes is null)
        {
            return PrefixSharedStep(network, prefix, x, y, optimizer);
        }
        var ce = nn.functional.cross_entropy(network.call(x), y);
        var total = ce;
        double? penalty = null;
        if (step % Every == 0)
        {
            // A class-filtered batch without a penalised point has penalty 0 (it adds nothing to the gradient).
            if (BatchPenalty(network, x, y) is { } p)
            {
                total = ce + Scale * p;
                penalty = p.ToDouble();
            }
            else
            {
                penalty = 0;
            }
        }
        total.backward();
        optimizer.step();
        return new StepLoss(ce.ToDouble(), penalty);
    }

    /// <summary>
    /// A penalised Taylor-mode step on a network with dropout after a mode-independent prefix (the <see cref="Cnn"/>: conv1 … pool):
    /// the penalty's jet goes through the prefix once (in evaluation mode, which computes the same there), its order-0 coefficient at
    /// the prefix's last layer L is <c>h_L(x_i)</c> for each point's first line, and the training-mode loss is
    /// <c>CE(g_L(h_L(x_i)), y_i)</c> from there — dropout masks drawn as in a plain forward pass. The prefix's layers (the convolutions:
    /// nearly all of a CNN's arithmetic) then run on the value and tangent coefficients of the jet only, not a third time for the loss,
    /// and the backward pass through them is shared the same way. J and its gradient are those of the two-pass step.
    /// </summary>
    private StepLoss PrefixSharedStep(nn.Module<Tensor, Tensor> network, IModeIndependentPrefix prefix, Tensor x, Tensor y, optim.Optimizer optimizer)
    {
        using var scope = NewDisposeScope();
        var split = prefix.ModeIndependentThrough;
        var v = DrawDirections(x.shape[0], x.shape[1..], x.dtype, x.device);
        var yr = y.repeat_interleave(Directions, 0);
        var (at, penalty) = InEvaluation(network, () =>
        {
            var jet = prefix.ForwardTo(split, Jet.PointLines(x, v, MaxOrder));
            var f = TaylorMode.Objective(prefix.ForwardFrom(split, jet), TargetKind.Loss, yr);
            return (jet.Value, Penalty(f.Derivatives(), orderAxis: 0, firstOrder: 0));   // [orders 0..K, lines]
        });
        var h = Directions == 1 ? at : at.unflatten(0, [x.shape[0], Directions]).select(1, 0);
        var ce = nn.functional.cross_entropy(prefix.ForwardFrom(split, h), y);
        (ce + Scale * penalty).backward();
        optimizer.step();
        return new StepLoss(ce.ToDouble(), penalty.ToDouble());
    }

    /// <summary>
    /// How a penalised step on <paramref name="network"/> with batch <paramref name="x"/> computes the penalty: <c>fused</c> (the kernel),
    /// <c>taylor</c> (Taylor mode through libtorch) or <c>autograd</c> (nested reverse mode).
    /// </summary>
    public string StepEngine(nn.Module<Tensor, Tensor> network, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(x);
        return FusedNetwork(network, x) is null ? UnfusedEngine(network) : "fused";
    }

    private string UnfusedEngine(nn.Module<Tensor, Tensor> network) =>
        engine?.Name ?? (taylor && network is IJetModule ? TaylorEngine.Name : DifferentiableDerivatives.Default.Name);

    /// <summary>The network when this step goes through the fused kernel, else null (see the constructor's <c>fused</c>).</summary>
    private Mlp? FusedNetwork(nn.Module<Tensor, Tensor> network, Tensor x)
    {
        if (fused == false) return null;
        var why = network is not Mlp mlp ? $"the network is a {network.GetType().Name}, not an mlp"
            : !MlpCrrKernel<float>.Supports(mlp.Activation) ? $"it has no rule for the activation {mlp.Activation}"
            : !Layers.IsInput(At) && !mlp.Layers.Contains(At) ? $"'{At}' is not a layer of this mlp"
            : x.dtype is not (ScalarType.Float32 or ScalarType.Float64) || mlp.parameters().Any(p => p.dtype != x.dtype) ? "the batch and the parameters are not all float32 or all float64"
            : null;
        if (why is not null)
        {
            return fused == true ? throw new InvalidOperationException($"crr engine 'fused' cannot run here: {why}. Use crr engine auto or taylor.") : null;
        }
        if (fused == true) return (Mlp)network;
        return x.device_type == DeviceType.CPU && FusedWork((Mlp)network, x.shape[0]) <= AutoFusedWorkLimit ? (Mlp)network : null;
    }

    /// <summary>
    /// The largest <see cref="FusedWork"/> for which <c>crr.engine: auto</c> takes the fused kernel. Taylor mode through libtorch costs
    /// about 5 ms a step of operation dispatch on this project's VM whatever the size, and multiplies large matrices faster than the
    /// kernel's managed loops. Measured with <c>bench --profile --hidden … --batch …</c> and <c>train</c> on 2026-12-07 (K = 4, one
    /// direction; a CRR step through the kernel against one through libtorch): 2-32-32-2 at batch 32 (work 0.2 M) 0.13×; 2-128-128-2
    /// at 32 (2.7 M) 0.36×; 2-256-256-2 at 32 (10.6 M) 0.76×; 2-128-128-2 at 128 (10.7 M) 0.81×; 2-64-64-2 at 512 (10.9 M) 0.89×;
    /// 784-256-256-10 at 32 (23.7 M) 1.0×; 2-512-512-2 at 32 (42 M) 1.7×.
    /// </summary>
    public const double AutoFusedWorkLimit = 12e6;

    /// <summary>
    /// The kernel's multiply-adds through the weight matrices in one forward pass: <c>B·D · (2·in₀·out₀ + (K+1)·Σ_{l≥1} in_l·out_l)</c> (the
    /// input line has two nonzero coefficients, every later layer K + 1). Its backward pass costs about twice as much again.
    /// </summary>
    private double FusedWork(Mlp network, long batch)
    {
        var w = network.Widths;
        var later = 0.0;
        for (var l = 1; l + 1 < w.Length; l++) later += (double)w[l] * w[l + 1];
        return (double)batch * Directions * (2.0 * w[0] * w[1] + (MaxOrder + 1) * later);
    }

    /// <summary>The fused kernel's step for one network: its buffers, the parameters' values read in and the gradients written back.</summary>
    private sealed class Fused<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly CrrMethod method;
        private readonly Mlp network;
        private readonly (Parameter Weight, Parameter Bias)[] parameters;
        private readonly MlpCrrKernel<T> kernel;
        private readonly T[][] weights, biases, weightGradients, biasGradients;
        private readonly int start, startWidth;
        private T[] x = [], v = [];
        private long[] y = [];

        private Fused(CrrMethod method, Mlp network)
        {
            this.method = method;
            this.network = network;
            // Where the lines start: stage 0 the input; at layer L (fc1, act1, fc2, … = index 0, 1, 2, …) stage index + 1, in L's space.
            start = Layers.IsInput(method.At) ? 0 : network.Layers.ToList().IndexOf(method.At) + 1;
            startWidth = network.Widths[(start + 1) / 2];
            parameters = [.. network.LinearParameters()];
            kernel = new MlpCrrKernel<T>(network.Widths, network.Activation);
            weights = [.. parameters.Select(p => new T[p.Weight.numel()])];
            biases = [.. parameters.Select(p => new T[p.Bias.numel()])];
            weightGradients = [.. parameters.Select(p => new T[p.Weight.numel()])];
            biasGradients = [.. parameters.Select(p => new T[p.Bias.numel()])];
        }

        /// <summary>The method's state for <paramref name="network"/> (made on first use, and again when the network or the dtype changes).</summary>
        public static Fused<T> For(CrrMethod method, Mlp network)
        {
            if (method.fusedState is Fused<T> state && ReferenceEquals(state.network, network)) return state;
            var created = new Fused<T>(method, network);
            method.fusedState = created;
            return created;
        }

        public StepLoss Step(Tensor xt, Tensor yt, optim.Optimizer optimizer)
        {
            using var scope = NewDisposeScope();
            for (var i = 0; i < parameters.Length; i++)
            {
                TensorValues.CopyTo(parameters[i].Weight, weights[i]);
                TensorValues.CopyTo(parameters[i].Bias, biases[i]);
            }
            var batch = (int)yt.shape[0];
            var inWidth = network.Widths[0];
            if (xt.shape[0] != batch || xt.numel() != (long)batch * inWidth)
            {
                throw new ArgumentException($"The batch [{string.Join(",", xt.shape)}] does not hold {batch} samples of {inWidth} numbers (the mlp's input width).", nameof(xt));
            }
            if (x.Length != batch * inWidth) x = new T[batch * inWidth];
            if (y.Length != batch) y = new long[batch];
            TensorValues.CopyTo(xt, x);
            TensorValues.CopyTo(yt.to(ScalarType.Int64), y);
            var perPoint = method.Directions * startWidth;
            if (v.Length != batch * perPoint) v = new T[batch * perPoint];
            var penalised = Penalised(method.Classes, y);
            // Directions are drawn for the penalised points only, in batch order, as the other engines' class-filtered steps draw them;
            // an unpenalised point's lines get zero directions (the kernel does not use them).
            var drawn = method.DrawDirectionValues(penalised is null ? batch : penalised.Count(true), startWidth);
            var next = 0;
            for (var p = 0; p < batch; p++)
            {
                var block = v.AsSpan(p * perPoint, perPoint);
                if (penalised is not null && !penalised[p])
                {
                    block.Clear();
                    continue;
                }
                for (var i = 0; i < perPoint; i++) block[i] = T.CreateTruncating(drawn[next++]);
            }
            var objective = kernel.Evaluate(weights, biases, x, y, v, method.Directions, method.MinOrder, method.MaxOrder, method.Scale, weightGradients, biasGradients,
                penalised, start);
            for (var i = 0; i < parameters.Length; i++)
            {
                TensorValues.SetGradient(parameters[i].Weight, weightGradients[i]);
                TensorValues.SetGradient(parameters[i].Bias, biasGradients[i]);
            }
            optimizer.step();
            return new StepLoss(objective.Loss, objective.Penalty);
        }

        /// <summary>Per point, whether its label is a penalised class; null when every point is.</summary>
        private static bool[]? Penalised(int[]? classes, long[] labels) =>
            classes is null ? null : [.. labels.Select(label => Array.BinarySearch(classes, (int)label) >= 0)];
    }
}
