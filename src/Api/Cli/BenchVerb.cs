using System.Diagnostics;
using System.Globalization;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Training;
using LambdaService.Training.Models;
using static TorchSharp.torch;

namespace LambdaService.Api.Cli;

/// <summary>
/// <c>bench</c>: time per order of each engine on the same tanh MLP and the same lines, measured in one run,
/// with the ratio between engines and their agreement (so speed is never bought with wrong numbers).
/// </summary>
public static class BenchVerb
{
    /// <summary>One row of the table.</summary>
    public sealed record BenchRow(int MaxOrder, double AutogradMs, double FiniteDifferenceMs, double FiniteDifferenceOverAutograd, double MedianRelativeDifference);

    /// <summary>Training cost of one method relative to baseline.</summary>
    public sealed record TrainingRow(string Method, double Seconds, double RelativeToBaseline, double TestError, double? Lambda);

    /// <summary>The whole benchmark.</summary>
    public sealed record BenchReport(string Model, int Points, int Directions, double ForwardMs, string FiniteDifferencePrecision, IReadOnlyList<BenchRow> Rows,
        string TrainingSetup, IReadOnlyList<TrainingRow> Training);

    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, ["points", "directions", "max-order", "inputs", "width", "repeats"], ["json"]);
        var points = a.Int("points", 1, 100_000) ?? 256;
        var directions = a.Int("directions", 1, 64) ?? 4;
        var maxOrder = a.Int("max-order", 1, MeasurementOptions.OrderLimit) ?? 6;
        var inputs = a.Int("inputs", 1, 4096) ?? 2;
        var width = a.Int("width", 1, 4096) ?? 64;
        var repeats = a.Int("repeats", 1, 100) ?? 3;
        var report = Measure(points, directions, maxOrder, inputs, width, repeats, cancellationToken);
        report = report with { TrainingSetup = TrainingSetupText, Training = TrainingCosts(cancellationToken) };
        if (a.Has("json"))
        {
            stdout.WriteLine(CliJson.Serialize(report));
            return 0;
        }
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine($"model: {report.Model}; {report.Points} points × {report.Directions} directions; one forward pass of those {report.Points * report.Directions} lines: {report.ForwardMs.ToString("F2", c)} ms");
        stdout.WriteLine($"finite-difference runs ONNX Runtime in {report.FiniteDifferencePrecision}; times are the median of {repeats} runs");
        stdout.WriteLine("| orders | autograd (ms) | finite-difference (ms) | FD / autograd | median rel. difference |");
        stdout.WriteLine("|---|---|---|---|---|");
        foreach (var r in report.Rows)
        {
            stdout.WriteLine(string.Format(c, "| 1..{0} | {1:F1} | {2:F1} | {3:F2} | {4:E1} |", r.MaxOrder, r.AutogradMs, r.FiniteDifferenceMs, r.FiniteDifferenceOverAutograd, r.MedianRelativeDifference));
        }
        stdout.WriteLine();
        stdout.WriteLine($"training: {report.TrainingSetup}");
        stdout.WriteLine("| method | training time (s) | relative to baseline | test error | λ |");
        stdout.WriteLine("|---|---|---|---|---|");
        foreach (var t in report.Training)
        {
            stdout.WriteLine(string.Format(c, "| {0} | {1:F2} | {2:F2} | {3:F3} | {4} |", t.Method, t.Seconds, t.RelativeToBaseline, t.TestError, t.Lambda is { } l ? l.ToString("F3", c) : "n/a"));
        }
        return 0;
    }

    /// <summary>Builds the model, then times both engines for orders 1..K on the same lines.</summary>
    public static BenchReport Measure(int points, int directions, int maxOrder, int inputs, int width, int repeats, CancellationToken cancellationToken)
    {
        manual_seed(7);
        using var mlp = new Mlp([inputs, width, width, 2]);
        var layers = mlp.Parameters();
        var onnx = OnnxModelBuilder.Mlp(layers.Select(l => l.Weight).ToList(), layers.Select(l => l.Bias).ToList());
        var file = ModelFile.FromBytes("bench.onnx", Google.Protobuf.MessageExtensions.ToByteArray(onnx));
        using var onnxRunner = OnnxRunner.Create(file, [inputs]);
        using var torchRunner = TorchModelRunner.FromModule(mlp, [inputs]);

        var rng = new Random(11);
        var x = new double[points * inputs];
        for (var i = 0; i < x.Length; i++) x[i] = rng.NextDouble() * 2 - 1;
        var v = CurvatureRate.Directions(points, directions, inputs, seed: 5);
        var labels = Enumerable.Range(0, points).Select(i => i % 2).ToArray();
        var autograd = new AutogradEngine(torchRunner);
        var fd = new FiniteDifferenceEngine(onnxRunner, new FiniteDifferenceSettings(Scale: 0.5));

        var lines = new double[points * directions * inputs];
        for (var i = 0; i < points * directions; i++) Array.Copy(x, (i / directions) * inputs, lines, i * inputs, inputs);
        var forwardMs = Median(repeats, () => torchRunner.Forward(lines, points * directions));

        var rows = new List<BenchRow>();
        autograd.Compute(Request(x, points, v, directions, labels, 1), null, cancellationToken);
        fd.Compute(Request(x, points, v, directions, labels, 1), null, cancellationToken);
        for (var k = 1; k <= maxOrder; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var request = Request(x, points, v, directions, labels, k);
            DerivativeResult? ra = null, rf = null;
            var ta = Median(repeats, () => ra = autograd.Compute(request, null, cancellationToken));
            var tf = Median(repeats, () => rf = fd.Compute(request, null, cancellationToken));
            var diffs = new List<double>();
            for (var p = 0; p < points; p++)
            {
                for (var d = 0; d < directions; d++)
                {
                    var exact = ra![p, d, k];
                    if (exact != 0) diffs.Add(Math.Abs(rf![p, d, k] - exact) / Math.Abs(exact));
                }
            }
            diffs.Sort();
            rows.Add(new BenchRow(k, ta, tf, tf / ta, diffs.Count > 0 ? diffs[diffs.Count / 2] : 0));
        }
        return new BenchReport($"tanh MLP {inputs}-{width}-{width}-2", points, directions, forwardMs, onnxRunner.Precision, rows, "", []);
    }

    /// <summary>The same Two Moons run (30% label noise) with each method, timed in this process one after the other.</summary>
    public static IReadOnlyList<TrainingRow> TrainingCosts(CancellationToken cancellationToken)
    {
        var basis = new TrainingRequest
        {
            Data = new DataSpec { Samples = 1000, LabelNoise = 0.3 },
            Model = new ModelSpec { Hidden = [32, 32] },
            Epochs = 30,
            LearningRate = 0.01,
            Seed = 1,
        };
        var methods = new (string Name, TrainingRequest Request)[]
        {
            ("baseline", basis),
            ("crr (orders 2-3)", basis with { Method = "crr" }),
            ("crr (orders 1-4)", basis with { Method = "crr", Crr = new CrrSettings { Orders = new OrderSpan(1, 4) } }),
            ("sam", basis with { Method = "sam" }),
        };
        var rows = new List<TrainingRow>();
        double? baseline = null;
        foreach (var (name, request) in methods)
        {
            var r = TrainingRun.Run(request, null, cancellationToken);
            baseline ??= r.TrainingSeconds;
            rows.Add(new TrainingRow(name, r.TrainingSeconds, r.TrainingSeconds / baseline.Value, r.TestError, r.Lambda?.Lambda));
        }
        return rows;
    }

    /// <summary>Describes <see cref="TrainingCosts"/>.</summary>
    public const string TrainingSetupText = "Two Moons, 1000 samples (700 train), 30% label noise, 2-32-32-2 tanh MLP, 30 epochs, batch 32, Adam lr 0.01, seed 1; CRR scale 0.003, 1 direction";

    private static DerivativeRequest Request(double[] x, int points, double[] v, int directions, int[] labels, int k) =>
        new(x, points, v, directions, TargetKind.Loss, labels, k);

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
