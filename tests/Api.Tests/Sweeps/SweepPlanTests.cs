using System.Text.Json;
using LambdaService.Api.Sweeps;
using LambdaService.Api.Training;
using LambdaService.Measurement;

namespace LambdaService.Api.Tests.Sweeps;

public class SweepPlanTests
{
    private static SweepRequest Parse(string json) => JsonSerializer.Deserialize<SweepRequest>(json, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

    [Fact]
    public void A_grid_makes_one_cell_per_combination_of_its_factors_and_one_run_per_seed_in_grid_order()
    {
        var cells = SweepPlan.Expand(Parse("""
            { "base": { "epochs": 3, "crr": { "orders": { "min": 1, "max": 4 } } },
              "grid": { "method": ["baseline", "crr"], "crr.scale": [0.001, 0.01], "dataset.labelNoise": [0.3] }, "seeds": 2 }
            """), 100);

        Assert.Equal(4, cells.Count);   // 2 methods × 2 scales × 1 noise level
        Assert.All(cells, c => Assert.Equal(2, c.Runs.Count));
        Assert.Equal(["baseline", "baseline", "crr", "crr"], cells.Select(c => c.Parameters["method"].GetString()));
        Assert.Equal([0.001, 0.01, 0.001, 0.01], cells.Select(c => c.Parameters["crr.scale"].GetDouble()));
        var run = cells[3].Runs[1];
        Assert.Equal(TrainingMethod.Crr, run.Method);
        Assert.Equal(0.01, run.Crr!.Scale);
        Assert.Equal(new LambdaService.Api.Measurements.OrderRange(1, 4), run.Crr.Orders);   // from the base, kept
        Assert.Equal(0.3, run.Dataset!.LabelNoise);
        Assert.Equal(3, run.Epochs);
        Assert.Equal(1, run.Seed);
        Assert.Equal("method=crr, dataset.labelNoise=0.3", SweepPlan.Label(cells[3].Parameters, "crr.scale"));
    }

    [Fact]
    public void A_grid_over_the_penalised_layer_compares_crr_at_the_input_and_at_a_hidden_layer_and_refuses_unknown_layers()
    {
        var cells = SweepPlan.Expand(Parse("""
            { "base": { "method": "crr", "epochs": 2, "crr": { "pairs": ["0-1"] }, "measure": { "at": "act1" } },
              "grid": { "crr.at": ["input", "act2"] }, "seeds": 2 }
            """), 100);
        Assert.Equal(["input", "act2"], cells.Select(c => c.Parameters["crr.at"].GetString()));
        Assert.Equal("act2", cells[1].Runs[0].Crr!.At);
        Assert.Equal(["0-1"], cells[1].Runs[0].Crr!.Pairs!);
        Assert.Equal("act1", cells[1].Runs[0].Measure!.At);
        var e = Assert.Throws<MeasurementInputException>(() => SweepPlan.Expand(Parse("""{ "base": { "method": "crr" }, "grid": { "crr.at": ["act7"] } }"""), 10));
        Assert.Equal("grid.crr.at", e.Field);
    }

    [Fact]
    public void Without_a_grid_a_sweep_is_one_cell_of_the_base_request()
    {
        var cells = SweepPlan.Expand(new SweepRequest(Base: new TrainingRunRequest(Epochs: 2)), 10);
        var cell = Assert.Single(cells);
        Assert.Empty(cell.Parameters);
        Assert.Equal(2, Assert.Single(cell.Runs).Epochs);
    }

    [Theory]
    [InlineData("""{ "grid": { "crr.scal": [1] } }""", "grid.crr.scal")]
    [InlineData("""{ "grid": { "crr.scale": [] } }""", "grid.crr.scale")]
    [InlineData("""{ "grid": { "crr.scale": ["big"] } }""", "grid.crr.scale")]
    [InlineData("""{ "grid": { "dataset.labelNoise": [0.1, 2] } }""", "grid.dataset.labelNoise")]
    [InlineData("""{ "grid": { "method": ["adam"] } }""", "grid.method")]
    [InlineData("""{ "base": { "epochs": 0 }, "grid": { "method": ["crr"] } }""", "base.epochs")]
    [InlineData("""{ "grid": { "seed": [1] }, "seeds": 3 }""", "seeds")]
    [InlineData("""{ "seeds": 0 }""", "seeds")]
    [InlineData("""{ "grid": { "crr.scale": [1, 2, 3, 4] }, "seeds": 3 }""", "grid")]   // 12 runs > 10
    public void A_grid_that_cannot_run_is_refused_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<MeasurementInputException>(() => SweepPlan.Expand(Parse(json), 10));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Grid_keys_are_the_fields_of_a_training_request_at_every_depth()
    {
        Assert.Contains("method", SweepPlan.Paths);
        Assert.Contains("crr.scale", SweepPlan.Paths);
        Assert.Contains("crr.orders", SweepPlan.Paths);
        Assert.Contains("crr.orders.max", SweepPlan.Paths);
        Assert.Contains("dataset.labelNoise", SweepPlan.Paths);
        Assert.Contains("track.lambdaEvery", SweepPlan.Paths);
        Assert.DoesNotContain("crr.scal", SweepPlan.Paths);
        Assert.DoesNotContain("equalityContract", SweepPlan.Paths);
    }
}

public class SweepReportTests
{
    private static string Result(double testError, double? lambda, double ece = 0.05, double hard = 0.5, double seconds = 1) =>
        JsonSerializer.Serialize(new { testError, ece, hard20Accuracy = hard, trainingSeconds = seconds, lambda = lambda is { } l ? new { lambda = l } : null },
            new JsonSerializerOptions(JsonSerializerDefaults.Web));

    private static IReadOnlyDictionary<string, JsonElement> Cell(string method) =>
        new Dictionary<string, JsonElement> { ["method"] = JsonSerializer.SerializeToElement(method) };

    [Fact]
    public void Cell_statistics_are_the_mean_sd_and_t_interval_of_the_cells_succeeded_runs()
    {
        SweepRunState[] runs =
        [
            new(0, "a", "succeeded", Result(0.1, 1)),
            new(0, "b", "succeeded", Result(0.2, 2)),
            new(0, "c", "succeeded", Result(0.3, 3)),
            new(0, "d", "failed", null),
            new(1, "e", "succeeded", Result(0.4, null)),
        ];
        var summary = SweepReport.Build([Cell("baseline"), Cell("crr")], runs);

        // Test errors 0.1, 0.2, 0.3: mean 0.2; sd = sqrt(((−0.1)² + 0 + 0.1²) / 2) = 0.1;
        // 95% CI = 0.2 ± t(0.975, 2) · 0.1 / √3 = 0.2 ± 4.302653 · 0.057735 = 0.2 ± 0.248414.
        var error = summary.Cells[0].Metrics.TestError!;
        Assert.Equal(3, error.Count);
        Assert.Equal(0.2, error.Mean, 1e-12);
        Assert.Equal(0.1, error.StandardDeviation!.Value, 1e-12);
        Assert.Equal(-0.048414, error.Ci95![0], 1e-5);
        Assert.Equal(0.448414, error.Ci95[1], 1e-5);
        Assert.Equal(1, summary.Cells[0].Counts.Failed);
        // Cell 1's only run has no λ: no λ summary, but its test error is there.
        Assert.Null(summary.Cells[1].Metrics.Lambda);
        Assert.Equal(0.4, summary.Cells[1].Metrics.TestError!.Mean);
        Assert.Equal("failed", summary.Status);
    }

    [Fact]
    public void The_correlation_of_lambda_with_test_error_uses_every_succeeded_run_with_a_lambda()
    {
        SweepRunState[] runs =
        [
            new(0, "a", "succeeded", Result(0.1, 1)),
            new(0, "b", "succeeded", Result(0.2, 2)),
            new(1, "c", "succeeded", Result(0.2, 3)),
            new(1, "d", "succeeded", Result(0.4, 4)),
            new(1, "e", "succeeded", Result(0.9, null)),   // no λ: left out
        ];
        var summary = SweepReport.Build([Cell("baseline"), Cell("crr")], runs);

        // λ = 1, 2, 3, 4 (mean 2.5), error = .1, .2, .2, .4 (mean .225): Sxy = 1.5·.125 + .5·.025 − .5·.025 + 1.5·.175 = .45,
        // Sxx = 5, Syy = .0475; r = .45 / √(5 · .0475) = 0.923381; slope = Sxy / Sxx = 0.09.
        var c = summary.LambdaVsTestError!;
        Assert.Equal(4, c.Count);
        Assert.Equal(0.923381, c.R, 1e-6);
        Assert.Equal(0.09, c.Slope, 1e-12);
        Assert.Equal("succeeded", summary.Status);
    }

    [Fact]
    public void Fewer_than_three_runs_with_a_lambda_give_no_correlation_and_say_why()
    {
        var summary = SweepReport.Build([Cell("baseline")], [new(0, "a", "succeeded", Result(0.1, 1)), new(0, "b", "running", null)]);
        Assert.Null(summary.LambdaVsTestError);
        Assert.Contains("at least 3", summary.CorrelationNote, StringComparison.Ordinal);
        Assert.Equal("running", summary.Status);
    }
}
