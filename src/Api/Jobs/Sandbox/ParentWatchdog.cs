using System.Globalization;
using System.Runtime.InteropServices;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>
/// Ends the runner as soon as the process that started it has gone, so that a worker that dies (killed, crashed,
/// redeployed) leaves no measurement running on. A background thread polls <c>getppid()</c> every
/// <see cref="PollInterval"/> and compares it with the value at start: when a parent dies its children are
/// handed to init or a subreaper, so the value changes. Where the parent named its own process id
/// (<c>--parent-pid</c>), the watchdog also ends the runner when that process no longer lives; this covers a
/// parent that died before the runner's first look (the runner's parent is then already init) and a wrapper
/// process between the two.
/// </summary>
/// <remarks>
/// <c>prctl(PR_SET_PDEATHSIG)</c> is not used on purpose: it fires when the <em>thread</em> that forked the child
/// exits, and .NET starts children from thread-pool threads that come and go. The exit is <c>_exit(137)</c>:
/// immediate, with no managed shutdown and no native static destructors, which could block on locks held by
/// libtorch threads. Unix only; on Windows no watchdog runs.
/// </remarks>
internal static class ParentWatchdog
{
    /// <summary>How often the parent is checked.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Exit status when the parent has gone (128 + SIGKILL, as if the parent had killed the runner).</summary>
    public const int OrphanExitCode = 137;

    /// <summary>
    /// Starts the watchdog thread (once per process: the runner runs one job); returns false where the platform has
    /// none (Windows, or no libc to ask). Exits at once when the parent has already gone.
    /// </summary>
    /// <param name="declaredParent">The process id the parent gave for itself, or null.</param>
    public static bool Start(int? declaredParent)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD()) return false;
        int initial;
        try
        {
            initial = getppid();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
        // 0: the parent lives outside this process's PID namespace (a sandboxing wrapper); its id means nothing
        // here, but getppid() still changes (to the namespace's init) when it dies.
        if (initial == 0) declaredParent = null;
        if (IsOrphaned(initial, declaredParent)) ExitNow();
        var thread = new Thread(() => Watch(initial, declaredParent))
        {
            IsBackground = true,
            Name = "runner parent watchdog",
            Priority = ThreadPriority.AboveNormal,
        };
        thread.Start();
        return true;
    }

    private static void Watch(int initial, int? declaredParent)
    {
        while (true)
        {
            Thread.Sleep(PollInterval);
            if (IsOrphaned(initial, declaredParent)) ExitNow();
        }
    }

    private static bool IsOrphaned(int initial, int? declaredParent) =>
        getppid() != initial || (declaredParent is { } parent && !IsAlive(parent));

    private static bool IsAlive(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            // /proc/<pid>/stat: "pid (comm) S ..."; a zombie (Z) or dead (X) process no longer runs.
            try
            {
                var stat = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/stat");
                var close = stat.LastIndexOf(')');
                return close < 0 || close + 2 >= stat.Length || stat[close + 2] is not ('Z' or 'X');
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return true;
            }
        }
        if (kill(pid, 0) == 0) return true;
        const int EPERM = 1;
        return Marshal.GetLastPInvokeError() == EPERM;
    }

    private static void ExitNow()
    {
        _exit(OrphanExitCode);
        Environment.Exit(OrphanExitCode);
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code in this project; these signatures are blittable.
    [DllImport("libc", ExactSpelling = true)]
    private static extern int getppid();

    [DllImport("libc", ExactSpelling = true, SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [DllImport("libc", ExactSpelling = true)]
    private static extern void _exit(int status);
#pragma warning restore SYSLIB1054
}
