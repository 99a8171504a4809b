using System.Globalization;
using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using LambdaService.Api.Training;
using LambdaService.Training;
using LambdaService.Training.Datasets;
using LambdaService.Training.Export;

namespace LambdaService.Api.Cli;

/// <summary><c>train</c>: a baseline, CRR or SAM run on Two Moons, MNIST or a labelled data file, with its metrics and an optional export.</summary>
public static class TrainVerb
{
    private static readonly string[] Valued =
    [
        "dataset", "test-data", "label-column", "method", "crr-scale", "crr-orders", "crr-directions", "crr-every", "crr-engine", "sam-rho",
        "epochs", "batch-size", "lr", "weight-decay", "seed", "label-noise", "samples", "noise", "test-fraction",
        "model", "hidden", "activation", "lambda-every", "pairs", "export", "device", "crr-target", "crr-target-every",
        "crr-at", "crr-pairs", "measure-at", "crr-target-gain", "crr-target-max-step", "crr-target-deadband", "crr-target-initial-scale",
        "crr-target-min-scale", "crr-target-max-scale", "crr-target-monitor-points",
    ];

    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, Valued, ["json", "adaptive"]);
        var dataset = a.Get("dataset") ?? "two-moons";
        var request = ParseRequest(a, dataset);
        request.Validate();
        TrainingData? data = dataset switch
        {
            "two-moons" or "mnist" => null,
            _ => FileData(a, dataset, request),
        };
        using var outcome = TrainingRun.Train(request, data, null, cancellationToken);
        ExportedModel? exported = null;
        if (a.Get("export") is { } directory)
        {
            exported = ModelExport.Write(outcome.Model.Network, Path.GetFullPath(directory));
        }
        if (a.Has("json"))
        {
            // The result object itself (the same JSON as a run's result), with "export" added when the network was written.
            var json = System.Text.Json.Nodes.JsonNode.Parse(CliJson.Serialize(outcome.Result))!.AsObject();
            if (exported is not null) json["export"] = System.Text.Json.Nodes.JsonNode.Parse(CliJson.Serialize(exported));
            stdout.WriteLine(json.ToJsonString(CliJson.Options));
            return 0;
        }
        var r = outcome.Result;
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(c, $"{r.Method} on {r.Config.TrainSamples} training / {r.Config.TestSamples} test samples, {request.Epochs} epochs, {r.TrainingSeconds:F1} s"));
        stdout.WriteLine(string.Create(c, $"test accuracy {r.TestAccuracy:F4} (error {r.TestError:F4})   ECE {r.Ece:F4}   hardest-20% accuracy {r.Hard20Accuracy:F4}"));
        if (r.Lambda is { } l) stdout.WriteLine(string.Create(c, $"λ = {l.Lambda:F4}   95% CI [{l.Ci95[0]:F4}, {l.Ci95[1]:F4}]   R² = {l.R2:F4}"));
        foreach (var p in r.PairLambdas) stdout.WriteLine(string.Create(c, $"λ({p.Pair}) = {(p.Measurement is { } m ? m.Lambda.ToString("F4", c) : "n/a")}"));
        stdout.WriteLine($"objective: {r.Config.Objective}");
        if (exported is not null) stdout.WriteLine($"exported: {exported.OnnxPath}, {exported.TorchScriptPath}");
        foreach (var w in r.Warnings) stdout.WriteLine($"warning: {w}");
        return 0;
    }

    /// <summary>
    /// <c>--crr-target MIN,MAX</c> or <c>VALUE+-TOLERANCE</c>, with the controller's <c>--crr-target-every</c>, <c>-gain</c>, <c>-max-step</c>,
    /// <c>-deadband</c>, <c>-initial-scale</c>, <c>-min-scale</c>, <c>-max-scale</c> and <c>-monitor-points</c> (the fields of <c>crr.target</c>), or null.
    /// </summary>
    private static CrrTargetSettings? CrrTarget(CliArguments a)
    {
        if (a.Get("crr-target") is not { } text) return null;
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var style = System.Globalization.NumberStyles.Float;
        double min, max;
        var parts = text.Split("+-");
        if (parts.Length == 2 && double.TryParse(parts[0], style, c, out var value) && double.TryParse(parts[1], style, c, out var tolerance) && tolerance >= 0)
        {
            (min, max) = (value - tolerance, value + tolerance);
        }
        else if (text.Split(',') is [var lo, var hi] && double.TryParse(lo, style, c, out min) && double.TryParse(hi, style, c, out max))
        {
        }
        else
        {
            throw new LambdaService.Measurement.MeasurementInputException("crr-target", $"--crr-target takes MIN,MAX or VALUE+-TOLERANCE, e.g. 1.2,1.5 or 1.35+-0.15; got '{text}'.");
        }
        var d = new CrrTargetSettings();
        return d with
        {
            Min = min,
            Max = max,
            Every = a.Int("crr-target-every", 1) ?? d.Every,
            Gain = a.Double("crr-target-gain") ?? d.Gain,
            MaxStep = a.Double("crr-target-max-step") ?? d.MaxStep,
            Deadband = a.Double("crr-target-deadband") ?? d.Deadband,
            InitialScale = a.Double("crr-target-initial-scale") ?? d.InitialScale,
            MinScale = a.Double("crr-target-min-scale") ?? d.MinScale,
            MaxScale = a.Double("crr-target-max-scale") ?? d.MaxScale,
            MonitorPoints = a.Int("crr-target-monitor-points") ?? d.MonitorPoints,
        };
    }

    /// <summary>The request the options describe (same names as the HTTP body).</summary>
    public static TrainingRequest ParseRequest(CliArguments a, string dataset)
    {
        var defaults = new TrainingRequest();
        var crrOrders = a.Range("crr-orders");
        var kind = a.Get("model") ?? (dataset == "mnist" ? "cnn" : "mlp");
        return defaults with
        {
            Data = defaults.Data with
            {
                Kind = dataset is "two-moons" or "mnist" ? dataset : "dataset",
                Samples = a.Int("samples") ?? defaults.Data.Samples,
                Noise = a.Double("noise") ?? defaults.Data.Noise,
                LabelNoise = a.Double("label-noise") ?? 0,
                TestFraction = a.Double("test-fraction") ?? defaults.Data.TestFraction,
            },
            Model = defaults.Model with
            {
                Kind = kind,
                Hidden = a.Shape("hidden") ?? defaults.Model.Hidden,
                Activation = a.Get("activation") ?? (kind == "cnn" ? "relu" : defaults.Model.Activation),
            },
            Method = a.Get("method") ?? "baseline",
            Crr = defaults.Crr with
            {
                Scale = a.Double("crr-scale") ?? defaults.Crr.Scale,
                Orders = crrOrders is { } o ? new OrderSpan(o.Item1, o.Item2) : defaults.Crr.Orders,
                Directions = a.Int("crr-directions") ?? defaults.Crr.Directions,
                Every = a.Int("crr-every") ?? defaults.Crr.Every,
                Engine = a.Get("crr-engine") ?? defaults.Crr.Engine,
                Target = CrrTarget(a),
                At = a.Get("crr-at") ?? defaults.Crr.At,
                Pairs = a.Get("crr-pairs")?.Split(',', StringSplitOptions.TrimEntries) ?? [],
            },
            Sam = defaults.Sam with { Rho = a.Double("sam-rho") ?? defaults.Sam.Rho, Adaptive = a.Has("adaptive") },
            Epochs = a.Int("epochs") ?? defaults.Epochs,
            BatchSize = a.Int("batch-size") ?? defaults.BatchSize,
            LearningRate = a.Double("lr") ?? defaults.LearningRate,
            WeightDecay = a.Double("weight-decay") ?? 0,
            Seed = a.Int("seed") ?? 0,
            Measure = defaults.Measure with
            {
                Pairs = a.Get("pairs")?.Split(',', StringSplitOptions.TrimEntries) ?? [],
                At = a.Get("measure-at") ?? defaults.Measure.At,
            },
            Track = defaults.Track with { LambdaEvery = a.Int("lambda-every", 0) ?? 0 },
            Device = a.Get("device") ?? defaults.Device,
        };
    }

    private static TrainingData FileData(CliArguments a, string path, TrainingRequest request)
    {
        var options = new DataReadOptions { LabelColumn = a.Get("label-column") ?? "label" };
        return TrainingInputs.Load(request, path, options, a.Get("test-data"), options)!;
    }
}
