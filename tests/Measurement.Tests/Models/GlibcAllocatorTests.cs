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
    public void After_configuration_blocks_below_32_MiB_come_from_the_heap_and_larger_ones_are_still_mapped()
    {
        // glibc's default (a 128 KiB threshold, raised only after large blocks are freed) maps a 4 MiB block on its own;
        // configured, it comes from the heap, so the counter of individually mapped bytes does not grow by it.
        Assert.True(OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("LAMBDASERVICE_MALLOC_TUNING") != "0",
            "This check is for Linux with the tuning on.");
        Assert.True(GlibcAllocator.Configure(), "glibc did not accept the settings.");
        Assert.True(GlibcAllocator.Configured);
        const int small = 4 * 1024 * 1024, large = 64 * 1024 * 1024;
        // Marshal.AllocHGlobal is malloc on Unix.
        var before = MappedBytes();
        var block = Marshal.AllocHGlobal(small);
        var withSmall = MappedBytes();
        Marshal.FreeHGlobal(block);
        Assert.True(withSmall - before < small, $"a 4 MiB block was mapped on its own ({before} → {withSmall} mapped bytes)");

        before = MappedBytes();
        block = Marshal.AllocHGlobal(large);
        var withLarge = MappedBytes();
        Marshal.FreeHGlobal(block);
        Assert.True(withLarge - before >= large, $"a 64 MiB block should be above the 32 MiB threshold ({before} → {withLarge} mapped bytes)");
    }
}
