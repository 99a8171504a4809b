namespace LambdaService.Training.Datasets;

/// <summary>
/// The Two Moons data set (paper §5.2), generated with scikit-learn's <c>make_moons</c> geometry and split
/// into train and test sets, all from one seed.
/// </summary>
/// <remarks>
/// Construction, for <c>N</c> samples, noise σ, label-noise fraction p, test fraction q and seed s:
/// <list type="number">
/// <item>Outer moon (label 0): <c>m₀ = ⌊N/2⌋</c> points <c>(cos θ, sin θ)</c>; inner moon (label 1):
/// <c>m₁ = N − m₀</c> points <c>(1 − cos θ, 1 − sin θ − 0.5)</c>; θ evenly spaced over [0, π] in each moon
/// (<c>θ_i = π·i/(m−1)</c>, as <c>numpy.linspace(0, π, m)</c> in make_moons; θ = 0 when m = 1). Samples are
/// ordered outer moon first, then inner.</item>
/// <item>Every coordinate gets independent Gaussian noise <c>σ·z</c>, z standard normal (Box–Muller from a
/// <see cref="Random"/> seeded with <c>Stream(s, 1)</c>).</item>
/// <item>Split: a Fisher–Yates permutation of the N samples from <c>Stream(s, 2)</c>; its first
/// <c>max(1, round(q·N))</c> samples are the test set, the rest the training set, each in permutation order.</item>
/// <item>Label noise, on the training set only: each training label independently, with probability p (one
/// uniform draw per label from <c>Stream(s, 3)</c>), is replaced by a uniformly drawn different class (for two
/// classes: flipped). Test labels stay clean.</item>
/// </list>
/// <c>Stream(s, k) = new Random(s·7919 + k)</c> (unchecked); the three streams are independent, so the same
/// seed with another noise fraction gives the same points and split.
/// </remarks>
public static class TwoMoons
{
    /// <summary>Generates the data (see the remarks for the exact construction).</summary>
    /// <param name="samples">Total number of samples N ≥ 4 (train + test).</param>
    /// <param name="noise">Standard deviation σ ≥ 0 of the Gaussian noise added to each coordinate.</param>
    /// <param name="labelNoise">Probability p ∈ [0, 1] that a training label is flipped.</param>
    /// <param name="testFraction">Fraction q ∈ (0, 1) of the samples held out as the test set.</param>
    /// <param name="seed">Seed of the points, the split and the label noise.</param>
    public static TrainingData Generate(int samples, double noise, double labelNoise, double testFraction, int seed)
    {
        if (samples < 4) throw new ArgumentOutOfRangeException(nameof(samples), samples, "At least 4 samples.");
        if (!(noise >= 0) || !double.IsFinite(noise)) throw new ArgumentOutOfRangeException(nameof(noise), noise, "Noise must be finite and ≥ 0.");
        var (x, y) = Points(samples, noise, seed);
        var clean = TrainingData.Split(x, y, [2], 2, testFraction, seed, "two-moons");
        return clean.WithTrainLabelNoise(labelNoise, seed);
    }

    /// <summary>The N noisy points (row-major <c>N × 2</c>) and clean labels, before the split.</summary>
    public static (float[] X, int[] Y) Points(int samples, double noise, int seed)
    {
        var outer = samples / 2;
        var inner = samples - outer;
        var x = new double[samples * 2];
        var y = new int[samples];
        for (var i = 0; i < outer; i++)
        {
            var theta = outer == 1 ? 0 : Math.PI * i / (outer - 1);
            x[2 * i] = Math.Cos(theta);
            x[2 * i + 1] = Math.Sin(theta);
        }
        for (var i = 0; i < inner; i++)
        {
            var theta = inner == 1 ? 0 : Math.PI * i / (inner - 1);
            var row = outer + i;
            x[2 * row] = 1 - Math.Cos(theta);
            x[2 * row + 1] = 1 - Math.Sin(theta) - 0.5;
            y[row] = 1;
        }
        var rng = Seeds.Stream(seed, 1);
        for (var e = 0; e < x.Length; e++) x[e] += noise * Seeds.Gaussian(rng);
        return (x.Select(v => (float)v).ToArray(), y);
    }
}
