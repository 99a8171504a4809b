using System.Diagnostics;
using LambdaService.Api.Plots;
using LambdaService.Measurement;
using LambdaService.Training;
using LambdaService.Training.Datasets;
using static LambdaService.Api.Reproduction.ReportWriter;

namespace LambdaService.Api.Reproduction;

/// <summary>Sizes of the λ-band protocol.</summary>
/// <param name="Seeds">Two Moons: seeds per condition (the acceptance: 8).</param>
/// <param name="MnistSeeds">MNIST: seeds per condition.</param>
/// <param name="MnistTrain">MNIST: training digits.</param>
/// <param name="MnistTest">MNIST: test digits.</param>
/// <param name="MnistEpochs">MNIST: epochs.</param>
public sealed record LambdaBandScale(int Seeds, int MnistSeeds, int MnistTrain, int MnistTest, int MnistEpochs)
{
    /// <summary>About a quarter of an hour on 2 cores.</summary>
    public static LambdaBandScale Small { get; } = new(8, 3, 2000, 1000, 10);

    /// <summary>More seeds and all MNIST digits.</summary>
    public static LambdaBandScale Paper { get; } = new(20, 5, Mnist.TrainCount, Mnist.TestCount, 15);
}

/// <summary>
/// λ-targeting CRR (method crr-target, paper §5.3/§7's "adaptive strategies that maintain models near their task-dependent
/// geometric operating point"): on Two Moons under 30% label noise, the baseline, fixed-scale CRR and CRR whose scale holds λ in
/// a band, per epoch over seeds; then the same on MNIST with a band set from the clean baseline's λ.
/// </summary>
public static class LambdaBandReproduction
{
    /// <summary>The band on Two Moons: the example, between the baseline's plateau λ and fixed CRR 0.003's.</summary>
    public static readonly double[] TwoMoonsBand = [1.2, 1.5];

    /// <summary>Runs the protocol and writes <c>report.md</c> and its plots into <paramref name="directory"/>; returns the report's path.</summary>
    public static string Run(LambdaBandScale scale, string scaleName, string directory, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scale);
        Directory.CreateDirectory(directory);
        var clock = Stopwatch.StartNew();
        var report = new ReportWriter(directory);
        report.Line($"# λ-targeting CRR: holding λ inside a band (paper §5.3, §7), scale `{scaleName}`");
        report.Line();
        report.Line($"Made by `reproduce lambda-band --scale {scaleName}`. Method `crr-target` adapts the CRR scale s from λ measured on held-out " +
            "training samples (the monitor) every `every` steps: an integral controller on log s that holds still while λ is in the middle half " +
            "of the band and otherwise moves log s by `clamp(gain · e, −maxStep, maxStep)`, e the distance of λ from that middle half; below " +
            "`minScale` the penalty is off (README, *Training*: `crr-target`). The λ trajectories below are measured on the **test set** after each epoch " +
            "with the run's protocol, the same for every condition; the band is judged on the final λ.");
        report.Line();
        TwoMoons(scale, report, log, cancellationToken);
        if (Mnist.IsAvailable()) MnistPart(scale, report, log, cancellationToken);
        else report.Line("MNIST part skipped: " + Mnist.HowToCreate);
        report.Line();
        report.Line($"Run time: {clock.Elapsed.TotalMinutes:F1} min on {Environment.ProcessorCount} cores.");
        return report.Save();
    }

    private sealed record Condition(string Name, Func<int, TrainingRequest> Request);

    private static void TwoMoons(LambdaBandScale scale, ReportWriter report, TextWriter log, CancellationToken ct)
    {
        var band = TwoMoonsBand;
        TrainingRequest Base(int seed) => TwoMoonsReproduction.Base(0.3, 600 + seed) with { Track = new TrackSettings { LambdaEvery = 1 } };
        var conditions = new[]
        {
            new Condition("baseline", s => Base(s)),
            new Condition("CRR 0.001", s => Base(s) with { Method = "crr", Crr = new CrrSettings { Scale = 0.001 } }),
            new Condition("CRR 0.003", s => Base(s) with { Method = "crr", Crr = new CrrSettings { Scale = 0.003 } }),
            new Condition($"crr-target [{N(band[0], 1)}, {N(band[1], 1)}]", s => Base(s) with
            {
                Method = "crr-target", Crr = new CrrSettings { Target = new CrrTargetSettings { Min = band[0], Max = band[1] } },
            }),
        };
        var runs = conditions.Select(c => Enumerable.Range(0, scale.Seeds).Select(seed =>
        {
            var result = TrainingRun.Run(c.Request(seed), null, ct);
            log.WriteLine($"  two-moons {c.Name} seed {seed}: λ {N(result.Lambda?.Lambda ?? double.NaN)}, error {N(result.TestError)}, {N(result.TrainingSeconds, 1)} s");
            return result;
        }).ToList()).ToList();

        report.Line("## 1. Two Moons, 30% label noise");
        report.Line();
        report.Line($"The Two Moons protocol of `reproduce two-moons` (1000 points, 2-64-64-2 tanh MLP, Adam 0.01, batch 32, 50 epochs, clean test labels), " +
            $"seeds 600–{600 + scale.Seeds - 1}, {scale.Seeds} per condition. crr-target: band [{N(band[0], 1)}, {N(band[1], 1)}], λ on 140 monitor samples held " +
            "out of the 700 training samples every 10 steps, initial scale 0.001, gain 1, maxStep 0.5, deadband 0.5.");
        report.Line();
        var rows = new List<string[]>();
        for (var c = 0; c < conditions.Length; c++)
        {
            var r = runs[c];
            var inBand = r.Count(x => InBand(x, band));
            rows.Add([conditions[c].Name, MeanCi(Summarize(r.Select(x => x.Lambda?.Lambda ?? double.NaN))), $"{inBand} / {r.Count}",
                MeanCi(Summarize(r.Select(x => 100 * x.TestError)), 2),
                r[0].TimeInBand is null ? "—" : MeanCi(Summarize(r.Select(x => 100 * (x.TimeInBand ?? double.NaN))), 1)]);
        }
        report.Table(["condition", "final λ (mean [95% CI])", "final λ in band", "test error % (mean [95% CI])", "monitor time in band %"], rows);

        var baseline = runs[0];
        var target = runs[^1];
        var fixedBest = runs[1..^1].OrderBy(r => r.Average(x => x.TestError)).First();
        var fixedName = conditions[runs.IndexOf(fixedBest)].Name;
        var inBandTarget = target.Count(x => InBand(x, band));
        double MeanAt(List<TrainingResult> r, int epoch, Func<EpochRecord, double?> value) =>
            r.Select(x => value(x.History[epoch - 1]) ?? double.NaN).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average();
        var mid = baseline[0].History.Count / 2;
        var last = baseline[0].History.Count;
        report.Line($"- The baseline's λ keeps climbing after its error plateaus: epoch {mid} → {last}: λ {N(MeanAt(baseline, mid, h => h.Lambda), 2)} → " +
            $"{N(MeanAt(baseline, last, h => h.Lambda), 2)}, test error {N(100 * MeanAt(baseline, mid, h => h.TestError), 1)}% → {N(100 * MeanAt(baseline, last, h => h.TestError), 1)}% " +
            "(issue: 1.66 → 2.34 in the two-moons report).");
        report.Line($"- Fixed CRR 0.003 ends at λ {N(runs[2].Average(x => x.Lambda?.Lambda ?? double.NaN), 2)}, far below the band (issue: ≈ 0.74).");
        report.Line($"- **crr-target ends inside the band for {inBandTarget} of {target.Count} seeds** (target: ≥ 7 of 8) — " +
            (inBandTarget * 8 >= 7 * target.Count ? "**met**." : "**not met**."));
        var targetError = target.Average(x => x.TestError);
        var fixedError = fixedBest.Average(x => x.TestError);
        report.Line($"- Test error: crr-target {N(100 * targetError, 2)}% against the best fixed scale here ({fixedName}) {N(100 * fixedError, 2)}% — " +
            (targetError <= fixedError ? "**no worse**" : "**worse**") + $"; the baseline has {N(100 * baseline.Average(x => x.TestError), 2)}%.");
        report.Line();
        report.Line("Per seed, crr-target:");
        report.Line();
        report.Table(["seed", "final λ", "in band", "test error %", "monitor time in band %", "final scale"],
            target.Select((x, i) => new[]
            {
                (600 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), N(x.Lambda?.Lambda ?? double.NaN),
                InBand(x, band) ? "yes" : "no", N(100 * x.TestError, 2),
                N(100 * (x.TimeInBand ?? double.NaN), 1), (x.History[^1].Scale ?? double.NaN).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            }));
        int[] plotted = [0, 2, conditions.Length - 1];
        report.Plot("two-moons-trajectories", "Test-set λ per epoch (mean and 95% interval over seeds): baseline, fixed CRR 0.003 and crr-target, with the band",
            Png(f => PlotRenderer.Trajectories(new TrajectoryData([.. plotted.Select(c => Trajectory(conditions[c].Name, runs[c]))],
                "Two Moons, 30% label noise: λ per epoch", band), f)));
    }

    private static void MnistPart(LambdaBandScale scale, ReportWriter report, TextWriter log, CancellationToken ct)
    {
        var data = Mnist.Load(new MnistOptions { SplitSeed = 0, TrainSize = scale.MnistTrain, TestSize = scale.MnistTest }).ToTrainingData();
        // 4 directions per point (the MNIST report uses 2): the monitor's λ steers the controller, and its noise must stay below the band's width.
        var sizes = new MnistScale(scale.MnistTrain, scale.MnistTest, scale.MnistEpochs, 0, 0, 0, LambdaPoints: 128, LambdaDirections: 4);
        TrainingRequest Base(int seed) => MnistReproduction.Base(sizes, 700 + seed) with { Track = new TrackSettings { LambdaEvery = 1 } };
        TrainingResult Train(string name, TrainingRequest request)
        {
            var result = TrainingRun.Run(request, data, null, ct);
            log.WriteLine($"  mnist {name} seed {request.Seed}: λ {N(result.Lambda?.Lambda ?? double.NaN)}, accuracy {N(result.TestAccuracy)}, {N(result.TrainingSeconds, 1)} s");
            return result;
        }

        var baseline = Enumerable.Range(0, scale.MnistSeeds).Select(s => Train("baseline", Base(s))).ToList();
        var clean = baseline.Average(r => r.Lambda?.Lambda ?? double.NaN);
        // λ of the loss on MNIST falls as CRR acts; the band sits just below the clean baseline's final λ, so that holding it takes a penalty.
        double[] band = [clean - 0.45, clean - 0.15];
        var fixedCrr = Enumerable.Range(0, scale.MnistSeeds)
            .Select(s => Train("crr 100", Base(s) with { Method = "crr", Crr = new CrrSettings { Scale = 100, Orders = new OrderSpan(2, 4) } })).ToList();
        var target = Enumerable.Range(0, scale.MnistSeeds).Select(s => Train("crr-target", Base(s) with
        {
            Method = "crr-target",
            Crr = new CrrSettings
            {
                Orders = new OrderSpan(2, 4),
                Target = new CrrTargetSettings { Min = band[0], Max = band[1], Every = 2, InitialScale = 100, MinScale = 1, MaxScale = 1e5, Gain = 2 },
            },
        })).ToList();

        report.Line();
        report.Line("## 2. MNIST");
        report.Line();
        report.Line($"The MNIST protocol of `reproduce mnist` (the paper's CNN, Adam 0.001, batch 128, λ of the loss over orders 2–4 on 128 test points, here × 4 " +
            $"directions) on {scale.MnistTrain} training / {scale.MnistTest} test digits, clean labels, {scale.MnistEpochs} epochs, seeds 700–{700 + scale.MnistSeeds - 1}. " +
            $"The clean baseline ends at λ = {N(clean, 2)}; CRR lowers MNIST's λ (and label noise lowers it too, see the MNIST report), so the band is set " +
            $"**0.15–0.45 below the clean model's λ**: [{N(band[0], 2)}, {N(band[1], 2)}]. crr-target: λ on 200 held-out monitor digits × 4 directions every 2 steps, " +
            "initial scale 100, minScale 1, maxScale 100000, gain 2 (MNIST's λ moves little at Table 1's scales: the controller needs room above them); " +
            "fixed CRR at scale 100 (Table 1's) for comparison.");
        report.Line();
        var all = new[] { ("baseline", baseline), ("CRR 100", fixedCrr), ($"crr-target [{N(band[0], 2)}, {N(band[1], 2)}]", target) };
        report.Table(["condition", "final λ (mean [95% CI])", "final λ in band", "test accuracy % (mean [95% CI])", "monitor time in band %", "final scale (per seed)"],
            all.Select(c => new[]
            {
                c.Item1, MeanCi(Summarize(c.Item2.Select(x => x.Lambda?.Lambda ?? double.NaN))),
                $"{c.Item2.Count(x => InBand(x, band))} / {c.Item2.Count}",
                MeanCi(Summarize(c.Item2.Select(x => 100 * x.TestAccuracy)), 2),
                c.Item2[0].TimeInBand is null ? "—" : MeanCi(Summarize(c.Item2.Select(x => 100 * (x.TimeInBand ?? double.NaN))), 1),
                c.Item2[0].History[^1].Scale is null ? "—" : string.Join(", ", c.Item2.Select(x => (x.History[^1].Scale ?? double.NaN).ToString("G3", System.Globalization.CultureInfo.InvariantCulture))),
            }));
        var targetIn = target.Count(x => InBand(x, band));
        report.Line($"- crr-target ends inside the band for **{targetIn} of {target.Count}** seeds; the baseline for " +
            $"{baseline.Count(x => InBand(x, band))} and fixed CRR 100 for " +
            $"{fixedCrr.Count(x => InBand(x, band))}. λ on MNIST still climbs at the last epoch of this scale " +
            "(see the plot), so the controller is chasing a moving target; with 3 seeds the intervals are wide (t with 2 degrees of freedom).");
        report.Line();
        report.Line("Per seed, crr-target (the monitor's λ is on held-out training digits, the final λ on test digits):");
        report.Line();
        report.Table(["seed", "final test λ", "last monitor λ", "in band", "monitor time in band %", "final scale"],
            target.Select(x => new[]
            {
                x.Config.Request.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture), N(x.Lambda?.Lambda ?? double.NaN),
                N(x.History[^1].MonitorLambda ?? double.NaN), InBand(x, band) ? "yes" : "no",
                N(100 * (x.TimeInBand ?? double.NaN), 1), (x.History[^1].Scale ?? double.NaN).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            }));
        report.Plot("mnist-trajectories", "MNIST: test-set λ per epoch (mean and 95% interval over seeds), with the band",
            Png(f => PlotRenderer.Trajectories(new TrajectoryData([.. all.Select(c => Trajectory(c.Item1, c.Item2))], "MNIST: λ per epoch", band), f)));
    }

    /// <summary>Whether a run's final test λ lies in the band <c>[min, max]</c> (bounds included).</summary>
    private static bool InBand(TrainingResult run, double[] band) => run.Lambda is { } l && l.Lambda >= band[0] && l.Lambda <= band[1];

    /// <summary>The mean tracked λ per epoch over runs, with its 95% interval (epochs where some run has no λ are left out).</summary>
    private static TrajectorySeries Trajectory(string name, IReadOnlyList<TrainingResult> runs)
    {
        var epochs = new List<int>();
        var means = new List<double>();
        var intervals = new List<double[]?>();
        for (var e = 0; e < runs[0].History.Count; e++)
        {
            var values = runs.Select(r => r.History[e].Lambda ?? double.NaN).ToList();
            if (values.Any(v => !double.IsFinite(v))) continue;
            var s = Summarize(values)!;
            epochs.Add(runs[0].History[e].Epoch);
            means.Add(s.Mean);
            intervals.Add(s.Ci95);
        }
        return new TrajectorySeries(name, [.. epochs], [.. means], [.. intervals]);
    }
}
