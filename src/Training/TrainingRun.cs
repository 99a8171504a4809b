using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Metrics;
using LambdaService.Measurement.Models;
using LambdaService.Training.Datasets;
using LambdaService.Training.Methods;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training;

/// <summary>
/// Trains a small network with baseline cross-entropy, CRR or SAM (Adam optimiser) and measures it: test
/// accuracy, error, ECE, hardest-20% accuracy, and λ on the test set (paper §5.2–5.6).
/// </summary>
/// <remarks>
/// Reproducibility: the initial weights of linear and convolution layers come from a torch.Generator of the run's
/// own, seeded with <c>seed</c> (<see cref="Initialize"/>); <c>torch.manual_seed(seed)</c> is also called right
/// before the network is built, for any other layer a network may have (training itself draws nothing from
/// torch's generator; copies made for measurement save and restore it). The batch order (a Fisher–Yates
/// permutation per epoch, from <c>Seeds.Stream(seed, 11)</c>) and the CRR directions (<c>Seeds.Stream(seed, 12)</c>)
/// come from their own streams; the data and the measurement have their own seeds (default: the run's). The
/// same request therefore gives the same numbers on the same machine and thread count, even while other code
/// in the process uses torch's global generator. Training runs in float32 on the CPU; λ is measured on a
/// float64 copy of the network with the autograd engine.
/// </remarks>
public static class TrainingRun
{
    private const int EvaluationBatch = 4096;

    /// <summary>Serialises this class's use of torch's process-wide generator (seeding, building networks).</summary>
    private static readonly Lock SeedGate = new();

    /// <summary>Trains on the data the request describes (Two Moons) and returns the result; the network is disposed.</summary>
    /// <exception cref="MeasurementInputException">An invalid request (the field is named).</exception>
    public static TrainingResult Run(TrainingRequest request, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        using var outcome = Train(request, null, progress, cancellationToken);
        return outcome.Result;
    }

    /// <summary>Trains on the caller's data and returns the result; the network is disposed.</summary>
    /// <exception cref="MeasurementInputException">An invalid request or data (the field is named).</exception>
    public static TrainingResult Run(TrainingRequest request, TrainingData data, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var outcome = Train(request, data, progress, cancellationToken);
        return outcome.Result;
    }

    /// <summary>
    /// Trains on <paramref name="data"/> (or, when null, the data the request describes) and returns the result
    /// with the trained network, which the caller disposes.
    /// </summary>
    /// <exception cref="MeasurementInputException">An invalid request or data (the field is named).</exception>
    /// <exception cref="OperationCanceledException">Cancelled; checked before every batch.</exception>
    public static TrainingOutcome Train(TrainingRequest request, TrainingData? data, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        var threads = TorchRuntime.EnsureConfigured();
        var device = ComputeDevice.Torch(request.Device);
        request = request with
        {
            Data = request.Data with { Seed = request.Data.Seed ?? request.Seed },
            Measure = request.Measure with { Seed = request.Measure.Seed ?? request.Seed },
        };
        if (data is null) data = CreateData(request);
        else request = request with { Data = request.Data with { LabelNoise = data.LabelNoise } };
        CheckData(data);
        var pairs = request.Measure.Pairs.Select(p => TrainingRequest.ParsePair(p)).ToArray();
        foreach (var (a, b) in pairs)
        {
            if (a >= data.Classes || b >= data.Classes)
            {
                throw new MeasurementInputException("measure.pairs", $"pair {a}-{b} names a class the data does not have (classes 0..{data.Classes - 1}).");
            }
        }
        if ((request.Crr.PenalisedClasses() ?? []).Where(c => c >= data.Classes).ToArray() is [var missing, ..])
        {
            throw new MeasurementInputException("crr.pairs", $"class {missing} does not exist in the data (classes 0..{data.Classes - 1}); name pairs of its classes.");
        }
        var finalOptions = request.MeasurementOptions(null);
        var warnings = new List<string>();
        Dataset? monitor = null;
        if (request.Crr.Target is { } band && request.Method == "crr-target")
        {
            // The number of monitor samples is resolved here (it depends on the data) and echoed in the result's request.
            band = band with { MonitorPoints = band.ResolvedMonitorPoints(data.TrainCount) };
            request = request with { Crr = request.Crr with { Target = band } };
            (data, monitor) = HoldOutMonitor(data, band.MonitorPoints!.Value, request.Seed);
        }

        nn.Module<Tensor, Tensor> network;
        lock (SeedGate)
        {
            manual_seed(request.Seed);
            network = CreateNetwork(request.Model, data.SampleShape, data.Classes, request.Seed);
        }
        network.to(device);
        try
        {
            var method = CreateMethod(request);
            var (history, trainSeconds, measureSeconds) = Fit(network, method, request, data, monitor, progress, warnings, cancellationToken);

            var clock = Stopwatch.StartNew();
            network.eval();
            var testProbabilities = ClassificationMetrics.Softmax(Logits(network, data.TestX, data.TestCount, data.SampleShape), data.Classes);
            var metrics = ClassificationMetrics.Compute(testProbabilities, data.Classes, data.TestY);
            var trainProbabilities = ClassificationMetrics.Softmax(Logits(network, data.TrainX, data.TrainCount, data.SampleShape), data.Classes);
            var trainAccuracy = ClassificationMetrics.Compute(trainProbabilities, data.Classes, data.TrainY).Accuracy;
            var testSet = TestDataset(data);
            var lambda = MeasureLambda(network, request.Model, data, testSet, finalOptions, null, warnings, cancellationToken);
            var pairLambdas = pairs.Select(p => new PairLambda($"{p.A}-{p.B}",
                MeasureLambda(network, request.Model, data, PairSamples(testSet, p), request.MeasurementOptions(null, PointSelection.Pairs, p), p, warnings, cancellationToken))).ToArray();
            measureSeconds += clock.Elapsed.TotalSeconds;

            var widths = network is Mlp mlp ? mlp.Widths : [];
            var config = new ResolvedTraining(request, method.Formula, widths, data.SampleShape, data.Classes, data.TrainCount, data.TestCount,
                data.NoisyTrainLabels, data.Source, "float32", ComputeDevice.Name(device), Versions(threads), CrrEngine(method));
            var result = new TrainingResult(method.Name, metrics.Accuracy, 1 - metrics.Accuracy, metrics.Ece, metrics.Hard20Accuracy, trainAccuracy,
                history[^1].TrainLoss, lambda, pairLambdas, trainSeconds, measureSeconds, history, config, warnings,
                (method as CrrTargetMethod)?.Controller.TimeInBand);
            return new TrainingOutcome(result, new TrainedModel(network, request.Model, data.SampleShape, data.Classes));
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>The engine of a CRR run's penalised steps (<see cref="CrrMethod.EngineUsed"/>), null for other methods.</summary>
    private static string? CrrEngine(ITrainingMethod method) => method switch
    {
        CrrMethod crr => crr.EngineUsed,
        CrrTargetMethod target => target.Crr.EngineUsed,
        _ => null,
    };

    /// <summary>
    /// The data a request describes: Two Moons (see <see cref="TwoMoons"/>) or MNIST (the 10,000-digit cache, its
    /// 8,000 / 2,000 split by the request's data seed, label noise on the training part drawn with the run's seed;
    /// see <see cref="Mnist"/>).
    /// </summary>
    /// <exception cref="MeasurementInputException">A kind that needs data from the caller, or MNIST's cache is missing (field <c>data.kind</c>).</exception>
    public static TrainingData CreateData(TrainingRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var d = request.Data;
        return d.Kind switch
        {
            "two-moons" => TwoMoons.Generate(d.Samples, d.Noise, d.LabelNoise, d.TestFraction, d.Seed ?? request.Seed),
            "mnist" => MnistData(d.Seed ?? request.Seed, d.LabelNoise, request.Seed),
            _ => throw new MeasurementInputException("data.kind", $"data kind '{d.Kind}' is not generated here; use two-moons or mnist, or supply a data set."),
        };
    }

    private static TrainingData MnistData(int splitSeed, double labelNoise, int noiseSeed)
    {
        try
        {
            var data = Mnist.Load(new MnistOptions { SplitSeed = splitSeed }).ToTrainingData();
            return labelNoise > 0 ? data.WithTrainLabelNoise(labelNoise, noiseSeed) : data;
        }
        catch (MnistUnavailableException e)
        {
            throw new MeasurementInputException("data.kind", e.Message, e);
        }
    }

    /// <summary>
    /// Checks, without building anything, that a network of <paramref name="spec"/> can take samples of
    /// <paramref name="sampleShape"/> (the cnn needs square images).
    /// </summary>
    /// <exception cref="MeasurementInputException">It cannot (field <c>model.kind</c>, <c>model.activation</c> or <c>model</c>).</exception>
    public static void CheckNetwork(ModelSpec spec, int[] sampleShape, int classes)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (spec.Kind == "cnn") _ = CnnOptionsFor(spec, sampleShape, classes);
    }

    /// <summary>
    /// Builds an untrained network for samples of <paramref name="sampleShape"/> and <paramref name="classes"/>
    /// outputs; with <paramref name="seed"/>, its linear and convolution layers are then drawn by <see cref="Initialize"/>.
    /// </summary>
    public static nn.Module<Tensor, Tensor> CreateNetwork(ModelSpec spec, int[] sampleShape, int classes, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(sampleShape);
        var size = sampleShape.Aggregate(1, (a, b) => a * b);
        nn.Module<Tensor, Tensor> network = spec.Kind switch
        {
            "mlp" => new Mlp([size, .. spec.Hidden, classes], spec.Activation),
            "cnn" => new Cnn(CnnOptionsFor(spec, sampleShape, classes)),
            _ => throw new MeasurementInputException("model.kind", $"model kind '{spec.Kind}' is not known; use mlp or cnn."),
        };
        if (seed is { } s) Initialize(network, s);
        return network;
    }

    /// <summary>
    /// The paper's CNN for square images: samples <c>[C, S, S]</c>, <c>[S, S]</c> or a flat <c>S²</c> (one channel);
    /// activation relu or tanh; the layer sizes are <see cref="CnnOptions"/>' defaults.
    /// </summary>
    private static CnnOptions CnnOptionsFor(ModelSpec spec, int[] sampleShape, int classes)
    {
        var (channels, side) = sampleShape switch
        {
            [var c, var h, var w] when h == w => (c, h),
            [var h, var w] when h == w => (1, h),
            [var n] when (int)Math.Sqrt(n) is var r && r * r == n => (1, r),
            _ => throw new MeasurementInputException("model.kind", $"the cnn needs square images ([C, S, S] or S² values per sample); the data's samples are [{string.Join(",", sampleShape)}]."),
        };
        if (spec.Activation is not ("relu" or "tanh")) throw new MeasurementInputException("model.activation", "the cnn's activation is relu or tanh.");
        var options = new CnnOptions { InputChannels = channels, ImageSize = side, Classes = classes, Activation = spec.Activation };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new MeasurementInputException("model", $"the cnn cannot take samples of [{string.Join(",", sampleShape)}]: {e.Message}", e);
        }
        return options;
    }

    /// <summary>
    /// Draws the weight and bias of every <c>Linear</c> and convolution layer (in module order, weight then bias)
    /// from <c>U(−1/√fan_in, 1/√fan_in)</c>, <c>fan_in = weight.shape[1] · Π kernel</c> — the distribution of
    /// torch.nn.Linear's and ConvNd's default initialisation (kaiming_uniform with a = √5) — using a
    /// <c>torch.Generator</c> of its own seeded with <paramref name="seed"/>. Unlike the process-wide generator
    /// behind <c>torch.manual_seed</c>, nothing else running in the process can shift these draws. Other layers
    /// (batch norm: ones and zeros) keep their constructor's values.
    /// </summary>
    public static void Initialize(nn.Module network, int seed)
    {
        ArgumentNullException.ThrowIfNull(network);
        using var generator = new Generator(unchecked((ulong)seed), CPU);
        using var noGrad = no_grad();
        foreach (var module in network.modules())
        {
            var (weight, bias) = module switch
            {
                TorchSharp.Modules.Linear l => (l.weight, l.bias),
                TorchSharp.Modules.Convolution c => (c.weight, c.bias),
                _ => (null, null),
            };
            if (weight is null) continue;
            var fanIn = weight.shape[1..].Aggregate(1L, (a, b) => a * b);
            var bound = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
            // Tensor.uniform_ honours the generator; nn.init.uniform_(…, generator) in TorchSharp 0.107 draws from
            // the global generator instead (checked here: its values change with torch.manual_seed).
            weight.uniform_(-bound, bound, generator);
            bias?.uniform_(-bound, bound, generator);
        }
    }

    /// <summary>The training method a (validated) request names, with its seeded streams.</summary>
    public static ITrainingMethod CreateMethod(TrainingRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var c = request.Crr;
        CrrMethod Crr(double scale) => new(scale, c.Orders.Min, c.Orders.Max, c.Directions, c.Every, Seeds.Stream(request.Seed, 12),
            taylor: c.Engine != "autograd", at: c.At, classes: c.PenalisedClasses(), fused: FusedChoice(c.Engine));
        return request.Method switch
        {
            "crr" => Crr(c.Scale),
            "crr-target" => new CrrTargetMethod(
                Crr(0),
                new LambdaBandController(request.Crr.Target ?? throw new MeasurementInputException("crr.target", "method crr-target needs crr.target { min, max }."))),
            "sam" => new SamMethod(request.Sam.Rho, request.Sam.Adaptive),
            "baseline" => new BaselineMethod(),
            _ => throw new MeasurementInputException("method", $"method '{request.Method}' is not known; use baseline, crr, sam or crr-target."),
        };
    }

    /// <summary>crr.engine → the method's fused-kernel choice: required (<c>fused</c>), where it applies (<c>auto</c>) or never.</summary>
    private static bool? FusedChoice(string engine) => engine switch
    {
        "fused" => true,
        "auto" => null,
        _ => false,
    };

    private static (List<EpochRecord> History, double TrainSeconds, double MeasureSeconds) Fit(nn.Module<Tensor, Tensor> network, ITrainingMethod method,
        TrainingRequest request, TrainingData data, Dataset? monitor, IProgress<TrainingProgress>? progress, List<string> warnings, CancellationToken cancellationToken)
    {
        // crr-target: λ on the held-out monitor samples every `every` steps (counted in the training time: it is part of the method).
        var target = method as CrrTargetMethod;
        // The monitor measures λ where the penalty acts (crr.at).
        var monitorOptions = target is null ? null : request.MeasurementOptions(0) with { MaxPoints = monitor!.Rows, At = request.Crr.At };
        var monitorWarnings = new List<string>();
        double? lastMonitor = null;
        long[] shape = [.. data.SampleShape.Select(d => (long)d)];
        var device = DeviceOf(network);
        using var hostX = tensor(data.TrainX, [data.TrainCount, .. shape]);
        using var hostY = tensor(data.TrainY.Select(y => (long)y).ToArray(), [data.TrainCount]);
        using var trainX = hostX.to(device);
        using var trainY = hostY.to(device);
        using var optimizer = optim.Adam(network.parameters(), lr: request.LearningRate, weight_decay: request.WeightDecay);
        var order = Seeds.Stream(request.Seed, 11);
        var history = new List<EpochRecord>(request.Epochs);
        var trainClock = new Stopwatch();
        var measureClock = new Stopwatch();
        var trackOptions = request.Track.LambdaEvery > 0 ? request.MeasurementOptions(0) : null;
        var testSet = trackOptions is null ? null : TestDataset(data);
        var trackWarnings = new List<string>();
        long step = 0;
        for (var epoch = 1; epoch <= request.Epochs; epoch++)
        {
            trainClock.Start();
            network.train();
            var permutation = Seeds.Permutation(order, data.TrainCount);
            double lossSum = 0, penaltySum = 0;
            var penalised = 0;
            int updates = 0, inBand = 0;
            for (var start = 0; start < data.TrainCount; start += request.BatchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var count = Math.Min(request.BatchSize, data.TrainCount - start);
                using var scope = NewDisposeScope();
                if (target is not null && step % target.Controller.Settings.Every == 0)
                {
                    var measured = MeasureLambda(network, request.Model, data, monitor!, monitorOptions!, null, monitorWarnings, cancellationToken)?.Lambda ?? double.NaN;
                    target.Observe(measured);
                    lastMonitor = measured;
                    updates++;
                    if (target.Controller.Contains(measured)) inBand++;
                }
                var index = tensor(permutation.AsSpan(start, count).ToArray().Select(i => (long)i).ToArray(), [count]).to(device);
                var scaleInForce = target?.Scale;
                var loss = method.Step(network, trainX.index_select(0, index), trainY.index_select(0, index), optimizer, step++);
                if (target is not null) CrrTargetMethod.CheckFinite(loss, step - 1, epoch, scaleInForce!.Value);
                lossSum += loss.Loss * count;
                if (loss.Penalty is { } p)
                {
                    penaltySum += p;
                    penalised++;
                }
            }
            var trainLoss = lossSum / data.TrainCount;
            if (!double.IsFinite(trainLoss)) warnings.Add($"the training loss became {trainLoss} in epoch {epoch}; lower the learning rate or the CRR scale.");
            network.eval();
            var probabilities = ClassificationMetrics.Softmax(Logits(network, data.TestX, data.TestCount, data.SampleShape), data.Classes);
            var testError = 1 - ClassificationMetrics.Compute(probabilities, data.Classes, data.TestY).Accuracy;
            trainClock.Stop();

            double? lambda = null;
            if (trackOptions is not null && (epoch % request.Track.LambdaEvery == 0 || epoch == request.Epochs))
            {
                measureClock.Start();
                lambda = MeasureLambda(network, request.Model, data, testSet!, trackOptions, null, trackWarnings, cancellationToken)?.Lambda;
                measureClock.Stop();
            }
            history.Add(target is null
                ? new EpochRecord(epoch, trainLoss, penalised > 0 ? penaltySum / penalised : null, testError, lambda)
                : new EpochRecord(epoch, trainLoss, penalised > 0 ? penaltySum / penalised : null, testError, lambda, target.Scale, lastMonitor,
                    updates > 0 ? (double)inBand / updates : null));
            progress?.Report(new TrainingProgress(epoch, request.Epochs, trainLoss, testError, lambda));
        }
        network.eval();
        warnings.AddRange(trackWarnings.Distinct().Select(w => "tracking: " + w));
        warnings.AddRange(monitorWarnings.Distinct().Select(w => "crr-target monitor: " + w));
        return (history, trainClock.Elapsed.TotalSeconds, measureClock.Elapsed.TotalSeconds);
    }

    /// <summary>Logits of <paramref name="count"/> samples in double, evaluated without gradients in batches.</summary>
    private static double[] Logits(nn.Module<Tensor, Tensor> network, float[] x, int count, int[] sampleShape)
    {
        var size = sampleShape.Aggregate(1, (a, b) => a * b);
        var result = new List<double>();
        var device = DeviceOf(network);
        using var noGrad = no_grad();
        for (var start = 0; start < count; start += EvaluationBatch)
        {
            var n = Math.Min(EvaluationBatch, count - start);
            using var scope = NewDisposeScope();
            var input = tensor(x.AsSpan(start * size, n * size).ToArray(), [n, .. sampleShape.Select(d => (long)d)]).to(device);
            result.AddRange(network.call(input).to(ScalarType.Float64).cpu().reshape(-1).data<double>().ToArray());
        }
        return [.. result];
    }

    /// <summary>
    /// λ on the test set with a float64 copy of the network. For boundary points, when no test point lies in the
    /// band, all test points are used instead (and a warning says so).
    /// </summary>
    private static LambdaMeasurement? MeasureLambda(nn.Module<Tensor, Tensor> network, ModelSpec spec, TrainingData data, Dataset testSet,
        MeasurementOptions options, (int A, int B)? pair, List<string>? warnings, CancellationToken cancellationToken)
    {
        using var copy = Copy(network, spec, data);
        using var runner = TorchModelRunner.FromModule(copy, data.SampleShape, device: DeviceOf(network));
        var points = pair is { } p ? $"pair {p.A}-{p.B}" : options.Points == PointSelection.All ? "all" : "boundary";
        MeasurementResult? result;
        try
        {
            result = CurvatureRate.Estimate(runner, testSet, options, null, cancellationToken);
        }
        catch (MeasurementInputException e) when (e.Field == "band" && options.Points == PointSelection.Boundary)
        {
            warnings?.Add($"no test point has its largest predicted probability within {options.Band.Low}-{options.Band.High}; λ was measured on all test points.");
            points = "all";
            result = null;
        }
        catch (MeasurementInputException e)
        {
            // The options were validated; what is left depends on the trained network and the data (a class pair
            // without test samples, fewer than two orders with non-zero derivatives).
            warnings?.Add($"λ ({points}) could not be measured: {e.Message}");
            return null;
        }
        if (result is null)
        {
            try
            {
                result = CurvatureRate.Estimate(runner, testSet, options with { Points = PointSelection.All }, null, cancellationToken);
            }
            catch (MeasurementInputException e)
            {
                warnings?.Add($"λ ({points}) could not be measured: {e.Message}");
                return null;
            }
        }
        return new LambdaMeasurement(result.Lambda, result.Intercept, result.R2, result.Ci95, result.Orders, points, result.PointsUsed,
            result.PointsEligible, result.Warnings);
    }

    /// <summary>
    /// λ of a trained network on <paramref name="data"/>'s test set with any measurement options (a float64 copy of
    /// the network, as for the run's own λ) — for protocols that vary the band, the directions, the orders, the labels
    /// or the target on the same model.
    /// </summary>
    /// <exception cref="MeasurementInputException">The options select no points (e.g. an empty band) or the fit is impossible.</exception>
    public static MeasurementResult MeasureTest(TrainedModel model, TrainingData data, MeasurementOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        using var copy = Copy(model.Network, model.Spec, data);
        using var runner = TorchModelRunner.FromModule(copy, data.SampleShape, device: DeviceOf(model.Network));
        return CurvatureRate.Estimate(runner, TestDataset(data), options, null, cancellationToken);
    }

    /// <summary>A new network of the same kind holding copies of <paramref name="network"/>'s parameters and buffers; torch's generator is left as it was.</summary>
    private static nn.Module<Tensor, Tensor> Copy(nn.Module<Tensor, Tensor> network, ModelSpec spec, TrainingData data)
    {
        nn.Module<Tensor, Tensor> copy;
        lock (SeedGate)
        {
            using var state = get_rng_state();
            copy = CreateNetwork(spec, data.SampleShape, data.Classes);
            set_rng_state(state);
        }
        using var noGrad = no_grad();
        foreach (var (target, source) in copy.parameters().Zip(network.parameters())) target.copy_(source);
        foreach (var (target, source) in copy.buffers().Zip(network.buffers())) target.copy_(source);
        return copy;
    }

    /// <summary>The device a network's parameters live on.</summary>
    private static Device DeviceOf(nn.Module network) => network.parameters().FirstOrDefault()?.device ?? CPU;

    /// <summary>
    /// Splits <paramref name="points"/> training samples off (a seeded choice) as the monitor set of crr-target, labelled with their
    /// clean labels like the test set; training goes on with the rest.
    /// </summary>
    private static (TrainingData Training, Dataset Monitor) HoldOutMonitor(TrainingData data, int points, int seed)
    {
        if (data.TrainCount - points < 2)
        {
            throw new MeasurementInputException("crr.target.monitorPoints",
                $"holding out {points} monitor samples leaves {data.TrainCount - points} of the {data.TrainCount} training samples; use fewer monitorPoints or more data.");
        }
        var size = data.SampleSize;
        var chosen = Seeds.Permutation(Seeds.Stream(seed, 13), data.TrainCount);
        var held = chosen.Skip(data.TrainCount - points).Order().ToArray();
        var kept = chosen.Take(data.TrainCount - points).Order().ToArray();
        float[] Rows(int[] rows) => rows.SelectMany(r => data.TrainX.AsSpan(r * size, size).ToArray()).ToArray();
        var training = data with
        {
            TrainX = Rows(kept),
            TrainY = kept.Select(r => data.TrainY[r]).ToArray(),
            CleanTrainY = kept.Select(r => data.CleanTrainY[r]).ToArray(),
        };
        var x = Rows(held);
        var y = held.Select(r => data.CleanTrainY[r]).ToArray();
        var hash = SHA256.HashData([.. MemoryMarshal.AsBytes(x.AsSpan()), .. MemoryMarshal.AsBytes(y.AsSpan())]);
        return (training, new Dataset(x.Select(v => (double)v).ToArray(), points, data.SampleShape, y, "arrays", Convert.ToHexStringLower(hash)));
    }

    /// <summary>
    /// The test samples of a pair's two classes, in their order. A pair's λ chooses its points among exactly these (points
    /// <c>pairs</c>: the same eligible rows in the same order, so the same seeded subset, directions and λ), and the forward pass
    /// over every other test sample that point selection would otherwise make is skipped.
    /// </summary>
    private static Dataset PairSamples(Dataset test, (int A, int B) pair)
    {
        var rows = Enumerable.Range(0, test.Rows).Where(r => test.Labels![r] == pair.A || test.Labels[r] == pair.B).ToArray();
        if (rows.Length == 0) return test;   // the measurement then says that no test sample has a label in the pair
        var size = test.SampleSize;
        var x = new double[(long)rows.Length * size];
        for (var i = 0; i < rows.Length; i++) Array.Copy(test.X, (long)rows[i] * size, x, (long)i * size, size);
        return test with { X = x, Rows = rows.Length, Labels = [.. rows.Select(r => test.Labels![r])] };
    }

    private static Dataset TestDataset(TrainingData data)
    {
        var x = data.TestX.Select(v => (double)v).ToArray();
        var hash = SHA256.HashData([.. MemoryMarshal.AsBytes(data.TestX.AsSpan()), .. MemoryMarshal.AsBytes(data.TestY.AsSpan())]);
        return new Dataset(x, data.TestCount, data.SampleShape, data.TestY, "arrays", Convert.ToHexStringLower(hash));
    }

    private static void CheckData(TrainingData data)
    {
        var size = data.SampleSize;
        if (data.Classes < 2) throw new MeasurementInputException("data", $"training needs at least 2 classes (got {data.Classes}).");
        if (data.TrainCount < 1 || data.TestCount < 1) throw new MeasurementInputException("data", "training needs at least one training and one test sample.");
        if (size < 1 || data.TrainX.Length != (long)data.TrainCount * size || data.TestX.Length != (long)data.TestCount * size)
        {
            throw new MeasurementInputException("data", $"the feature arrays do not hold {size} values per sample.");
        }
        if (data.TrainY.Concat(data.TestY).Any(y => y < 0 || y >= data.Classes))
        {
            throw new MeasurementInputException("data", $"labels must be class indices 0..{data.Classes - 1}.");
        }
        if (data.TrainX.Any(v => !float.IsFinite(v)) || data.TestX.Any(v => !float.IsFinite(v)))
        {
            throw new MeasurementInputException("data", "the features hold NaN or infinite values (perhaps beyond float32's range).");
        }
    }

    private static RunVersions Versions(int threads) => new(
        typeof(TrainingRun).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown",
        typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown",
        Environment.Version.ToString(),
        RuntimeInformation.OSDescription,
        threads);
}
