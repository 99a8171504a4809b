using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Measurement;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using static TorchSharp.torch;

namespace LambdaService.Api.Cli;

/// <summary>
/// <c>bench --networks</c>: the exact engines on real networks (torchvision's ResNet-18 at 3×32×32, EfficientNet-B0 at 3×64×64,
/// a 2-layer ViT and a small ConvNeXt at 3×32×32), exported by <c>bench_networks.py</c> with Debian's PyTorch into a temporary
/// folder, at the defaults (points × 4 directions, orders 1–4, the default memory budget). Each row (network × engine × lines)
/// runs in a child process of its own (the hidden verb <c>bench-row</c>), so that its peak resident memory (VmHWM) is its own;
/// then PyTorch float32 nested autograd times the same lines. The ratios of issue 25 are checked against their targets
/// (README, Performance: "Real networks").
/// </summary>
public static class NetworksBench
{
    /// <summary>The hidden verb that runs one row in a child process.</summary>
    public const string RowVerbName = "bench-row";

    /// <summary>The fewest lines per pass PyTorch's nested autograd is timed with (more where taylor float32's passes are larger).</summary>
    public const int PyTorchMinimumLinesPerPass = 128;

    /// <summary>The four networks, in the order they are run.</summary>
    public static readonly IReadOnlyList<string> Networks = ["resnet18", "efficientnet_b0", "vit", "convnext"];

    /// <summary>A tiny tanh CNN (3×6×6) the script also builds: for tests of the machinery, not one of the four.</summary>
    public const string TinyNetwork = "tiny";

    /// <summary>The exact engines and precisions a row can run.</summary>
    public static readonly IReadOnlyList<string> Engines = ["taylor-float64", "taylor-float32", "autograd-float64"];

    /// <summary>The Debian packages the networks come from.</summary>
    public const string PythonPackages = "python3-torch python3-torchvision";

    /// <summary>Directions per point (the measurement default).</summary>
    public const int Directions = 4;

    /// <summary>Highest order (orders 1–4, the measurement default).</summary>
    public const int MaxOrder = 4;

    /// <summary>One network × engine × line count, measured in its own process.</summary>
    /// <param name="MeanAbs">Mean over the lines of |Dⁿ| for n = 1..K (the same lines for every engine: a check that speed bought no wrong numbers).</param>
    /// <param name="MaxRelativeDifference">Largest relative difference of <paramref name="MeanAbs"/> from the taylor float64 row at the same lines (null without one).</param>
    public sealed record NetworkRow(string Network, int Lines, string Engine, double Seconds, double LinesPerSecond, double PeakMiB, int Passes, int LinesPerPass,
        double[] MeanAbs, double? MaxRelativeDifference);

    /// <summary>PyTorch float32 nested autograd on the same lines.</summary>
    public sealed record PyTorchRow(string Network, int Lines, double Seconds, double LinesPerSecond, int Passes, int LinesPerPass, double[] MeanAbs, double? MaxRelativeDifference);

    /// <summary>A row that failed (its child's message); never left out silently.</summary>
    public sealed record FailedRow(string Network, int Lines, string Engine, string Error);

    /// <summary>One ratio of issue 25 against its target.</summary>
    /// <param name="Target">The target as text (<c>≥ 4</c>, <c>≤ 1.2</c>, <c>0.8–1.2</c>).</param>
    public sealed record TargetCheck(string Network, string Measure, double Value, string Target, bool Met);

    /// <summary>The whole run.</summary>
    public sealed record NetworksReport(IReadOnlyList<string> Networks, IReadOnlyList<int> Lines, IReadOnlyList<NetworkRow> Rows, IReadOnlyList<PyTorchRow> PyTorch,
        IReadOnlyList<FailedRow> Failed, IReadOnlyList<TargetCheck> Targets, IReadOnlyList<string> Notes);

    /// <summary>What one <c>bench-row</c> child prints (one JSON line).</summary>
    public sealed record RowResult(double Seconds, double PeakMiB, double LoadPeakMiB, int Passes, int LinesPerPass, double[] MeanAbs);

    private sealed record PythonTiming(double Seconds, double WarmupSeconds, int Passes, double[] MeanAbs);

    /// <summary>Runs <c>bench --networks [LIST]</c> (<paramref name="args"/> are bench's arguments).</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, ["networks", "lines", "engines", "python", "memory-budget-mb"], ["json", "skip-pytorch"]);
        var names = ParseList(a.Get("networks") is { } n && n != "all" ? n : string.Join(',', Networks), "networks", [.. Networks, TinyNetwork]);
        var engines = ParseList(a.Get("engines") ?? string.Join(',', Engines), "engines", Engines);
        var lines = (a.Get("lines") ?? "64,1024").Split(',', StringSplitOptions.TrimEntries).Select(t =>
            int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l >= Directions && l <= 65_536 && l % Directions == 0 ? l
                : throw new MeasurementInputException("lines", $"--lines lists line counts, multiples of {Directions} (points × {Directions} directions) from {Directions} to 65536, e.g. 64,1024; got '{t}'."))
            .Distinct().Order().ToArray();
        var budget = a.Double("memory-budget-mb") ?? LineBudget.DefaultMemoryBudgetMb;
        if (!(budget > 0)) throw new MeasurementInputException("memory-budget-mb", "--memory-budget-mb must be a positive number of MiB (default 1024).");
        var python = a.Get("python") ?? "/usr/bin/python3";
        CheckPython(python);
        var threads = TorchRuntime.EnsureConfigured();
        var script = Path.Combine(AppContext.BaseDirectory, "bench_networks.py");
        if (!File.Exists(script)) throw new InvalidOperationException($"bench_networks.py is missing next to the program ({script}); rebuild the Api project.");
        var folder = Path.Combine(Path.GetTempPath(), "lambdaservice-bench-networks-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var notes = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores; libtorch and PyTorch on {threads} thread(s); memory budget {budget} MiB; orders 1–{MaxOrder}, {Directions} directions a point, cross-entropy loss against label point mod classes."),
            "each row is one child process: seconds are one Compute call including the memory planner's probe passes (the first 1 and 2 points' lines, on one thread; their values are kept); peak is the child's VmHWM (the larger of the readings before and after the call: the planner resets VmHWM).",
        };
        try
        {
            var rows = new List<NetworkRow>();
            var torchRows = new List<PyTorchRow>();
            var failed = new List<FailedRow>();
            var exported = RunProcess(python, [script, "export", folder, string.Join(',', names)], cancellationToken);
            if (exported.Code != 0) throw new InvalidOperationException($"bench_networks.py export failed: {MeasurementInputException.FirstLine(exported.Err)}");
            var shapes = exported.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
            foreach (var name in names)
            {
                var shape = shapes[name];
                var size = shape.Aggregate(1, (p, q) => p * q);
                var points = lines.Max() / Directions;
                var rng = new Random(17);
                var x = Enumerable.Range(0, points * size).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
                var v = CurvatureRate.Directions(points, Directions, size, seed: 5);
                var xFile = Path.Combine(folder, name + ".x.f64");
                var vFile = Path.Combine(folder, name + ".v.f64");
                File.WriteAllBytes(xFile, System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()).ToArray());
                File.WriteAllBytes(vFile, System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
                var model = Path.Combine(folder, name + ".onnx");
                foreach (var count in lines)
                {
                    double[]? reference = null;
                    int? taylor32PerPass = null;
                    foreach (var engine in engines)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var (program, leading) = SandboxProcess.ResolveRunnerCommand(null);
                        string[] rowArgs =
                        [
                            .. leading, RowVerbName, "--model", model, "--shape", string.Join(',', shape), "--x", xFile, "--v", vFile,
                            "--points", (count / Directions).ToString(CultureInfo.InvariantCulture), "--engine", engine,
                            "--memory-budget-mb", budget.ToString(CultureInfo.InvariantCulture),
                        ];
                        var child = RunProcess(program, rowArgs, cancellationToken);
                        if (child.Code != 0)
                        {
                            failed.Add(new FailedRow(name, count, engine, MeasurementInputException.FirstLine(child.Err.Length > 0 ? child.Err : child.Out)));
                            continue;
                        }
                        var r = JsonSerializer.Deserialize<RowResult>(child.Out, CliJson.Options)!;
                        if (engine == "taylor-float64") reference = r.MeanAbs;
                        if (engine == "taylor-float32") taylor32PerPass = r.LinesPerPass;
                        rows.Add(new NetworkRow(name, count, engine, r.Seconds, count / r.Seconds, Math.Max(r.PeakMiB, r.LoadPeakMiB), r.Passes, r.LinesPerPass, r.MeanAbs,
                            reference is null || engine == "taylor-float64" ? null : MaxRelativeDifference(r.MeanAbs, reference)));
                        // Progress on standard error, row by row (a long run's finished rows are not lost with an interrupted one).
                        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bench --networks: {name}, {count} lines, {engine}: {r.Seconds:F2} s, peak {rows[^1].PeakMiB:F0} MiB, {r.Passes} × {r.LinesPerPass}"));
                    }
                    if (a.Has("skip-pytorch")) continue;
                    // PyTorch gets passes of at least PyTorchMinimumLinesPerPass lines: taylor's planner now keeps its passes small (cache-sized),
                    // which made PyTorch's nested autograd up to 1.7× slower per line than the larger batches a user would give it.
                    var perPass = Math.Min(count, Math.Max(taylor32PerPass ?? PyTorchMinimumLinesPerPass, PyTorchMinimumLinesPerPass));
                    var timed = RunProcess(python, [script, "time", name, xFile, vFile, (count / Directions).ToString(CultureInfo.InvariantCulture),
                        Directions.ToString(CultureInfo.InvariantCulture), MaxOrder.ToString(CultureInfo.InvariantCulture),
                        perPass.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture)], cancellationToken);
                    if (timed.Code != 0)
                    {
                        failed.Add(new FailedRow(name, count, "pytorch-float32", LastLine(timed.Err)));
                        continue;
                    }
                    var t = JsonSerializer.Deserialize<PythonTiming>(timed.Out.Trim().Split('\n')[^1], CliJson.Options)!;
                    torchRows.Add(new PyTorchRow(name, count, t.Seconds, count / t.Seconds, t.Passes, perPass, t.MeanAbs, reference is null ? null : MaxRelativeDifference(t.MeanAbs, reference)));
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bench --networks: {name}, {count} lines, pytorch-float32: {t.Seconds:F2} s, {t.Passes} × {perPass}"));
                }
            }
            var report = new NetworksReport(names, lines, rows, torchRows, failed, Targets(rows, torchRows), notes);
            if (a.Has("json"))
            {
                stdout.WriteLine(CliJson.Serialize(report));
                return 0;
            }
            Print(report, stdout);
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// The ratios of issue 25 per network, from the rows at the fewest (L₀) and the most (L₁) lines:
    /// autograd / taylor float64 = s(autograd, L₁) / s(taylor64, L₁), target ≥ 4; taylor float64 / taylor float32 = s(taylor64, L₁) /
    /// s(taylor32, L₁), target ≥ 1.7; per engine peak(L₁) / peak(L₀), target ≤ 1.2, and time per line (s(L₁)/L₁) / (s(L₀)/L₀),
    /// target 0.8–1.2; the largest peak of any row, target ≤ 2048 MiB; PyTorch float32 nested autograd / taylor float32 at L₁, target ≥ 5.
    /// A ratio whose rows are missing is not listed.
    /// </summary>
    public static IReadOnlyList<TargetCheck> Targets(IReadOnlyList<NetworkRow> rows, IReadOnlyList<PyTorchRow> pytorch)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(pytorch);
        var checks = new List<TargetCheck>();
        foreach (var network in rows.Select(r => r.Network).Distinct())
        {
            var mine = rows.Where(r => r.Network == network).ToList();
            var (few, most) = (mine.Min(r => r.Lines), mine.Max(r => r.Lines));
            NetworkRow? At(string engine, int lines) => mine.FirstOrDefault(r => r.Engine == engine && r.Lines == lines);
            void AtLeast(string measure, double? value, double target)
            {
                if (value is { } q) checks.Add(new TargetCheck(network, measure, q, string.Create(CultureInfo.InvariantCulture, $"≥ {target}"), q >= target));
            }
            AtLeast($"autograd float64 / taylor float64 (time, {most} lines)", At("autograd-float64", most)?.Seconds / At("taylor-float64", most)?.Seconds, 4);
            AtLeast($"taylor float64 / taylor float32 (time, {most} lines)", At("taylor-float64", most)?.Seconds / At("taylor-float32", most)?.Seconds, 1.7);
            if (most > few)
            {
                foreach (var engine in Engines)
                {
                    if (At(engine, few) is not { } f || At(engine, most) is not { } m) continue;
                    var peak = m.PeakMiB / f.PeakMiB;
                    checks.Add(new TargetCheck(network, $"{engine}: peak memory {most} / {few} lines", peak, "≤ 1.2", peak <= 1.2));
                    var perLine = m.Seconds / m.Lines / (f.Seconds / f.Lines);
                    checks.Add(new TargetCheck(network, $"{engine}: time per line {most} / {few} lines", perLine, "0.8–1.2", perLine is >= 0.8 and <= 1.2));
                }
            }
            var largest = mine.Max(r => r.PeakMiB);
            checks.Add(new TargetCheck(network, "largest peak memory of any row (MiB)", largest, "≤ 2048", largest <= 2048));
            var torch = pytorch.FirstOrDefault(p => p.Network == network && p.Lines == most);
            AtLeast($"pytorch float32 autograd / taylor float32 (time, {most} lines)", torch?.Seconds / At("taylor-float32", most)?.Seconds, 5);
        }
        return checks;
    }

    /// <summary>max over n of |a_n − b_n| / |b_n| (0 where both are 0).</summary>
    public static double MaxRelativeDifference(double[] a, double[] b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var max = 0.0;
        for (var i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            var d = Math.Abs(a[i] - b[i]);
            if (d > 0) max = Math.Max(max, d / Math.Abs(b[i]));
        }
        return max;
    }

    private static void Print(NetworksReport report, TextWriter stdout)
    {
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine($"networks: {string.Join(", ", report.Networks)}; lines: {string.Join(", ", report.Lines)} ({Directions} directions a point); orders 1–{MaxOrder}");
        stdout.WriteLine("| network | lines | engine | seconds | lines/s | peak resident (MiB) | passes × lines | max rel. diff. of mean abs Dⁿ from taylor float64 |");
        stdout.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in report.Rows)
        {
            stdout.WriteLine(string.Format(c, "| {0} | {1} | {2} | {3:F2} | {4:F1} | {5:F0} | {6} × {7} | {8} |", r.Network, r.Lines, r.Engine, r.Seconds, r.LinesPerSecond, r.PeakMiB,
                r.Passes, r.LinesPerPass, r.MaxRelativeDifference is { } d ? d.ToString("E1", c) : "–"));
        }
        foreach (var p in report.PyTorch)
        {
            stdout.WriteLine(string.Format(c, "| {0} | {1} | pytorch-float32 (nested autograd) | {2:F2} | {3:F1} | – | {4} × {5} | {6} |", p.Network, p.Lines, p.Seconds, p.LinesPerSecond,
                p.Passes, p.LinesPerPass, p.MaxRelativeDifference is { } d ? d.ToString("E1", c) : "–"));
        }
        foreach (var f in report.Failed) stdout.WriteLine($"| {f.Network} | {f.Lines} | {f.Engine} | failed: {f.Error} | | | | |");
        stdout.WriteLine();
        stdout.WriteLine("| network | ratio | value | target | |");
        stdout.WriteLine("|---|---|---|---|---|");
        foreach (var t in report.Targets) stdout.WriteLine(string.Format(c, "| {0} | {1} | {2:0.00} | {3} | {4} |", t.Network, t.Measure, t.Value, t.Target, t.Met ? "met" : "**missed**"));
        stdout.WriteLine(string.Format(c, "targets met: {0} of {1}", report.Targets.Count(t => t.Met), report.Targets.Count));
        foreach (var n in report.Notes) stdout.WriteLine("note: " + n);
    }

    private static string LastLine(string text) =>
        MeasurementInputException.FirstLine(text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "no output");

    private static string[] ParseList(string text, string option, IReadOnlyList<string> allowed)
    {
        var items = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct().ToArray();
        foreach (var item in items)
        {
            if (!allowed.Contains(item)) throw new MeasurementInputException(option, $"--{option} lists some of {string.Join(", ", allowed)}; got '{item}'.");
        }
        return items.Length > 0 ? items : throw new MeasurementInputException(option, $"--{option} lists some of {string.Join(", ", allowed)}.");
    }

    /// <summary>Exit code 2 (one line) when <paramref name="python"/> cannot import torch and torchvision.</summary>
    private static void CheckPython(string python)
    {
        var ok = false;
        try
        {
            ok = RunProcess(python, ["-c", "import torch, torchvision"], CancellationToken.None).Code == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
        if (!ok)
        {
            throw new MeasurementInputException("python",
                $"bench --networks exports the networks with PyTorch and torchvision, which {python} cannot import: install Debian's {PythonPackages} (apt-get install {PythonPackages}) or name another interpreter with --python.");
        }
    }

    private static (int Code, string Out, string Err) RunProcess(string program, IReadOnlyList<string> args, CancellationToken ct)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            process.WaitForExitAsync(ct).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>
    /// The hidden <c>bench-row</c> verb: loads the ONNX model, reads the first P points and P·4 directions (raw float64), computes
    /// orders 1–4 of the cross-entropy loss with one engine at the memory budget, and prints one JSON line (<see cref="RowResult"/>).
    /// </summary>
    public static int RunRow(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, ["model", "shape", "x", "v", "points", "engine", "memory-budget-mb"], []);
        var shape = a.Shape("shape") ?? throw new MeasurementInputException("shape", "--shape is required.");
        var points = a.Int("points", 1, 1 << 20) ?? throw new MeasurementInputException("points", "--points is required.");
        var engineName = a.Required("engine");
        if (!Engines.Contains(engineName)) throw new MeasurementInputException("engine", $"--engine is one of {string.Join(", ", Engines)}; got '{engineName}'.");
        var budget = LineBudget.Memory(a.Double("memory-budget-mb") ?? LineBudget.DefaultMemoryBudgetMb);
        TorchRuntime.EnsureConfigured();
        var size = shape.Aggregate(1, (p, q) => p * q);
        var lines = points * Directions;
        var x = ReadDoubles(a.Required("x"), points * size);
        var v = ReadDoubles(a.Required("v"), lines * size);
        var file = ModelFile.Open(a.Required("model"));
        if (!JetGraph.TryImport(file.Onnx!, out var graph, out var unsupported, ScalarType.Float64))
        {
            throw new MeasurementInputException("model", $"the exact engines cannot import this graph: unsupported operators {string.Join("; ", unsupported)}.");
        }
        using var runner = TorchModelRunner.FromOnnxGraph(graph!, file, shape);
        IDerivativeEngine engine = engineName switch
        {
            "taylor-float64" => new TaylorEngine(runner.JetModule!, shape, ScalarType.Float64, budget),
            "taylor-float32" => new TaylorEngine(runner.JetModule!, shape, ScalarType.Float32, budget),
            _ => new AutogradEngine(runner, budget),
        };
        var classes = runner.Signature.Classes;
        var labels = Enumerable.Range(0, points).Select(i => i % classes).ToArray();
        var request = new DerivativeRequest(x, points, v, Directions, TargetKind.Loss, labels, MaxOrder);
        var loadPeak = StatusMiB("VmHWM");
        var sw = Stopwatch.StartNew();
        var result = engine.Compute(request, null, cancellationToken);
        var seconds = sw.Elapsed.TotalSeconds;
        var peak = StatusMiB("VmHWM");
        var meanAbs = new double[MaxOrder];
        for (var n = 1; n <= MaxOrder; n++)
        {
            var sum = 0.0;
            for (var p = 0; p < points; p++) for (var d = 0; d < Directions; d++) sum += Math.Abs(result[p, d, n]);
            meanAbs[n - 1] = sum / lines;
        }
        var plan = result.Plan;
        stdout.WriteLine(CliJson.Serialize(new RowResult(seconds, peak, loadPeak, plan?.Passes ?? 1, plan?.LinesPerPass ?? lines, meanAbs)));
        return 0;
    }

    private static double[] ReadDoubles(string path, int count)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < (long)count * sizeof(double)) throw new MeasurementInputException("x", $"{path} holds {bytes.Length / sizeof(double)} float64 values; {count} are needed.");
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes.AsSpan(0, count * sizeof(double))).ToArray();
    }

    /// <summary>A <c>/proc/self/status</c> field in MiB (0 where it cannot be read).</summary>
    private static double StatusMiB(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
                }
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }
}
