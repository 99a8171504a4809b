using System.Diagnostics;
using LambdaService.Api.Plots;
using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Training;
using LambdaService.Training.Datasets;
using static LambdaService.Api.Reproduction.ReportWriter;

namespace LambdaService.Api.Reproduction;

/// <summary>How many models each part of the Two Moons protocol trains.</summary>
/// <param name="RobustnessModels">Models whose λ is measured under varied protocols (paper: 15).</param>
/// <param name="LabelModels">Models compared on true vs predicted labels and loss vs max logit (paper: 20).</param>
/// <param name="CleanModels">Clean-data baselines (paper: 40).</param>
/// <param name="CrrScales">CRR scales of the sweep, 0 = baseline (paper: six scales up to 0.01).</param>
/// <param name="SweepSeeds">Seeds per scale (paper: 40).</param>
/// <param name="DynamicsSeeds">Seeds per condition of the λ-per-epoch curves (paper: 20).</param>
/// <param name="DynamicsEvery">λ is measured every this many epochs in the curves (paper: every epoch).</param>
public sealed record TwoMoonsScale(int RobustnessModels, int LabelModels, int CleanModels, double[] CrrScales, int SweepSeeds, int DynamicsSeeds, int DynamicsEvery)
{
    /// <summary>Finishes in minutes on 2 cores and still shows the effects.</summary>
    public static TwoMoonsScale Small { get; } = new(10, 15, 20, [0, 0.001, 0.002, 0.003, 0.005, 0.01], 10, 8, 1);

    /// <summary>The paper's counts.</summary>
    public static TwoMoonsScale Paper { get; } = new(15, 20, 40, [0, 0.001, 0.002, 0.003, 0.005, 0.01], 40, 20, 1);
}

/// <summary>
/// The paper's Two Moons protocol (§5.2): measurement robustness, clean-data baseline, the CRR scale sweep under 30%
/// label noise, λ per epoch for baseline and CRR, and the pooled λ–error regression; written as a Markdown report with plots.
/// </summary>
public static class TwoMoonsReproduction
{
    /// <summary>The networks and data every run shares: 1000 points (σ = 0.2, 700 train / 300 test), a 2-64-64-2 tanh MLP, Adam 0.01, batch 32, 50 epochs.</summary>
    public static TrainingRequest Base(double labelNoise, int seed) => new()
    {
        Data = new DataSpec { Samples = 1000, Noise = 0.2, LabelNoise = labelNoise, TestFraction = 0.3 },
        Model = new ModelSpec { Hidden = [64, 64], Activation = "tanh" },
        Epochs = 50,
        BatchSize = 32,
        LearningRate = 0.01,
        Seed = seed,
        Measure = new LambdaSettings { BootstrapResamples = 200 },
    };

    /// <summary>Runs the protocol and writes <c>report.md</c> and its plots into <paramref name="directory"/>; returns the report's path.</summary>
    public static string Run(TwoMoonsScale scale, string scaleName, string directory, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scale);
        System.IO.Directory.CreateDirectory(directory);
        var clock = Stopwatch.StartNew();
        var report = new ReportWriter(directory);
        report.Line($"# Reproduction: Two Moons (paper §5.2), scale `{scaleName}`");
        report.Line();
        report.Line("Made by `reproduce two-moons --scale " + scaleName + "`. Every run: Two Moons with 1000 points (noise σ = 0.2), a seeded " +
            "700 / 300 train/test split, a 2-64-64-2 tanh MLP, Adam (lr 0.01), batch 32, 50 epochs, cross-entropy; λ on the test set: boundary " +
            "points (largest predicted probability in 0.45–0.65), orders 1–4, 4 random directions per point, mean-abs norm, the loss with true " +
            "labels, float64 autograd. Label noise flips training labels only; **the test labels stay clean here** (the paper's test error " +
            "of ~32% under 30% noise shows its test labels were noisy too), so our test errors measure generalisation and are much lower.");
        report.Line();

        Robustness(scale, report, log, cancellationToken);
        var clean = CleanBaseline(scale, report, log, cancellationToken);
        var sweep = ScaleSweep(scale, report, log, cancellationToken);
        Pooled(clean, sweep, report);
        Dynamics(scale, report, log, cancellationToken);

        report.Line("## Why numbers differ from the paper");
        report.Line();
        report.Line("- **Clean test labels.** Our test split is never noised, so test errors under 30% training noise are ~5–15%, not ~32%; " +
            "differences between methods show up more clearly, and the paper's “error barely moves” statements are about a noisier yardstick.");
        report.Line("- **Unstated details.** The paper gives neither the network widths, the learning rate, the batch size nor the point count; " +
            "we use 2-64-64-2, 0.01, 32 and 1000. λ's level depends on them: with lr 0.001 the same network is still fitting at epoch 50 " +
            "(λ ≈ 1.0 under 30% noise, no plateau); with 0.01 its test error plateaus after ~20 epochs and λ then climbs as in the paper's Figure 1.");
        report.Line("- **Seeds.** The `small` scale trains far fewer models than the paper (see the counts in each section); intervals are correspondingly wider.");
        report.Line();
        report.Line($"Run time: {clock.Elapsed.TotalMinutes:F1} min on {Environment.ProcessorCount} cores.");
        return report.Save();
    }

    private sealed record Model(TrainingResult Result, TrainedModel Network, TrainingData Data);

    private static Model Train(TrainingRequest request, TextWriter log, CancellationToken ct)
    {
        var data = TrainingRun.CreateData(request with { Data = request.Data with { Seed = request.Data.Seed ?? request.Seed } });
        var outcome = TrainingRun.Train(request, data, null, ct);
        log.WriteLine($"  {request.Method} seed {request.Seed} noise {request.Data.LabelNoise}: test error {N(outcome.Result.TestError)}, λ {N(outcome.Result.Lambda?.Lambda ?? double.NaN)}");
        return new Model(outcome.Result, outcome.Model, data);
    }

    private static double Measure(Model model, MeasurementOptions options, CancellationToken ct)
    {
        try
        {
            return TrainingRun.MeasureTest(model.Network, model.Data, options with { BootstrapResamples = 0 }, ct).Lambda;
        }
        catch (MeasurementInputException)
        {
            return double.NaN;   // e.g. no test point in a narrow band
        }
    }

    private static readonly MeasurementOptions Protocol = new()
    {
        Target = "loss", Labels = LabelSource.True, Points = PointSelection.Boundary, Band = (0.45, 0.65), MinOrder = 1, MaxOrder = 4, Directions = 4, MaxPoints = 256,
    };

    private static void Robustness(TwoMoonsScale scale, ReportWriter report, TextWriter log, CancellationToken ct)
    {
        var count = Math.Max(scale.RobustnessModels, scale.LabelModels);
        log.WriteLine($"robustness: {count} models, 30% label noise");
        var variants = new (string Name, MeasurementOptions Options, string Paper)[]
        {
            ("band 0.48–0.52", Protocol with { Band = (0.48, 0.52) }, "1.60–1.63"),
            ("band 0.45–0.65 (protocol)", Protocol, "1.60–1.63"),
            ("band 0.40–0.70", Protocol with { Band = (0.40, 0.70) }, "1.60–1.63"),
            ("2 directions", Protocol with { Directions = 2 }, "≈ 1.63"),
            ("8 directions", Protocol with { Directions = 8 }, "≈ 1.63"),
            ("n_max = 3", Protocol with { MaxOrder = 3 }, "1.39"),
            ("n_max = 5", Protocol with { MaxOrder = 5 }, "1.82"),
        };
        var values = variants.Select(_ => new List<double>()).ToArray();
        var (trueLabels, predicted, loss, logit) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
        for (var i = 0; i < count; i++)
        {
            var model = Train(Base(0.3, 100 + i), log, ct);
            using var network = model.Network;
            if (i < scale.RobustnessModels)
            {
                for (var v = 0; v < variants.Length; v++) values[v].Add(Measure(model, variants[v].Options, ct));
            }
            if (i < scale.LabelModels)
            {
                trueLabels.Add(Measure(model, Protocol, ct));
                predicted.Add(Measure(model, Protocol with { Labels = LabelSource.Predicted }, ct));
                loss.Add(trueLabels[^1]);
                logit.Add(Measure(model, Protocol with { Target = "logit", Labels = null }, ct));
            }
        }
        report.Line("## 1. Measurement robustness (30% label noise)");
        report.Line();
        report.Line($"{scale.RobustnessModels} models (paper: 15), each measured under every variant of the protocol; mean λ with its 95% interval over models.");
        report.Line();
        report.Table(["protocol variant", "λ (ours)", "λ (paper)"], variants.Select((v, i) => new[] { v.Name, MeanCi(Summarize(values[i])), v.Paper }));
        var bands = values[..3].Select(Summarize).Where(s => s is not null).Select(s => s!.Mean).ToList();
        var bandSpread = bands.Count > 1 ? (bands.Max() - bands.Min()) / Math.Abs(bands.Average()) : double.NaN;
        var nmax = new[] { Summarize(values[5])?.Mean, Summarize(values[1])?.Mean, Summarize(values[6])?.Mean };
        var increasing = nmax.All(m => m is not null) && nmax[0] < nmax[1] && nmax[1] < nmax[2];
        report.Line($"- Band width: the three bands give means within {N(100 * bandSpread, 1)}% of each other — " +
            (bandSpread < 0.1 ? "**agrees** with the paper (nearly identical estimates)." : "**differs** from the paper's nearly identical estimates."));
        report.Line($"- n_max = 3, 4, 5 gives {N(nmax[0] ?? double.NaN, 2)}, {N(nmax[1] ?? double.NaN, 2)}, {N(nmax[2] ?? double.NaN, 2)} — " +
            (increasing ? "rising with n_max as in the paper (1.39, 1.63, 1.82)." : "not rising monotonically as in the paper (1.39, 1.63, 1.82)."));
        var labels = Correlate(trueLabels, predicted);
        var targets = Correlate(loss, logit);
        report.Line($"- True vs predicted labels over {scale.LabelModels} models (paper: 20): mean λ {MeanCi(Summarize(trueLabels))} vs {MeanCi(Summarize(predicted))}, " +
            $"{Describe(labels)} (paper: 1.636 vs 1.643, r = 0.976) — " + Verdict(labels, 0.9));
        report.Line($"- Loss vs max logit: mean λ {MeanCi(Summarize(loss))} vs {MeanCi(Summarize(logit))}, {Describe(targets)} (paper: r = 0.966) — " + Verdict(targets, 0.8));
        report.Line();
    }

    private static string Verdict(LambdaService.Training.Sweeps.Correlation? c, double threshold) => c is null
        ? "cannot be judged."
        : c.R >= threshold ? "**agrees** (strongly correlated)." : $"**weaker** than the paper's (r below {N(threshold, 1)}).";

    private sealed record Observation(double Lambda, double TestError);

    private static List<Observation> CleanBaseline(TwoMoonsScale scale, ReportWriter report, TextWriter log, CancellationToken ct)
    {
        log.WriteLine($"clean baseline: {scale.CleanModels} models");
        var runs = new List<Observation>();
        for (var i = 0; i < scale.CleanModels; i++)
        {
            var model = Train(Base(0, 200 + i), log, ct);
            model.Network.Dispose();
            runs.Add(new Observation(model.Result.Lambda?.Lambda ?? double.NaN, model.Result.TestError));
        }
        var error = Summarize(runs.Select(r => r.TestError * 100));
        var lambda = Summarize(runs.Select(r => r.Lambda));
        var c = Correlate(runs.Select(r => r.Lambda).ToList(), runs.Select(r => r.TestError).ToList());
        report.Line("## 2. Baseline on clean data");
        report.Line();
        report.Line($"{scale.CleanModels} models (paper: 40), no label noise.");
        report.Line();
        report.Table(["", "ours", "paper"],
        [
            ["test error (%)", MeanCi(error, 2), "3.42 [2.44, 4.56]"],
            ["λ", MeanCi(lambda, 2), "1.98 [1.71, 2.27]"],
            ["λ vs test error", Describe(c), "r = −0.165, permutation p = 0.335"],
        ]);
        static bool Within(LambdaService.Training.Sweeps.Summary? s, double low, double high) => s is not null && s.Mean >= low && s.Mean <= high;
        report.Line($"- Test error: our mean {(Within(error, 2.44, 4.56) ? "lies within" : "lies outside")} the paper's interval. " +
            $"λ: our mean {(Within(lambda, 1.71, 2.27) ? "lies within the paper's interval" : "lies outside the paper's interval (the level depends on width, learning rate and epochs, which the paper does not give)")}.");
        report.Line(c is null ? "- The correlation cannot be computed (too little variation)." :
            c.PValue > 0.05 ? "- No significant correlation of λ with test error on clean data — **agrees** with the paper." :
            "- λ correlates significantly with test error on clean data — **differs** from the paper.");
        report.Line();
        if (c is not null)
        {
            report.Plot("clean-error-vs-lambda", "Clean data: test error against λ, one point per model",
                Png(f => PlotRenderer.SweepErrorVsLambda(new ErrorLambdaData(runs.Select(r => r.Lambda).ToArray(), runs.Select(r => r.TestError).ToArray(),
                    c.Slope, c.Intercept, c.R, c.PValue, "Two Moons, clean labels: test error against λ"), f)));
        }
        return runs;
    }

    private static List<Observation> ScaleSweep(TwoMoonsScale scale, ReportWriter report, TextWriter log, CancellationToken ct)
    {
        log.WriteLine($"CRR sweep: scales {string.Join(", ", scale.CrrScales)} × {scale.SweepSeeds} seeds");
        var all = new List<Observation>();
        var rows = new List<(double Scale, LambdaService.Training.Sweeps.Summary? Lambda, LambdaService.Training.Sweeps.Summary? Error)>();
        foreach (var s in scale.CrrScales)
        {
            var runs = new List<Observation>();
            for (var seed = 0; seed < scale.SweepSeeds; seed++)
            {
                var request = Base(0.3, 300 + seed);
                if (s > 0) request = request with { Method = "crr", Crr = new CrrSettings { Scale = s, Orders = new OrderSpan(2, 3) } };
                var model = Train(request, log, ct);
                model.Network.Dispose();
                runs.Add(new Observation(model.Result.Lambda?.Lambda ?? double.NaN, model.Result.TestError));
            }
            all.AddRange(runs);
            rows.Add((s, Summarize(runs.Select(r => r.Lambda)), Summarize(runs.Select(r => r.TestError * 100))));
        }
        report.Line("## 3. CRR scale sweep under 30% label noise");
        report.Line();
        report.Line($"Penalty on orders 2–3 (one random direction per point, every step); {scale.SweepSeeds} seeds per scale (paper: 40); scale 0 is the baseline.");
        report.Line();
        report.Table(["CRR scale", "λ (mean [95% CI])", "test error % (mean [95% CI])"],
            rows.Select(r => new[] { N(r.Scale, 3), MeanCi(r.Lambda, 2), MeanCi(r.Error, 2) }));
        var first = rows[0].Lambda?.Mean ?? double.NaN;
        var last = rows[^1].Lambda?.Mean ?? double.NaN;
        var reduction = 100 * (first - last) / first;
        var monotone = rows.Zip(rows.Skip(1)).All(p => p.Second.Lambda?.Mean <= p.First.Lambda?.Mean);
        var errorChange = (rows[^1].Error?.Mean ?? double.NaN) - (rows[0].Error?.Mean ?? double.NaN);
        report.Line($"- λ falls from {N(first, 2)} to {N(last, 2)} at scale {N(rows[^1].Scale, 3)}: a {N(reduction, 0)}% reduction (paper: 1.59 → 0.94, 41%)" +
            (monotone ? ", monotonically — **agrees** in direction and shape." : "; not monotonically across every scale (seed noise at this size)."));
        report.Line($"- Test error changes by {N(errorChange, 2)} percentage points across the sweep (paper: +0.22) — " +
            (Math.Abs(errorChange) <= 2 ? "**agrees**: CRR lowers λ at little cost in error." : "a larger change than the paper's."));
        report.Line();
        var series = new[]
        {
            new ScaleSeries("λ", rows.Where(r => r.Lambda is not null).Select(r => new ScalePoint(r.Scale, r.Lambda!.Mean, r.Lambda.Ci95)).ToArray()),
        };
        report.Plot("crr-scale-lambda", "λ against CRR scale (mean and 95% interval over seeds; 30% label noise)",
            Png(f => PlotRenderer.SweepScaleCurve(new ScaleCurveData(series, "Two Moons, 30% label noise: λ against CRR scale"), f)));
        var errors = new[]
        {
            new ScaleSeries("test error (%)", rows.Where(r => r.Error is not null).Select(r => new ScalePoint(r.Scale, r.Error!.Mean, r.Error.Ci95)).ToArray()),
        };
        report.Plot("crr-scale-error", "Test error against CRR scale (mean and 95% interval over seeds)",
            Png(f => PlotRenderer.SweepScaleCurve(new ScaleCurveData(errors, "Two Moons, 30% label noise: test error against CRR scale", YLabel: "test error (%)"), f)));
        return all;
    }

    private static void Pooled(List<Observation> clean, List<Observation> sweep, ReportWriter report)
    {
        var all = clean.Concat(sweep).ToList();
        var c = Correlate(all.Select(r => r.Lambda).ToList(), all.Select(r => r.TestError).ToList());
        report.Line("## 4. λ and test error, pooled over conditions");
        report.Line();
        report.Line($"All {all.Count} runs of sections 2 and 3 (clean and 30% noise, every CRR scale; paper: 120 observations): {Describe(c)}" +
            (c is null ? "." : $", regression slope {N(c.Slope, 4)} per unit λ (95% bootstrap CI {N(c.SlopeCi95?[0] ?? double.NaN, 4)} to {N(c.SlopeCi95?[1] ?? double.NaN, 4)}; test error as a fraction)."));
        report.Line();
        report.Line("The paper reports an effect size of −0.285 (95% CI −0.320 to −0.256) without saying in which units; pooling clean and noisy runs " +
            "mixes the noise level's effect on both λ and error, so the sign depends on which condition has the sharper models. " +
            (c is null ? "" : c.Slope < 0 ? "Ours is negative as well." : "Ours is positive: here the noisy-label runs have both higher error and lower λ than the clean ones, or CRR lowers λ while error stays."));
        report.Line();
    }

    private static void Dynamics(TwoMoonsScale scale, ReportWriter report, TextWriter log, CancellationToken ct)
    {
        log.WriteLine($"dynamics: {scale.DynamicsSeeds} seeds × baseline/CRR, λ every {scale.DynamicsEvery} epochs");
        var conditions = new[] { ("baseline", (double?)null), ("CRR 0.003", 0.003) };
        var curves = new List<(string Name, int[] Epochs, double[] Error, double?[] Lambda)>();
        foreach (var (name, crr) in conditions)
        {
            var histories = new List<IReadOnlyList<EpochRecord>>();
            for (var seed = 0; seed < scale.DynamicsSeeds; seed++)
            {
                var request = Base(0.3, 400 + seed) with { Track = new TrackSettings { LambdaEvery = scale.DynamicsEvery } };
                if (crr is { } s) request = request with { Method = "crr", Crr = new CrrSettings { Scale = s, Orders = new OrderSpan(2, 3) } };
                var model = Train(request, log, ct);
                model.Network.Dispose();
                histories.Add(model.Result.History);
            }
            var epochs = histories[0].Select(e => e.Epoch).ToArray();
            var error = epochs.Select((_, i) => histories.Average(h => h[i].TestError)).ToArray();
            var lambda = epochs.Select((_, i) => histories.All(h => h[i].Lambda is not null) ? histories.Average(h => h[i].Lambda!.Value) : (double?)null).ToArray();
            curves.Add((name, epochs, error, lambda));
        }
        double? At(int i, int epoch) => curves[i].Lambda.Select((l, k) => (l, k)).Where(p => p.l is not null && curves[i].Epochs[p.k] <= epoch).Select(p => p.l).LastOrDefault();
        var rows = new[] { 15, 30, 50 }.Select(e => new[] { e.ToString(System.Globalization.CultureInfo.InvariantCulture), N(At(0, e) ?? double.NaN, 2), N(At(1, e) ?? double.NaN, 2) });
        report.Line("## 5. λ during training (30% label noise)");
        report.Line();
        report.Line($"{scale.DynamicsSeeds} seeds per condition (paper: 20), λ every {scale.DynamicsEvery} epochs (paper: every epoch). Mean λ at the last measurement up to each epoch:");
        report.Line();
        report.Table(["epoch", "baseline λ", "CRR (0.003) λ"], rows);
        var baselineRise = (At(0, 50) ?? double.NaN) - (At(0, 15) ?? double.NaN);
        var crrRise = (At(1, 50) ?? double.NaN) - (At(1, 15) ?? double.NaN);
        report.Line($"- After epoch 15 the baseline's λ changes by {N(baselineRise, 2)} and CRR's by {N(crrRise, 2)} (paper: baseline 1.63 → 2.24, CRR stable at 1.2–1.5) — " +
            (baselineRise > 0 && baselineRise > crrRise ? "**agrees**: the baseline keeps sharpening while CRR holds λ lower." : "**differs** from the paper's late sharpening of the baseline."));
        report.Line($"- Final test error: baseline {N(100 * curves[0].Error[^1], 2)}%, CRR {N(100 * curves[1].Error[^1], 2)}% (paper: 31.89% vs 32.44% on noisy test labels).");
        report.Line();
        foreach (var (name, epochs, error, lambda) in curves)
        {
            report.Plot($"dynamics-{(name == "baseline" ? "baseline" : "crr")}", $"{name}: mean test error per epoch and mean λ every {scale.DynamicsEvery} epochs over {scale.DynamicsSeeds} seeds",
                Png(f => PlotRenderer.RunHistory(new RunHistoryData(epochs, error, lambda, null, $"Two Moons, 30% label noise, {name}"), f)));
        }
    }
}
