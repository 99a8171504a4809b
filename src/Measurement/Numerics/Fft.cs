using System.Numerics;
using MathNet.Numerics.IntegralTransforms;

namespace LambdaService.Measurement.Numerics;

/// <summary>
/// Complex fast Fourier transform in double precision on power-of-two lengths, computed by MathNet.Numerics
/// (<see cref="Fourier"/>, radix-2 Cooley–Tukey for these lengths).
/// </summary>
/// <remarks>
/// Conventions, for a length <c>N</c> that is a power of two:
/// <list type="bullet">
/// <item><description>forward: <c>X_m = Σ_{j=0}^{N-1} x_j · e^{-2πi·j·m/N}</c> (no scaling);</description></item>
/// <item><description>inverse: <c>x_j = (1/N) · Σ_{m=0}^{N-1} X_m · e^{+2πi·j·m/N}</c>,</description></item>
/// </list>
/// that is <see cref="FourierOptions.Matlab"/> (negative exponent forward, <c>1/N</c> only on the inverse), so
/// <c>Inverse(Forward(x)) = x</c> up to round-off (about <c>ε·log₂N</c> relative). MathNet takes each twiddle factor
/// directly from cos and sin, not by a recurrence, so their error does not accumulate with <c>N</c>. The lengths stay
/// restricted to powers of two (MathNet would switch to Bluestein's algorithm otherwise), as the spectral
/// derivative (<c>Validation/PeriodicSpectralDerivative.cs</c>) expects.
/// </remarks>
public static class Fft
{
    /// <summary>Forward transform in place: <c>X_m = Σ_j x_j e^{-2πi jm/N}</c>.</summary>
    /// <exception cref="ArgumentException">The length is not a power of two (length 1 is allowed).</exception>
    public static void Forward(Complex[] data)
    {
        CheckLength(data);
        Fourier.Forward(data, FourierOptions.Matlab);
    }

    /// <summary>Inverse transform in place, including the <c>1/N</c> factor: <c>x_j = (1/N) Σ_m X_m e^{+2πi jm/N}</c>.</summary>
    /// <exception cref="ArgumentException">The length is not a power of two (length 1 is allowed).</exception>
    public static void Inverse(Complex[] data)
    {
        CheckLength(data);
        Fourier.Inverse(data, FourierOptions.Matlab);
    }

    /// <summary>True when <paramref name="n"/> is a positive power of two (1, 2, 4, …).</summary>
    public static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    private static void CheckLength(Complex[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!IsPowerOfTwo(data.Length)) throw new ArgumentException($"The FFT length must be a power of two; got {data.Length}.", nameof(data));
    }
}
