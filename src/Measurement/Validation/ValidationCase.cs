namespace LambdaService.Measurement.Validation;

/// <summary>
/// One row of the validation suite (paper §5.1): the estimator run on a function whose answer is known.
/// </summary>
/// <param name="Name">The function, for example <c>1/(1-x)</c> (see <see cref="ValidationCaseNames"/>).</param>
/// <param name="Quantity">What is compared, for example <c>R (radius of convergence)</c> or <c>Ω (band edge)</c>.</param>
/// <param name="TrueValue">The known answer.</param>
/// <param name="Estimate">The raw estimate: <c>R̂ = exp(−λ̂)</c>, <c>Ω̂ = exp(λ̂)</c> or <c>λ̂</c>.</param>
/// <param name="RelativeError"><c>|Estimate − TrueValue| / |TrueValue|</c>; the absolute error <c>|Estimate − TrueValue|</c>
/// where the true value is 0 (the quantity says so).</param>
/// <param name="CorrectedEstimate">The estimate after the finite-domain correction, where the case has one.</param>
/// <param name="CorrectedRelativeError">The relative error of <see cref="CorrectedEstimate"/>.</param>
/// <param name="Method">How <c>v_n</c> was computed and fitted.</param>
/// <param name="Notes">Fit details: slope, intercept, R², orders fitted and skipped, sizes and seeds.</param>
public sealed record ValidationCase(
    string Name,
    string Quantity,
    double TrueValue,
    double Estimate,
    double RelativeError,
    double? CorrectedEstimate,
    double? CorrectedRelativeError,
    string Method,
    string Notes);

/// <summary>The names of the rows of <see cref="ValidationSuite.Run"/>, in order.</summary>
public static class ValidationCaseNames
{
    /// <summary><c>(1−x)⁻¹</c> around 0; <c>R = 1</c>.</summary>
    public const string Geometric = "1/(1-x)";

    /// <summary><c>(1−2x)⁻¹</c> around 0; <c>R = 1/2</c>.</summary>
    public const string GeometricHalfRadius = "1/(1-2x)";

    /// <summary><c>(1−x³)⁻¹</c> around 0; <c>R = 1</c>; two thirds of the coefficients are zero.</summary>
    public const string Cubic = "1/(1-x^3)";

    /// <summary><c>(1−x)⁻¹ + (2−x)⁻¹</c> around 0; <c>R = 1</c>; <c>a_n = 1 + 2^{−(n+1)}</c>, not geometric.</summary>
    public const string TwoPoles = "1/(1-x) + 1/(2-x)";

    /// <summary><c>eˣ/(1−x)</c> around <c>x₀ = 0.3</c>; <c>R = 0.7</c>; built by composition, not geometric.</summary>
    public const string ExpOverPole = "exp(x)/(1-x) at x0=0.3";

    /// <summary>Bandlimited signal, flat spectrum, <c>Ω = 450</c>.</summary>
    public const string BandlimitedFlat = "bandlimited, flat spectrum, cutoff 450";

    /// <summary>Bandlimited signal, power tapering linearly to the edge, <c>Ω = 450</c>.</summary>
    public const string BandlimitedTapered = "bandlimited, tapered spectrum, cutoff 450";

    /// <summary><c>sin x</c> on <c>[0, 2π)</c>; <c>λ = 0</c>.</summary>
    public const string Sine = "sin x";
}
