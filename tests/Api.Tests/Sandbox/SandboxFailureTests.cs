using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using LambdaService.Api.Jobs;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Measurements;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using Xunit.Abstractions;

namespace LambdaService.Api.Tests.Sandbox;

/// <summary>Jobs the sandbox has to end or that end badly: crashes, limits, cancellation.</summary>
[Collection(SandboxCollection.Name)]
public class SandboxFailureTests(SandboxFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task A_libtorch_abort_while_loading_a_model_crashes_only_the_child_with_SIGABRT_and_its_stderr()
    {
        var (sandbox, _, work) = fixture.Sandbox();
        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(fixture.BrokenTorchScriptPath, fixture.CsvPath, new MeasurementRequest("m", "d")),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);

        var crashed = Assert.IsType<SandboxOutcome.Crashed>(outcome);
        output.WriteLine(crashed.Describe());
        Assert.Equal(134, crashed.ExitCode);
        Assert.Equal("SIGABRT", crashed.Signal);
        Assert.Contains("terminate", crashed.StderrTail, StringComparison.Ordinal);
        Assert.Contains("SIGABRT", crashed.Describe(), StringComparison.Ordinal);
        Assert.Equal(RunnerPhase.Load, crashed.Phase);
        Assert.True(crashed.WhileLoading);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
    }

    [Fact]
    public async Task A_self_inflicted_signal_while_loading_is_a_load_failure_while_one_after_loading_or_a_kill_from_outside_is_not()
    {
        async Task<SandboxOutcome.Crashed> Crash(string body)
        {
            var (sandbox, _, work) = fixture.Sandbox("bash " + fixture.Script(body));
            var outcome = await sandbox.RunAsync(fixture.SlowSpec(), SandboxFixture.Roomy, _ => { }, CancellationToken.None);
            Assert.Empty(Directory.EnumerateFileSystemEntries(work));
            return Assert.IsType<SandboxOutcome.Crashed>(outcome);
        }

        var loading = await Crash("""echo '{"phase":"load"}'; echo 'loader gave up' >&2; kill -ABRT $$""");
        Assert.Equal(RunnerPhase.Load, loading.Phase);
        Assert.True(loading.WhileLoading);
        var detail = loading.DescribeLoadFailure("the model");
        output.WriteLine(detail);
        Assert.StartsWith("the model could not be loaded: the sandbox died of SIGABRT (exit code 134) while loading it;", detail, StringComparison.Ordinal);
        Assert.EndsWith("loader gave up", detail, StringComparison.Ordinal);

        var running = await Crash("""echo '{"phase":"load"}'; echo '{"phase":"run"}'; kill -ABRT $$""");
        Assert.Equal(RunnerPhase.Run, running.Phase);
        Assert.False(running.WhileLoading);

        var killed = await Crash("""echo '{"phase":"load"}'; kill -KILL $$""");
        Assert.Equal("SIGKILL", killed.Signal);
        Assert.False(killed.WhileLoading);
        Assert.Contains("killed by SIGKILL (exit code 137; the out-of-memory killer, an operator, or the memory limit)", killed.Describe(), StringComparison.Ordinal);

        var silent = await Crash("kill -SEGV $$");
        Assert.Null(silent.Phase);
        Assert.False(silent.WhileLoading);
    }

    [Theory]
    // libtorch 2.10's two spellings (the first seen for hardsigmoid in TorchScriptOperators' test process, the second for torch.cdist in
    // JobLifecycleTests), and lines that name no missing derivative.
    [InlineData("SIGABRT", "  what():  derivative for aten::hardsigmoid_backward is not implemented", "aten::hardsigmoid_backward")]
    [InlineData("SIGABRT", "  what():  the derivative for '_cdist_backward' is not implemented.", "aten::_cdist_backward")]
    [InlineData("SIGABRT", "  what():  Could not run 'aten::empty' with arguments from the 'CUDA' backend", null)]
    [InlineData("SIGKILL", "derivative for aten::hardsigmoid_backward is not implemented", null)]
    [InlineData(null, "derivative for aten::hardsigmoid_backward is not implemented", null)]
    public void A_crash_names_the_operator_libtorch_has_no_derivative_for_only_when_it_died_of_it(string? signal, string line, string? expected)
    {
        var crash = new SandboxOutcome.Crashed(signal is null ? 1 : 134, signal, "terminate called after throwing an instance of 'c10::NotImplementedError'\n" + line, RunnerPhase.Run);
        Assert.Equal(expected, crash.MissingDerivative);
        if (expected is null) return;
        var detail = crash.DescribeMissingDerivative("engine");
        Assert.StartsWith($"libtorch has no derivative of {expected}, which nested autograd needs", detail, StringComparison.Ordinal);
        Assert.Contains("set engine to finite-difference", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_onnx_model_its_runtime_refuses_is_a_user_error_naming_the_model_and_the_cause_not_a_crash()
    {
        var path = Path.Combine(fixture.Folder, "unknown-operator.onnx");
        var model = OnnxModelBuilder.Mlp([new float[8, 2], new float[2, 8]], [new float[8], new float[2]]);
        model.Graph.Node[0].OpType = "NoSuchOperator";   // passes ModelFile's checks; ONNX Runtime refuses it at session creation
        OnnxModelBuilder.Save(model, path);
        var (sandbox, _, _) = fixture.Sandbox();
        var outcome = await sandbox.RunAsync(SandboxFixture.Spec(path, fixture.CsvPath, new MeasurementRequest("m", "d", MaxPoints: 8)),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);

        var error = Assert.IsType<SandboxOutcome.UserError>(outcome).Error;
        output.WriteLine(error.Detail);
        Assert.Equal("model", error.Field);
        Assert.StartsWith("ONNX Runtime cannot load the model: ", error.Detail, StringComparison.Ordinal);
        Assert.Contains("NoSuchOperator", error.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_torchscript_model_calling_hardsigmoid_is_a_user_error_naming_engine_under_autograd_not_a_sigabrt_and_runs_with_finite_differences()
    {
        // libtorch has no derivative of hardsigmoid_backward: a second derivative under nested autograd would abort the child
        // (TorchScriptOperators.WithoutSecondDerivative); the measurement refuses the model from its code first.
        var path = Path.Combine(fixture.Folder, "hardsigmoid.pt");
        TorchScriptWriter.Write(path, new TorchScriptModuleSpec("Hard",
            [new TorchScriptParameter("w0", [4, 2], [1f, -1f, 0.5f, 2f, -2f, 0.25f, 1.5f, -0.5f]), new TorchScriptParameter("w1", [2, 4], [1f, -1f, 0.5f, 2f, -2f, 0.25f, 1.5f, -0.5f])],
            "return torch.linear(torch.hardsigmoid(torch.linear(x, self.w0)), self.w1)"));
        var (sandbox, _, _) = fixture.Sandbox();
        var refused = await sandbox.RunAsync(SandboxFixture.Spec(path, fixture.CsvPath, new MeasurementRequest("m", "d", MaxPoints: 8, Engine: EngineChoice.Autograd)),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);
        var error = Assert.IsType<SandboxOutcome.UserError>(refused).Error;
        output.WriteLine(error.Detail);
        Assert.Equal("engine", error.Field);
        Assert.Contains("torch.hardsigmoid (no higher derivative in libtorch)", error.Detail, StringComparison.Ordinal);

        var ran = await sandbox.RunAsync(SandboxFixture.Spec(path, fixture.CsvPath, new MeasurementRequest("m", "d", MaxPoints: 8, Engine: EngineChoice.FiniteDifference, AllowUnreliable: true)),
            SandboxFixture.Roomy, _ => { }, CancellationToken.None);
        var result = JsonSerializer.Deserialize<MeasurementResult>(Assert.IsType<SandboxOutcome.Succeeded>(ran).ResultJson, RunnerProtocol.Json)!;
        Assert.Contains(result.Warnings, w => w.StartsWith("the model has piecewise-linear operators (hardsigmoid)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_job_past_its_time_limit_is_stopped_and_its_process_is_gone()
    {
        var (sandbox, log, work) = fixture.Sandbox();
        var clock = Stopwatch.StartNew();
        var outcome = await sandbox.RunAsync(fixture.SlowSpec(), new SandboxLimits(TimeSpan.FromSeconds(1), 8L << 30), _ => { }, CancellationToken.None);
        clock.Stop();

        var timedOut = Assert.IsType<SandboxOutcome.TimedOut>(outcome);
        Assert.Equal(TimeSpan.FromSeconds(1), timedOut.Limit);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(12));
        Assert.True(SandboxFixture.IsGone(log.StartedProcessId()!.Value));
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        output.WriteLine($"timed out after {clock.Elapsed.TotalSeconds:F2} s");
        foreach (var entry in log.Entries) output.WriteLine(entry.Message);
    }

    [Fact]
    public async Task A_job_past_its_memory_limit_is_stopped_with_the_peak_and_the_limit()
    {
        const long limit = 30L << 20;
        var (sandbox, log, _) = fixture.Sandbox();
        var outcome = await sandbox.RunAsync(fixture.SlowSpec(), new SandboxLimits(TimeSpan.FromMinutes(1), limit), _ => { }, CancellationToken.None);

        var exceeded = Assert.IsType<SandboxOutcome.MemoryExceeded>(outcome);
        Assert.Equal(limit, exceeded.LimitBytes);
        Assert.True(exceeded.PeakBytes > limit, $"peak {exceeded.PeakBytes}");
        Assert.True(SandboxFixture.IsGone(log.StartedProcessId()!.Value));
        output.WriteLine(exceeded.Describe());
    }

    [Fact]
    public async Task Canceling_a_running_job_kills_the_child_and_reports_canceled()
    {
        var (sandbox, log, work) = fixture.Sandbox();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var firstProgress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = sandbox.RunAsync(fixture.SlowSpec(), SandboxFixture.Roomy, _ => firstProgress.TrySetResult(), cancel.Token);
        await firstProgress.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var pid = log.StartedProcessId()!.Value;
        Assert.False(SandboxFixture.IsGone(pid));
        await Task.Delay(300);
        var clock = Stopwatch.StartNew();
        await cancel.CancelAsync();

        var outcome = await run;
        Assert.IsType<SandboxOutcome.Canceled>(outcome);
        Assert.True(SandboxFixture.IsGone(pid));
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
    }

    [Fact]
    public async Task A_child_killed_by_a_signal_is_a_crash_naming_the_signal_and_keeping_the_last_40_stderr_lines()
    {
        var script = fixture.Script("""
            echo "not a progress line"
            echo '{"progress":0.5}'
            echo '{"progress":"soon"}'
            for i in $(seq 1 100); do echo "stderr line $i" >&2; done
            kill -SEGV $$
            """);
        var (sandbox, _, work) = fixture.Sandbox("bash " + script);
        var progress = new ConcurrentQueue<double>();
        var outcome = await sandbox.RunAsync(fixture.SlowSpec(), SandboxFixture.Roomy, r => progress.Enqueue(r.Progress), CancellationToken.None);

        var crashed = Assert.IsType<SandboxOutcome.Crashed>(outcome);
        Assert.Equal(139, crashed.ExitCode);
        Assert.Equal("SIGSEGV", crashed.Signal);
        var lines = crashed.StderrTail.Split('\n');
        Assert.Equal(SandboxProcess.StderrTailLines, lines.Length);
        Assert.Equal("stderr line 61", lines[0]);
        Assert.Equal("stderr line 100", lines[^1]);
        Assert.Equal([0.5], progress);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
    }

    [Fact]
    public async Task A_child_that_exits_0_without_a_result_is_a_crash_not_a_success()
    {
        var (sandbox, _, _) = fixture.Sandbox("bash " + fixture.Script("echo 'gone early' >&2; exit 0"));
        var outcome = await sandbox.RunAsync(fixture.SlowSpec(), SandboxFixture.Roomy, _ => { }, CancellationToken.None);

        var crashed = Assert.IsType<SandboxOutcome.Crashed>(outcome);
        Assert.Equal(0, crashed.ExitCode);
        Assert.Null(crashed.Signal);
        Assert.StartsWith("gone early\n[sandbox] the runner exited with code 0 but wrote no result", crashed.StderrTail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_progress_callback_that_throws_does_not_fail_the_job()
    {
        var script = fixture.Script("""
            echo '{"progress":0.5}'
            echo '{"progress":1}'
            echo '{"field":"data","detail":"bad"}' > "$5"
            exit 2
            """);
        var (sandbox, log, _) = fixture.Sandbox("bash " + script);
        var outcome = await sandbox.RunAsync(fixture.SlowSpec(), SandboxFixture.Roomy, _ => throw new InvalidOperationException("boom"), CancellationToken.None);

        Assert.Equal(new LambdaService.Api.Jobs.RunnerUserError("data", "bad"), Assert.IsType<SandboxOutcome.UserError>(outcome).Error);
        Assert.Single(log.Entries, e => e.Id.Id == 8);
    }
}
