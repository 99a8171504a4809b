using System.Text.Json;
using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.GeneratedClient;

/// <summary>
/// The served document under Redocly's linter (<c>@redocly/cli</c> 2.77.0 from npm, installed on first use into
/// <c>artifacts/tools/redocly</c>) with its built-in recommended rules: no errors and no warnings.
/// </summary>
public class OpenApiLintTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private const string Version = "2.77.0";

    [Fact]
    public async Task The_served_openapi_document_passes_redocly_lint_with_the_recommended_rules_without_a_warning()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.Service.BaseAddress };
        var document = await anonymous.GetStringAsync("openapi/v1.json");
        var path = Path.Combine(Path.GetTempPath(), $"lambda-openapi-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, document);
        try
        {
            var redocly = InstallRedocly();
            var (code, stdout, stderr) = ExternalTool.Run(redocly, null, 5, "lint", path, "--format", "json");
            var report = JsonDocument.Parse(stdout[stdout.IndexOf('{', StringComparison.Ordinal)..]).RootElement;
            var totals = report.GetProperty("totals");
            var problems = string.Join("\n", report.GetProperty("problems").EnumerateArray().Select(p =>
                $"{p.GetProperty("severity").GetString()} {p.GetProperty("ruleId").GetString()}: {p.GetProperty("message").GetString()} at "
                + string.Join(", ", p.GetProperty("location").EnumerateArray().Select(l => l.TryGetProperty("pointer", out var ptr) ? ptr.GetString() : "?"))));
            Assert.True(totals.GetProperty("errors").GetInt32() == 0 && totals.GetProperty("warnings").GetInt32() == 0, $"redocly lint:\n{problems}\n{stderr}");
            Assert.Equal(0, code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The linter's command, installing the pinned version with npm (from the registry) when it is not there.</summary>
    private static string InstallRedocly()
    {
        var prefix = Path.Combine(ExternalTool.RepositoryRoot(), "artifacts", "tools", "redocly");
        var bin = Path.Combine(prefix, "node_modules", ".bin", "redocly");
        var installed = Path.Combine(prefix, "node_modules", "@redocly", "cli", "package.json");
        if (File.Exists(bin) && File.Exists(installed) && File.ReadAllText(installed).Contains($"\"version\": \"{Version}\"", StringComparison.Ordinal)) return bin;
        Directory.CreateDirectory(prefix);
        var (code, stdout, stderr) = ExternalTool.Run("npm", null, 5, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", $"@redocly/cli@{Version}");
        Assert.True(code == 0 && File.Exists(bin), $"npm could not install @redocly/cli@{Version} (needs Node.js and npm, e.g. Debian's nodejs and npm packages):\n{stdout}\n{stderr}");
        return bin;
    }
}
