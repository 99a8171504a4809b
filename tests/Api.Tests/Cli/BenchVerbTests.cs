using System.Text.Json;

namespace LambdaService.Api.Tests.Cli;

public class BenchVerbTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void Bench_times_the_three_engines_and_taylor_agrees_with_nested_autograd()
    {
        // Tiny sizes: the point is the table's content, not its times (those are for the README's full run).
        var (code, stdout, stderr) = fixture.Run("bench", "--orders", "2,3", "--repeats", "1", "--mlp-points", "8", "--cnn-points", "1",
            "--directions", "2", "--skip-training", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(4, rows.Count);                                   // two networks × K = 2, 3
        foreach (var row in rows)
        {
            Assert.True(row.GetProperty("taylorMs").GetDouble() > 0);
            // Taylor mode and nested autograd are independent exact engines: float64 rounding apart, they agree.
            Assert.InRange(row.GetProperty("maxTaylorAutogradDifference").GetDouble(), 0, 1e-9);
        }
        var mlp = rows.Where(r => r.GetProperty("model").GetString()!.StartsWith("tanh MLP", StringComparison.Ordinal)).ToList();
        var cnn = rows.Where(r => r.GetProperty("model").GetString()!.StartsWith("CNN", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, mlp.Count);
        Assert.Equal(2, cnn.Count);
        // Smooth network: the finite-difference error against the exact value is a number (small at order 2, README: ~1e-10).
        Assert.InRange(mlp[0].GetProperty("medianFiniteDifferenceError").GetDouble(), 0, 1e-4);
        // ReLU network: no error is reported against its tiny exact higher derivatives.
        Assert.All(cnn, r => Assert.Equal(JsonValueKind.Null, r.GetProperty("medianFiniteDifferenceError").ValueKind));
        Assert.Empty(doc.RootElement.GetProperty("training").EnumerateArray());
        Assert.Contains(doc.RootElement.GetProperty("notes").EnumerateArray(), n => n.GetString()!.StartsWith("libtorch on", StringComparison.Ordinal));
    }

    [Fact]
    public void The_cnn_profile_takes_baseline_and_both_crr_steps_apart_phase_by_phase()
    {
        // Batch 2: the point is the table's rows, not its times.
        var (code, stdout, stderr) = fixture.Run("bench", "--profile", "--model", "cnn", "--batch", "2");
        Assert.True(code == 0, stderr);
        var rows = stdout.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).ToList();
        Assert.Contains(rows, r => r.StartsWith("| baseline | forward + cross-entropy (training mode) |", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("| crr 1-4 (taylor), loss from its own pass | jet: conv1 … pool |", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("| crr 1-4 (taylor, now), loss from the jet's value at pool | loss: hidden, output", StringComparison.Ordinal));
        // Every step ends in its total against the baseline's.
        Assert.Equal(3, rows.Count(r => r.Contains("| **total** |", StringComparison.Ordinal)));
        Assert.Contains(rows, r => r.StartsWith("| baseline | **total** |", StringComparison.Ordinal) && r.EndsWith("| 1.00× baseline |", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--model", "resnet", "--model is mlp")]
    [InlineData("--hidden", "8,8", "--hidden sets the MLP's widths")]
    public void A_cnn_profile_with_a_bad_option_stops_with_exit_code_2_naming_it(string option, string value, string message)
    {
        string[] args = option == "--model" ? ["bench", "--profile", option, value] : ["bench", "--profile", "--model", "cnn", option, value];
        var (code, _, stderr) = fixture.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_profile_with_a_bad_width_stops_with_exit_code_2_naming_hidden()
    {
        var (code, _, stderr) = fixture.Run("bench", "--profile", "--hidden", "32,x");
        Assert.Equal(2, code);
        Assert.Contains("--hidden lists layer widths 1..4096", stderr, StringComparison.Ordinal);
    }
}
