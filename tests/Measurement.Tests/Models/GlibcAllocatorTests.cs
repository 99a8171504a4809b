using System.Runtime.InteropServices;
using LambdaService.Measurement.Models;

namespace LambdaService.Measurement.Tests.Models;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocatorCollection
{
    /// <summary>Tests that read process-wide allocator counters run alone.</summary>
    public const string Name = "glibc allocator";
}

[Collection(AllocatorCollection.Name)]
public class GlibcAllocatorTests
{
    /// <summary>glibc's <c>struct mallinfo2</c> (malloc.h): ten size_t counters.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 Mallinfo2();

    private static long MappedBytes() => (long)Mallinfo2().HBlkHd;   // bytes in blocks that glibc mmapped one by one

    [Fact]
    public void After_configuration_blocks_below_and_above_the_32_MiB_threshold_come_from_the_heap_on_any_thread()
    {
        // glibc's default (a 128 KiB threshold, raised only after large blocks are freed) maps a 4 MiB block on its own, and
        // with only M_MMAP_THRESHOLD = 32 MiB a 48 MiB block (a convolution's unfolded batch is 40–81 MiB) was still mapped;
        // with M_MMAP_MAX = 0 neither is, so the counter of individually mapped bytes does not grow by them. 48 MiB fits a
        // thread's own heap (64 MiB), so this holds on the test's thread and on a fresh one alike.
        Assert.True(OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("LAMBDASERVICE_MALLOC_TUNING") != "0",
            "This check is for Linux with the tuning on.");
        Assert.True(GlibcAllocator.Configure(), "glibc did not accept the settings.");
        Assert.True(GlibcAllocator.Configured);
        AssertFromTheHeap(4);
        AssertFromTheHeap(48);
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                AssertFromTheHeap(48);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        Assert.Null(failure);
    }

    private static void AssertFromTheHeap(int mebibytes)
    {
        var bytes = mebibytes * 1024 * 1024;
        var before = MappedBytes();
        var block = Marshal.AllocHGlobal(bytes);   // Marshal.AllocHGlobal is malloc on Unix
        var with = MappedBytes();
        Marshal.FreeHGlobal(block);
        Assert.True(with - before < bytes, $"a {mebibytes} MiB block was mapped on its own ({before} → {with} mapped bytes)");
    }
}
