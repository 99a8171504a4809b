using LambdaService.Measurement.Validation;

namespace LambdaService.Measurement.Tests.Validation;

public class TaylorSeriesTests
{
    [Fact]
    public void The_square_of_one_plus_x_is_one_plus_two_x_plus_x_squared()
    {
        // Hand-computed: (1 + x)² = 1 + 2x + x²; all other coefficients 0. Small integers: exact in double.
        var x = TaylorSeries.Variable(0, 6);
        var square = (1 + x) * (1 + x);
        Assert.Equal([1.0, 2, 1, 0, 0, 0, 0], square.ToArray());
    }

    [Fact]
    public void The_cube_of_one_plus_x_by_pow_has_the_binomial_coefficients()
    {
        // Hand-computed: (1 + x)³ = 1 + 3x + 3x² + x³. Exact.
        var x = TaylorSeries.Variable(0, 5);
        Assert.Equal([1.0, 3, 3, 1, 0, 0], (1 + x).Pow(3).ToArray());
        Assert.Equal([1.0, 0, 0, 0, 0, 0], (1 + x).Pow(0).ToArray());
    }

    [Fact]
    public void One_divided_by_one_minus_x_has_every_coefficient_equal_to_one()
    {
        // Geometric series: 1/(1 − x) = Σ xⁿ. The recursion q_n = (0 + q_{n−1})/1 is exact in double.
        var x = TaylorSeries.Variable(0, 60);
        var q = 1.0 / (1 - x);
        Assert.All(q.ToArray(), c => Assert.Equal(1.0, c));
    }

    [Fact]
    public void One_divided_by_one_minus_x_cubed_is_one_at_multiples_of_three_and_zero_elsewhere()
    {
        // 1/(1 − x³) = Σ x^{3m}: q_n = q_{n−3}, exact zeros at n ≢ 0 (mod 3).
        var x = TaylorSeries.Variable(0, 30);
        var q = 1.0 / (1 - x.Pow(3));
        for (var n = 0; n <= 30; n++) Assert.Equal(n % 3 == 0 ? 1.0 : 0.0, q[n]);
    }

    [Fact]
    public void Dividing_a_product_by_one_factor_gives_back_the_other_factor()
    {
        // Hand-computed: (1 + 2x + x²)/(1 + x) = 1 + x exactly; (1 + x)/(1 − x) = 1 + 2x + 2x² + 2x³ + …
        var x = TaylorSeries.Variable(0, 8);
        Assert.Equal([1.0, 1, 0, 0, 0, 0, 0, 0, 0], ((1 + 2 * x + x * x) / (1 + x)).ToArray());
        Assert.Equal([1.0, 2, 2, 2, 2, 2, 2, 2, 2], ((1 + x) / (1 - x)).ToArray());
    }

    [Fact]
    public void The_exponential_of_x_has_coefficients_one_over_k_factorial()
    {
        // eˣ = Σ xᵏ/k!; tolerance 1e-15 relative (a few roundings per coefficient).
        var e = TaylorSeries.Exp(TaylorSeries.Variable(0, 25));
        var factorial = 1.0;
        for (var k = 0; k <= 25; k++)
        {
            if (k > 0) factorial *= k;
            Assert.Equal(1.0, e[k] * factorial, 1e-15);
        }
        Assert.Equal(1.0, e.Derivative(7), 1e-15);
    }

    [Fact]
    public void The_logarithm_of_one_plus_x_has_coefficients_alternating_one_over_k()
    {
        // log(1 + x) = x − x²/2 + x³/3 − …; tolerance 1e-15.
        var l = TaylorSeries.Log(1 + TaylorSeries.Variable(0, 20));
        Assert.Equal(0.0, l[0]);
        for (var k = 1; k <= 20; k++) Assert.Equal((k % 2 == 1 ? 1.0 : -1.0) / k, l[k], 1e-15);
    }

    [Fact]
    public void The_exponential_over_one_minus_x_around_0_3_matches_its_closed_form_coefficients()
    {
        // Independent closed form: e^{x}/(1 − x) at x = 0.3 + h is e^{0.3} e^{h} / (0.7 − h), so
        // a_n = e^{0.3} Σ_{j=0}^{n} (1/j!) 0.7^{−(n−j+1)}. Tolerance 1e-13 relative.
        var x = TaylorSeries.Variable(0.3, 60);
        var f = TaylorSeries.Exp(x) / (1 - x);
        for (var n = 0; n <= 60; n++)
        {
            var expected = 0.0;
            var invFactorial = 1.0;
            for (var j = 0; j <= n; j++)
            {
                if (j > 0) invFactorial /= j;
                expected += invFactorial * Math.Pow(0.7, -(n - j + 1));
            }
            expected *= Math.Exp(0.3);
            Assert.Equal(1.0, f[n] / expected, 1e-13);
        }
    }

    [Fact]
    public void A_truncated_geometric_series_evaluates_to_the_function_inside_its_radius()
    {
        // 1/(1 − x) at x = 0.5 is 2; the truncation error at N = 60 is 0.5⁶¹·2 ≈ 9e-19.
        var q = 1.0 / (1 - TaylorSeries.Variable(0, 60));
        Assert.Equal(2.0, q.Evaluate(0.5), 1e-14);
    }

    [Fact]
    public void Dividing_by_a_series_that_vanishes_at_the_centre_is_rejected()
    {
        var x = TaylorSeries.Variable(0, 5);
        Assert.Throws<DivideByZeroException>(() => 1.0 / x);
    }

    [Fact]
    public void Series_around_different_centres_cannot_be_combined()
    {
        Assert.Throws<ArgumentException>(() => TaylorSeries.Variable(0, 5) + TaylorSeries.Variable(1, 5));
    }

    [Fact]
    public void Arithmetic_truncates_to_the_lower_order_of_its_operands()
    {
        var product = TaylorSeries.Variable(0, 3) * TaylorSeries.Variable(0, 7);
        Assert.Equal(3, product.Order);
    }
}
