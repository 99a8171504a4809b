using LambdaService.Measurement.Taylor;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

public class JetTests
{
    [Fact]
    public void A_line_holds_x_and_v_with_a_known_zero_tail_and_its_derivatives_are_n_factorial_times_the_coefficients()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 0.5, -1.0 }, [2, 1], ScalarType.Float64);
        var v = tensor(new[] { 2.0, 3.0 }, [2, 1], ScalarType.Float64);
        var line = Jet.Line(x, v, 4);
        Assert.Equal(4, line.Order);
        Assert.Equal(1, line.Degree);
        Assert.Equal([2L, 1], line.Shape);
        Assert.Equal([0.5, -1, 2, 3, 0, 0, 0, 0, 0, 0], line.Coefficients.data<double>().ToArray());
        // exp(x + t v) = e^x Σ (v t)ⁿ / n!: the n-th derivative is e^x vⁿ (closed form).
        var d = JetOps.Exp(line).Derivatives().data<double>().ToArray();
        for (var n = 0; n <= 4; n++)
        {
            Assert.Equal(Math.Exp(0.5) * Math.Pow(2, n), d[n * 2], 12);
            Assert.Equal(Math.Exp(-1) * Math.Pow(3, n), d[n * 2 + 1], 12);
        }
        var c = Jet.Constant(x, 3);
        Assert.Equal(0, c.Degree);
        Assert.Equal([0.5, -1, 0, 0, 0, 0, 0, 0], c.Coefficients.data<double>().ToArray());
        Assert.Equal([0.0, 0], c.Coefficient(2).data<double>().ToArray());
    }

    [Fact]
    public void Jets_refuse_integer_coefficients_mismatched_shapes_and_too_many_coefficients()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("floating point", Assert.Throws<ArgumentException>(() => new Jet(zeros(3, 2, dtype: ScalarType.Int64))).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Jet.Line(zeros(2, 3, dtype: ScalarType.Float64), zeros(2, 2, dtype: ScalarType.Float64), 2));
        Assert.Throws<ArgumentException>(() => new Jet(zeros(4, 2, dtype: ScalarType.Float64), 2));
        var a = Jet.Line(zeros(1, 2, dtype: ScalarType.Float64), ones(1, 2, dtype: ScalarType.Float64), 2);
        var b = Jet.Line(zeros(1, 2, dtype: ScalarType.Float64), ones(1, 2, dtype: ScalarType.Float64), 3);
        Assert.Contains("truncate", Assert.Throws<ArgumentException>(() => JetOps.Add(a, b)).Message, StringComparison.Ordinal);
        Assert.Equal(2, JetOps.Add(a, JetOps.Truncate(b, 2)).Order);
    }
}
