using System.Numerics;

namespace LambdaService.Measurement.Numerics;

/// <summary>
/// Radix-2 complex fast Fourier transform in double precision (iterative Cooley–Tukey, decimation in time).
/// </summary>
/// <remarks>
/// Conventions, for a length <c>N</c> that is a power of two:
/// <list type="bullet">
/// <item><description>forward: <c>X_m = Σ_{j=0}^{N-1} x_j · e^{-2πi·j·m/N}</c> (no scaling);</description></item>
/// <item><description>inverse: <c>x_j = (1/N) · Σ_{m=0}^{N-1} X_m · e^{+2πi·j·m/N}</c>,</description></item>
/// </list>
/// so <c>Inverse(Forward(x)) = x</c> up to round-off (about <c>ε·log₂N</c> relative). Twiddle factors are
/// taken directly from <see cref="Math.SinCos(double)"/> of <c>2π·k/N</c>, not by a recurrence, so their error
/// does not accumulate with <c>N</c>.
/// </remarks>
public static class Fft
{
    /// <summary>Forward transform in place: <c>X_m = Σ_j x_j e^{-2πi jm/N}</c>.</summary>
    /// <exception cref="ArgumentException">The length is not a power of two (length 1 is allowed).</exception>
    public static void Forward(Span<Complex> data) => Transform(data, inverse: false);

    /// <summary>Inverse transform in place, including the <c>1/N</c> factor: <c>x_j = (1/N) Σ_m X_m e^{+2πi jm/N}</c>.</summary>
    /// <exception cref="ArgumentException">The length is not a power of two (length 1 is allowed).</exception>
    public static void Inverse(Span<Complex> data)
    {
        Transform(data, inverse: true);
        var scale = 1.0 / data.Length;
        for (var i = 0; i < data.Length; i++) data[i] *= scale;
    }

    /// <summary>True when <paramref name="n"/> is a positive power of two (1, 2, 4, …).</summary>
    public static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    private static void Transform(Span<Complex> data, bool inverse)
    {
        var n = data.Length;
        if (!IsPowerOfTwo(n)) throw new ArgumentException($"The FFT length must be a power of two; got {n}.", nameof(data));
        if (n == 1) return;

        // Bit-reversal permutation.
        for (int i = 1, j = 0; i < n; i++)
        {
            var bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j) (data[i], data[j]) = (data[j], data[i]);
        }

        // Twiddles w_k = e^{∓2πi k/N}, k < N/2, each computed directly.
        var half = n / 2;
        var twiddles = new Complex[half];
        var sign = inverse ? 1.0 : -1.0;
        for (var k = 0; k < half; k++)
        {
            var (s, c) = Math.SinCos(2.0 * Math.PI * k / n);
            twiddles[k] = new Complex(c, sign * s);
        }

        // Butterflies: a block of length `len` uses w_{N/len}^k = twiddles[k·N/len].
        for (var len = 2; len <= n; len <<= 1)
        {
            var halfLen = len >> 1;
            var stride = n / len;
            for (var start = 0; start < n; start += len)
            {
                for (var k = 0; k < halfLen; k++)
                {
                    var u = data[start + k];
                    var v = data[start + k + halfLen] * twiddles[k * stride];
                    data[start + k] = u + v;
                    data[start + k + halfLen] = u - v;
                }
            }
        }
    }
}
