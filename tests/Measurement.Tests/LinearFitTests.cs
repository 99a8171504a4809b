using LambdaService.Measurement.Numerics;

namespace LambdaService.Measurement.Tests;

public class LinearFitTests
{
    [Fact]
    public void A_line_through_hand_computed_points_has_the_hand_computed_slope_intercept_and_r2()
    {
        // Points (1,2), (2,3), (3,5): x̄ = 2, ȳ = 10/3, Sxx = 2, Sxy = (-1)(-4/3) + 0 + (1)(5/3) = 3,
        // slope = 3/2, intercept = 10/3 - 3 = 1/3. Residuals: 2-11/6 = 1/6, 3-10/3 = -1/3, 5-29/6 = 1/6;
        // SSE = 1/36 + 4/36 + 1/36 = 1/6; Syy = 16/9 + 1/9 + 25/9 = 42/9; R² = 1 - (1/6)/(42/9) = 1 - 9/252.
        var fit = LinearFit.Fit([1, 2, 3], [2, 3, 5]);
        Assert.Equal(1.5, fit.Slope, 12);
        Assert.Equal(1.0 / 3, fit.Intercept, 12);
        Assert.Equal(1 - 9.0 / 252, fit.RSquared, 12);
    }

    [Fact]
    public void A_fit_with_fewer_than_two_points_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => LinearFit.Fit([1], [2]));
    }

    [Fact]
    public void A_horizontal_line_has_slope_zero_and_r2_one()
    {
        // All y equal: Syy = 0, so R² = 1 − SSE/Syy is 0/0; LinearFit defines it as 1 (the line fits exactly).
        var fit = LinearFit.Fit([1, 2, 4], [3, 3, 3]);
        Assert.Equal(0.0, fit.Slope, 15);
        Assert.Equal(3.0, fit.Intercept, 15);
        Assert.Equal(1.0, fit.RSquared);
    }

    [Fact]
    public void Equal_x_values_and_non_finite_values_are_rejected_with_a_message()
    {
        // MathNet's Fit.Line would return a NaN or infinite slope for these; LinearFit checks them first.
        Assert.Contains("All x values are equal", Assert.Throws<ArgumentException>(() => LinearFit.Fit([2, 2, 2], [1, 2, 3])).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => LinearFit.Fit([1, 2, 3], [1, double.NaN, 3])).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => LinearFit.Fit([1, double.PositiveInfinity, 3], [1, 2, 3])).Message);
    }
}
