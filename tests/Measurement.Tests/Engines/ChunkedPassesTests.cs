using System.Runtime.InteropServices;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Numerics;
using LambdaService.Measurement.Taylor;
using LambdaService.Measurement.Tests.Models;
using LambdaService.Measurement.Tests.Taylor;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Engines;

/// <summary>
/// A tanh CNN of known activation size as a module and a jet module: conv 1→16 (3×3) on 1×48×48, tanh, conv 16→16 (3×3), tanh,
/// flatten, linear to 3 classes. Per sample: 16·46·46 = 33 856 values after each of conv1 and its tanh, 16·44·44 = 30 976 after
/// each of conv2 and its tanh: <see cref="Activations"/> = 129 664 values (the 3 logits left out).
/// </summary>
internal sealed class WideTanhCnn : nn.Module<Tensor, Tensor>, IJetModule
{
    public const long Activations = 2 * 16 * 46 * 46 + 2 * 16 * 44 * 44;

    private readonly Parameter c1W, c1B, c2W, c2B, fcW, fcB;

    public WideTanhCnn(int seed) : base(nameof(WideTanhCnn))
    {
        var rng = new Random(seed);
        Parameter P(double scale, params long[] shape) => new(tensor(Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b))
            .Select(_ => (rng.NextDouble() - 0.5) * scale).ToArray(), shape), requires_grad: false);
        c1W = P(1, 16, 1, 3, 3); c1B = P(1, 16); c2W = P(0.3, 16, 16, 3, 3); c2B = P(1, 16);
        fcW = P(0.01, 3, 16 * 44 * 44); fcB = P(1, 3);
        RegisterComponents();
    }

    public IReadOnlyList<string> PiecewiseLinearOperators => [];

    public override Tensor forward(Tensor x) =>
        nn.functional.linear(nn.functional.conv2d(nn.functional.conv2d(x, c1W, c1B).tanh(), c2W, c2B).tanh().flatten(1), fcW, fcB);

    public LambdaService.Measurement.Taylor.Jet Forward(LambdaService.Measurement.Taylor.Jet x) =>
        JetOps.Linear(JetOps.Flatten(JetOps.Tanh(JetOps.Conv2d(JetOps.Tanh(JetOps.Conv2d(x, c1W, c1B)), c2W, c2B)), 1), fcW, fcB);
}

/// <summary>
/// Tests that read the process's peak resident memory run alone: allocations of tests running beside them land in the same
/// process's peak (in a parallel run the probe of the CNN below read 29.5 MB a line once and 13.6 MB the next time).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryProbeCollection
{
    public const string Name = "Memory probes";
}

/// <summary>
/// Memory-bounded passes (<see cref="PassPlanner"/>, README "Memory per pass"): how the lines are split changes no number, and
/// the planned passes follow the budget.
/// </summary>
[Collection(MemoryProbeCollection.Name)]
public class ChunkedPassesTests
{
    private const int Points = 6;
    private const int Directions = 3;
    private const int MaxOrder = 4;
    private const int Lines = Points * Directions;

    /// <summary>A network as the engines see it: a factory of an engine with a given budget, and what the test must dispose.</summary>
    private sealed class Setup(Func<LineBudget, IDerivativeEngine> engine, IModelRunner runner, int[] shape, params IDisposable[] owned) : IDisposable
    {
        public Func<LineBudget, IDerivativeEngine> Engine { get; } = engine;

        public IModelRunner Runner { get; } = runner;

        public int[] Shape { get; } = shape;

        public int Size => Shape.Aggregate(1, (a, b) => a * b);

        public void Dispose()
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    private static Setup Make(string engine, string net)
    {
        if (net == "mlp")
        {
            var mlp = new ReferenceMlp([2, 12, 12, 3], seed: 7, weightScale: 1.5);
            if (engine == "finite-difference")
            {
                var onnx = OnnxRunner.Create(TestData.Onnx(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases)), [2]);
                return new Setup(b => new FiniteDifferenceEngine(onnx, new FiniteDifferenceSettings(Scale: 0.5), b), onnx, [2], onnx);
            }
            var module = new JetTanhMlp(mlp.Weights, mlp.Biases);
            var runner = TorchModelRunner.FromModule(module, [2]);
            return engine == "taylor"
                ? new Setup(b => new TaylorEngine(module, [2], budget: b), runner, [2], runner, module)
                : new Setup(b => new AutogradEngine(runner, b), runner, [2], runner, module);
        }
        var cnn = OnnxConvolutionTests.TinyCnn(3);
        if (engine == "finite-difference")
        {
            var onnx = OnnxRunner.Create(TestData.Onnx(cnn), [1, 6, 6]);
            return new Setup(b => new FiniteDifferenceEngine(onnx, new FiniteDifferenceSettings(Scale: 0.3), b), onnx, [1, 6, 6], onnx);
        }
        var jet = new JetTinyCnn(cnn);
        var torchRunner = TorchModelRunner.FromModule(jet, [1, 6, 6]);
        return engine == "taylor"
            ? new Setup(b => new TaylorEngine(jet, [1, 6, 6], budget: b), torchRunner, [1, 6, 6], torchRunner, jet)
            : new Setup(b => new AutogradEngine(torchRunner, b), torchRunner, [1, 6, 6], torchRunner, jet);
    }

    public static TheoryData<string, string> Engines => new()
    {
        { "taylor", "mlp" }, { "taylor", "cnn" }, { "autograd", "mlp" }, { "autograd", "cnn" }, { "finite-difference", "mlp" }, { "finite-difference", "cnn" },
    };

    /// <summary>v_n = mean over lines of |Dⁿ| for n = 1..K, and λ the least-squares slope of log v_n against n (README: definition).</summary>
    private static (double[] Vn, double Lambda) Fit(DerivativeResult r)
    {
        var vn = new double[MaxOrder];
        for (var n = 1; n <= MaxOrder; n++)
        {
            double s = 0;
            for (var l = 0; l < Lines; l++) s += Math.Abs(r.Values[l * (MaxOrder + 1) + n]);
            vn[n - 1] = s / Lines;
        }
        // Slope of y on x by the normal equations: Σ(x−x̄)(y−ȳ) / Σ(x−x̄)².
        var ys = vn.Select(a => Math.Log(a)).ToArray();
        var xMean = (MaxOrder + 1) / 2.0;
        var yMean = ys.Average();
        double sxy = 0, sxx = 0;
        for (var i = 0; i < MaxOrder; i++)
        {
            sxy += (i + 1 - xMean) * (ys[i] - yMean);
            sxx += (i + 1 - xMean) * (i + 1 - xMean);
        }
        return (vn, sxy / sxx);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Passes_of_one_a_few_or_all_lines_give_the_same_derivatives_every_vn_and_lambda_to_1e_12(string engineName, string net)
    {
        using var setup = Make(engineName, net);
        var x = TestData.Uniform(Points * setup.Size, seed: 21, low: net == "mlp" ? -1.5 : 0, high: 1.5);
        var v = CurvatureRate.Directions(Points, Directions, setup.Size, seed: 22);
        var labels = Enumerable.Range(0, Points).Select(i => i % 3).ToArray();
        var request = new DerivativeRequest(x, Points, v, Directions, TargetKind.Loss, labels, MaxOrder);

        var single = setup.Engine(LineBudget.Fixed(Lines)).Compute(request, null, default);
        Assert.Equal(new PassPlan(Lines, 1, null, null, "fixed"), single.Plan);
        var (vn, lambda) = Fit(single);
        Assert.True(double.IsFinite(lambda) && vn.All(a => a > 0), $"{engineName}/{net}: the reference must have every order non-zero");

        // Taylor mode rounds a fixed size of at least D lines down to whole points (5 → 3); the others take it as it is.
        var granularity = engineName == "taylor" ? Directions : 1;
        foreach (var chunk in new[] { 1, 2, 5, Lines })
        {
            var effective = chunk >= granularity ? chunk / granularity * granularity : chunk;
            var passes = (Lines + effective - 1) / effective;
            var reports = new List<double>();
            var chunked = setup.Engine(LineBudget.Fixed(chunk)).Compute(request, new SyncProgress(reports.Add), default);
            Assert.Equal(passes, reports.Count);
            Assert.Equal(new PassPlan(effective, passes, null, null, "fixed"), chunked.Plan);
            for (var n = 0; n <= MaxOrder; n++)
            {
                // Tolerance: 1e-12 of the order's largest magnitude over lines (float64 rounding of differently shaped batches).
                var scale = Enumerable.Range(0, Lines).Max(l => Math.Abs(single.Values[l * (MaxOrder + 1) + n]));
                for (var l = 0; l < Lines; l++)
                {
                    var a = chunked.Values[l * (MaxOrder + 1) + n];
                    var b = single.Values[l * (MaxOrder + 1) + n];
                    Assert.True(Math.Abs(a - b) <= 1e-12 * scale, $"{engineName}/{net} chunk {chunk} line {l} order {n}: {a:R} vs single pass {b:R}");
                }
            }
            var (vnChunked, lambdaChunked) = Fit(chunked);
            for (var n = 0; n < MaxOrder; n++) Assert.True(Math.Abs(vnChunked[n] - vn[n]) <= 1e-12 * vn[n], $"chunk {chunk}: v_{n + 1} {vnChunked[n]:R} vs {vn[n]:R}");
            Assert.True(Math.Abs(lambdaChunked - lambda) <= 1e-12 * Math.Max(1, Math.Abs(lambda)), $"chunk {chunk}: λ {lambdaChunked:R} vs {lambda:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void A_measurement_in_one_line_passes_reports_the_same_lambda_and_vn_to_1e_12_as_one_pass_and_echoes_its_plan(string engineName, string net)
    {
        using var setup = Make(engineName, net);
        var x = TestData.Uniform(Points * setup.Size, seed: 23, low: net == "mlp" ? -1.5 : 0, high: 1.5);
        var data = TestData.Make(x, Points, setup.Shape, Enumerable.Range(0, Points).Select(i => i % 3).ToArray());
        var options = new MeasurementOptions { Directions = Directions, Seed = 4, BootstrapResamples = 0, AllowUnreliable = true };
        double? scale = engineName == "finite-difference" ? 0.5 : null;
        var one = CurvatureRate.Estimate(setup.Runner, setup.Engine(LineBudget.Fixed(Lines)), data, options, scale, null, default);
        var many = CurvatureRate.Estimate(setup.Runner, setup.Engine(LineBudget.Fixed(1)), data, options, scale, null, default);
        Assert.Equal(1, one.Config.Passes!.Passes);
        Assert.Equal(new PassPlan(1, Lines, null, null, "fixed"), many.Config.Passes);
        Assert.Equal(LineBudget.DefaultMemoryBudgetMb, many.Config.MemoryBudgetMb);
        Assert.True(Math.Abs(many.Lambda - one.Lambda) <= 1e-12 * Math.Max(1, Math.Abs(one.Lambda)), $"λ {many.Lambda:R} vs {one.Lambda:R}");
        for (var i = 0; i < one.Orders.Count; i++)
        {
            Assert.True(Math.Abs(many.Orders[i].Norm - one.Orders[i].Norm) <= 1e-12 * one.Orders[i].Norm, $"v_{one.Orders[i].N}: {many.Orders[i].Norm:R} vs {one.Orders[i].Norm:R}");
        }
    }

    /// <summary>
    /// A probe pass of known size: each line touches 8 MiB of pages of a fresh anonymous mapping (never pages a heap kept from
    /// earlier tests in this process: malloc could hand back resident pages that raise no peak; this test once read 3 KB for 8 MiB
    /// when run with the whole suite). Records which lines each probe was given.
    /// </summary>
    private sealed class KnownSizeProbe
    {
        public const long PerLine = 8L << 20;

        public List<(int Start, int Count)> Calls { get; } = [];

        public void Run(int start, int lines)
        {
            Calls.Add((start, lines));
            var bytes = lines * PerLine;
            var block = Mmap(0, (nuint)bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            Assert.NotEqual(-1, (long)block);
            try
            {
                for (long o = 0; o < bytes; o += 4096) Marshal.WriteByte(block, (int)o, 1);
            }
            finally
            {
                Assert.Equal(0, Munmap(block, (nuint)bytes));
            }
        }
    }

    [Fact]
    public void The_planner_measures_the_bytes_a_probe_touches_per_line_fits_the_passes_to_the_budget_and_counts_the_probed_lines_as_done()
    {
        var probe = new KnownSizeProbe();
        var plan = PassPlanner.Plan(LineBudget.Memory(100), 40, 2, "test", probe.Run);
        Assert.Equal(PassPlanner.PeakResidentProbe, plan.Probe);
        // Two probes on the first lines, one after the other (granularity 2: 2 lines, then the next 4): their values are the
        // request's first 6 lines, which the passes that follow do not run again.
        Assert.Equal([(0, 2), (2, 4)], probe.Calls);
        Assert.Equal(6, plan.ProbedLines);
        // Measured here: 8.4-8.6 MB against 8.39 MB touched. The peak also holds what other threads of the test host touched meanwhile
        // (16.8 MB once): nothing below 90%, at most three times the bytes touched.
        Assert.InRange(plan.BytesPerLine!.Value, KnownSizeProbe.PerLine * 9 / 10, KnownSizeProbe.PerLine * 3);
        // 100 MiB at 7.2-24 MiB per line: 4-13 lines, rounded down to pairs (granularity 2); no pass target (not given).
        Assert.InRange(plan.LinesPerPass, 4, 12);
        Assert.Equal(0, plan.LinesPerPass % 2);
        Assert.True(plan.LinesPerPass * plan.BytesPerLine <= 100L << 20);
        Assert.Equal(2 + (34 + plan.LinesPerPass - 1) / plan.LinesPerPass, plan.Passes);

        var refused = Assert.Throws<MeasurementInputException>(() => PassPlanner.Plan(LineBudget.Memory(10), 40, 2, "test", new KnownSizeProbe().Run));
        Assert.Equal("memoryBudgetMb", refused.Field);
        Assert.Contains("per line", refused.Message, StringComparison.Ordinal);
        Assert.Contains("raise memoryBudgetMb", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pass_target_keeps_passes_below_a_large_budget_but_never_below_eight_lines_a_thread_and_never_above_the_budget()
    {
        // 1000 MiB alone: 41-138 lines at 7.2-24 MiB a line, so all 40 lines (the 34 after the probes in one pass).
        var budgetOnly = PassPlanner.Plan(LineBudget.Memory(1000), 40, 2, "test", new KnownSizeProbe().Run);
        Assert.Equal(40, budgetOnly.LinesPerPass);
        Assert.Equal(3, budgetOnly.Passes);
        // The floor: 8 lines a libtorch thread (16 on this project's 2-core VM), at most the 40 lines.
        var floorLines = Math.Min(40, PassPlanner.MinimumTargetLines(TorchSharp.torch.get_num_threads()));
        // A 320 MiB target: 13-44 lines at 7.2-24 MiB a line, in pairs, at least the floor: 12-40 lines.
        var targeted = PassPlanner.Plan(LineBudget.Memory(1000), 40, 2, "test", new KnownSizeProbe().Run, passTargetMb: 320);
        Assert.InRange(targeted.LinesPerPass, Math.Min(12, floorLines), 40);
        Assert.True(targeted.LinesPerPass <= Math.Max(floorLines, 320.0 * (1 << 20) / targeted.BytesPerLine!.Value));
        // A 16 MiB target would give 1-2 lines: the floor applies (16 lines: 134-138 MiB, inside the 1000 MiB budget).
        var floor = PassPlanner.Plan(LineBudget.Memory(1000), 40, 2, "test", new KnownSizeProbe().Run, passTargetMb: 16);
        Assert.Equal(floorLines, floor.LinesPerPass);
        // The budget still bounds: 40 MiB allows 1-5 lines, so pairs of 2-4, whatever the target's floor.
        var bounded = PassPlanner.Plan(LineBudget.Memory(40), 40, 2, "test", new KnownSizeProbe().Run, passTargetMb: 16);
        Assert.InRange(bounded.LinesPerPass, 2, 4);
        Assert.True(bounded.LinesPerPass * bounded.BytesPerLine <= 40L << 20);
    }

    [Fact]
    public void Too_few_lines_for_two_probes_run_one_probe_and_the_rest_in_passes()
    {
        var probe = new KnownSizeProbe();
        var plan = PassPlanner.Plan(LineBudget.Memory(1000), 4, 2, "test", probe.Run);
        Assert.Equal([(0, 2)], probe.Calls);  // 4 lines: no room for a second probe of 4 after the first 2
        Assert.Equal(2, plan.ProbedLines);
        Assert.Equal(4, plan.LinesPerPass);   // all 4 lines would fit
        Assert.Equal(2, plan.Passes);         // the probe's 2 lines, then the other 2
    }

    [Theory]
    [InlineData("taylor")]
    [InlineData("autograd")]
    public void On_a_cnn_of_known_size_probes_and_target_sized_passes_give_the_values_of_small_passes_and_the_estimate_scales_with_the_activations(string engineName)
    {
        const int points = 8, directions = 2, lines = points * directions, size = 48 * 48;
        using var module = new WideTanhCnn(seed: 31);
        using var runner = TorchModelRunner.FromModule(module, [1, 48, 48]);
        IDerivativeEngine Engine(LineBudget b) => engineName == "taylor" ? new TaylorEngine(module, [1, 48, 48], budget: b) : new AutogradEngine(runner, b);
        var x = TestData.Uniform(points * size, seed: 32, low: 0, high: 1);
        var v = CurvatureRate.Directions(points, directions, size, seed: 33);
        var request = new DerivativeRequest(x, points, v, directions, TargetKind.Loss, Enumerable.Range(0, points).Select(i => i % 3).ToArray(), MaxOrder);

        // 16 lines: probes of one unit and the next two (taylor: whole points of D = 2 lines, 2 then 4; autograd: 1 then 2 lines),
        // then passes of the CPU pass target's size (256 MiB, at least 8 lines a thread) for the rest, whatever the 64 GiB budget allows.
        var large = Engine(LineBudget.Memory(64 * 1024)).Compute(request, null, default);
        var probed = engineName == "taylor" ? 6 : 3;
        Assert.Equal(probed, large.Plan!.ProbedLines);
        var floorLines = PassPlanner.MinimumTargetLines(TorchSharp.torch.get_num_threads());
        Assert.InRange(large.Plan.LinesPerPass, Math.Min(floorLines, lines) / 2 * 2, lines);
        Assert.True(large.Plan.LinesPerPass <= Math.Max(floorLines, PassPlanner.CpuPassTargetMb * (1 << 20) / large.Plan.BytesPerLine!.Value));
        Assert.Equal(2 + (lines - probed + large.Plan.LinesPerPass - 1) / large.Plan.LinesPerPass, large.Plan.Passes);
        var bytesPerLine = large.Plan.BytesPerLine!.Value;
        // The jets of orders 0..K in float64 hold (K+1)·8 bytes per activation value: 5·8·129 664 ≈ 5.2 MB per line. Taylor mode keeps the
        // temporaries of a pass until its end and the value coefficient once per point; nested autograd keeps a graph that grows with the
        // order. Measured here: Taylor 20.8 MB, autograd 19.5-26.6 MB per line, about 4-5 times the count, and readings up to 2x apart
        // in the whole suite (9 to 40 MB); the bounds are a factor 8 below and 16 above.
        var activationBytes = WideTanhCnn.Activations * (MaxOrder + 1) * 8;
        Assert.InRange(bytesPerLine, activationBytes / 8, activationBytes * 16);

        // Many passes of the same lines: a fixed size, since two probes of one network read up to about 2x apart either way in the
        // whole suite (21 then 9 MB, 20 then 40 MB a line), so a budget derived from the first reading gives no fixed pass count; how a
        // budget becomes a pass size is checked on a probe of known size above.
        var reports = new List<double>();
        var small = Engine(LineBudget.Fixed(3)).Compute(request, new SyncProgress(reports.Add), default);
        Assert.True(small.Plan!.Passes >= 6, $"{engineName}: {small.Plan}");
        Assert.Equal((lines + small.Plan.LinesPerPass - 1) / small.Plan.LinesPerPass, small.Plan.Passes);
        Assert.Equal(small.Plan.Passes, reports.Count);
        var scale = Enumerable.Range(0, lines).Max(l => Math.Abs(large.Values[l * (MaxOrder + 1) + MaxOrder]));
        for (var i = 0; i < large.Values.Length; i++) Assert.True(Math.Abs(small.Values[i] - large.Values[i]) <= 1e-12 * Math.Max(scale, Math.Abs(large.Values[i])));

        var tooSmall = Assert.Throws<MeasurementInputException>(() => Engine(LineBudget.Memory(0.001)).Compute(request, null, default));
        Assert.Equal("memoryBudgetMb", tooSmall.Field);
        Assert.Contains($"the {engineName} engine needs about", tooSmall.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_memory_budget_that_is_not_positive_is_refused_naming_memoryBudgetMb()
    {
        var e = Assert.Throws<MeasurementInputException>(() => new MeasurementOptions { MemoryBudgetMb = 0 }.Validate());
        Assert.Equal("memoryBudgetMb", e.Field);
        Assert.Throws<ArgumentOutOfRangeException>(() => LineBudget.Memory(-1));
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }

    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20;

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static extern int Munmap(nint address, nuint length);
}
