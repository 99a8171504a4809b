using LambdaService.Measurement;
using LambdaService.Training.Methods;

namespace LambdaService.Training.Tests;

public class LambdaBandControllerTests
{
    private static readonly CrrTargetSettings Band = new()
    {
        Min = 1.0, Max = 1.5, Gain = 1, MaxStep = 0.5, MinScale = 1e-4, MaxScale = 1, InitialScale = 0.01, Deadband = 1,
    };

    [Fact]
    public void With_the_default_deadband_the_scale_moves_outside_the_middle_half_toward_the_centre()
    {
        // Band [1.0, 1.5], deadband 0.5: the controller holds still in [1.125, 1.375] and acts on the distance to that interval;
        // time in band still counts [1.0, 1.5]. By hand, log s += clamp(e, −0.5, 0.5):
        var c = new LambdaBandController(Band with { Deadband = 0.5 });
        Assert.Equal(0.01, c.Update(1.3), 15);                          // in the middle half: unchanged
        Assert.Equal(0.01 * Math.Exp(0.075), c.Update(1.45), 15);       // in the band, 0.075 above 1.375: raised
        Assert.Equal(0.01 * Math.Exp(0.075 - 0.025), c.Update(1.1), 15); // in the band, 0.025 below 1.125: lowered
        Assert.Equal(0.01 * Math.Exp(0.05 + 0.325), c.Update(1.7), 15); // above the band: 0.325 above 1.375
        Assert.Equal(3, c.InBand);
        Assert.Equal(0.75, c.TimeInBand, 15);
    }

    [Fact]
    public void A_scripted_lambda_sequence_moves_the_scale_as_the_stated_rule_says()
    {
        var c = new LambdaBandController(Band);
        // By hand, log s += clamp(gain·e, −0.5, 0.5), e = distance of λ outside [1.0, 1.5]:
        Assert.Equal(0.01, c.Update(1.2), 15);                          // inside: unchanged
        Assert.Equal(0.01 * Math.Exp(0.2), c.Update(1.7), 15);          // 0.2 above
        Assert.Equal(0.01 * Math.Exp(0.7), c.Update(3.0), 15);          // 1.5 above, clamped to +0.5
        Assert.Equal(0.01 * Math.Exp(0.2), c.Update(0.5), 15);          // 0.5 below
        Assert.Equal(0.01 * Math.Exp(0.2), c.Update(double.NaN), 15);   // no measurement: unchanged, out of band
        Assert.Equal(0.01 * Math.Exp(-0.3), c.Update(-10), 15);         // far below, clamped to −0.5
        // Keep λ far below: 0.01·e^{−0.3−0.5k} falls under minScale 1e-4 when 0.3 + 0.5k > ln 100 = 4.605, first at k = 9.
        for (var k = 1; k <= 8; k++) Assert.Equal(0.01 * Math.Exp(-0.3 - 0.5 * k), c.Update(-10), 12);
        Assert.Equal(0, c.Update(-10));                                 // off
        Assert.Equal(0, c.Update(1.0));                                 // the lower edge is inside; off stays off
        Assert.Equal(1e-4, c.Update(1.6));                              // above the band again: restart at minScale
        // Far above: ×e^{0.5} per update from 1e-4 reaches maxScale 1 after ⌈ln(10⁴)/0.5⌉ = 19 updates and stays there.
        for (var k = 1; k <= 18; k++) Assert.Equal(1e-4 * Math.Exp(0.5 * k), c.Update(100), 12);
        Assert.Equal(1, c.Update(100));
        Assert.Equal(1, c.Update(100));
        Assert.Equal(6 + 8 + 1 + 1 + 1 + 18 + 2, c.Updates);            // 37 measurements
        Assert.Equal(2, c.InBand);                                      // 1.2 and 1.0
        Assert.Equal(2.0 / 37, c.TimeInBand, 15);
    }

    [Fact]
    public void One_update_changes_the_scale_by_at_most_the_factor_e_to_the_max_step()
    {
        var c = new LambdaBandController(Band with { MaxStep = 0.25, MaxScale = 1e6 });
        var rng = new Random(4);
        var previous = c.Scale;
        for (var i = 0; i < 500; i++)
        {
            var next = c.Update(rng.NextDouble() * 40 - 20);
            if (previous > 0 && next > 0) Assert.InRange(next / previous, Math.Exp(-0.25) - 1e-12, Math.Exp(0.25) + 1e-12);
            previous = next;
        }
    }

    [Fact]
    public void An_initial_scale_below_the_minimum_starts_off()
    {
        Assert.Equal(0, new LambdaBandController(Band with { InitialScale = 0 }).Scale);
        Assert.Equal(0, new LambdaBandController(Band with { InitialScale = 5e-5 }).Scale);
    }

    [Theory]
    [InlineData(double.NaN, 1.0, "crr.target")]
    [InlineData(2.0, 1.0, "crr.target")]
    [InlineData(1.0, double.PositiveInfinity, "crr.target")]
    public void A_band_that_is_missing_or_inverted_is_refused(double min, double max, string field)
    {
        var e = Assert.Throws<MeasurementInputException>(() => new LambdaBandController(new CrrTargetSettings { Min = min, Max = max }));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Controller_constants_out_of_range_are_refused_naming_them()
    {
        string Field(CrrTargetSettings s) => Assert.Throws<MeasurementInputException>(() => new LambdaBandController(s)).Field;
        Assert.Equal("crr.target.every", Field(Band with { Every = 0 }));
        Assert.Equal("crr.target.gain", Field(Band with { Gain = 0 }));
        Assert.Equal("crr.target.maxStep", Field(Band with { MaxStep = 6 }));
        Assert.Equal("crr.target.minScale", Field(Band with { MinScale = 0 }));
        Assert.Equal("crr.target.maxScale", Field(Band with { MaxScale = 1e-6 }));
        Assert.Equal("crr.target.initialScale", Field(Band with { InitialScale = 2 }));
        Assert.Equal("crr.target.monitorPoints", Field(Band with { MonitorPoints = 3 }));
    }

    [Fact]
    public void A_non_finite_loss_or_penalty_stops_the_run_as_diverged()
    {
        CrrTargetMethod.CheckFinite(new StepLoss(0.7, 0.1), 3, 1, 0.01);
        CrrTargetMethod.CheckFinite(new StepLoss(0.7, null), 3, 1, 0.01);
        var nan = Assert.Throws<MeasurementInputException>(() => CrrTargetMethod.CheckFinite(new StepLoss(double.NaN, 0.1), 41, 3, 2.5));
        Assert.Equal("crr.target", nan.Field);
        Assert.Equal("Training diverged", nan.Title);
        Assert.Contains("step 41 of epoch 3, with the CRR scale at 2.5", nan.Message, StringComparison.Ordinal);
        Assert.Equal("Training diverged", Assert.Throws<MeasurementInputException>(() => CrrTargetMethod.CheckFinite(new StepLoss(0.7, double.PositiveInfinity), 0, 1, 1)).Title);
    }
}
