using System.Diagnostics;
using LambdaService.Api.Jobs.Sandbox;

namespace LambdaService.Api.Tests.Sandbox;

/// <summary>The runner ends itself when the process that started it has gone.</summary>
[Collection(SandboxCollection.Name)]
public class RunnerWatchdogTests(SandboxFixture fixture)
{
    [Fact]
    public async Task A_runner_whose_parent_exits_at_once_ends_within_seconds()
    {
        // The parent (bash) names itself with --parent-pid and exits before the runner has even started.
        var pid = StartOrphan("--parent-pid $$", "exit", out var bash);
        await bash.WaitForExitAsync();
        Assert.True(await SandboxFixture.WaitUntilGone(pid, TimeSpan.FromSeconds(10)), $"runner {pid} still runs");
        bash.Dispose();
    }

    [Fact]
    public async Task A_runner_notices_a_change_of_its_parent_process_id()
    {
        // No --parent-pid: only getppid() changing tells. The parent lives long enough for the runner to start.
        var pid = StartOrphan("", "sleep 2; exit", out var bash);
        await Task.Delay(1500);
        Assert.False(SandboxFixture.IsGone(pid), "the runner ended while its parent still lived");
        await bash.WaitForExitAsync();
        Assert.True(await SandboxFixture.WaitUntilGone(pid, TimeSpan.FromSeconds(5)), $"runner {pid} still runs");
        bash.Dispose();
    }

    private int StartOrphan(string parentOption, string then, out Process bash)
    {
        var spec = fixture.WriteSpec(fixture.SlowSpec());
        var outFile = Path.Combine(fixture.Folder, "orphan-" + Guid.NewGuid().ToString("N") + ".json");
        var runner = $"'{SandboxFixture.DotnetHost}' '{SandboxFixture.ApiDll}' {RunnerVerb.Name} --spec '{spec}' --out '{outFile}' {parentOption}";
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"{runner} >/dev/null 2>&1 & echo $!; {then}");
        bash = Process.Start(info)!;
        var line = bash.StandardOutput.ReadLine();
        return int.Parse(line!, System.Globalization.CultureInfo.InvariantCulture);
    }
}
