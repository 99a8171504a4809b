using System.Text.Json;
using LambdaService.Training;

namespace LambdaService.Api.Tests.Cli;

public class SweepVerbTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void Sweep_runs_the_grid_locally_and_its_cell_means_are_those_of_the_same_runs_made_one_by_one()
    {
        var request = Path.Combine(fixture.Folder, "sweep.json");
        File.WriteAllText(request, """
            { "base": { "dataset": { "samples": 120, "labelNoise": 0.2 }, "model": { "hidden": [4] }, "epochs": 2,
                        "measure": { "points": "all", "maxPoints": 8, "bootstrapResamples": 10 } },
              "grid": { "model.activation": ["tanh", "relu"] }, "seeds": 2 }
            """);
        var (code, stdout, stderr) = fixture.Run("sweep", "--request", request, "--json");
        Assert.True(code == 0, stderr);
        var cells = JsonDocument.Parse(stdout).RootElement.GetProperty("summary").GetProperty("cells");
        Assert.Equal(2, cells.GetArrayLength());
        Assert.Equal("relu", cells[1].GetProperty("parameters").GetProperty("model.activation").GetString());

        // The relu cell's mean test error, from the two runs trained directly through the library.
        var errors = new[] { 0, 1 }.Select(seed => TrainingRun.Run(new TrainingRequest
        {
            Data = new DataSpec { Samples = 120, LabelNoise = 0.2 },
            Model = new ModelSpec { Hidden = [4], Activation = "relu" },
            Epochs = 2,
            Seed = seed,
            Measure = new LambdaSettings { Points = "all", MaxPoints = 8, BootstrapResamples = 10 },
        }, null, CancellationToken.None).TestError).ToArray();
        Assert.Equal(errors.Average(), cells[1].GetProperty("metrics").GetProperty("testError").GetProperty("mean").GetDouble(), 1e-12);
    }

    [Fact]
    public void Sweep_with_an_unknown_grid_key_fails_with_one_line_naming_it()
    {
        var request = Path.Combine(fixture.Folder, "bad-sweep.json");
        File.WriteAllText(request, """{ "grid": { "crr.scal": [1] } }""");
        var (code, _, stderr) = fixture.Run("sweep", "--request", request);
        Assert.Equal(2, code);
        Assert.Contains("crr.scal", stderr, StringComparison.Ordinal);
    }
}
