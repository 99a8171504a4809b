using System.Diagnostics;
using LambdaService.Api.Jobs;

namespace LambdaService.Api.Tests.Sandbox;

/// <summary>The recovery sweep's removal of dead attempts' scratch folders, on a store folder of its own.</summary>
public sealed class LeftoverFoldersTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "lambdaservice-leftovers-" + Guid.NewGuid().ToString("N"));

    private string Folder(string parent, string prefix, string? tag, TimeSpan age = default)
    {
        var path = Path.Combine(_root, parent, prefix + (tag is null ? "" : tag + "-") + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "spec.json"), "{}");
        Directory.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
        return path;
    }

    /// <summary>The id of a process that has run and exited (and been reaped).</summary>
    private static int DeadProcessId()
    {
        using var process = Process.Start("true")!;
        process.WaitForExit();
        return process.Id;
    }

    [Fact]
    public void The_sweep_removes_folders_of_dead_processes_and_unheld_old_ones_of_its_own_and_keeps_every_folder_a_live_attempt_may_use()
    {
        var host = Environment.MachineName;
        using var alive = Process.Start("sleep", "60")!;
        try
        {
            var dead = LeftoverFolders.Tag(DeadProcessId(), host);
            var deadSandbox = Folder("sandbox", LeftoverFolders.SandboxPrefix, dead);
            var deadTraining = Folder("tmp", LeftoverFolders.TrainPrefix, dead);
            var otherLive = Folder("sandbox", LeftoverFolders.SandboxPrefix, LeftoverFolders.Tag(alive.Id, host), TimeSpan.FromHours(2));
            var otherHost = Folder("sandbox", LeftoverFolders.SandboxPrefix, LeftoverFolders.Tag(DeadProcessId(), host + "-elsewhere"), TimeSpan.FromHours(2));
            var heldOld = Folder("sandbox", LeftoverFolders.SandboxPrefix, LeftoverFolders.OwnerTag, TimeSpan.FromHours(1));
            LeftoverFolders.Hold(heldOld);
            var ownOld = Folder("tmp", LeftoverFolders.TrainPrefix, LeftoverFolders.OwnerTag, TimeSpan.FromHours(1));
            var ownNew = Folder("sandbox", LeftoverFolders.SandboxPrefix, LeftoverFolders.OwnerTag);
            var untaggedOld = Folder("sandbox", LeftoverFolders.SandboxPrefix, null, TimeSpan.FromHours(3));
            var untaggedNew = Folder("tmp", LeftoverFolders.TrainPrefix, null, TimeSpan.FromMinutes(5));
            var upload = Path.Combine(_root, "tmp", Guid.NewGuid().ToString("N"));
            File.WriteAllText(upload, "a staged upload");
            File.SetLastWriteTimeUtc(upload, DateTime.UtcNow - TimeSpan.FromDays(1));

            var removed = LeftoverFolders.Remove(_root, TimeSpan.FromSeconds(30), TimeSpan.FromHours(2));

            Assert.Equal(new[] { deadSandbox, deadTraining, ownOld, untaggedOld }.Order(), removed.Order());
            foreach (var gone in removed) Assert.False(Directory.Exists(gone), gone);
            foreach (var kept in new[] { otherLive, otherHost, heldOld, ownNew, untaggedNew }) Assert.True(Directory.Exists(kept), kept);
            Assert.True(File.Exists(upload));

            LeftoverFolders.Release(heldOld);
            Assert.Equal(new[] { heldOld }, LeftoverFolders.Remove(_root, TimeSpan.FromSeconds(30), TimeSpan.FromHours(2)));
        }
        finally
        {
            alive.Kill();
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
