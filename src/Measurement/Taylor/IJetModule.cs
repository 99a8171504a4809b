namespace LambdaService.Measurement.Taylor;

/// <summary>
/// A network that can push a truncated Taylor series through itself: given the jet of its input along lines
/// <c>x_b + t·v_b</c>, it returns the jet of its output, <c>F(x + t v) = Σ_{n≤K} yₙ tⁿ + O(t^{K+1})</c>,
/// built from <see cref="JetOps"/> rules (so the output stays differentiable with respect to the parameters).
/// </summary>
public interface IJetModule
{
    /// <summary>
    /// Propagates <paramref name="input"/> (coefficients <c>[K+1, B, sample…]</c>) and returns the output jet,
    /// coefficients <c>[K+1, B, classes]</c> for a classifier, <c>[K+1, B, 1]</c> or <c>[K+1, B]</c> for a scalar
    /// model. Lines must be independent (evaluation mode: no batch statistics, no dropout).
    /// </summary>
    Jet Forward(Jet input);

    /// <summary>
    /// The piecewise-linear operators found in the model (e.g. <c>Relu</c>, <c>LeakyRelu</c>, <c>MaxPool</c>). When
    /// every nonlinearity is of this kind, the logits are piecewise affine in the input: their derivatives of order
    /// ≥ 2 vanish almost everywhere (the loss's do not: softmax is smooth).
    /// </summary>
    IReadOnlyList<string> PiecewiseLinearOperators { get; }

    /// <summary>
    /// Every operator found whose rule takes its branch per element from the value at the point (the piecewise-linear
    /// ones and piecewise-smooth ones such as <c>Elu</c> or <c>HardSwish</c>); by default the piecewise-linear ones.
    /// </summary>
    IReadOnlyList<string> PiecewiseOperators => PiecewiseLinearOperators;
}
