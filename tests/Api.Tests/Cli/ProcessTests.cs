using System.Diagnostics;
using System.Text.Json;
using LambdaService.Api.Cli;

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

    [Theory]
    [InlineData("measure-x", "--model", "m.onnx")]
    [InlineData("serv")]
    [InlineData("--version")]
    public void An_unknown_first_word_is_exit_code_2_with_the_usage_text_and_starts_no_server(params string[] args)
    {
        // A server would not exit: Start's 2-minute wait would time out instead.
        var (code, stdout, stderr) = Start(args);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith($"error: unknown verb '{args[0]}'; use one of validate, measure,", stderr, StringComparison.Ordinal);
        Assert.Contains("Usage: LambdaService.Api [serve] [--urls URL]", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], ProcessRole.Service)]
    [InlineData(new[] { "serve" }, ProcessRole.Service)]
    [InlineData(new[] { "serve", "--urls", "http://127.0.0.1:0" }, ProcessRole.Service)]
    [InlineData(new[] { "--urls", "http://0.0.0.0:8080" }, ProcessRole.Service)]
    [InlineData(new[] { "--Jobs:WorkerCount=4" }, ProcessRole.Service)]
    [InlineData(new[] { "worker" }, ProcessRole.Worker)]
    [InlineData(new[] { "measure", "--model", "m.onnx" }, ProcessRole.CommandLine)]
    [InlineData(new[] { "measure-x" }, ProcessRole.CommandLine)]
    [InlineData(new[] { "--help" }, ProcessRole.CommandLine)]
    [InlineData(new[] { "-h" }, ProcessRole.CommandLine)]
    public void The_service_starts_only_from_no_arguments_serve_or_host_switches(string[] args, ProcessRole role) =>
        Assert.Equal(role, CliApp.Role(args));
}
