using System.Diagnostics;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// A tmpfs of a few MiB mounted in a temporary folder for one test, to be a service's <c>Storage:Root</c> on a disk that can be
/// filled: a filler file takes the free space (all of it, or all but some), and deleting it gives the space back. Mounting needs
/// root, as the tests run here and in CI; without it the constructor fails with the reason instead of the test passing untried.
/// </summary>
public sealed class SmallFileSystem : IDisposable
{
    private const int Page = 4096;

    public SmallFileSystem(int megabytes)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "lambdaservice-tmpfs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", Path);
        if (code != 0)
        {
            Directory.Delete(Path);
            throw new InvalidOperationException(
                $"mount -t tmpfs failed ({code}: {output.Trim()}); the full-disk tests mount a small tmpfs and need root (CI runs them as root).");
        }
    }

    /// <summary>The mount point.</summary>
    public string Path { get; }

    /// <summary>Bytes still free.</summary>
    public long FreeBytes => new DriveInfo(Path).AvailableFreeSpace;

    private string Filler => System.IO.Path.Combine(Path, "filler");

    /// <summary>Grows the filler until at most <paramref name="leaveBytes"/> are free; with 0, until the kernel answers ENOSPC.</summary>
    public void Fill(long leaveBytes = 0)
    {
        using var file = new FileStream(Filler, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        var chunk = new byte[1 << 20];
        while (FreeBytes > leaveBytes)
        {
            var size = (int)Math.Min(chunk.Length, Math.Max(Page, FreeBytes - leaveBytes));
            try
            {
                file.Write(chunk, 0, size);
            }
            catch (IOException e) when (e.HResult == 28)
            {
                if (size == Page) break;
                chunk = new byte[Page];   // the last pages one at a time
            }
        }
    }

    /// <summary>Deletes the filler: the space is back.</summary>
    public void Free() => File.Delete(Filler);

    /// <summary>Files (not folders) under <paramref name="folder"/> of the mount, relative to it; none when it does not exist.</summary>
    public string[] FilesUnder(string folder)
    {
        var full = System.IO.Path.Combine(Path, folder);
        return Directory.Exists(full)
            ? [.. Directory.GetFiles(full, "*", SearchOption.AllDirectories).Select(f => System.IO.Path.GetRelativePath(Path, f)).Order(StringComparer.Ordinal)]
            : [];
    }

    public void Dispose()
    {
        if (Run("umount", Path).Code != 0) Run("umount", "-l", Path);
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static (int Code, string Output) Run(string command, params string[] args)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Result + error);
    }
}
