using System.Runtime.InteropServices;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Tunes glibc's malloc for a process that runs libtorch: tensors are allocated and freed by the hundred per pass, and
/// with glibc's defaults every block of ≥ 128 KiB (a jet of a few thousand lines already is one) is a fresh
/// <c>mmap</c> that is unmapped again on free, so each pass pays page faults on memory it had a moment ago, and freed
/// heap tops are returned to the system (trimmed) and faulted back in. On this project's 2-core VM that made Taylor-mode
/// timings of the same call vary up to tenfold, depending on what ran before (the first calls paid most).
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Configure"/> sets, through <c>mallopt</c>: <c>M_MMAP_THRESHOLD</c> = 32 MiB (glibc's maximum; blocks
/// below it come from the heap and are reused), <c>M_MMAP_MAX</c> = 0 (no block is mapped on its own, whatever its size)
/// and <c>M_TRIM_THRESHOLD</c> = 1 GiB (freed memory is kept for reuse instead of being returned at once). A process keeps
/// up to about its peak heap until it exits; the service runs native work in one sandbox process per job, so the memory
/// goes back when the job ends.
/// </para>
/// <para>
/// <c>M_MMAP_MAX</c> = 0 matters for convolutions: libtorch's CPU convolution (oneDNN is off, see
/// <see cref="OneDnnConvolutions"/>) unfolds its whole batch into one buffer, 40.5 MiB (128 images × 144 × 576
/// float32) for the default <c>Cnn</c>'s second layer at batch 128 and 81 MiB for a jet's value and tangent; above the 32 MiB threshold each such buffer was a fresh
/// mapping, and on this project's VM touching fresh pages costs about 1 ms per MiB. Measured 2026-12-07: the second
/// convolution's forward and backward at batch 256 took 1.1 ms an image with mapped buffers and 0.57 ms from the heap; one
/// CRR step of the paper's CNN went from 2.7× to 2.1× a plain step. The thread that started the process (where the
/// command-line verbs and the sandbox runner work) takes every block from the main heap; other threads have heaps of at
/// most 64 MiB each, and glibc still maps a larger block for them.
/// </para>
/// <para>
/// Only on Linux with glibc (musl has no <c>mallopt</c>; elsewhere nothing changes). <c>LAMBDASERVICE_MALLOC_TUNING=0</c>
/// keeps glibc's defaults (and the environment variables <c>MALLOC_MMAP_THRESHOLD_</c>, <c>MALLOC_MMAP_MAX_</c> and
/// <c>MALLOC_TRIM_THRESHOLD_</c>, when set, win: the tuning is then skipped too).
/// </para>
/// </remarks>
public static class GlibcAllocator
{
    /// <summary><c>M_TRIM_THRESHOLD</c> in glibc's malloc.h.</summary>
    private const int MTrimThreshold = -1;

    /// <summary><c>M_MMAP_THRESHOLD</c> in glibc's malloc.h.</summary>
    private const int MMmapThreshold = -3;

    /// <summary><c>M_MMAP_MAX</c> in glibc's malloc.h: how many blocks may be mapped on their own at once.</summary>
    private const int MMmapMax = -4;

    /// <summary>The mmap threshold set: 32 MiB, the largest glibc accepts on 64-bit systems.</summary>
    public const int MmapThresholdBytes = 32 * 1024 * 1024;

    /// <summary>The trim threshold set: 1 GiB.</summary>
    public const int TrimThresholdBytes = 1024 * 1024 * 1024;

    private static readonly Lazy<bool> State = new(Apply, LazyThreadSafetyMode.ExecutionAndPublication);

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    /// <summary>Applies the settings once per process; true when glibc accepted all three.</summary>
    public static bool Configure() => State.Value;

    /// <summary>Whether <see cref="Configure"/> ran and glibc accepted the settings.</summary>
    public static bool Configured => State.IsValueCreated && State.Value;

    private static bool Apply()
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariable("LAMBDASERVICE_MALLOC_TUNING") == "0"
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_MAX_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null)
        {
            return false;
        }
        try
        {
            return Mallopt(MMmapThreshold, MmapThresholdBytes) == 1 && Mallopt(MMmapMax, 0) == 1 && Mallopt(MTrimThreshold, TrimThresholdBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;                                   // not glibc (e.g. musl): keep its allocator as it is
        }
    }
}
