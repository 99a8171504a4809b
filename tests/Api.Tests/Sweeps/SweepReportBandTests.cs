using System.Text.Json;
using LambdaService.Api.Sweeps;

namespace LambdaService.Api.Tests.Sweeps;

public class SweepReportBandTests
{
    /// <summary>The fields of a result JSON the report reads (train --json), with a crr-target band when given.</summary>
    private static string Result(double lambda, double testError, double? timeInBand = null, double[]? band = null) => JsonSerializer.Serialize(new
    {
        testError,
        ece = 0.05,
        hard20Accuracy = 0.6,
        trainingSeconds = 1.5,
        lambda = new { lambda },
        timeInBand,
        config = new { request = new { crr = new { target = band is null ? null : new { min = band[0], max = band[1] } } } },
    });

    [Fact]
    public void Crr_target_cells_report_time_in_band_and_the_fraction_of_seeds_that_ended_in_the_band()
    {
        var cells = new[] { new Dictionary<string, JsonElement>(), new Dictionary<string, JsonElement>() };
        double[] band = [1.2, 1.5];
        var runs = new[]
        {
            // Cell 0: crr-target, three seeds: final λ 1.3 (in), 1.5 (in: the edge counts), 1.6 (out); time in band 0.5, 0.7, 0.3.
            new SweepRunState(0, "a", "succeeded", Result(1.3, 0.10, 0.5, band)),
            new SweepRunState(0, "b", "succeeded", Result(1.5, 0.12, 0.7, band)),
            new SweepRunState(0, "c", "succeeded", Result(1.6, 0.11, 0.3, band)),
            // Cell 1: baseline, no band.
            new SweepRunState(1, "d", "succeeded", Result(2.1, 0.15)),
        };
        var summary = SweepReport.Build(cells, runs);
        var target = summary.Cells[0].Metrics;
        Assert.Equal(2.0 / 3, target.FinalInBand!.Mean, 12);
        Assert.Equal(3, target.FinalInBand.Count);
        Assert.Equal((0.5 + 0.7 + 0.3) / 3, target.TimeInBand!.Mean, 12);
        Assert.Null(summary.Cells[1].Metrics.TimeInBand);
        Assert.Null(summary.Cells[1].Metrics.FinalInBand);
    }
}
