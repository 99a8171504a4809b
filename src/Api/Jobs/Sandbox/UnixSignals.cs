namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>Names of the signal behind an exit status (.NET reports a death by signal N as exit code 128 + N on Unix).</summary>
public static class UnixSignals
{
    // Linux numbering (x86-64 and arm64 agree); other Unix systems share 1–9, 11, 13–15.
    private static readonly string?[] LinuxNames =
    [
        null, "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",
        "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
    ];

    private static readonly HashSet<int> Portable = [1, 2, 3, 4, 5, 6, 8, 9, 11, 13, 14, 15];

    /// <summary>
    /// The signal's name for an exit code of 128 + N (e.g. 134 → SIGABRT, 137 → SIGKILL, 139 → SIGSEGV), or null
    /// where the code does not stand for a signal (or on Windows). A process that calls <c>exit(134)</c> reads the same.
    /// </summary>
    public static string? FromExitCode(int exitCode)
    {
        if (OperatingSystem.IsWindows()) return null;
        var signal = exitCode - 128;
        if (signal <= 0) return null;
        if (signal < LinuxNames.Length && (OperatingSystem.IsLinux() || Portable.Contains(signal))) return LinuxNames[signal];
        return OperatingSystem.IsLinux() && signal <= 64 ? $"SIGRT{signal}" : null;
    }
}
