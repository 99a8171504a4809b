using System.Diagnostics;
using System.Globalization;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Training;
using LambdaService.Training.Datasets;
using LambdaService.Training.Export;
using LambdaService.Training.Models;
using static TorchSharp.torch;

namespace LambdaService.Api.Cli;

/// <summary>
/// <c>bench</c>: for the tanh MLP and the paper's CNN, the time of orders 1..K with the taylor, autograd and
/// finite-difference engines on the same lines, measured in one run, with their agreement (speed is never bought with
/// wrong numbers) and the cost in forward passes; then the training cost of each method relative to baseline.
/// </summary>
public static class BenchVerb
{
    /// <summary>One row: one model, one K.</summary>
    public sealed record BenchRow(string Model, int MaxOrder, double TaylorMs, double? AutogradMs, double FiniteDifferenceMs,
        double? AutogradOverTaylor, double FiniteDifferenceOverTaylor, double TaylorInForwardPasses, double? MaxTaylorAutogradDifference, double? MedianFiniteDifferenceError);

    /// <summary>Training cost of one method relative to baseline (and to SAM).</summary>
    public sealed record TrainingRow(string Setup, string Method, double Seconds, double RelativeToBaseline, double RelativeToSam, double TestError, double? Lambda);

    /// <summary>The whole benchmark.</summary>
    public sealed record BenchReport(IReadOnlyList<string> Models, IReadOnlyList<BenchRow> Rows, IReadOnlyList<TrainingRow> Training, IReadOnlyList<string> Notes);

    /// <summary>Untimed passes of each exact engine before the first timing (see EngineRows).</summary>
    private const int WarmUpPasses = 40;

    /// <summary>Autograd is skipped for a K once the previous K took longer than this (it grows ~3× per order).</summary>
    private const double AutogradBudgetMs = 30_000;

    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        if (args.Contains("--networks"))
        {
            // --networks alone: all four networks (the option's value is the list otherwise).
            var i = args.ToList().IndexOf("--networks");
            var all = i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal);
            return NetworksBench.Run(all ? [.. args.Take(i + 1), "all", .. args.Skip(i + 1)] : args, stdout, cancellationToken);
        }
        if (args.Any(t => t.StartsWith("--networks=", StringComparison.Ordinal))) return NetworksBench.Run(args, stdout, cancellationToken);
        var a = new CliArguments(args, ["orders", "repeats", "mlp-points", "cnn-points", "directions", "device", "hidden", "batch", "model"], ["json", "skip-training", "profile"]);
        var requested = a.Get("device") ?? "cpu";
        var device = ComputeDevice.Torch(requested);   // cuda without a device: exit code 2, "CUDA was requested but …"
        if (a.Has("profile"))
        {
            var hidden = a.Get("hidden") is { } widths
                ? widths.Split(',').Select(t => int.TryParse(t, CultureInfo.InvariantCulture, out var w) && w is >= 1 and <= 4096 ? w
                    : throw new LambdaService.Measurement.MeasurementInputException("hidden", $"--hidden lists layer widths 1..4096, e.g. 32,32; got '{t}'.")).ToArray()
                : null;
            var model = a.Get("model") ?? "mlp";
            if (model is not ("mlp" or "cnn")) throw new LambdaService.Measurement.MeasurementInputException("model", $"--model is mlp (the Two Moons MLP) or cnn (the paper's CNN); got '{model}'.");
            if (model == "cnn" && hidden is not null) throw new LambdaService.Measurement.MeasurementInputException("hidden", "--hidden sets the MLP's widths; the cnn profile has the paper's CNN.");
            CrrProfile.Print(model == "cnn"
                ? CrrProfile.RunCnn(batch: a.Int("batch", 1, 4096) ?? 128, device: device)
                : CrrProfile.Run(batch: a.Int("batch", 1, 4096) ?? 32, device: device, hidden: hidden), stdout);
            return 0;
        }
        var orders = (a.Get("orders") ?? "2,4,6,8").Split(',').Select(t => int.TryParse(t, CultureInfo.InvariantCulture, out var k) && k is >= 1 and <= MeasurementOptions.OrderLimit
            ? k : throw new LambdaService.Measurement.MeasurementInputException("orders", $"--orders lists orders 1..{MeasurementOptions.OrderLimit}, e.g. 2,4,6,8; got '{t}'.")).ToArray();
        var repeats = a.Int("repeats", 1, 100) ?? 3;
        var directions = a.Int("directions", 1, 64) ?? 4;
        var mlpPoints = a.Int("mlp-points", 1, 100_000) ?? 256;
        var cnnPoints = a.Int("cnn-points", 1, 10_000) ?? 16;
        var notes = new List<string>();
        var threads = TorchRuntime.EnsureConfigured();
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"libtorch on {threads} thread(s); glibc malloc {(GlibcAllocator.Configured
            ? $"keeps freed memory for reuse (mmap threshold {GlibcAllocator.MmapThresholdBytes >> 20} MiB, no block mapped on its own, trim threshold {GlibcAllocator.TrimThresholdBytes >> 20} MiB)"
            : "at its defaults")}."));
        var rows = new List<BenchRow>();
        notes.Add($"device: {ComputeDevice.Name(device)} (libtorch: engines and training); finite differences: ONNX Runtime with device {requested}.");
        rows.AddRange(EngineRows(Mlp(), "tanh MLP 2-64-64-2", mlpPoints, directions, orders, repeats, notes, requested, device, cancellationToken));
        rows.AddRange(EngineRows(Cnn(), "CNN 1x28x28 (conv 16, conv 32, maxpool, 128)", cnnPoints, directions, orders, repeats, notes, requested, device, cancellationToken));
        var trainingRepeats = Math.Min(repeats, 3);
        var training = a.Has("skip-training") ? [] : TrainingCosts(notes, cancellationToken, requested, trainingRepeats);
        if (training.Count > 0) notes.Add($"training times: the median of {trainingRepeats} run(s) per method, the methods taken in turns.");
        var report = new BenchReport([$"tanh MLP 2-64-64-2: {mlpPoints} points × {directions} directions", $"CNN: {cnnPoints} points × {directions} directions"], rows, training, notes);
        if (a.Has("json"))
        {
            stdout.WriteLine(CliJson.Serialize(report));
            return 0;
        }
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine($"median of {repeats} runs; {string.Join("; ", report.Models)}; engines in float64 on {ComputeDevice.Name(device)}");
        stdout.WriteLine("| model | orders | taylor (ms) | autograd (ms) | finite-diff. (ms) | autograd / taylor | FD / taylor | taylor in forward passes | max rel. diff. taylor–autograd | median FD error |");
        stdout.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            stdout.WriteLine(string.Format(c, "| {0} | 1..{1} | {2:F1} | {3} | {4:F1} | {5} | {6:F1} | {7:F1} | {8} | {9} |", r.Model, r.MaxOrder, r.TaylorMs,
                r.AutogradMs is { } am ? am.ToString("F1", c) : "skipped", r.FiniteDifferenceMs, r.AutogradOverTaylor is { } q ? q.ToString("F1", c) : "–",
                r.FiniteDifferenceOverTaylor, r.TaylorInForwardPasses, r.MaxTaylorAutogradDifference is { } d ? d.ToString("E1", c) : "–",
                r.MedianFiniteDifferenceError is { } e ? e.ToString("E1", c) : "n/a (piecewise linear)"));
        }
        if (training.Count > 0)
        {
            stdout.WriteLine();
            stdout.WriteLine("| setup | method | training time (s) | / baseline | / SAM | test error | λ |");
            stdout.WriteLine("|---|---|---|---|---|---|---|");
            foreach (var t in training)
            {
                stdout.WriteLine(string.Format(c, "| {0} | {1} | {2:F2} | {3:F2} | {4:F2} | {5:F3} | {6} |", t.Setup, t.Method, t.Seconds, t.RelativeToBaseline, t.RelativeToSam, t.TestError,
                    t.Lambda is { } l ? l.ToString("F3", c) : "n/a"));
            }
        }
        foreach (var note in notes) stdout.WriteLine("note: " + note);
        return 0;
    }

    private static (nn.Module<Tensor, Tensor> Module, int[] Shape, Func<double> Input) Mlp()
    {
        var module = TrainingRun.CreateNetwork(new ModelSpec { Hidden = [64, 64] }, [2], 2, seed: 7);
        var rng = new Random(11);
        return (module, [2], () => rng.NextDouble() * 2 - 1);
    }

    private static (nn.Module<Tensor, Tensor> Module, int[] Shape, Func<double> Input) Cnn()
    {
        var module = TrainingRun.CreateNetwork(new ModelSpec { Kind = "cnn", Activation = "relu" }, [1, 28, 28], 10, seed: 7);
        var rng = new Random(12);
        return (module, [1, 28, 28], () => rng.NextDouble());
    }

    /// <summary>Times the three engines for orders 1..K on the same lines of one network, K from <paramref name="orders"/>.</summary>
    private static List<BenchRow> EngineRows((nn.Module<Tensor, Tensor> Module, int[] Shape, Func<double> Input) net, string name, int points, int directions,
        int[] orders, int repeats, List<string> notes, string requested, Device device, CancellationToken ct)
    {
        var (module, shape, input) = net;
        using var owned = module;
        module.eval();
        var onnx = ModelFile.FromBytes("bench.onnx", ModelExport.OnnxBytes(module));
        using var onnxRunner = OnnxRunner.Create(onnx, shape, new OnnxRunnerOptions { Device = requested });
        using var torch = TorchModelRunner.FromModule(module, shape, device: device);   // float64 from here on
        var size = shape.Aggregate(1, (p, q) => p * q);
        var x = Enumerable.Range(0, points * size).Select(_ => input()).ToArray();
        var v = CurvatureRate.Directions(points, directions, size, seed: 5);
        var classes = torch.Signature.Classes;
        var labels = Enumerable.Range(0, points).Select(i => i % classes).ToArray();
        // Fixed pass sizes, as the rows were measured before passes came from a memory budget (README, Memory per pass): the exact
        // engines 1024 lines a pass, finite differences 64 lines a chunk; a budget's probe passes would land in the timings.
        var onePass = LineBudget.Fixed(PassPlanner.UnmeasuredLinesPerPass);
        var taylor = new TaylorEngine(torch.JetModule!, shape, budget: onePass, device: device);
        var piecewise = torch.JetModule!.PiecewiseLinearOperators.Count > 0;
        var autograd = new AutogradEngine(torch, onePass);
        var fd = new FiniteDifferenceEngine(onnxRunner, new FiniteDifferenceSettings(Scale: 0.5), LineBudget.Fixed(64));
        var lines = new double[points * directions * size];
        for (var i = 0; i < points * directions; i++) Array.Copy(x, (i / directions) * size, lines, i * size, size);
        torch.Forward(lines, points * directions);
        if (onnxRunner.Precision != "float64") notes.Add($"{name}: finite differences ran in {onnxRunner.Precision}.");
        var forwards = new List<double>();

        var rows = new List<BenchRow>();
        double? lastAutograd = null;
        // Warm-up before anything is timed: the first few dozen passes of a process run slower (measured on the MLP: the
        // first K timed took 2–3× its steady time in all its repeats, whichever K it was) while the JIT promotes the
        // per-operation code to optimised code (after 30 calls) and the heap grows to its working size.
        var warmTaylor = Request(x, points, v, directions, labels, orders.Max());
        var warmAutograd = Request(x, points, v, directions, labels, Math.Min(2, orders.Min()));
        for (var i = 0; i < WarmUpPasses; i++)
        {
            taylor.Compute(warmTaylor, null, ct);
            autograd.Compute(warmAutograd, null, ct);
        }
        foreach (var k in orders)
        {
            ct.ThrowIfCancellationRequested();
            var request = Request(x, points, v, directions, labels, k);
            DerivativeResult? rt = null, ra = null, rf = null;
            // One untimed run first: the first pass at a new size pays for the allocator's growth (measured: 5–10× the
            // steady time of the MLP's first K), which would otherwise land on whichever K is timed first.
            taylor.Compute(request, null, ct);
            var withAutograd = lastAutograd is null || lastAutograd.Value * 9 < AutogradBudgetMs;
            if (withAutograd && (lastAutograd is null || lastAutograd.Value < AutogradBudgetMs / 100)) autograd.Compute(request, null, ct);
            if (!withAutograd) notes.Add($"{name}: autograd skipped for K = {k} (the previous K took {lastAutograd:F0} ms; it grows about 3× per order).");
            // The forward pass, Taylor and autograd are timed in turns (one of each per round), so that this VM's drift over a run
            // (its speed moved by up to 2× within minutes) moves the three alike and their ratios stay comparable.
            var medians = InTurns(repeats,
                (() => torch.Forward(lines, points * directions), repeats),
                (() => rt = taylor.Compute(request, null, ct), repeats),
                (withAutograd ? () => ra = autograd.Compute(request, null, ct) : null, lastAutograd > AutogradBudgetMs / 10 ? 1 : repeats));
            var (forwardMs, tt) = (medians[0], medians[1]);
            double? ta = withAutograd ? medians[2] : null;
            if (ta is not null) lastAutograd = ta;
            forwards.Add(forwardMs);
            var tf = Median(repeats, () => rf = fd.Compute(request, null, ct));
            double? maxDiff = null;
            if (ra is not null)
            {
                maxDiff = 0;
                var floor = 1e-12 * MaxAbs(ra.Values);             // once per K, not once per value
                for (var i = 0; i < rt!.Values.Length; i++)
                {
                    var scale = Math.Max(Math.Abs(ra.Values[i]), 1e-300);
                    maxDiff = Math.Max(maxDiff.Value, Math.Abs(rt.Values[i] - ra.Values[i]) / Math.Max(scale, floor));
                }
            }
            // A piecewise-linear network's exact derivatives of order ≥ 2 come from the softmax head alone and are tiny, while
            // finite differences see the kinks: a relative error against them measures nothing.
            double? fdError = piecewise ? null : MedianRelativeError(rf!, rt!, points, directions, k);
            rows.Add(new BenchRow(name, k, tt, ta, tf, ta / tt, tf / tt, tt / forwardMs, maxDiff, fdError));
        }
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"{name}: one float64 forward pass of the {points * directions} lines took {forwards.Min():F2}–{forwards.Max():F2} ms (the median of each row's rounds)."));
        return rows;
    }

    /// <summary>Median over the lines of |estimate − exact| / |exact| at order <paramref name="k"/> (lines with an exact 0 left out; 0 when none remain).</summary>
    private static double MedianRelativeError(DerivativeResult estimate, DerivativeResult exact, int points, int directions, int k)
    {
        var errors = new List<double>();
        for (var p = 0; p < points; p++)
        {
            for (var d = 0; d < directions; d++)
            {
                var e = exact[p, d, k];
                if (e != 0) errors.Add(Math.Abs(estimate[p, d, k] - e) / Math.Abs(e));
            }
        }
        errors.Sort();
        return errors.Count > 0 ? errors[errors.Count / 2] : 0;
    }

    private static double MaxAbs(double[] values) => values.Length == 0 ? 0 : values.Max(Math.Abs);

    /// <summary>The same run with each method, timed in this process one after the other: Two Moons (MLP), and MNIST (CNN) when its cache exists.</summary>
    public static IReadOnlyList<TrainingRow> TrainingCosts(List<string> notes, CancellationToken cancellationToken, string device = "cpu", int repeats = 1)
    {
        var rows = new List<TrainingRow>();
        var moons = new TrainingRequest
        {
            Data = new DataSpec { Samples = 1000, LabelNoise = 0.3 },
            Model = new ModelSpec { Hidden = [32, 32] },
            Epochs = 30,
            LearningRate = 0.01,
            Seed = 1,
            Device = device,
        };
        rows.AddRange(Costs("Two Moons, 700 train, 2-32-32-2 tanh MLP, 30 epochs, batch 32", moons, null, repeats, cancellationToken));
        if (Mnist.IsAvailable())
        {
            var data = Mnist.Load(new MnistOptions { TrainSize = 1000, TestSize = 500 }).ToTrainingData();
            var cnn = new TrainingRequest
            {
                Data = new DataSpec { Kind = "mnist" },
                Model = new ModelSpec { Kind = "cnn", Activation = "relu" },
                Epochs = 1,
                BatchSize = 128,
                Seed = 1,
                Measure = new LambdaSettings { Points = "all", MaxPoints = 32, Directions = 2, BootstrapResamples = 0 },
                Device = device,
            };
            rows.AddRange(Costs("MNIST, 1000 train digits, the paper's CNN, 1 epoch, batch 128", cnn, data, repeats, cancellationToken));
        }
        else
        {
            notes.Add("MNIST is unavailable here: the CNN training costs were not measured.");
        }
        return rows;
    }

    /// <summary>Each method's training time: the median of <paramref name="repeats"/> runs, taken in turns (every method once, then again).</summary>
    private static IEnumerable<TrainingRow> Costs(string setup, TrainingRequest basis, TrainingData? data, int repeats, CancellationToken ct)
    {
        var crr = basis.Crr with { Scale = 0.003 };
        // {auto} becomes the engine crr.engine auto used, as the run's objective names it (the fused kernel on the MLP on the CPU,
        // Taylor mode through libtorch operations on the CNN and on a GPU).
        (string Name, TrainingRequest Request)[] methods =
        [
            ("baseline", basis),
            ("sam", basis with { Method = "sam" }),
            ("crr 2-3 ({auto})", basis with { Method = "crr", Crr = crr }),
            ("crr 1-4 ({auto})", basis with { Method = "crr", Crr = crr with { Orders = new OrderSpan(1, 4) } }),
            ("crr 1-4 ({auto}, every 4th step)", basis with { Method = "crr", Crr = crr with { Orders = new OrderSpan(1, 4), Every = 4 } }),
            .. basis.Model.Kind == "mlp"
                ? new[] { ("crr 1-4 (taylor, libtorch ops)", basis with { Method = "crr", Crr = crr with { Orders = new OrderSpan(1, 4), Engine = "taylor" } }) }
                : [],
            ("crr 1-4 (autograd)", basis with { Method = "crr", Crr = crr with { Orders = new OrderSpan(1, 4), Engine = "autograd" } }),
        ];
        TrainingResult Train(TrainingRequest request) => data is null ? TrainingRun.Run(request, null, ct) : TrainingRun.Run(request, data, null, ct);
        // One untimed epoch of every method first, so that the first method timed does not pay for the JIT and the heap.
        foreach (var m in methods) Train(m.Request with { Epochs = 1 });
        var runs = methods.Select(_ => new List<TrainingResult>()).ToArray();
        for (var rep = 0; rep < Math.Max(1, repeats); rep++)
        {
            for (var i = 0; i < methods.Length; i++) runs[i].Add(Train(methods[i].Request));
        }
        var seconds = runs.Select(r => r.Select(t => t.TrainingSeconds).Order().ElementAt(r.Count / 2)).ToArray();
        return methods.Select((m, i) => new TrainingRow(setup, m.Name.Replace("{auto}", runs[i][0].Config.CrrEngine ?? "auto", StringComparison.Ordinal), seconds[i], seconds[i] / seconds[0], seconds[i] / seconds[1],
            runs[i][0].TestError, runs[i][0].Lambda?.Lambda));
    }

    private static DerivativeRequest Request(double[] x, int points, double[] v, int directions, int[] labels, int k) =>
        new(x, points, v, directions, TargetKind.Loss, labels, k);

    /// <summary>
    /// Medians of the actions' times in milliseconds, timed in turns: round r runs each action whose round count exceeds r, one after the
    /// other, twice, and times the second call (the first may pay for what the previous action left in the caches and the heap). A null
    /// action is not run (its median is NaN).
    /// </summary>
    private static double[] InTurns(int rounds, params (Action? Action, int Rounds)[] actions)
    {
        var times = actions.Select(_ => new List<double>()).ToArray();
        for (var r = 0; r < rounds; r++)
        {
            for (var i = 0; i < actions.Length; i++)
            {
                if (actions[i].Action is not { } action || r >= actions[i].Rounds) continue;
                action();                                // untimed: the timed call does not pay for the previous action's memory
                var sw = Stopwatch.StartNew();
                action();
                times[i].Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        return [.. times.Select(t => t.Count == 0 ? double.NaN : t.Order().ElementAt(t.Count / 2))];
    }

    private static double Median(int repeats, Action action)
    {
        var times = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
