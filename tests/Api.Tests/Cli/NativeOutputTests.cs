using System.Diagnostics;
using System.Text.Json;
using LambdaService.Measurement.Models;
using Onnx;

namespace LambdaService.Api.Tests.Cli;

/// <summary>
/// What the command line prints when native code runs: no ONNX Runtime log lines (coloured with ANSI codes) on standard error,
/// and the model's outputs as its file declares them. The executable runs as a child process, so that native writes to file
/// descriptor 2 are seen as a user sees them.
/// </summary>
public class NativeOutputTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Theory]
    [InlineData("finite-difference")]
    [InlineData("taylor")]
    public void A_model_onnx_runtime_would_warn_about_measures_with_nothing_native_on_stderr_and_reports_its_declared_outputs(string engine)
    {
        // The fixture's MLP plus an initializer no node uses: ONNX Runtime's session logs "Removing initializer 'unused'…" as a
        // (coloured) warning at its default level.
        var model = OnnxModelBuilder.Mlp(fixture.Weights, fixture.Biases);
        var unused = new TensorProto { Name = "unused", DataType = (int)TensorProto.Types.DataType.Float };
        unused.Dims.Add(3);
        unused.FloatData.Add([1f, 2f, 3f]);
        model.Graph.Initializer.Add(unused);
        var path = Path.Combine(fixture.Folder, $"unused-initializer-{engine}.onnx");
        OnnxModelBuilder.Save(model, path);

        var (code, stdout, stderr) = RunExecutable("measure", "--model", path, "--data", fixture.CsvPath, "--engine", engine, "--directions", "2", "--json");

        Assert.True(code == 0, stderr);
        Assert.DoesNotContain('\u001b', stderr);
        Assert.DoesNotContain("Removing initializer", stderr, StringComparison.Ordinal);
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal(engine, result.RootElement.GetProperty("engine").GetString());
        // OnnxModelBuilder.Mlp names its output "logits" and declares it float32; the Taylor engine computes in float64 but
        // reports the file's output.
        var output = result.RootElement.GetProperty("model").GetProperty("outputs")[0];
        Assert.Equal("logits", output.GetProperty("name").GetString());
        Assert.Equal("float32", output.GetProperty("elementType").GetString());
    }

    private static (int Code, string Out, string Err) RunExecutable(params string[] args)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "LambdaService.Api.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000), "the command did not finish within 2 minutes");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
