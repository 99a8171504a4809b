using System.Text.Json;

namespace LambdaService.Api.Tests.Cli;

public class ValidateVerbTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void Validate_json_reaches_the_papers_precision_on_every_case()
    {
        var (code, stdout, stderr) = fixture.Run("validate", "--json");
        Assert.True(code == 0, stderr);
        var cases = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToList();
        Assert.True(cases.Count >= 5);
        foreach (var c in cases)
        {
            var name = c.GetProperty("name").GetString()!;
            var error = c.GetProperty("relativeError").GetDouble();
            // Paper §5.1: radii within 1%; band edge 5.1% raw and 0.5% corrected; sin x exactly 0.
            if (name.StartsWith("bandlimited", StringComparison.Ordinal))
            {
                Assert.True(error < 0.06, $"{name}: raw {error}");
                Assert.True(c.GetProperty("correctedRelativeError").GetDouble() <= 0.005, $"{name}: corrected");
            }
            else
            {
                Assert.True(error < 0.01, $"{name}: {error}");
            }
        }
    }

    [Fact]
    public void Validate_prints_a_table_with_a_header_and_one_row_per_case()
    {
        var (code, stdout, _) = fixture.Run("validate");
        Assert.Equal(0, code);
        var lines = stdout.TrimEnd().Split('\n');
        Assert.StartsWith("case", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("1/(1-2x)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("sin x", StringComparison.Ordinal));
    }
}
