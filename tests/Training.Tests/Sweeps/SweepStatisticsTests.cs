using LambdaService.Training.Sweeps;

namespace LambdaService.Training.Tests.Sweeps;

public class SweepStatisticsTests
{
    [Fact]
    public void The_summary_of_a_small_list_has_the_hand_computed_mean_sd_and_interval_and_skips_nan()
    {
        // Values 2, 3, 5, 7, 8 (and one NaN, skipped): n = 5, Σ = 25, mean = 5.
        // Deviations −3, −2, 0, 2, 3; Σ d² = 9 + 4 + 0 + 4 + 9 = 26; s² = 26/4 = 6.5; s = √6.5 = 2.549509757.
        // Standard error s/√5 = √1.3 = 1.140175425; t_{0.975,4} = 2.776445 (table value 2.7764);
        // half-width = 2.776445 · 1.140175425 = 3.165634; interval [1.834366, 8.165634].
        // Tolerance 1e-5 on the interval: the t value is taken to 6 decimals (1e-6 · 1.14 on the half-width).
        var s = SweepStatistics.Summarize([2, 3, double.NaN, 5, 7, 8]);
        Assert.Equal(5, s.Count);
        Assert.Equal(1, s.NaNCount);
        Assert.Equal(5.0, s.Mean, 12);
        Assert.NotNull(s.StandardDeviation);
        Assert.Equal(Math.Sqrt(6.5), s.StandardDeviation.Value, 12);
        Assert.NotNull(s.Ci95);
        Assert.Equal(1.834366, s.Ci95[0], 1e-5);
        Assert.Equal(8.165634, s.Ci95[1], 1e-5);
        Assert.Equal(2.0, s.Min);
        Assert.Equal(8.0, s.Max);
    }

    [Fact]
    public void A_single_value_has_no_standard_deviation_and_no_interval()
    {
        // n = 1: the sample variance divides by n − 1 = 0, so sd and interval are undefined (null by contract).
        var s = SweepStatistics.Summarize([double.NaN, 0.25]);
        Assert.Equal(1, s.Count);
        Assert.Equal(1, s.NaNCount);
        Assert.Equal(0.25, s.Mean);
        Assert.Null(s.StandardDeviation);
        Assert.Null(s.Ci95);
        Assert.Equal(0.25, s.Min);
        Assert.Equal(0.25, s.Max);
    }

    [Fact]
    public void Summarizing_nothing_only_nan_or_an_infinity_is_rejected_with_a_message()
    {
        Assert.Contains("no values", Assert.Throws<ArgumentException>(() => SweepStatistics.Summarize([])).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => SweepStatistics.Summarize([double.NaN, double.NaN])).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => SweepStatistics.Summarize([1, double.PositiveInfinity])).Message);
    }

    [Theory]
    // Table values of t_{0.975, ν} (two-sided 95%, e.g. any statistics textbook's t table; R: qt(0.975, ν)),
    // given to 4 decimals, so the tolerance is 1e-3. ν = 1e6 stands for ν → ∞, whose limit is z_{0.975} = 1.959964.
    [InlineData(1, 12.7062)]
    [InlineData(2, 4.3027)]
    [InlineData(4, 2.7764)]
    [InlineData(9, 2.2622)]
    [InlineData(29, 2.0452)]
    [InlineData(1e6, 1.9600)]
    public void The_t_quantile_matches_the_table_value(double degreesOfFreedom, double table)
    {
        Assert.Equal(table, SweepStatistics.StudentTQuantile(0.975, degreesOfFreedom), 1e-3);
    }

    [Theory]
    [InlineData(0.975)]
    [InlineData(0.9)]
    [InlineData(0.6)]
    [InlineData(0.999)]
    public void The_t_quantile_matches_the_closed_forms_for_one_and_two_degrees_of_freedom(double p)
    {
        // ν = 1 (Cauchy): F(t) = ½ + atan(t)/π, so t_p = tan(π(p − ½)).
        // ν = 2: F(t) = ½ + t / (2√(2 + t²)), so t_p = (2p − 1) / √(2p(1 − p)).
        // Tolerance 1e-9 relative: MathNet's InvCDF stops within about 1e-12 of the root in probability (measured: at most
        // 6e-11 relative, ν = 1, p = 0.999); the incomplete beta is accurate to ~1e-14.
        var cauchy = Math.Tan(Math.PI * (p - 0.5));
        Assert.Equal(cauchy, SweepStatistics.StudentTQuantile(p, 1), 1e-9 * cauchy);
        var two = (2 * p - 1) / Math.Sqrt(2 * p * (1 - p));
        Assert.Equal(two, SweepStatistics.StudentTQuantile(p, 2), 1e-9 * two);
        // Symmetry: t_{1−p} = −t_p.
        Assert.Equal(-SweepStatistics.StudentTQuantile(p, 7), SweepStatistics.StudentTQuantile(1 - p, 7), 12);
    }

    [Theory]
    [InlineData(0.9999)]
    [InlineData(0.99999)]
    public void The_t_quantile_beyond_800_where_mathnet_does_not_search_matches_the_closed_forms(double p)
    {
        // MathNet's StudentT.InvCDF searches only [−800, 800]; these quantiles lie beyond it.
        // ν = 1: t_p = tan(π(p − ½)) = 3183.1 and 31831; ν = 2 at p = 1 − 1e-7: (2p − 1)/√(2p(1 − p)) = 2236.1.
        // Tolerance 1e-9 relative, as for the closed forms below 800 (tan's own condition here is below 1e-11).
        var cauchy = Math.Tan(Math.PI * (p - 0.5));
        Assert.Equal(cauchy, SweepStatistics.StudentTQuantile(p, 1), 1e-9 * cauchy);
        Assert.Equal(-cauchy, SweepStatistics.StudentTQuantile(1 - p, 1), 1e-9 * cauchy);
        const double q = 1 - 1e-7;
        var two = (2 * q - 1) / Math.Sqrt(2 * q * (1 - q));
        Assert.Equal(two, SweepStatistics.StudentTQuantile(q, 2), 1e-9 * two);
    }

    [Fact]
    public void The_t_distribution_function_inverts_the_quantile()
    {
        // Round trip F(t_p) = p for several ν; tolerance 1e-12 (the quantile's root-finding stops within about 1e-12 in
        // probability, measured at most 7e-13 here; the distribution function is accurate to about 1e-14).
        foreach (var nu in new[] { 1.0, 3, 4.5, 10, 39, 200 })
            foreach (var p in new[] { 0.01, 0.3, 0.5, 0.8, 0.975, 0.9999 })
                Assert.Equal(p, SweepStatistics.StudentTCdf(SweepStatistics.StudentTQuantile(p, nu), nu), 1e-12);
    }

    [Fact]
    public void Pearson_r_slope_and_intercept_match_a_hand_computation()
    {
        // x = 1..5, y = 2, 1, 4, 3, 5: x̄ = ȳ = 3; dx = −2, −1, 0, 1, 2; dy = −1, −2, 1, 0, 2.
        // Sxy = 2 + 2 + 0 + 0 + 4 = 8; Sxx = 4 + 1 + 0 + 1 + 4 = 10; Syy = 1 + 4 + 1 + 0 + 4 = 10.
        // r = 8 / √(10·10) = 0.8; slope = 8/10 = 0.8; intercept = 3 − 0.8·3 = 0.6. Exact in binary up to rounding: 1e-12.
        var c = SweepStatistics.Correlate([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], permutations: 100, bootstrap: 100, seed: 1);
        Assert.Equal(5, c.Count);
        Assert.Equal(0, c.SkippedPairs);
        Assert.Equal(0.8, c.R, 12);
        Assert.Equal(0.8, c.Slope, 12);
        Assert.Equal(0.6, c.Intercept, 12);
    }

    [Fact]
    public void Perfectly_correlated_data_gives_r_one_and_the_smallest_possible_p()
    {
        // y = 3 − 2x on 12 points: r = −1. Only the identity and the reversal of y reach |r| = 1, i.e. 2 of
        // 12! = 479,001,600 permutations, so 999 shuffles hit one with probability < 5e-6 and p = 1/(1 + 999).
        var x = Enumerable.Range(0, 12).Select(i => (double)i).ToArray();
        var y = x.Select(v => 3 - 2 * v).ToArray();
        var c = SweepStatistics.Correlate(x, y, permutations: 999, bootstrap: 200, seed: 4);
        Assert.Equal(-1.0, c.R, 12);
        Assert.Equal(1.0 / 1000, c.PValue, 15);
    }

    [Fact]
    public void Uncorrelated_data_gives_p_one()
    {
        // x = 1..8, y = 1, −1, −1, 1, 1, −1, −1, 1: dx = −3.5..3.5 and Σ dx·y = −3.5 + 2.5 + 1.5 − 0.5 + 0.5 − 1.5 − 2.5 + 3.5 = 0,
        // so r = 0 and every permutation has |r_b| ≥ 0: p = (1 + B)/(1 + B) = 1 exactly.
        var c = SweepStatistics.Correlate([1, 2, 3, 4, 5, 6, 7, 8], [1, -1, -1, 1, 1, -1, -1, 1], permutations: 500, bootstrap: 100, seed: 2);
        Assert.Equal(0.0, c.R, 12);
        Assert.Equal(1.0, c.PValue);
    }

    [Fact]
    public void Independent_data_gives_a_large_p_that_agrees_with_the_t_test_of_r()
    {
        // 40 independent uniform pairs from a fixed generator. For such data the permutation p-value approximates
        // the classical two-sided test of r: t = r·√((n−2)/(1−r²)), p = 2·(1 − F_{n−2}(|t|)). With B = 20,000 the
        // Monte-Carlo standard error is at most 0.5/√20000 = 0.0035; the two tests differ by the t approximation
        // (small at n = 40), so they are compared within 0.03.
        var rng = new Random(12345);
        var x = Enumerable.Range(0, 40).Select(_ => rng.NextDouble()).ToArray();
        var y = Enumerable.Range(0, 40).Select(_ => rng.NextDouble()).ToArray();
        var c = SweepStatistics.Correlate(x, y, permutations: 20_000, bootstrap: 100, seed: 7);
        var t = c.R * Math.Sqrt(38 / (1 - c.R * c.R));
        var classical = 2 * (1 - SweepStatistics.StudentTCdf(Math.Abs(t), 38));
        Assert.True(c.PValue > 0.2, $"p = {c.PValue} (r = {c.R}) should be large for independent data.");
        Assert.Equal(classical, c.PValue, 0.03);
    }

    [Fact]
    public void The_permutation_p_value_agrees_with_the_exact_enumeration_of_all_120_permutations()
    {
        // Exact two-sided p over all 5! = 120 permutations of y (enumerated here, independently of the shuffle):
        // p_exact = #{π : |r(x, y∘π)| ≥ |r_obs|} / 120. The Monte-Carlo estimate counts hits among B uniform
        // shuffles: its standard deviation is √(p(1−p)/B) (0.0024 for p ≈ 0.13, B = 20,000), and the "+1" of
        // (1 + k)/(1 + B) moves it by at most 1/(1 + B). Tolerance: 5 standard deviations plus that shift.
        double[] x = [1, 2, 3, 4, 5];
        double[] y = [2, 1, 4, 3, 5];
        var observed = Math.Abs(Pearson(x, y));
        var hits = 0;
        var total = 0;
        foreach (var permutation in Permutations([0, 1, 2, 3, 4]))
        {
            total++;
            var permuted = permutation.Select(i => y[i]).ToArray();
            if (Math.Abs(Pearson(x, permuted)) >= observed - 1e-12) hits++;
        }
        Assert.Equal(120, total);
        var exact = (double)hits / total;
        const int b = 20_000;
        var c = SweepStatistics.Correlate(x, y, permutations: b, bootstrap: 10, seed: 3);
        var tolerance = 5 * Math.Sqrt(exact * (1 - exact) / b) + 1.0 / (b + 1);
        Assert.Equal(exact, c.PValue, tolerance);
    }

    [Fact]
    public void The_bootstrap_interval_of_a_noiseless_line_is_the_single_true_slope()
    {
        // y = 2 + 3x exactly: every resample with two distinct x lies on the same line, so every bootstrap slope
        // is 3 (up to rounding of the means, 1e-12) and both percentiles are 3.
        var x = Enumerable.Range(0, 10).Select(i => 0.5 * i).ToArray();
        var y = x.Select(v => 2 + 3 * v).ToArray();
        var c = SweepStatistics.Correlate(x, y, permutations: 10, bootstrap: 500, seed: 5);
        Assert.NotNull(c.SlopeCi95);
        Assert.Equal(3.0, c.SlopeCi95[0], 1e-12);
        Assert.Equal(3.0, c.SlopeCi95[1], 1e-12);
        Assert.Equal(c.SlopeCi95[0], c.SlopeCi95[1], 1e-12);
        Assert.True(c.SlopeCi95[0] <= 3.0 + 1e-12 && 3.0 - 1e-12 <= c.SlopeCi95[1]);
        Assert.Equal(3.0, c.Slope, 12);
        Assert.Equal(2.0, c.Intercept, 12);
        Assert.Equal(500, c.BootstrapResamples);
        // A resample of 10 draws from 10 points has all x equal with probability 10·(1/10)^10: none are skipped here.
        Assert.Equal(500, c.BootstrapUsed);
    }

    [Fact]
    public void The_bootstrap_interval_of_noisy_data_contains_the_estimated_slope()
    {
        // y = 1 + 0.5x + noise on 30 points: the percentile interval is a proper interval around the OLS slope.
        var rng = new Random(9);
        var x = Enumerable.Range(0, 30).Select(i => (double)i).ToArray();
        var y = x.Select(v => 1 + 0.5 * v + (rng.NextDouble() - 0.5)).ToArray();
        var c = SweepStatistics.Correlate(x, y, permutations: 200, bootstrap: 1000, seed: 6);
        Assert.NotNull(c.SlopeCi95);
        Assert.True(c.SlopeCi95[0] < c.Slope && c.Slope < c.SlopeCi95[1], $"{c.Slope} in [{c.SlopeCi95[0]}, {c.SlopeCi95[1]}]");
        Assert.True(c.SlopeCi95[0] < 0.5 && 0.5 < c.SlopeCi95[1]);
    }

    [Fact]
    public void The_same_seed_gives_the_same_result_and_another_seed_other_resamples()
    {
        var rng = new Random(21);
        var x = Enumerable.Range(0, 15).Select(_ => rng.NextDouble()).ToArray();
        var y = x.Select(v => v + rng.NextDouble()).ToArray();
        var a = SweepStatistics.Correlate(x, y, permutations: 999, bootstrap: 999, seed: 11);
        var b = SweepStatistics.Correlate(x, y, permutations: 999, bootstrap: 999, seed: 11);
        Assert.Equal(a.PValue, b.PValue);
        Assert.Equal(a.SlopeCi95, b.SlopeCi95);
        Assert.Equal(a with { SlopeCi95 = null }, b with { SlopeCi95 = null });
        var other = SweepStatistics.Correlate(x, y, permutations: 999, bootstrap: 999, seed: 12);
        Assert.Equal(a.R, other.R);
        Assert.NotEqual(a.SlopeCi95, other.SlopeCi95);
    }

    [Fact]
    public void Pairs_with_nan_are_skipped_and_counted()
    {
        // The NaN pairs are dropped before anything is computed, so the result equals that of the clean data.
        var clean = SweepStatistics.Correlate([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 100, 100, 1);
        var dirty = SweepStatistics.Correlate([1, 2, double.NaN, 3, 4, 9, 5], [2, 1, 7, double.NaN, 3, double.NaN, 5], 100, 100, 1);
        Assert.Equal(4, dirty.Count);
        Assert.Equal(3, dirty.SkippedPairs);
        var reference = SweepStatistics.Correlate([1, 2, 4, 5], [2, 1, 3, 5], 100, 100, 1);
        Assert.Equal(reference with { SkippedPairs = 3, SlopeCi95 = null }, dirty with { SlopeCi95 = null });
        Assert.Equal(reference.SlopeCi95, dirty.SlopeCi95);
        Assert.Equal(0.8, clean.R, 12);
    }

    [Fact]
    public void Invalid_correlation_inputs_are_rejected_with_a_message()
    {
        Assert.Contains("pairs", Assert.Throws<ArgumentException>(() => SweepStatistics.Correlate([1, 2, 3], [1, 2], 10, 10, 0)).Message);
        Assert.Contains("at least three", Assert.Throws<ArgumentException>(() => SweepStatistics.Correlate([1, 2, double.NaN], [1, 2, 3], 10, 10, 0)).Message);
        Assert.Contains("All x values are equal", Assert.Throws<ArgumentException>(() => SweepStatistics.Correlate([1, 1, 1], [1, 2, 3], 10, 10, 0)).Message);
        Assert.Contains("All y values are equal", Assert.Throws<ArgumentException>(() => SweepStatistics.Correlate([1, 2, 3], [4, 4, 4], 10, 10, 0)).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => SweepStatistics.Correlate([1, 2, double.NegativeInfinity], [1, 2, 3], 10, 10, 0)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SweepStatistics.Correlate([1, 2, 3], [1, 2, 4], 0, 10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SweepStatistics.Correlate([1, 2, 3], [1, 2, 4], 10, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SweepStatistics.StudentTQuantile(1, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SweepStatistics.StudentTQuantile(0.5, 0));
    }

    private static double Pearson(double[] x, double[] y)
    {
        var mx = x.Average();
        var my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>Every permutation of <paramref name="items"/> (recursive: each item first, then the permutations of the rest).</summary>
    private static IEnumerable<int[]> Permutations(int[] items)
    {
        if (items.Length <= 1)
        {
            yield return items;
            yield break;
        }
        for (var i = 0; i < items.Length; i++)
        {
            var rest = items.Where((_, k) => k != i).ToArray();
            foreach (var tail in Permutations(rest)) yield return [items[i], .. tail];
        }
    }
}
