using System.Text.Json;
using LambdaService.Api.Cli;
using static LambdaService.Api.Cli.NetworksBench;

namespace LambdaService.Api.Tests.Cli;

/// <summary>
/// <c>bench --networks</c> (README, Performance: "Real networks"): the row machinery on the script's tiny tanh CNN (3×6×6, not one of
/// the four: its rows take seconds), the ratios against hand-worked values, and its user errors.
/// </summary>
public class NetworksBenchTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    /// <summary>
    /// Debian's python3-torch and python3-torchvision, installed first when missing and this runs as root with apt-get (as the
    /// PostgreSQL and browser tests install theirs; .ci/run installs them before the tests).
    /// </summary>
    private static void EnsurePyTorch()
    {
        static int Run(string program, params string[] args)
        {
            using var process = System.Diagnostics.Process.Start(program, args);
            process.WaitForExit();
            return process.ExitCode;
        }
        if (Run("/usr/bin/python3", "-c", "import torch, torchvision") == 0 || Environment.UserName != "root" || !File.Exists("/usr/bin/apt-get")) return;
        Run("/bin/sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision >/dev/null");
    }

    [Fact]
    public void Every_row_of_the_tiny_network_runs_in_its_own_process_reads_its_peak_memory_and_agrees_with_the_other_engines()
    {
        EnsurePyTorch();
        var (code, stdout, stderr) = fixture.Run("bench", "--networks", "tiny", "--lines", "8,16", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Empty(root.GetProperty("failed").EnumerateArray());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(6, rows.Count);                                            // 2 line counts × 3 engines
        foreach (var row in rows)
        {
            var lines = row.GetProperty("lines").GetInt32();
            var seconds = row.GetProperty("seconds").GetDouble();
            Assert.True(seconds > 0);
            Assert.Equal(lines / seconds, row.GetProperty("linesPerSecond").GetDouble(), 1e-9);
            // The child's VmHWM: a .NET process with libtorch loaded is resident in tens of MiB at least (a reading of 0 means none was read).
            Assert.InRange(row.GetProperty("peakMiB").GetDouble(), 50, 4096);
            Assert.Equal(4, row.GetProperty("meanAbs").GetArrayLength());       // orders 1–4
            Assert.All(row.GetProperty("meanAbs").EnumerateArray(), m => Assert.True(m.GetDouble() > 0));
            var engine = row.GetProperty("engine").GetString();
            var difference = row.GetProperty("maxRelativeDifference");
            if (engine == "taylor-float64")
            {
                Assert.Equal(JsonValueKind.Null, difference.ValueKind);          // the reference itself
            }
            else
            {
                // Nested autograd in float64 is an independent exact engine (agreement to rounding, README Engines: ~1e-15); Taylor in
                // float32 carries float32 rounding (relative 1e-7 per operation, a few orders of accumulation: 1e-4 is generous).
                Assert.InRange(difference.GetDouble(), 0, engine == "autograd-float64" ? 1e-9 : 1e-4);
            }
        }
        var torch = root.GetProperty("pyTorch").EnumerateArray().ToList();
        Assert.Equal(2, torch.Count);
        // PyTorch's own float32 nested autograd of the torch original, on the same lines: an independent implementation of the same
        // derivatives (float32 rounding: 1e-4).
        Assert.All(torch, t => Assert.InRange(t.GetProperty("maxRelativeDifference").GetDouble(), 0, 1e-4));
        var targets = root.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("measure").GetString()).ToList();
        Assert.Equal(10, targets.Count);                                        // 2 at 16 lines, 2 per engine × 3, the largest peak, PyTorch
        Assert.Contains("autograd float64 / taylor float64 (time, 16 lines)", targets);
        Assert.Contains("taylor-float32: peak memory 16 / 8 lines", targets);
        Assert.Contains("pytorch float32 autograd / taylor float32 (time, 16 lines)", targets);
    }

    [Fact]
    public void The_table_marks_each_target_met_or_missed_and_counts_them()
    {
        EnsurePyTorch();
        var (code, stdout, stderr) = fixture.Run("bench", "--networks", "tiny", "--lines", "8", "--engines", "taylor-float64", "--skip-pytorch");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n');
        // 8 lines = 2 points × 4 directions: the planner's probe pass of one point's 4 lines (kept), then one pass of the other 4
        // (planned at up to 8 lines), so 2 passes × 8 lines.
        Assert.Contains(lines, l => l.StartsWith("| tiny | 8 | taylor-float64 | ", StringComparison.Ordinal) && l.Contains("| 2 × 8 | – |", StringComparison.Ordinal));
        // One row at one line count: only the largest-peak check has its rows.
        Assert.Contains(lines, l => l.StartsWith("| tiny | largest peak memory of any row (MiB) | ", StringComparison.Ordinal) && l.EndsWith("| ≤ 2048 | met |", StringComparison.Ordinal));
        Assert.Contains("targets met: 1 of 1", lines);
    }

    [Fact]
    public void The_ratios_are_the_issues_quotients_checked_against_their_targets()
    {
        NetworkRow Row(int lines, string engine, double seconds, double peak) => new("n", lines, engine, seconds, lines / seconds, peak, 1, lines, [1, 1, 1, 1], null);
        NetworkRow[] rows =
        [
            Row(64, "taylor-float64", 1.0, 500), Row(1024, "taylor-float64", 12.0, 550),
            Row(64, "taylor-float32", 0.5, 400), Row(1024, "taylor-float32", 6.0, 520),
            Row(64, "autograd-float64", 5.0, 600), Row(1024, "autograd-float64", 80.0, 900),
        ];
        var checks = Targets(rows, [new PyTorchRow("n", 1024, 24.0, 1024 / 24.0, 4, 256, [1, 1, 1, 1], null)]).ToDictionary(c => c.Measure);
        Assert.Equal(10, checks.Count);
        // Worked by hand from the rows above:
        void Is(string measure, double value, bool met)
        {
            Assert.Equal(value, checks[measure].Value, 1e-12);
            Assert.Equal(met, checks[measure].Met);
        }
        Is("autograd float64 / taylor float64 (time, 1024 lines)", 80.0 / 12.0, true);           // 6.67 ≥ 4
        Is("taylor float64 / taylor float32 (time, 1024 lines)", 2.0, true);                     // 12 / 6 ≥ 1.7
        Is("taylor-float64: peak memory 1024 / 64 lines", 1.1, true);                            // 550 / 500 ≤ 1.2
        Is("taylor-float64: time per line 1024 / 64 lines", 0.75, false);                        // (12/1024) / (1/64) = 12/16, below 0.8
        Is("taylor-float32: peak memory 1024 / 64 lines", 1.3, false);                           // 520 / 400
        Is("taylor-float32: time per line 1024 / 64 lines", 0.75, false);                        // (6/1024) / (0.5/64) = 6/8
        Is("autograd-float64: peak memory 1024 / 64 lines", 1.5, false);                         // 900 / 600
        Is("autograd-float64: time per line 1024 / 64 lines", 1.0, true);                        // (80/1024) / (5/64) = 80/80
        Is("largest peak memory of any row (MiB)", 900, true);                                   // ≤ 2048
        Is("pytorch float32 autograd / taylor float32 (time, 1024 lines)", 4.0, false);          // 24 / 6, below 5
        Assert.Equal("0.8–1.2", checks["autograd-float64: time per line 1024 / 64 lines"].Target);
    }

    [Fact]
    public void A_ratio_whose_rows_are_missing_is_left_out()
    {
        NetworkRow[] rows = [new("n", 64, "taylor-float64", 2.0, 32, 3000, 1, 64, [1], null)];
        var checks = Targets(rows, []);
        var only = Assert.Single(checks);
        Assert.Equal("largest peak memory of any row (MiB)", only.Measure);
        Assert.False(only.Met);                                                                  // 3000 MiB > 2048
    }

    [Fact]
    public void The_relative_difference_is_the_largest_over_the_orders()
    {
        // |2 − 2.2| / 2.2 = 0.0909…; order 1 equal; order 3 both 0 (no division by zero).
        Assert.Equal(0.2 / 2.2, MaxRelativeDifference([1, 2, 0], [1, 2.2, 0]), 1e-15);
    }

    [Fact]
    public void Without_pytorch_the_run_stops_with_exit_code_2_naming_the_debian_packages()
    {
        var (code, stdout, stderr) = fixture.Run("bench", "--networks", "tiny", "--python", "/nonexistent/python3");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains("install Debian's python3-torch python3-torchvision", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--lines", "10", "--lines lists line counts, multiples of 4")]
    [InlineData("--engines", "taylor", "--engines lists some of taylor-float64, taylor-float32, autograd-float64")]
    [InlineData("--networks", "resnet50", "--networks lists some of resnet18, efficientnet_b0, vit, convnext")]
    public void A_bad_option_stops_with_exit_code_2_naming_it(string option, string value, string message)
    {
        string[] args = option == "--networks" ? ["bench", option, value] : ["bench", "--networks", "tiny", option, value];
        var (code, _, stderr) = fixture.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }
}
