namespace LambdaService.Measurement.Validation;

/// <summary>
/// A real trigonometric polynomial on <c>[0, 2π)</c> with cutoff <c>Ω</c>:
/// <c>f(x) = Σ_{k=1}^{Ω} a_k cos(k x + φ_k)</c>, with seeded random phases <c>φ_k</c> uniform in <c>[0, 2π)</c>.
/// </summary>
/// <remarks>
/// Every derivative is again a trigonometric polynomial, <c>f⁽ⁿ⁾(x) = Σ_k a_k kⁿ cos(k x + φ_k + nπ/2)</c>, so on a
/// grid of <c>N &gt; 2Ω</c> points Parseval gives the RMS exactly:
/// <c>v_n² = (1/N) Σ_j f⁽ⁿ⁾(x_j)² = ½ Σ_k a_k² k^{2n}</c>, independent of the phases. Hence
/// <c>λ = lim (1/n) log v_n = log Ω</c> (the largest <c>k</c> with <c>a_k ≠ 0</c>).
/// </remarks>
public sealed class BandlimitedSignal
{
    private readonly double[] _amplitudes;
    private readonly double[] _phases;

    /// <summary>Draws the phases with <see cref="Random"/>(<paramref name="seed"/>) and fixes the amplitudes.</summary>
    /// <param name="cutoff">The band edge <c>Ω</c> (an integer wavenumber, at least 1).</param>
    /// <param name="amplitude">The amplitude <c>a_k</c> for <c>k = 1..Ω</c>; must be finite, non-negative and <c>a_Ω &gt; 0</c>.</param>
    /// <param name="seed">Seed of the phases.</param>
    /// <exception cref="ArgumentOutOfRangeException">Cutoff below 1.</exception>
    /// <exception cref="ArgumentException">An amplitude negative or not finite, or <c>a_Ω = 0</c>.</exception>
    public BandlimitedSignal(int cutoff, Func<int, double> amplitude, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cutoff, 1);
        ArgumentNullException.ThrowIfNull(amplitude);
        Cutoff = cutoff;
        Seed = seed;
        _amplitudes = new double[cutoff + 1];
        _phases = new double[cutoff + 1];
        var random = new Random(seed);
        for (var k = 1; k <= cutoff; k++)
        {
            var a = amplitude(k);
            if (!double.IsFinite(a) || a < 0) throw new ArgumentException($"Amplitude a_{k} = {a} must be finite and non-negative.", nameof(amplitude));
            _amplitudes[k] = a;
            _phases[k] = 2 * Math.PI * random.NextDouble();
        }
        if (_amplitudes[cutoff] == 0) throw new ArgumentException("The amplitude at the cutoff must be positive, or the cutoff is not the band edge.", nameof(amplitude));
    }

    /// <summary>The band edge <c>Ω</c>.</summary>
    public int Cutoff { get; }

    /// <summary>The seed of the phases.</summary>
    public int Seed { get; }

    /// <summary>The amplitude <c>a_k</c> (0 outside <c>1..Ω</c>).</summary>
    public double Amplitude(int k) => k >= 1 && k <= Cutoff ? _amplitudes[k] : 0;

    /// <summary>
    /// Samples <c>f(x_j)</c> at <c>x_j = 2πj/N</c>, <c>j = 0..N−1</c>. The phase <c>k x_j</c> is reduced exactly
    /// as <c>2π·((k·j) mod N)/N</c>, so no argument of a cosine exceeds <c>2π</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><c>N ≤ 2Ω</c> (the grid would alias the band).</exception>
    public double[] Sample(int points)
    {
        if (points <= 2 * Cutoff)
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A grid for cutoff {Cutoff} needs more than {2 * Cutoff} points.");
        var f = new double[points];
        for (var k = 1; k <= Cutoff; k++)
        {
            var a = _amplitudes[k];
            if (a == 0) continue;
            var phase = _phases[k];
            for (var j = 0; j < points; j++)
            {
                var r = (int)((long)k * j % points);
                f[j] += a * Math.Cos(2 * Math.PI * r / points + phase);
            }
        }
        return f;
    }

    /// <summary>
    /// The exact <c>log v_n</c> by Parseval, <c>½ (log Σ_k exp(2 log a_k + 2n log k) − log 2)</c>, summed as a
    /// log-sum-exp so that <c>k^{2n}</c> never overflows. An independent check of the grid RMS.
    /// </summary>
    public double ExactLogRms(int order)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        var max = double.NegativeInfinity;
        var terms = new double[Cutoff + 1];
        for (var k = 1; k <= Cutoff; k++)
        {
            terms[k] = _amplitudes[k] == 0 ? double.NegativeInfinity : 2 * Math.Log(_amplitudes[k]) + 2.0 * order * Math.Log(k);
            max = Math.Max(max, terms[k]);
        }
        var sum = 0.0;
        for (var k = 1; k <= Cutoff; k++) sum += Math.Exp(terms[k] - max);
        return 0.5 * (max + Math.Log(sum) - Math.Log(2));
    }
}
