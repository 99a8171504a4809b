namespace LambdaService.Training;

/// <summary>
/// Seeded random streams. Each purpose (noise, split, label noise, batch order, CRR directions, …) draws
/// from its own <see cref="Random"/> so that changing one setting does not shift the numbers of another.
/// </summary>
public static class Seeds
{
    /// <summary>Stream k of seed s: <c>new Random(s·7919 + k)</c> (unchecked arithmetic).</summary>
    public static Random Stream(int seed, int k) => new(unchecked(seed * 7919 + k));

    /// <summary>A standard normal draw by Box–Muller: <c>√(−2 ln(1 − u₁))·cos(2π u₂)</c>.</summary>
    public static double Gaussian(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Fills <paramref name="into"/> with a random unit vector: independent Gaussian draws, normalised (redrawn if all zero).</summary>
    public static void UnitVector(Random rng, Span<float> into)
    {
        double norm;
        var values = new double[into.Length];
        do
        {
            norm = 0;
            for (var e = 0; e < values.Length; e++)
            {
                values[e] = Gaussian(rng);
                norm += values[e] * values[e];
            }
            norm = Math.Sqrt(norm);
        }
        while (norm == 0);
        for (var e = 0; e < values.Length; e++) into[e] = (float)(values[e] / norm);
    }

    /// <summary>A Fisher–Yates permutation of 0..n−1.</summary>
    public static int[] Permutation(Random rng, int n)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var p = Enumerable.Range(0, n).ToArray();
        for (var i = n - 1; i > 0; i--)
        {
            var j = rng.Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
