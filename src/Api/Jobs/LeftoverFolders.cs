using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace LambdaService.Api.Jobs;

/// <summary>
/// The scratch folders of job attempts — the sandbox's spec folders (<c>{Storage:Root}/sandbox/lambdaservice-sandbox-*</c>,
/// <see cref="Sandbox.SandboxProcess"/>) and the training runs' export folders (<c>{Storage:Root}/tmp/train-*</c>,
/// <see cref="SandboxJob"/>) — and their removal once the attempt that made one is dead (a <c>kill -9</c> of its node leaves
/// them behind). Each folder's name carries its owner, <c>{process id}@{host}</c>, because several processes of one host may
/// share a store (an API and <c>worker</c> processes on one SQLite folder): a folder is removed only when its owner process is
/// gone, or, for this process's own folders, when no attempt here holds it (<see cref="Hold"/>). Folders of other hosts are
/// left to their own sweeps.
/// </summary>
public static partial class LeftoverFolders
{
    /// <summary>Prefix of a sandbox spec folder.</summary>
    public const string SandboxPrefix = "lambdaservice-sandbox-";

    /// <summary>Prefix of a training run's export folder under <c>tmp</c>.</summary>
    public const string TrainPrefix = "train-";

    private static readonly ConcurrentDictionary<string, byte> Held = new(StringComparer.Ordinal);

    /// <summary>This process's owner tag, <c>{process id}@{host}</c>; a folder name is its prefix, the tag, <c>-</c> and 32 hex digits.</summary>
    public static string OwnerTag { get; } = Tag(Environment.ProcessId, Environment.MachineName);

    /// <summary>The owner tag of process <paramref name="processId"/> on <paramref name="host"/>.</summary>
    public static string Tag(int processId, string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var invalid = Path.GetInvalidFileNameChars();
        return $"{processId}@{new string([.. host.Select(c => invalid.Contains(c) ? '_' : c)])}";
    }

    /// <summary>Marks a folder as in use by an attempt of this process (before it is created).</summary>
    public static void Hold(string path) => Held[Path.GetFullPath(path)] = 0;

    /// <summary>Ends <see cref="Hold"/> (after the folder is removed).</summary>
    public static void Release(string path) => Held.TryRemove(Path.GetFullPath(path), out _);

    /// <summary>
    /// Removes the leftovers under <paramref name="storageRoot"/>'s <c>sandbox</c> and <c>tmp</c> folders: folders of a dead process of
    /// this host; this process's own folders that no attempt holds and that are older than <paramref name="minimumAge"/>; and folders
    /// named before owner tags existed once they are older than <paramref name="untaggedAge"/> (no attempt lives longer than its time limit).
    /// Returns the removed paths.
    /// </summary>
    public static IReadOnlyList<string> Remove(string storageRoot, TimeSpan minimumAge, TimeSpan untaggedAge)
    {
        var removed = new List<string>();
        var now = DateTime.UtcNow;
        foreach (var (folder, prefix) in new[] { (Path.Combine(storageRoot, "sandbox"), SandboxPrefix), (Path.Combine(storageRoot, "tmp"), TrainPrefix) })
        {
            if (!Directory.Exists(folder)) continue;
            foreach (var path in Directory.EnumerateDirectories(folder, prefix + "*"))
            {
                if (!IsLeftover(path, Path.GetFileName(path)[prefix.Length..], now, minimumAge, untaggedAge)) continue;
                try
                {
                    Directory.Delete(path, recursive: true);
                    removed.Add(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Gone meanwhile, or not ours to remove; the next sweep tries again.
                }
            }
        }
        return removed;
    }

    private static bool IsLeftover(string path, string rest, DateTime now, TimeSpan minimumAge, TimeSpan untaggedAge)
    {
        DateTime written;
        try
        {
            written = Directory.GetLastWriteTimeUtc(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        var match = TaggedName().Match(rest);
        if (!match.Success) return now - written > untaggedAge;
        var host = match.Groups["host"].Value;
        if (!string.Equals(host, OwnerTag[(OwnerTag.IndexOf('@') + 1)..], StringComparison.Ordinal)) return false;
        if (!int.TryParse(match.Groups["pid"].Value, System.Globalization.CultureInfo.InvariantCulture, out var pid)) return false;
        if (pid == Environment.ProcessId) return !Held.ContainsKey(Path.GetFullPath(path)) && now - written > minimumAge;
        return !IsAlive(pid);
    }

    /// <summary>Whether a process with this id runs on this host (a reused id keeps a folder: removing too little is the safe side).</summary>
    private static bool IsAlive(int processId)
    {
        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [GeneratedRegex("^(?<pid>[0-9]+)@(?<host>.+)-[0-9a-f]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex TaggedName();
}
