using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Engines;

/// <summary>
/// Directional derivatives of a per-sample scalar function that stay in the autograd graph, so that a
/// training loss built from them (Curvature Rate Regularization) can be differentiated with respect to the
/// model's parameters. Unlike <see cref="IDerivativeEngine"/> (numbers out, for measurement), an engine of
/// this kind returns a tensor connected to everything the function depends on.
/// </summary>
public interface IDifferentiableDerivativeEngine
{
    /// <summary><c>autograd</c>, <c>taylor</c>, …</summary>
    string Name { get; }

    /// <summary>
    /// For each line b: <c>D[b, n−1] = dⁿ/dtⁿ f(x_b + t v_b)[b]</c> at t = 0 for n = 1..<paramref name="maxOrder"/>,
    /// where <c>f = <paramref name="scalarPerSample"/></c> maps a batch <c>[B, sample…]</c> to <c>[B]</c> and
    /// must treat its rows independently (no batch statistics). The result <c>[B, maxOrder]</c> has the dtype
    /// of <paramref name="x"/> and carries a graph to the parameters <paramref name="scalarPerSample"/> uses
    /// (and to <paramref name="x"/>, <paramref name="v"/> when they require grad). Orders that vanish
    /// identically (f polynomial of lower degree along the line) come back as zeros.
    /// </summary>
    /// <param name="scalarPerSample">The function, e.g. the per-sample cross-entropy of a network.</param>
    /// <param name="x">Base points <c>[B, sample…]</c>.</param>
    /// <param name="v">Directions, same shape as <paramref name="x"/> (usually unit vectors; not normalised here).</param>
    /// <param name="maxOrder">Highest order K ≥ 1.</param>
    Tensor DirectionalDerivatives(Func<Tensor, Tensor> scalarPerSample, Tensor x, Tensor v, int maxOrder);
}

/// <summary>
/// Nested reverse mode with <c>create_graph</c>, the construction of <see cref="AutogradEngine"/>: one scalar
/// t per line (a tensor <c>t ∈ ℝ^B</c>, zero, requiring grad), <c>g₀ = f(x + t ⊙ v)</c> and
/// <c>gₙ = ∂/∂t Σ_b gₙ₋₁[b]</c> for n = 1..K, every call with <c>retain_graph</c> and <c>create_graph</c>.
/// Because line b's value depends only on <c>t_b</c>, the gradient of the sum with respect to <c>t_b</c> is
/// line b's own n-th derivative. Every <c>gₙ</c> keeps its graph, so gradients of any function of the
/// result reach the parameters of f (this is what costs memory: the graph of order K holds those of all
/// lower orders). Cost grows roughly threefold per order.
/// </summary>
public sealed class AutogradDifferentiableEngine : IDifferentiableDerivativeEngine
{
    /// <inheritdoc />
    public string Name => "autograd";

    /// <inheritdoc />
    public Tensor DirectionalDerivatives(Func<Tensor, Tensor> scalarPerSample, Tensor x, Tensor v, int maxOrder)
    {
        ArgumentNullException.ThrowIfNull(scalarPerSample);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(v);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOrder, 1);
        if (x.dim() < 1 || !x.shape.SequenceEqual(v.shape))
        {
            throw new ArgumentException($"x [{string.Join(",", x.shape)}] and v [{string.Join(",", v.shape)}] must have the same shape [B, sample…].", nameof(v));
        }
        var n = x.shape[0];
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        long[] tShape = [n, .. Enumerable.Repeat(1L, (int)x.dim() - 1)];
        var t = zeros([n], dtype: x.dtype, device: x.device, requires_grad: true);
        var g = scalarPerSample(x + t.view(tShape) * v);
        if (g.dim() != 1 || g.shape[0] != n)
        {
            throw new ArgumentException($"the function must return one value per line ([{n}]), got [{string.Join(",", g.shape)}].", nameof(scalarPerSample));
        }
        var orders = new List<Tensor>(maxOrder);
        for (var order = 1; order <= maxOrder; order++)
        {
            // THSAutograd_grad has no try/catch in TorchSharp 0.107: calling it on a value that does not
            // require grad aborts the process. Such a value is constant in t: all further derivatives are zero.
            if (!g.requires_grad)
            {
                for (var rest = order; rest <= maxOrder; rest++) orders.Add(zeros([n], dtype: x.dtype, device: x.device));
                break;
            }
            var d = autograd.grad([g.sum()], [t], retain_graph: true, create_graph: true, allow_unused: true)[0];
            // Undefined when g depends on parameters but not on t (allow_unused): the derivative is zero.
            g = d is null || d.IsInvalid ? zeros([n], dtype: x.dtype, device: x.device) : d;
            orders.Add(g);
        }
        return stack(orders, 1).MoveToOuterDisposeScope();
    }
}

/// <summary>The front door for differentiable directional derivatives (see <see cref="IDifferentiableDerivativeEngine"/>).</summary>
public static class DifferentiableDerivatives
{
    /// <summary>The engine used when none is named: nested autograd.</summary>
    public static IDifferentiableDerivativeEngine Default { get; } = new AutogradDifferentiableEngine();

    /// <summary>
    /// <c>[B, K]</c> tensor of <c>dⁿ/dtⁿ f(x_b + t v_b)[b]</c> at t = 0, n = 1..K, differentiable with respect to
    /// whatever f depends on; computed by <see cref="Default"/>.
    /// </summary>
    public static Tensor DirectionalDerivatives(Func<Tensor, Tensor> scalarPerSample, Tensor x, Tensor v, int maxOrder) =>
        Default.DirectionalDerivatives(scalarPerSample, x, v, maxOrder);
}
