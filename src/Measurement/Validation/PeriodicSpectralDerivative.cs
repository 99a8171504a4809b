using System.Numerics;
using LambdaService.Measurement.Numerics;

namespace LambdaService.Measurement.Validation;

/// <summary>
/// Derivatives of a periodic function from its samples by spectral differentiation in double precision.
/// </summary>
/// <remarks>
/// Samples <c>f_j = f(j·L/N)</c>, <c>j = 0..N−1</c>, on one period <c>[0, L)</c>, with <c>N</c> a power of two.
/// With <c>F̂_m = Σ_j f_j e^{−2πi jm/N}</c> (<see cref="Fft.Forward"/>) and the wavenumbers
/// <c>k_m = m</c> for <c>m &lt; N/2</c>, <c>k_m = m − N</c> for <c>m &gt; N/2</c>:
/// <c>f⁽ⁿ⁾_j = IFFT( (i·2π·k_m/L)ⁿ · F̂_m )_j</c>.
/// The Nyquist mode <c>m = N/2</c> is ambiguous in sign; it is dropped for odd <c>n</c> and kept with
/// <c>k = N/2</c> for even <c>n</c>.
/// <para>
/// Round-off floor: the factor <c>kⁿ</c> amplifies round-off in the high modes (at <c>N = 2048</c>,
/// <c>1024⁶⁰ ≈ 10¹⁸⁰</c>), which would swamp any derivative of high order. Modes with
/// <c>|F̂_m| ≤ τ · max_m |F̂_m|</c> (default <c>τ = 10⁻¹²</c>, far above the FFT's round-off of about
/// <c>10⁻¹⁶·log₂N</c> relative, far below any mode a double-precision signal can resolve as content) are
/// set to zero before differentiating.
/// </para>
/// <para>
/// Scaling: <c>(2πk/L)ⁿ</c> overflows or underflows for large <c>n</c>, so the derivative is computed as
/// <c>Kⁿ · g_n</c> with <c>g_n = IFFT((i k_m / K)ⁿ F̂_m)</c> and <c>K = 2π/L · max{|k_m| : F̂_m kept}</c>;
/// <see cref="LogRms"/> returns <c>n log K + log RMS(g_n)</c>, which never forms <c>Kⁿ</c>.
/// </para>
/// </remarks>
public sealed class PeriodicSpectralDerivative
{
    private readonly Complex[] _spectrum;
    private readonly double[] _wavenumbers;
    private readonly int _nyquist;

    /// <summary>Transforms the samples once; each order then costs one inverse FFT.</summary>
    /// <param name="samples">One period of samples; the count must be a power of two, at least 4.</param>
    /// <param name="period">The period <c>L</c> (default <c>2π</c>, so wavenumbers are integers).</param>
    /// <param name="relativeRoundoffFloor">The floor <c>τ</c> below which Fourier modes count as round-off.</param>
    /// <exception cref="ArgumentException">Sample count not a power of two or below 4, or non-finite samples.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Period not positive and finite, or floor outside [0, 1).</exception>
    public PeriodicSpectralDerivative(ReadOnlySpan<double> samples, double period = 2 * Math.PI, double relativeRoundoffFloor = 1e-12)
    {
        if (!Fft.IsPowerOfTwo(samples.Length) || samples.Length < 4)
            throw new ArgumentException($"The number of samples must be a power of two, at least 4; got {samples.Length}.", nameof(samples));
        if (!(period > 0) || !double.IsFinite(period))
            throw new ArgumentOutOfRangeException(nameof(period), period, "The period must be positive and finite.");
        if (!(relativeRoundoffFloor >= 0 && relativeRoundoffFloor < 1))
            throw new ArgumentOutOfRangeException(nameof(relativeRoundoffFloor), relativeRoundoffFloor, "The round-off floor must lie in [0, 1).");

        var n = samples.Length;
        _nyquist = n / 2;
        _spectrum = new Complex[n];
        for (var j = 0; j < n; j++)
        {
            if (!double.IsFinite(samples[j])) throw new ArgumentException($"Sample {j} is not finite.", nameof(samples));
            _spectrum[j] = samples[j];
        }
        Fft.Forward(_spectrum);

        var max = 0.0;
        foreach (var c in _spectrum) max = Math.Max(max, c.Magnitude);
        var floor = relativeRoundoffFloor * max;
        _wavenumbers = new double[n];
        var unit = 2 * Math.PI / period;
        for (var m = 0; m < n; m++)
        {
            _wavenumbers[m] = unit * (m <= _nyquist ? m : m - n);
            if (_spectrum[m].Magnitude <= floor)
            {
                _spectrum[m] = Complex.Zero;
                DroppedModes++;
            }
            else if (_wavenumbers[m] != 0)
            {
                MaxWavenumber = Math.Max(MaxWavenumber, Math.Abs(_wavenumbers[m]));
            }
        }
        Length = n;
        Period = period;
    }

    /// <summary>Number of samples <c>N</c>.</summary>
    public int Length { get; }

    /// <summary>The period <c>L</c>.</summary>
    public double Period { get; }

    /// <summary>How many of the <c>N</c> Fourier modes fell under the round-off floor and were zeroed.</summary>
    public int DroppedModes { get; }

    /// <summary>The largest angular wavenumber <c>2π|k|/L</c> among the kept non-constant modes (0 if none).</summary>
    public double MaxWavenumber { get; }

    /// <summary>The samples of <c>f⁽ⁿ⁾</c> on the grid (unscaled; for large <c>n</c> use <see cref="LogRms"/>).</summary>
    public double[] Derivative(int order)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        var scale = MaxWavenumber > 0 ? MaxWavenumber : 1.0;
        var g = ScaledDerivative(order, scale);
        var factor = Math.Pow(scale, order);
        var result = new double[g.Length];
        for (var j = 0; j < g.Length; j++) result[j] = g[j] * factor;
        return result;
    }

    /// <summary>
    /// <c>log</c> of the root mean square of <c>f⁽ⁿ⁾</c> over the grid, <c>log sqrt((1/N) Σ_j (f⁽ⁿ⁾_j)²)</c>,
    /// computed as <c>n log K + log RMS(g_n)</c> without overflow; <c>−∞</c> when the derivative is zero.
    /// </summary>
    public double LogRms(int order)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        if (MaxWavenumber == 0 && order > 0) return double.NegativeInfinity;
        var scale = MaxWavenumber > 0 ? MaxWavenumber : 1.0;
        var g = ScaledDerivative(order, scale);
        var rms = Rms(g);
        return rms == 0 ? double.NegativeInfinity : order * Math.Log(scale) + Math.Log(rms);
    }

    /// <summary>Root mean square <c>sqrt((1/N) Σ x_j²)</c>, scaled by <c>max|x_j|</c> to avoid overflow.</summary>
    public static double Rms(ReadOnlySpan<double> x)
    {
        if (x.Length == 0) throw new ArgumentException("No values.", nameof(x));
        var max = 0.0;
        foreach (var v in x) max = Math.Max(max, Math.Abs(v));
        if (max == 0) return 0;
        var sum = 0.0;
        foreach (var v in x)
        {
            var s = v / max;
            sum += s * s;
        }
        return max * Math.Sqrt(sum / x.Length);
    }

    private double[] ScaledDerivative(int order, double scale)
    {
        var work = new Complex[Length];
        // i^order cycles through 1, i, −1, −i.
        var iPower = (order % 4) switch { 0 => Complex.One, 1 => Complex.ImaginaryOne, 2 => -Complex.One, _ => -Complex.ImaginaryOne };
        for (var m = 0; m < Length; m++)
        {
            if (_spectrum[m] == Complex.Zero) continue;
            if (m == _nyquist && order % 2 == 1) continue;
            var k = order == 0 ? 1.0 : Math.Pow(_wavenumbers[m] / scale, order);
            work[m] = _spectrum[m] * iPower * k;
        }
        Fft.Inverse(work);
        var result = new double[Length];
        for (var j = 0; j < Length; j++) result[j] = work[j].Real;
        return result;
    }
}
