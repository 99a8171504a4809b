using LambdaService.Measurement.Validation;

namespace LambdaService.Measurement.Tests.Validation;

public class GrowthRateTests
{
    private static readonly int[] Orders = Enumerable.Range(1, 20).ToArray();

    [Fact]
    public void An_exactly_geometric_sequence_has_its_ratio_as_growth_rate()
    {
        // log v_n = 2 + 0.5 n exactly ⇒ slope 0.5, intercept 2, R² = 1 (tolerance 1e-12).
        var logs = Orders.Select(n => 2 + 0.5 * n).ToArray();
        var fit = GrowthRate.Fit(Orders, logs);
        Assert.Equal(0.5, fit.Slope, 1e-12);
        Assert.Equal(2.0, fit.Intercept, 1e-12);
        Assert.Equal(1.0, fit.RSquared, 1e-12);
        Assert.Empty(fit.SkippedOrders);
    }

    [Fact]
    public void Orders_with_zero_norm_are_skipped_and_listed()
    {
        // v_n = 3ⁿ at even n and 0 at odd n ⇒ fit the even orders only, slope log 3 (tolerance 1e-12).
        var logs = Orders.Select(n => n % 2 == 0 ? n * Math.Log(3) : double.NegativeInfinity).ToArray();
        var fit = GrowthRate.Fit(Orders, logs);
        Assert.Equal(Math.Log(3), fit.Slope, 1e-12);
        Assert.Equal(Orders.Where(n => n % 2 == 1), fit.SkippedOrders);
        Assert.Equal(Orders.Where(n => n % 2 == 0), fit.FittedOrders);
    }

    [Fact]
    public void A_zero_blurred_by_round_off_is_skipped_like_an_exact_zero()
    {
        // v_5 = 1e-17 between neighbours of about 1: below 1e-12 of its neighbours, so it is a round-off zero.
        var logs = Orders.Select(n => n == 5 ? Math.Log(1e-17) : 0.01 * n).ToArray();
        var fit = GrowthRate.Fit(Orders, logs);
        Assert.Equal([5], fit.SkippedOrders);
        Assert.Equal(0.01, fit.Slope, 1e-12);
    }

    [Fact]
    public void The_band_edge_correction_recovers_a_free_power_of_two_n_plus_one()
    {
        // Synthetic log v_n = 1 + 2n − 0.7·log(2n+1): the three-parameter fit must return c = 1, λ = 2, γ = −0.7
        // (γ is estimated, not fixed at −½); the plain slope is biased low. Tolerance 1e-10.
        var logs = Orders.Select(n => 1 + 2.0 * n - 0.7 * Math.Log(2 * n + 1)).ToArray();
        var fit = GrowthRate.FitWithBandEdgeCorrection(Orders, logs);
        Assert.Equal(2.0, fit.Slope, 1e-10);
        Assert.Equal(-0.7, fit.Gamma, 1e-10);
        Assert.Equal(1.0, fit.Intercept, 1e-10);
        Assert.Equal(1.0, fit.RSquared, 1e-12);
        Assert.True(GrowthRate.Fit(Orders, logs).Slope < 2.0);
    }

    [Fact]
    public void Not_a_number_is_rejected_rather_than_skipped()
    {
        var logs = Orders.Select(n => n == 3 ? double.NaN : n).ToArray();
        Assert.Throws<ArgumentException>(() => GrowthRate.Fit(Orders, logs));
    }

    [Fact]
    public void A_sequence_with_fewer_than_two_non_zero_norms_is_rejected()
    {
        var logs = Orders.Select(n => n == 4 ? 1.0 : double.NegativeInfinity).ToArray();
        Assert.Throws<ArgumentException>(() => GrowthRate.Fit(Orders, logs));
    }
}
