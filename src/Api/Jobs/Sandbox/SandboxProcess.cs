using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>
/// The parent side of the sandbox (README, Jobs): runs one <see cref="RunnerSpec"/> in a child process (the
/// <c>runner</c> verb of this executable), passes its progress on, enforces the time and memory limits, and turns
/// whatever the child does (a result, a user error, a crash, a hang, too much memory) into a
/// <see cref="SandboxOutcome"/>. Native code never runs in the calling process. Safe to use from many jobs at once.
/// </summary>
public sealed partial class SandboxProcess(SandboxOptions options, ILogger<SandboxProcess> logger)
{
    /// <summary>How often the child's memory and the time limit are checked.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(150);

    /// <summary>How many of the child's last stderr lines an outcome keeps.</summary>
    public const int StderrTailLines = 40;

    private const int MaxStderrLineLength = 2000;
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PipeDrainWait = TimeSpan.FromSeconds(3);

    private enum StopReason
    {
        None,
        Canceled,
        TimeLimit,
        MemoryLimit,
    }

    /// <summary>
    /// Runs <paramref name="spec"/> in a new child process and waits for it. Never throws for anything the child does;
    /// the outcome says how it ended.
    /// </summary>
    /// <param name="spec">The job.</param>
    /// <param name="limits">Time and memory limits; exceeding either kills the child's process tree.</param>
    /// <param name="onProgress">Called with each progress report (a value 0..1, and a detail object for training) the child makes, from a background thread; exceptions it throws are logged and ignored.</param>
    /// <param name="cancellationToken">Kills the child's process tree; the outcome is then <see cref="SandboxOutcome.Canceled"/>.</param>
    /// <exception cref="ArgumentException">A null argument or invalid limits.</exception>
    /// <exception cref="IOException">The spec cannot be written to <see cref="SandboxOptions.WorkDirectory"/>.</exception>
    /// <exception cref="InvalidOperationException">The runner cannot be started (a configuration problem, e.g. a wrong <see cref="SandboxOptions.RunnerCommand"/>).</exception>
    public async Task<SandboxOutcome> RunAsync(RunnerSpec spec, SandboxLimits limits, Action<RunnerReport> onProgress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(onProgress);
        limits.Validate();
        if (cancellationToken.IsCancellationRequested) return new SandboxOutcome.Canceled();

        var folder = CreateJobFolder();
        try
        {
            var specPath = Path.Combine(folder, "spec.json");
            var outPath = Path.Combine(folder, "out.json");
            await File.WriteAllTextAsync(specPath, JsonSerializer.Serialize(spec, RunnerProtocol.Json), CancellationToken.None).ConfigureAwait(false);
            return await RunChildAsync(specPath, outPath, folder, limits, onProgress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            DeleteJobFolder(folder);
        }
    }

    /// <summary>
    /// The program and leading arguments that start this service's runner: <paramref name="runnerCommand"/> split on
    /// spaces when given; else the current executable: the apphost itself when this process is
    /// <c>LambdaService.Api</c>, else <c>dotnet LambdaService.Api.dll</c> (this process's <c>dotnet</c> host when it
    /// runs under one, <c>DOTNET_HOST_PATH</c> or <c>dotnet</c> on the PATH otherwise).
    /// </summary>
    public static (string FileName, IReadOnlyList<string> Arguments) ResolveRunnerCommand(string? runnerCommand)
    {
        if (!string.IsNullOrWhiteSpace(runnerCommand))
        {
            var words = runnerCommand.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return (words[0], words[1..]);
        }
        var processPath = Environment.ProcessPath;
        var assembly = typeof(SandboxProcess).Assembly;
        var dll = assembly.Location;
        var apiName = assembly.GetName().Name ?? "LambdaService.Api";
        if (processPath is not null && string.Equals(Path.GetFileNameWithoutExtension(processPath), apiName, StringComparison.OrdinalIgnoreCase))
        {
            return (processPath, []);
        }
        if (string.IsNullOrEmpty(dll))
        {
            // Single-file publish: no .dll on disk; the process is the executable.
            return (processPath ?? apiName, []);
        }
        var host = processPath is not null && string.Equals(Path.GetFileNameWithoutExtension(processPath), "dotnet", StringComparison.OrdinalIgnoreCase)
            ? processPath
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath ? hostPath : "dotnet";
        return (host, [dll]);
    }

    private async Task<SandboxOutcome> RunChildAsync(string specPath, string outPath, string folder, SandboxLimits limits,
        Action<RunnerReport> onProgress, CancellationToken cancellationToken)
    {
        var (fileName, leading) = ResolveRunnerCommand(options.RunnerCommand);
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = folder,
            CreateNoWindow = true,
        };
        if (options.Threads > 0) info.Environment[Measurement.Models.TorchRuntime.ThreadsVariable] = options.Threads.ToString(CultureInfo.InvariantCulture);
        string[] runnerArguments =
        [
            RunnerVerb.Name, "--spec", specPath, "--out", outPath, "--parent-pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        ];
        foreach (var word in leading.Concat(runnerArguments)) info.ArgumentList.Add(word);

        using var process = new Process { StartInfo = info };
        var clock = Stopwatch.StartNew();
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException or PlatformNotSupportedException)
        {
            LogStartFailed(fileName, e);
            throw new InvalidOperationException($"The sandbox runner '{fileName}' could not be started: {e.Message}", e);
        }
        var pid = process.Id;
        LogStarted(pid, fileName, string.Join(' ', info.ArgumentList));

        var tail = new LineTail(StderrTailLines, MaxStderrLineLength);
        var phase = new LastPhase();
        var stop = StopReason.None;
        long peak = 0;
        try
        {
            try
            {
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The child has already gone; its exit status tells why.
            }
            var stdoutTask = Task.Run(() => ReadProgressAsync(process.StandardOutput, onProgress, phase, pid), CancellationToken.None);
            var stderrTask = Task.Run(() => ReadTailAsync(process.StandardError, tail), CancellationToken.None);
            var exited = process.WaitForExitAsync(CancellationToken.None);
            var canceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (cancellationToken.Register(() => canceled.TrySetResult()))
            {
                while (true)
                {
                    if (OperatingSystem.IsLinux())
                    {
                        var (resident, highWater) = ProcessMemory.Read(pid);
                        peak = Math.Max(peak, Math.Max(resident, highWater));
                    }
                    else if (!exited.IsCompleted)
                    {
                        try
                        {
                            process.Refresh();
                            peak = Math.Max(peak, process.PeakWorkingSet64);
                        }
                        catch (InvalidOperationException)
                        {
                            // Gone between the check and the read.
                        }
                    }
                    if (exited.IsCompleted) break;
                    if (cancellationToken.IsCancellationRequested)
                    {
                        stop = StopReason.Canceled;
                        break;
                    }
                    if (peak > limits.MemoryLimitBytes)
                    {
                        stop = StopReason.MemoryLimit;
                        break;
                    }
                    var wait = PollInterval;
                    if (limits.TimeLimit != Timeout.InfiniteTimeSpan)
                    {
                        var left = limits.TimeLimit - clock.Elapsed;
                        if (left <= TimeSpan.Zero)
                        {
                            stop = StopReason.TimeLimit;
                            break;
                        }
                        if (left < wait) wait = left;
                    }
                    await Task.WhenAny(exited, canceled.Task, Task.Delay(wait, CancellationToken.None)).ConfigureAwait(false);
                }
            }

            if (stop != StopReason.None)
            {
                LogStopping(pid, stop, clock.ElapsedMilliseconds, peak);
                await KillAsync(process, pid, exited).ConfigureAwait(false);
            }
            else
            {
                await exited.ConfigureAwait(false);
            }
            await DrainAsync(stdoutTask, stderrTask, pid).ConfigureAwait(false);

            var exitCode = process.HasExited ? process.ExitCode : -1;
            LogExited(pid, exitCode, clock.ElapsedMilliseconds, peak);
            var outcome = stop switch
            {
                StopReason.Canceled => new SandboxOutcome.Canceled(),
                StopReason.TimeLimit => new SandboxOutcome.TimedOut(limits.TimeLimit, tail.Text()),
                StopReason.MemoryLimit => new SandboxOutcome.MemoryExceeded(peak, limits.MemoryLimitBytes, tail.Text()),
                _ => Interpret(exitCode, outPath, tail, phase.Value),
            };
            if (outcome is SandboxOutcome.Crashed crash) LogCrashed(pid, crash.ExitCode, crash.Signal ?? "none", crash.StderrTail);
            return outcome;
        }
        finally
        {
            // Whatever happened above (even a fault of ours), no runner outlives its job.
            if (!HasExited(process))
            {
                await KillAsync(process, pid, process.WaitForExitAsync(CancellationToken.None)).ConfigureAwait(false);
            }
        }
    }

    private SandboxOutcome Interpret(int exitCode, string outPath, LineTail tail, string? phase)
    {
        if (exitCode == 0)
        {
            var json = TryRead(outPath);
            return json is { Length: > 0 }
                ? new SandboxOutcome.Succeeded(json)
                : new SandboxOutcome.Crashed(exitCode, null, tail.Text("[sandbox] the runner exited with code 0 but wrote no result."), phase);
        }
        if (exitCode == RunnerProtocol.UserErrorExitCode)
        {
            var json = TryRead(outPath);
            RunnerUserError? error = null;
            if (json is not null)
            {
                try
                {
                    error = JsonSerializer.Deserialize<RunnerUserError>(json, RunnerProtocol.Json);
                }
                catch (JsonException)
                {
                    error = null;
                }
            }
            return error is { Field: not null, Detail: not null }
                ? new SandboxOutcome.UserError(error)
                : new SandboxOutcome.Crashed(exitCode, null, tail.Text("[sandbox] the runner exited with code 2 but wrote no readable user error."), phase);
        }
        return new SandboxOutcome.Crashed(exitCode, UnixSignals.FromExitCode(exitCode), tail.Text(), phase);
    }

    private string? TryRead(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogOutFileUnreadable(path, e);
            return null;
        }
    }

    private async Task ReadProgressAsync(StreamReader reader, Action<RunnerReport> onProgress, LastPhase phase, int pid)
    {
        var callbackFailed = false;
        try
        {
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (RunnerPhase.TryParse(line, out var named))
                {
                    phase.Value = named;
                    continue;
                }
                if (!RunnerProgressLine.TryParseReport(line, out var report)) continue;
                try
                {
                    onProgress(report!);
                }
                catch (Exception e)
                {
                    if (!callbackFailed) LogProgressCallbackFailed(pid, e);
                    callbackFailed = true;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The pipe broke with the child; its exit status tells why.
        }
    }

    private static async Task ReadTailAsync(StreamReader reader, LineTail tail)
    {
        try
        {
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line) tail.Add(line);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // As above.
        }
    }

    private async Task DrainAsync(Task stdoutTask, Task stderrTask, int pid)
    {
        try
        {
            await Task.WhenAll(stdoutTask, stderrTask).WaitAsync(PipeDrainWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A descendant that escaped the kill may hold the pipes open; what was read so far is enough.
            LogPipesOpen(pid);
        }
    }

    private async Task KillAsync(Process process, int pid, Task exited)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception or NotSupportedException)
        {
            // It exited on its own meanwhile, or a descendant could not be signalled; the wait below tells.
            LogKillFailed(pid, e);
        }
        try
        {
            await exited.WaitAsync(ExitWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            LogDidNotExit(pid, ExitWait.TotalSeconds);
        }
    }

    private static bool HasExited(Process process)
    {
        try
        {
            return process.HasExited;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private string CreateJobFolder()
    {
        // Named with this process's owner tag, so that a recovery sweep can tell the leftover of a dead process (LeftoverFolders).
        var path = Path.Combine(Path.GetFullPath(options.WorkDirectory), LeftoverFolders.SandboxPrefix + LeftoverFolders.OwnerTag + "-" + Guid.NewGuid().ToString("N"));
        LeftoverFolders.Hold(path);
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
        else Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private void DeleteJobFolder(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogCleanupFailed(folder, e);
        }
        finally
        {
            // Not held any more: if it could not be removed now, the recovery sweep removes it later.
            LeftoverFolders.Release(folder);
        }
    }

    /// <summary>The last phase line (<see cref="RunnerPhase"/>) the child wrote, or null; written by the stdout reader, read after it drained.</summary>
    private sealed class LastPhase
    {
        private string? _value;

        public string? Value
        {
            get => Volatile.Read(ref _value);
            set => Volatile.Write(ref _value, value);
        }
    }

    /// <summary>The last lines of a stream, each clipped; thread-safe.</summary>
    private sealed class LineTail(int capacity, int maxLineLength)
    {
        private readonly Queue<string> _lines = new();
        private readonly Lock _gate = new();

        public void Add(string line)
        {
            if (line.Length > maxLineLength) line = line[..maxLineLength] + "…";
            lock (_gate)
            {
                _lines.Enqueue(line);
                while (_lines.Count > capacity) _lines.Dequeue();
            }
        }

        public string Text(string? note = null)
        {
            lock (_gate)
            {
                var text = string.Join('\n', _lines);
                return note is null ? text : text.Length == 0 ? note : text + "\n" + note;
            }
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Sandbox runner {ProcessId} started: {FileName} {Arguments}")]
    private partial void LogStarted(int processId, string fileName, string arguments);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Sandbox runner {FileName} could not be started")]
    private partial void LogStartFailed(string fileName, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Stopping sandbox runner {ProcessId}: {Reason} after {ElapsedMs} ms, peak resident memory {PeakBytes} bytes")]
    private partial void LogStopping(int processId, StopReason reason, long elapsedMs, long peakBytes);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Sandbox runner {ProcessId} exited with code {ExitCode} after {ElapsedMs} ms, peak resident memory {PeakBytes} bytes")]
    private partial void LogExited(int processId, int exitCode, long elapsedMs, long peakBytes);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Sandbox runner {ProcessId} crashed with exit code {ExitCode} (signal {Signal}); stderr tail: {StderrTail}")]
    private partial void LogCrashed(int processId, int exitCode, string signal, string stderrTail);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Killing sandbox runner {ProcessId} failed")]
    private partial void LogKillFailed(int processId, Exception exception);

    [LoggerMessage(EventId = 7, Level = LogLevel.Error, Message = "Sandbox runner {ProcessId} did not exit within {Seconds} s of being killed")]
    private partial void LogDidNotExit(int processId, double seconds);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Progress callback for sandbox runner {ProcessId} failed; further failures are not logged")]
    private partial void LogProgressCallbackFailed(int processId, Exception exception);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "The output pipes of sandbox runner {ProcessId} stayed open after it exited")]
    private partial void LogPipesOpen(int processId);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "The sandbox out file {Path} could not be read")]
    private partial void LogOutFileUnreadable(string path, Exception exception);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "The sandbox job folder {Folder} could not be removed")]
    private partial void LogCleanupFailed(string folder, Exception exception);
}
