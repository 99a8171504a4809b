using System.Collections.Concurrent;
using System.Text.Json;
using LambdaService.Api.Cli;
using LambdaService.Api.Jobs;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Measurements;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;
using Xunit.Abstractions;

namespace LambdaService.Api.Tests.Sandbox;

/// <summary>Jobs that the runner finishes: results equal to the in-process measurement, and user errors.</summary>
[Collection(SandboxCollection.Name)]
public class SandboxMeasurementTests(SandboxFixture fixture, ITestOutputHelper output)
{
    [Theory]
    [InlineData("onnx")]
    [InlineData("torchscript")]
    public async Task A_measurement_in_the_sandbox_equals_the_same_measurement_in_process_and_reports_progress_up_to_1(string format)
    {
        var model = format == "onnx" ? fixture.OnnxPath : fixture.TorchScriptPath;
        var request = new MeasurementRequest("m", "d", Orders: new OrderRange(1, 5), Directions: 3, Seed: 7);
        var expected = CurvatureRate.Measure(model, fixture.CsvPath, request.ToOptions(), new DataReadOptions(), null, CancellationToken.None);
        var (sandbox, log, work) = fixture.Sandbox();
        var progress = new ConcurrentQueue<double>();

        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(model, fixture.CsvPath, request), SandboxFixture.Roomy, r => progress.Enqueue(r.Progress), CancellationToken.None);

        var succeeded = Assert.IsType<SandboxOutcome.Succeeded>(outcome);
        var result = JsonSerializer.Deserialize<MeasurementResult>(succeeded.ResultJson, RunnerProtocol.Json)!;
        Assert.Equal(expected.Lambda, result.Lambda, 1e-12);
        Assert.Equal(expected.Intercept, result.Intercept, 1e-12);
        Assert.Equal(expected.Orders.Select(o => o.LogNorm), result.Orders.Select(o => o.LogNorm), (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Equal(expected.Engine, result.Engine);
        Assert.Equal(expected.PointsUsed, result.PointsUsed);
        Assert.Equal(expected.Config.ModelSha256, result.Config.ModelSha256);
        Assert.NotEmpty(progress);
        Assert.Equal(1.0, progress.Last());
        Assert.All(progress, p => Assert.InRange(p, 0.0, 1.0));
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        foreach (var entry in log.Entries) output.WriteLine(entry.Message);
        output.WriteLine($"progress: {string.Join(", ", progress)}");
    }

    [Fact]
    public async Task A_csv_with_a_non_numeric_cell_is_a_user_error_on_the_data_field()
    {
        var (sandbox, _, work) = fixture.Sandbox();
        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(fixture.OnnxPath, fixture.NonNumericCsvPath, new MeasurementRequest("m", "d")),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);

        var error = Assert.IsType<SandboxOutcome.UserError>(outcome).Error;
        Assert.Equal("data", error.Field);
        Assert.Contains("abc", error.Detail, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
    }

    [Fact]
    public async Task Labels_out_of_range_for_the_model_are_a_user_error_on_the_labels_field()
    {
        var (sandbox, _, _) = fixture.Sandbox();
        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(fixture.OnnxPath, fixture.LabelsOutOfRangeCsvPath, new MeasurementRequest("m", "d")),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);

        var error = Assert.IsType<SandboxOutcome.UserError>(outcome).Error;
        Assert.Equal("labels", error.Field);
        Assert.Contains("label 5", error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_that_the_request_mapping_rejects_are_a_user_error_naming_the_option()
    {
        var (sandbox, _, _) = fixture.Sandbox();
        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(fixture.OnnxPath, fixture.CsvPath, new MeasurementRequest("m", "d", Band: [0.1, 0.2, 0.3])),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);

        Assert.Equal("band", Assert.IsType<SandboxOutcome.UserError>(outcome).Error.Field);
    }

    [Fact]
    public async Task Without_a_runner_command_the_sandbox_starts_the_service_assembly_under_dotnet()
    {
        var (file, arguments) = SandboxProcess.ResolveRunnerCommand(null);
        Assert.Equal("dotnet", Path.GetFileNameWithoutExtension(file));
        Assert.Equal(typeof(SandboxProcess).Assembly.Location, Assert.Single(arguments));

        var work = Path.Combine(fixture.Folder, "default-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var sandbox = new SandboxProcess(new SandboxOptions { WorkDirectory = work }, new ListLogger<SandboxProcess>());
        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(fixture.OnnxPath, fixture.NonNumericCsvPath, new MeasurementRequest("m", "d")),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);
        Assert.IsType<SandboxOutcome.UserError>(outcome);
    }

    [Fact]
    public void A_runner_command_is_split_on_spaces()
    {
        var (file, arguments) = SandboxProcess.ResolveRunnerCommand("  dotnet   /app/LambdaService.Api.dll ");
        Assert.Equal("dotnet", file);
        Assert.Equal(["/app/LambdaService.Api.dll"], arguments);
    }

    [Fact]
    public void Progress_lines_round_trip_and_other_lines_are_not_progress()
    {
        Assert.Equal("{\"progress\":0.25}", RunnerProgressLine.Format(0.25));
        Assert.True(RunnerProgressLine.TryParse(RunnerProgressLine.Format(1e-7), out var small));
        Assert.Equal(1e-7, small);
        Assert.True(RunnerProgressLine.TryParse("{\"progress\":1.5}", out var clamped));
        Assert.Equal(1.0, clamped);
        foreach (var line in new[] { "", "progress 0.5", "{\"progress\":\"0.5\"}", "{\"progress\":0.5", "{\"progress\":NaN}", "[0.5]", null })
        {
            Assert.False(RunnerProgressLine.TryParse(line, out double _), line);
        }
    }

    [Fact]
    public void A_progress_line_with_a_detail_object_carries_the_object_and_a_detail_that_is_not_an_object_is_dropped()
    {
        var line = RunnerProgressLine.Format(0.5, new { epoch = 3, epochs = 6, trainLoss = double.NaN });
        Assert.Equal("{\"progress\":0.5,\"detail\":{\"epoch\":3,\"epochs\":6,\"trainLoss\":\"NaN\"}}", line);
        Assert.True(RunnerProgressLine.TryParseReport(line, out var report));
        Assert.Equal(0.5, report!.Progress);
        Assert.Equal("{\"epoch\":3,\"epochs\":6,\"trainLoss\":\"NaN\"}", report.Detail);
        Assert.True(RunnerProgressLine.TryParseReport("{\"progress\":0.1,\"detail\":[1,2]}", out var dropped));
        Assert.Null(dropped!.Detail);
    }

    [Fact]
    public void The_runner_verb_is_dispatched_but_not_listed_among_the_public_verbs()
    {
        Assert.Contains("runner", CliApp.Verbs);
        Assert.DoesNotContain("runner", CliApp.PublicVerbs);
        Assert.DoesNotContain("runner", CliApp.Usage, StringComparison.Ordinal);
        var stderr = new StringWriter();
        var code = CliApp.Run(["runner", "--spec"], new StringWriter(), stderr, CancellationToken.None);
        Assert.Equal(RunnerVerb.InternalErrorExitCode, code);
        Assert.StartsWith("runner: bad invocation", stderr.ToString(), StringComparison.Ordinal);
    }
}
