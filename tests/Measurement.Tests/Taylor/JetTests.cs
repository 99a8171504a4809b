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
    public void Point_lines_repeat_each_point_for_its_directions_and_say_that_the_rows_share_the_value()
    {
        using var scope = NewDisposeScope();
        var points = tensor(new[] { 1.0, 2.0, 3.0, 4.0 }, [2, 2], ScalarType.Float64);
        var v = tensor(new[] { 10.0, 11, 12, 13, 14, 15 }, [3, 2], ScalarType.Float64);
        var perPoint = tensor(new[] { 10.0, 11, 12, 13, 14, 15, 16, 17 }, [4, 2], ScalarType.Float64);
        var lines = Jet.PointLines(points, perPoint, 3);
        // Rows 0, 1 are point 0 along directions 0, 1; rows 2, 3 point 1 (point-major), written out by hand.
        Assert.Equal([1.0, 2, 1, 2, 3, 4, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17], lines.Leading.data<double>().ToArray());
        Assert.Equal(2, lines.SharedValueRows);
        Assert.Equal(1, Jet.PointLines(points, perPoint.narrow(0, 0, 2), 3).SharedValueRows);
        // A map that mixes rows (a transpose of the batch axis) forgets the groups; one that keeps them (flatten from axis 1) does not.
        Assert.Equal(1, JetOps.Transpose(lines, 0, 1).SharedValueRows);
        Assert.Equal(2, JetOps.Flatten(JetOps.Unsqueeze(lines, 2), 1).SharedValueRows);
        // ReLU at a value of exactly 0 follows each line's tangent (the one-sided series), so there the lines of one point differ:
        // point 0's first entry is 0 and its two directions leave it upwards (1) and downwards (−1). The shared rule gives what the
        // rule gives on the lines one by one, and the value rows stay shared (0 either way).
        var kinked = Jet.PointLines(tensor(new[] { 0.0, 2.0, -3.0, 4.0 }, [2, 2], ScalarType.Float64),
            tensor(new[] { 1.0, 1, -1.0, 1, 1, 1, 1, -1 }, [4, 2], ScalarType.Float64), 3);
        var relu = JetOps.Relu(kinked);
        Assert.Equal(2, relu.SharedValueRows);
        Assert.Equal(JetOps.Relu(Jet.Line(kinked.Value, kinked.Coefficient(1), 3)).Coefficients.data<double>().ToArray(), relu.Coefficients.data<double>().ToArray());
        Assert.Equal([0.0, 2, 0, 2, 0, 4, 0, 4, 1, 1, 0, 1, 0, 1, 0, -1], relu.Leading.data<double>().ToArray());
        var e = Assert.Throws<ArgumentException>(() => Jet.PointLines(points, v, 3));   // 3 rows are not g per point for 2 points
        Assert.Contains("rows per point", e.Message, StringComparison.Ordinal);
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
