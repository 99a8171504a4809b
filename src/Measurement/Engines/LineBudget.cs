using System.Globalization;
using System.Runtime.InteropServices;

namespace LambdaService.Measurement.Engines;

/// <summary>
/// How many lines an engine puts through the network at once: a memory budget (the default, 1024 MiB: README, "Performance and
/// memory") from which <see cref="PassPlanner"/> derives the lines per pass, or a fixed number of lines (tests, benchmarks).
/// </summary>
/// <param name="MemoryBudgetMb">Memory one pass may take, in MiB (&gt; 0).</param>
/// <param name="FixedLinesPerPass">When set, this many lines per pass and no probe.</param>
public sealed record LineBudget(double MemoryBudgetMb, int? FixedLinesPerPass = null)
{
    /// <summary>The default budget of a measurement, in MiB.</summary>
    public const double DefaultMemoryBudgetMb = 1024;

    /// <summary>The default: <see cref="DefaultMemoryBudgetMb"/>.</summary>
    public static LineBudget Default { get; } = new(DefaultMemoryBudgetMb);

    /// <summary>Lines per pass from a budget of <paramref name="megabytes"/> MiB.</summary>
    public static LineBudget Memory(double megabytes) => megabytes > 0 && double.IsFinite(megabytes)
        ? new(megabytes)
        : throw new ArgumentOutOfRangeException(nameof(megabytes), megabytes, "A memory budget is a positive number of MiB.");

    /// <summary>Exactly <paramref name="lines"/> lines per pass (Taylor mode rounds down to whole points where it can).</summary>
    public static LineBudget Fixed(int lines) => lines >= 1
        ? new(DefaultMemoryBudgetMb, lines)
        : throw new ArgumentOutOfRangeException(nameof(lines), lines, "At least one line per pass.");
}

/// <summary>
/// The passes an engine ran: <see cref="LinesPerPass"/> lines each (the last may hold fewer), chosen from
/// <see cref="MemoryBudgetMb"/> and the probe's <see cref="BytesPerLine"/> (null for a fixed size, or where the probe cannot
/// measure); <see cref="Probe"/> says how the estimate was obtained. <see cref="Passes"/> counts every pass, the probe passes
/// included: the first <see cref="ProbedLines"/> lines went through the probe passes (whose values are kept), the rest through
/// passes of <see cref="LinesPerPass"/> lines.
/// </summary>
public sealed record PassPlan(int LinesPerPass, int Passes, double? MemoryBudgetMb, long? BytesPerLine, string Probe, int ProbedLines = 0);

/// <summary>
/// Chooses the lines per pass from a memory budget. Two probe passes run on the request's first lines — <c>c₁ = g</c> lines,
/// then the next <c>c₂ = 2g</c> (g: the granularity, a point's D lines for Taylor mode, else one line) — each measured as the
/// growth of the process's peak resident memory (<see cref="PeakGrowth"/>): <c>m₁</c>, <c>m₂</c> bytes. Their values are kept:
/// the probes are the request's first passes, not extra work. Then
/// <code>
/// bytesPerLine = max((m₂ − m₁) / (c₂ − c₁), m₂ / c₂)      (the marginal cost, or the average where it is larger)
/// fits         = ⌊budget / bytesPerLine⌋
/// target       = max(⌊passTarget / bytesPerLine⌋, 8·T)   (only where a pass target is given: passes on the CPU; T libtorch threads)
/// linesPerPass = max(g, min(fits, target) rounded down to a multiple of g), at most the lines left
/// </code>
/// and a budget below <c>g · bytesPerLine</c> is refused (<see cref="MeasurementInputException"/> on <c>memoryBudgetMb</c>).
/// The average <c>m₂ / c₂</c> includes fixed costs of a pass (the network's first use of a thread pool, say), so the estimate errs
/// towards smaller passes; allocations of other threads during a probe can only inflate a reading, which errs the same way.
/// <para>
/// The pass target (<see cref="CpuPassTargetMb"/>): on the CPU a pass larger than the caches' reach is not faster per line but
/// slower, as every coefficient tensor then streams through main memory; too small a pass leaves threads idle. Measured on this
/// project's VM (README, "Memory per pass"), Taylor float64 with two threads: 16–32 lines a pass ran ResNet-18, a ViT and ConvNeXt at
/// 67–88 lines/s, 8 lines at 43–64 and 128 lines at 34–78. So passes take at most <see cref="CpuPassTargetMb"/> and at least
/// <see cref="MinimumLinesPerThread"/> lines per thread while the budget allows, whatever larger budget is given; the budget stays
/// the bound. On a GPU no target applies: the budget alone decides.
/// </para>
/// Where the peak cannot be read (not Linux: no <c>/proc/self/clear_refs</c>) passes hold <see cref="UnmeasuredLinesPerPass"/> lines.
/// </summary>
public static partial class PassPlanner
{
    /// <summary>Lines per pass where memory cannot be measured (the engines' former constant).</summary>
    public const int UnmeasuredLinesPerPass = 1024;

    /// <summary>The most memory a pass on the CPU takes when the budget allows more (MiB): see the remarks on the pass target.</summary>
    public const double CpuPassTargetMb = 256;

    /// <summary>
    /// The fewest lines per libtorch thread a pass on the CPU holds when the budget allows them: with fewer, each operation's work is
    /// too small to share among the threads and the fixed costs per pass dominate (see the remarks on the pass target).
    /// </summary>
    public const int MinimumLinesPerThread = 8;

    /// <summary>The fewest lines a pass on the CPU holds with <paramref name="threads"/> libtorch threads, when the budget allows them.</summary>
    public static int MinimumTargetLines(int threads) => MinimumLinesPerThread * Math.Max(1, threads);

    /// <summary>What <see cref="PassPlan.Probe"/> says for the measured estimate.</summary>
    public const string PeakResidentProbe = "peak resident memory growth of probe passes (VmHWM after /proc/self/clear_refs)";

    /// <summary>
    /// Plans the passes over <paramref name="lines"/> lines (<paramref name="granularity"/> lines per unit that must stay together);
    /// <paramref name="probe"/>(start, count) runs one pass over lines start..start+count−1, whose values the caller keeps
    /// (<see cref="PassPlan.ProbedLines"/> says how many lines, from line 0, the probes covered); a measured plan holds at most
    /// <paramref name="maxLinesPerPass"/> lines (an engine's array limits) and, with <paramref name="passTargetMb"/> (the CPU:
    /// <see cref="CpuPassTargetMb"/>), passes no larger than that target (and no smaller than <see cref="MinimumTargetLines"/> of the
    /// thread count) where the budget is larger.
    /// </summary>
    public static PassPlan Plan(LineBudget budget, int lines, int granularity, string engine, Action<int, int> probe, int maxLinesPerPass = int.MaxValue,
        double? passTargetMb = null)
    {
        ArgumentNullException.ThrowIfNull(budget);
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentOutOfRangeException.ThrowIfLessThan(granularity, 1);
        if (budget.FixedLinesPerPass is { } fixedLines)
        {
            var size = fixedLines >= granularity ? fixedLines / granularity * granularity : fixedLines;
            size = Math.Max(1, Math.Min(size, lines));
            return new PassPlan(size, Passes(lines, size), null, null, "fixed");
        }
        // The probes run on one libtorch thread: with several, a pass's allocations spread over glibc's per-thread arenas, whose freed
        // pages the next probe reuses without raising the peak, and readings were seen to halve (ChunkedPassesTests failed about one run
        // in two with two threads, never with one). The bytes a line needs do not depend on the thread count; the passes use every thread.
        var threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(1);
        try
        {
            return PlanMeasured(budget, lines, granularity, engine, probe, maxLinesPerPass, passTargetMb, threads);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);
        }
    }

    /// <summary>
    /// Plans the passes (<see cref="Plan"/>) and runs them all: <paramref name="runLines"/>(start, count) runs lines
    /// start..start+count−1 and keeps their values; the probe passes are the first calls, the lines after them follow in passes of
    /// the planned size. Cancellation is checked before every pass.
    /// </summary>
    public static PassPlan Run(LineBudget budget, int lines, int granularity, string engine, Action<int, int> runLines, CancellationToken cancellationToken,
        int maxLinesPerPass = int.MaxValue, double? passTargetMb = null)
    {
        ArgumentNullException.ThrowIfNull(runLines);
        void Checked(int start, int count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            runLines(start, count);
        }
        var plan = Plan(budget, lines, granularity, engine, Checked, maxLinesPerPass, passTargetMb);
        for (var start = plan.ProbedLines; start < lines; start += plan.LinesPerPass) Checked(start, Math.Min(plan.LinesPerPass, lines - start));
        return plan;
    }

    private static PassPlan PlanMeasured(LineBudget budget, int lines, int granularity, string engine, Action<int, int> probe, int maxLinesPerPass,
        double? passTargetMb, int threads)
    {
        if (lines == 0) return new PassPlan(1, 0, budget.MemoryBudgetMb, null, "none: no lines");
        var unit = Math.Min(granularity, lines);
        var first = PeakGrowth(() => probe(0, unit));
        var probed = unit;
        var probes = 1;
        if (first is null)
        {
            var size = Math.Max(1, Math.Min(UnmeasuredLinesPerPass, lines));
            return new PassPlan(size, probes + Passes(lines - probed, size), budget.MemoryBudgetMb, null,
                "unmeasured: this system has no /proc/self/clear_refs", probed);
        }
        long bytesPerLine;
        if (lines >= 3 * unit)
        {
            var second = PeakGrowth(() => probe(unit, 2 * unit)) ?? 0;
            probed += 2 * unit;
            probes++;
            bytesPerLine = Math.Max((second - first.Value) / unit, second / (2 * unit));
        }
        else
        {
            bytesPerLine = first.Value / unit;
        }
        bytesPerLine = Math.Max(bytesPerLine, 1);
        var budgetBytes = budget.MemoryBudgetMb * 1024 * 1024;
        var fits = (long)Math.Min(int.MaxValue, Math.Floor(budgetBytes / bytesPerLine));
        if (fits < unit)
        {
            var perLineMb = bytesPerLine / (1024.0 * 1024.0);
            var what = unit > 1 ? $"; a pass holds at least one point's {unit} lines, about {Mb(perLineMb * unit)} MiB" : "";
            throw new MeasurementInputException("memoryBudgetMb",
                $"memoryBudgetMb {Mb(budget.MemoryBudgetMb)} is too small: the {engine} engine needs about {Mb(perLineMb)} MiB per line on this model{what}; "
                + $"raise memoryBudgetMb to at least {Mb(Math.Ceiling(perLineMb * unit))} (on the command line: --memory-budget-mb).");
        }
        if (passTargetMb is { } target)
        {
            var targetLines = (long)Math.Min(int.MaxValue, Math.Floor(target * 1024 * 1024 / bytesPerLine));
            fits = Math.Min(fits, Math.Max(targetLines, MinimumTargetLines(threads)));
        }
        var perPass = (int)Math.Min(Math.Min(lines, maxLinesPerPass), Math.Max(fits / unit * unit, unit));
        perPass = Math.Max(perPass, 1);
        return new PassPlan(perPass, probes + Passes(lines - probed, perPass), budget.MemoryBudgetMb, bytesPerLine, PeakResidentProbe, probed);
    }

    private static int Passes(int lines, int perPass) => lines == 0 ? 0 : (lines + perPass - 1) / perPass;

    private static string Mb(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>
    /// Bytes by which the process's peak resident set grows while <paramref name="run"/> runs, or null where it cannot be read.
    /// Freed memory is first returned to the system (the .NET heap by an aggressive collection, which decommits free regions; the native
    /// heap by glibc <c>malloc_trim</c>, skipped elsewhere) so that the pass cannot hide in
    /// pages a previous pass left resident; then writing <c>5</c> to <c>/proc/self/clear_refs</c> resets VmHWM to the current
    /// VmRSS (Linux ≥ 4.0, proc(5)), and the growth is VmHWM after the run minus VmRSS before it. It covers every allocation of the
    /// process, libtorch's and ONNX Runtime's included, so concurrent work in the same process inflates it; memory an allocator already
    /// holds (ONNX Runtime's arena, grown by earlier forward passes) is not counted, as a pass reuses it rather than adding to it.
    /// </summary>
    public static long? PeakGrowth(Action run)
    {
        ArgumentNullException.ThrowIfNull(run);
        try
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            TrimHeap();
            File.WriteAllText("/proc/self/clear_refs", "5");
            var before = StatusKb("VmRSS");
            run();
            var peak = StatusKb("VmHWM");
            if (before is null || peak is null)
            {
                return null;
            }
            return Math.Max(0, peak.Value - before.Value) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long? StatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                var parts = line[(field.Length + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0], CultureInfo.InvariantCulture);
            }
        }
        return null;
    }

    private static void TrimHeap()
    {
        try
        {
            _ = MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: the measure is then only less tight (pages kept by the allocator can hide part of a pass).
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
