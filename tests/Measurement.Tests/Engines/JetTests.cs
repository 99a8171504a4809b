namespace LambdaService.Measurement.Tests.Engines;

public class JetTests
{
    [Fact]
    public void The_reference_jet_reproduces_the_known_series_of_tanh_exp_log_and_sin()
    {
        // tanh t = t − t³/3 + 2t⁵/15 − 17t⁷/315 (Abramowitz & Stegun 4.5.64); exp t = Σ tᵏ/k!;
        // log(1+t) = t − t²/2 + t³/3 − t⁴/4; sin t = t − t³/6 + t⁵/120.
        var t = Jet.Line(7, 0, 1);
        var tanh = t.Tanh().C;
        Assert.Equal([0, 1, 0, -1.0 / 3, 0, 2.0 / 15, 0, -17.0 / 315], tanh, (a, b) => Math.Abs(a - b) < 1e-15);
        var exp = t.Exp().C;
        Assert.Equal(1.0 / 5040, exp[7], 15);
        var log = Jet.Line(4, 1, 1).Log().C;
        Assert.Equal([0, 1, -0.5, 1.0 / 3, -0.25], log, (a, b) => Math.Abs(a - b) < 1e-15);
        var sin = t.Sin().C;
        Assert.Equal(1.0 / 120, sin[5], 15);
        Assert.Equal(-1.0 / 6, sin[3], 15);
    }
}
