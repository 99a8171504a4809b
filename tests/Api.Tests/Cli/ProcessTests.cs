using System.Diagnostics;
using System.Text.Json;

namespace LambdaService.Api.Tests.Cli;

/// <summary>The built executable, started as a real child process (native libraries load in a fresh process).</summary>
public class ProcessTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    private static (int Code, string Out, string Err) Start(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "LambdaService.Api.dll");
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the CLI did not finish in 2 minutes");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void The_built_binary_measures_an_onnx_model_and_exits_zero()
    {
        var (code, stdout, stderr) = Start("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--json");
        Assert.True(code == 0, stderr);
        Assert.True(double.IsFinite(JsonDocument.Parse(stdout).RootElement.GetProperty("lambda").GetDouble()));
    }

    [Fact]
    public void The_built_binary_answers_bad_input_with_one_line_and_exit_code_2_and_no_stack_trace()
    {
        var (code, stdout, stderr) = Start("measure", "--model", fixture.CsvPath, "--data", fixture.CsvPath);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", stderr);
    }
}
