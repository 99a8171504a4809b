using LambdaService.Measurement.Engines;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Taylor-mode directional derivatives: one pass of the jet of the line <c>x_b + t·v_b</c> through an
/// <see cref="IJetModule"/> and the objective gives, for every line b and every order n ≤ K at once,
/// <c>Dⁿ[b] = dⁿ/dtⁿ f(x_b + t v_b)|_{t=0} = n!·fₙ[b]</c>, exactly (up to rounding) and at a cost polynomial in K
/// (the linear layers run once on K+1 stacked coefficients, each smooth nonlinearity costs O(K) small tensor
/// operations of O(K) terms). The computation is ordinary tensor arithmetic, so the result is differentiable with
/// respect to the module's parameters (and to x, v).
/// </summary>
public static class TaylorMode
{
    /// <summary>
    /// <c>[B, K]</c> tensor of <c>dⁿ/dtⁿ f(x_b + t v_b)</c> at t = 0 for n = 1..K, where f is the objective
    /// <paramref name="target"/> of the module's output (see <see cref="Objective(Jet, TargetKind, Tensor?)"/>).
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="x">Base points <c>[B, sample…]</c> (float32 or float64; the computation runs in this dtype).</param>
    /// <param name="v">Directions, same shape and dtype.</param>
    /// <param name="maxOrder">K ≥ 1.</param>
    /// <param name="target">Loss (cross-entropy), Logit or Output.</param>
    /// <param name="classes">int64 <c>[B]</c>: labels (Loss) or classes (Logit); ignored (may be null) for Output.</param>
    public static Tensor DirectionalDerivatives(IJetModule model, Tensor x, Tensor v, int maxOrder, TargetKind target, Tensor? classes)
    {
        using var scope = NewDisposeScope();
        var all = ObjectiveDerivatives(model, x, v, maxOrder, target, classes);
        return all.narrow(1, 1, maxOrder).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>[B, K+1]</c> tensor of the objective's derivatives of orders 0..K along each line (order 0 is f itself).
    /// Parameters as in <see cref="DirectionalDerivatives(IJetModule, Tensor, Tensor, int, TargetKind, Tensor?)"/>,
    /// except that K = 0 is allowed.
    /// </summary>
    public static Tensor ObjectiveDerivatives(IJetModule model, Tensor x, Tensor v, int maxOrder, TargetKind target, Tensor? classes) =>
        ObjectiveDerivatives(model, x, v, maxOrder, target, classes, linesPerPoint: 1);

    /// <summary>
    /// As <see cref="ObjectiveDerivatives(IJetModule, Tensor, Tensor, int, TargetKind, Tensor?)"/>, for lines laid out point-major in groups of
    /// <paramref name="linesPerPoint"/> (rows <c>p·g … p·g + g − 1</c> of x are the same point along g directions): where x's rows are equal
    /// within every group (checked), the layers that allow it compute the value coefficient once per point (see
    /// <see cref="Jet.SharedValueRows"/>). The result is the same either way.
    /// </summary>
    public static Tensor ObjectiveDerivatives(IJetModule model, Tensor x, Tensor v, int maxOrder, TargetKind target, Tensor? classes, int linesPerPoint)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(v);
        ArgumentOutOfRangeException.ThrowIfNegative(maxOrder);
        if (x.dim() < 1 || !x.shape.SequenceEqual(v.shape))
        {
            throw new ArgumentException($"x [{string.Join(",", x.shape)}] and v [{string.Join(",", v.shape)}] must have the same shape [B, sample…].", nameof(v));
        }
        if (x.dtype is not (ScalarType.Float32 or ScalarType.Float64))
        {
            throw new ArgumentException($"x must be float32 or float64, not {x.dtype}.", nameof(x));
        }
        using var scope = NewDisposeScope();
        var output = model.Forward(Jet.Line(x, v, maxOrder, EqualRowGroups(x, linesPerPoint) ? linesPerPoint : 1));
        var f = ObjectiveOf(output, target, classes, x.shape[0]);
        return f.Derivatives().transpose(0, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The objective as a jet of shape <c>[B]</c>, from an output jet <c>[B, C]</c> (or <c>[B]</c>, read as
    /// <c>[B, 1]</c>): Loss <c>logsumexp(z) − z_y</c>, Logit <c>z_c</c>, Output the single output (C = 1).
    /// </summary>
    public static Jet Objective(Jet output, TargetKind target, Tensor? classes) =>
        ObjectiveOf(output, target, classes, output?.Shape.FirstOrDefault() ?? 0);

    /// <summary>
    /// Directional derivatives of orders 0..K for row-major arrays: <paramref name="x"/> and <paramref name="v"/>
    /// hold <paramref name="lines"/> samples of <paramref name="sampleShape"/>; the result is
    /// <c>[line, order]</c> row-major, <c>lines × (K+1)</c>, computed in <paramref name="dtype"/> without a graph.
    /// </summary>
    /// <param name="model">The network.</param>
    /// <param name="x">Base points of the lines, row-major <c>[lines, sample…]</c>.</param>
    /// <param name="v">Directions, same layout.</param>
    /// <param name="lines">Number of lines.</param>
    /// <param name="sampleShape">Shape of one sample.</param>
    /// <param name="maxOrder">K ≥ 0.</param>
    /// <param name="target">Loss, Logit or Output.</param>
    /// <param name="classes">One class per line (Loss, Logit), or null.</param>
    /// <param name="dtype">Precision of the pass.</param>
    /// <param name="device">Where it runs (default the CPU).</param>
    /// <param name="linesPerPoint">
    /// Lines per point when they are laid out point-major (see
    /// <see cref="ObjectiveDerivatives(IJetModule, Tensor, Tensor, int, TargetKind, Tensor?, int)"/>; 1: no grouping).
    /// </param>
    public static double[] ObjectiveDerivatives(IJetModule model, double[] x, double[] v, int lines, int[] sampleShape, int maxOrder,
        TargetKind target, long[]? classes, ScalarType dtype = ScalarType.Float64, Device? device = null, int linesPerPoint = 1)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(v);
        ArgumentNullException.ThrowIfNull(sampleShape);
        long[] shape = [lines, .. sampleShape.Select(d => (long)d)];
        var size = shape.Aggregate(1L, (a, b) => a * b);
        if (x.Length != size || v.Length != size) throw new ArgumentException($"Expected {size} values for {lines} lines of [{string.Join(",", sampleShape)}]; got {x.Length} and {v.Length}.", nameof(x));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        device ??= CPU;
        var xt = tensor(x, shape, ScalarType.Float64).to(dtype, device);
        var vt = tensor(v, shape, ScalarType.Float64).to(dtype, device);
        var cls = classes is null || classes.Length == 0 ? null : tensor(classes).to(device);
        var d = ObjectiveDerivatives(model, xt, vt, maxOrder, target, cls, linesPerPoint);
        return d.to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
    }

    /// <summary>Whether x's rows come in groups of <paramref name="g"/> equal rows (g &gt; 1 dividing the batch).</summary>
    private static bool EqualRowGroups(Tensor x, int g)
    {
        if (g <= 1 || x.shape[0] % g != 0) return false;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var groups = x.unflatten(0, [x.shape[0] / g, g]);
        return groups.eq(groups.narrow(1, 0, 1)).all().item<bool>();
    }

    private static Jet ObjectiveOf(Jet output, TargetKind target, Tensor? classes, long batch)
    {
        ArgumentNullException.ThrowIfNull(output);
        var shape = output.Shape;
        if (shape.Length is < 1 or > 2 || shape[0] != batch)
        {
            throw new ArgumentException($"The model's output jet has per-coefficient shape [{string.Join(",", shape)}] for {batch} lines; expected [{batch}, C] or [{batch}].", nameof(output));
        }
        var z = shape.Length == 1 ? JetOps.Unsqueeze(output, 1) : output;
        switch (target)
        {
            case TargetKind.Loss:
            case TargetKind.Logit:
                if (classes is null) throw new ArgumentNullException(nameof(classes), $"Target {target} needs one class index per line.");
                if (classes.dim() != 1 || classes.shape[0] != batch)
                {
                    throw new ArgumentException($"Give one class index per line ([{batch}]); got [{string.Join(",", classes.shape)}].", nameof(classes));
                }
                return target == TargetKind.Loss ? JetOps.CrossEntropy(z, classes) : JetOps.SelectLogit(z, classes);
            default:
                if (z.Shape[1] != 1) throw new ArgumentException($"Target Output needs a scalar model (one output per sample); this one has {z.Shape[1]}.", nameof(target));
                return JetOps.Squeeze(z, 1);
        }
    }
}
