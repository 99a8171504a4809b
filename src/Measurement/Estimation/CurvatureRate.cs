using System.Diagnostics;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Metrics;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Numerics;
using LambdaService.Measurement.Taylor;

namespace LambdaService.Measurement.Estimation;

/// <summary>
/// The curvature rate λ of a model on data (paper §2, README). For the scalar <c>f</c> (the loss or a
/// logit at each chosen point x), unit directions v and orders n = nmin..nmax:
/// <c>Dⁿ_v f(x) = dⁿ/dtⁿ f(x + t v)|₀</c>; <c>v_n = mean_{x,v} |Dⁿ_v f(x)|</c> (or the root mean square);
/// optionally <c>v_n / n!</c>; and <c>λ = slope of the least-squares line of log v_n against n</c>, with its
/// intercept, R², a 95% bootstrap interval over points and the distribution of per-point slopes.
/// </summary>
public static class CurvatureRate
{
    /// <summary>Reads a model and a data file and measures λ (<see cref="Load"/>, then <see cref="Estimate(IModelRunner, Dataset, MeasurementOptions, IProgress{double}?, CancellationToken)"/>). User errors raise <see cref="MeasurementInputException"/>.</summary>
    public static MeasurementResult Measure(string modelPath, string dataPath, MeasurementOptions options, DataReadOptions? dataOptions,
        IProgress<double>? progress, CancellationToken cancellationToken)
    {
        using var loaded = Load(modelPath, dataPath, options, dataOptions);
        return Estimate(loaded.Runner, loaded.Data, options, progress, cancellationToken);
    }

    /// <summary>
    /// The first half of <see cref="Measure"/>: reads the model and the data and prepares the model to run on them
    /// (<see cref="CreateRunner"/>), without measuring. A file that cannot be loaded — its runtime refuses it, its shapes
    /// do not fit together — raises <see cref="MeasurementInputException"/> naming <c>model</c> or <c>data</c>
    /// (<see cref="MeasurementInputException.Loading{T}"/>), so that a caller can tell it from a fault in the computation.
    /// </summary>
    public static LoadedMeasurement Load(string modelPath, string dataPath, MeasurementOptions options, DataReadOptions? dataOptions)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var file = MeasurementInputException.Loading("model", "the model", () => ModelFile.Open(modelPath));
        if (file.Format == ModelFormat.TorchScript && options.Engine is EngineChoice.Auto or EngineChoice.Autograd)
        {
            // Before libtorch sees the model: an operator without a second derivative would abort the process (TorchScriptOperators).
            TorchScriptOperators.RefuseAutograd(TorchScriptOperators.Find(file), options.MaxOrder);
        }
        var data = MeasurementInputException.Loading("data", "the data", () => DatasetReader.Read(dataPath, dataOptions ?? new DataReadOptions()));
        var runner = MeasurementInputException.Loading("model", "the model",
            () => CreateRunner(file, data, options.SampleShape, new OnnxRunnerOptions { Device = options.Device }, options.Engine, options.Device, options.Precision));
        return new LoadedMeasurement(data, runner);
    }

    /// <summary>
    /// Prepares a model file to run on the data's samples (ONNX Runtime or libtorch). Samples take
    /// <paramref name="sampleShape"/> when given (its size must equal the data's sample size), else the ONNX
    /// model's input shape where the sizes agree, else the data's own shape. For <paramref name="engine"/> auto,
    /// taylor or autograd an ONNX graph whose operators are all supported is imported into libtorch (in <paramref name="precision"/>) so that
    /// the exact engines can run it; with other operators auto falls back to ONNX Runtime (and finite differences)
    /// and says which operators, while taylor and autograd are refused naming them.
    /// </summary>
    /// <param name="file">The model.</param>
    /// <param name="data">The data it will run on.</param>
    /// <param name="sampleShape">Shape of one sample as fed to the model, or null.</param>
    /// <param name="onnxOptions">ONNX Runtime's settings (its device among them).</param>
    /// <param name="engine">The engine that will run: decides whether an ONNX graph is imported into libtorch.</param>
    /// <param name="device">Where libtorch runs the exact engines: auto, cpu or cuda (<see cref="ComputeDevice"/>); ONNX Runtime takes <paramref name="onnxOptions"/>.</param>
    /// <param name="precision">
    /// The dtype libtorch runs the model in (<see cref="MeasurementOptions.Precision"/>); float32 where only ONNX Runtime (finite
    /// differences) can run the model is refused naming <c>precision</c>.
    /// </param>
    public static IModelRunner CreateRunner(ModelFile file, Dataset data, int[]? sampleShape = null, OnnxRunnerOptions? onnxOptions = null,
        EngineChoice engine = EngineChoice.FiniteDifference, string device = "auto", ComputePrecision precision = ComputePrecision.Float64)
    {
        var dtype = MeasurementOptions.DType(precision);
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(data);
        if (sampleShape is not null)
        {
            var size = sampleShape.Aggregate(1L, (a, b) => a * b);
            if (sampleShape.Length == 0 || sampleShape.Any(d => d < 1) || size != data.SampleSize)
            {
                throw new MeasurementInputException("inputShape",
                    $"input shape [{string.Join(",", sampleShape)}] holds {size} values but each sample has {data.SampleSize}; give dimensions whose product is {data.SampleSize} (e.g. 1,28,28 for 784).");
            }
            data = data with { SampleShape = sampleShape };
        }
        // The runtime (and auto's fallback) is EngineResolution's choice, the same the service makes when a measurement is submitted.
        if (file.Format == ModelFormat.Onnx)
        {
            var shape = DataShaping.ConformSampleShape(data, file.Inputs[0].Shape);
            Taylor.JetGraph? graph = null;
            var resolved = EngineResolution.Resolve(file.Format, engine, precision,
                () => Taylor.JetGraph.TryImport(file.Onnx!, out graph, out var problems, dtype) ? [] : problems);
            if (resolved.Runtime == ModelRuntime.ImportedOnnxGraph)
            {
                return TorchModelRunner.FromOnnxGraph(graph ?? throw new InvalidOperationException("the ONNX graph was not imported."), file, shape, ComputeDevice.Torch(device), dtype);
            }
            var runner = OnnxRunner.Create(file, shape, onnxOptions);
            if (resolved.Note is { } note) runner.AddNote(note);
            return runner;
        }
        EngineResolution.Resolve(file.Format, engine, precision, () => []);
        return TorchModelRunner.LoadTorchScript(file, data.SampleShape, ComputeDevice.Torch(device), dtype);
    }

    /// <summary>Measures λ with the engine that <paramref name="options"/> names (auto: autograd for TorchSharp/TorchScript, finite differences for ONNX).</summary>
    public static MeasurementResult Estimate(IModelRunner model, Dataset data, MeasurementOptions options, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        CheckPrecision(model, options);
        if (!Layers.IsInput(options.At)) return EstimateAtLayer(model, data, options, progress, cancellationToken);
        var scale = FeatureScale(data);
        var engine = ChooseEngine(options.Engine, model, scale, LineBudget.Memory(options.MemoryBudgetMb));
        return Core(model, engine, data, options, engine is FiniteDifferenceEngine ? scale : null, null, progress, cancellationToken);
    }

    /// <summary>
    /// <c>precision: float32</c> needs a libtorch runner prepared in float32 (<see cref="CreateRunner"/>, <see cref="TorchModelRunner.FromModule"/>
    /// with its dtype): the exact engines compute in the runner's dtype. A runner for ONNX Runtime (finite differences only) is
    /// refused naming <c>precision</c>; a float64 libtorch runner is a caller's mistake (casting it here would round its parameters for good).
    /// </summary>
    private static void CheckPrecision(IModelRunner model, MeasurementOptions options)
    {
        if (options.Precision != ComputePrecision.Float32) return;
        if (model is not TorchModelRunner torch) throw MeasurementOptions.PrecisionNeedsExactEngine("only finite differences can run this model");
        if (torch.DType != TorchSharp.torch.ScalarType.Float32)
        {
            throw new ArgumentException("precision float32 needs a runner prepared in float32 (CurvatureRate.CreateRunner with its precision, TorchModelRunner.FromModule with dtype Float32).", nameof(options));
        }
    }

    /// <summary>The engine <paramref name="choice"/> names for <paramref name="model"/> (auto: Taylor mode where its structure is known, else autograd for libtorch, else finite differences).</summary>
    private static IDerivativeEngine ChooseEngine(EngineChoice choice, IModelRunner model, double finiteDifferenceScale, LineBudget budget) => (choice, model) switch
    {
        (EngineChoice.Auto or EngineChoice.Taylor, TorchModelRunner { JetModule: { } jet } torch) => new TaylorEngine(jet, torch.SampleShape, torch.DType, budget, torch.TorchDevice),
        (EngineChoice.Taylor, _) => throw new MeasurementInputException("engine",
            "the taylor engine needs a model whose structure it can read (an ONNX graph of supported operators, the project's own networks); use engine autograd or finite-difference."),
        (EngineChoice.Auto or EngineChoice.Autograd, TorchModelRunner torch) => new AutogradEngine(torch, budget),
        (EngineChoice.Autograd, _) => throw new MeasurementInputException("engine",
            "the autograd engine needs a TorchScript model or an ONNX graph of supported operators; use engine finite-difference (or auto)."),
        _ => new FiniteDifferenceEngine(model, new FiniteDifferenceSettings(Scale: finiteDifferenceScale), budget),
    };

    /// <summary>
    /// λ at a layer L (<see cref="MeasurementOptions.At"/>): points, labels and metrics come from the whole model at x; the
    /// engine differentiates <c>ℓ ∘ g_L</c> at <c>h_L(x)</c> along unit directions in the layer's space. Only the exact engines
    /// (Taylor mode: the jet starts at L; nested autograd on g_L) run there.
    /// </summary>
    private static MeasurementResult EstimateAtLayer(IModelRunner model, Dataset data, MeasurementOptions options, IProgress<double>? progress,
        CancellationToken cancellationToken)
    {
        if (options.Engine == EngineChoice.FiniteDifference) throw Layers.NeedsExactEngine(options.At);
        if (model is not TorchModelRunner torch)
        {
            var why = string.Join("; ", model.Notes.Select(n => n.TrimEnd('.')));
            throw new MeasurementInputException("at",
                $"layer '{options.At}' cannot be reached: this model runs in ONNX Runtime{(why.Length > 0 ? $" ({why})" : "")}, where only '{Layers.Input}' is measured. "
                + "Export it with operators the taylor engine supports to measure at a layer.");
        }
        // g_L is a libtorch runner with jet rules (its input: the layer's activation), so the engines are chosen as for any such model.
        using var cut = torch.Cut(options.At);
        return Core(model, ChooseEngine(options.Engine, cut.Suffix, double.NaN, LineBudget.Memory(options.MemoryBudgetMb)), data, options, null, cut, progress, cancellationToken);
    }

    /// <summary>
    /// The warning for a model with piecewise operators <paramref name="kinks"/> (ONNX operator types or TorchScript's aten
    /// names), of which <paramref name="linear"/> have affine pieces.
    /// </summary>
    private static string PiecewiseWarning(IReadOnlyList<string> kinks, IReadOnlyList<string> linear) => linear.Count == kinks.Count
        ? $"the model has piecewise-linear operators ({string.Join(", ", kinks)}): where they are its only nonlinearities, its logits have "
            + "zero derivatives of order ≥ 2 almost everywhere, so λ of the loss reflects the softmax head (and λ of a logit is −∞)."
        : $"the model has piecewise operators ({string.Join(", ", kinks)}): each point's derivatives are those of the piece it lies on "
            + "(chosen from its value, as for ReLU), exact away from the switches between pieces.";

    /// <summary>Measures λ with a given engine (at the model's input: <see cref="MeasurementOptions.At"/> must be <c>input</c>).</summary>
    public static MeasurementResult Estimate(IModelRunner model, IDerivativeEngine engine, Dataset data, MeasurementOptions options,
        double? finiteDifferenceScale, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Precision == ComputePrecision.Float32 && engine is FiniteDifferenceEngine) throw MeasurementOptions.PrecisionNeedsExactEngine("a finite-difference engine was given");
        if (!Layers.IsInput(options.At))
        {
            throw new ArgumentException($"An engine given by the caller differentiates at the input; measure at '{options.At}' with Estimate(model, data, options, …).", nameof(options));
        }
        return Core(model, engine, data, options, finiteDifferenceScale, null, progress, cancellationToken);
    }

    /// <summary>The measurement itself, with validated <paramref name="options"/>; at a layer, <paramref name="cut"/> maps the points to its activations.</summary>
    private static MeasurementResult Core(IModelRunner model, IDerivativeEngine engine, Dataset data, MeasurementOptions options,
        double? finiteDifferenceScale, LayerCut? cut, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(data);
        var clock = Stopwatch.StartNew();
        var warnings = new List<string>(model.Notes);
        if (model is TorchModelRunner { ScriptOperators.Count: > 0 } script)
        {
            if (engine is AutogradEngine) TorchScriptOperators.RefuseAutograd(script.ScriptOperators, options.MaxOrder);
            var kinks = script.ScriptOperators.Where(TorchScriptOperators.Piecewise.Contains).ToList();
            if (kinks.Count > 0) warnings.Add(PiecewiseWarning(kinks, [.. kinks.Where(TorchScriptOperators.PiecewiseLinear.Contains)]));
        }
        if (model is TorchModelRunner { JetModule: { } jets } && jets.PiecewiseOperators.Count > 0)
        {
            warnings.Add(PiecewiseWarning([.. jets.PiecewiseOperators.Distinct()], [.. jets.PiecewiseLinearOperators.Distinct()]));
        }
        if (data.SampleShape.Length > 1 && !data.SampleShape.SequenceEqual(model.SampleShape))
        {
            warnings.Add($"samples of shape [{string.Join(",", data.SampleShape)}] were reshaped to the model's [{string.Join(",", model.SampleShape)}] by size; if the data is channels-last (NHWC), transpose it to the model's layout first.");
        }
        var signature = model.Signature;
        var classes = signature.Classes;
        var size = model.SampleShape.Aggregate(1, (a, b) => a * b);
        if (size != data.SampleSize)
        {
            throw new MeasurementInputException("data", $"samples have {data.SampleSize} values but the model was prepared for {size}.");
        }

        // 1. Predictions on all samples: point selection, predicted labels, metrics.
        var outputs = model.Forward(data.X, data.Rows);
        double[]? probabilities = classes >= 2 ? ClassificationMetrics.Softmax(outputs, classes) : null;
        int[]? predicted = probabilities is null ? null : ArgMax(probabilities, classes);
        if (data.Labels is not null && classes >= 2) DataShaping.CheckLabels(data, classes);
        ClassificationMetrics? metrics = data.Labels is not null && probabilities is not null
            ? ClassificationMetrics.Compute(probabilities, classes, data.Labels)
            : null;

        // 2. Target and labels.
        TargetKind kind;
        LabelSource? labelSource = null;
        if (options.Target == "loss")
        {
            if (classes < 2)
            {
                throw new MeasurementInputException("target", "target loss needs a classifier (output [N, C] with C ≥ 2); this model has one output per sample: use target logit.");
            }
            kind = TargetKind.Loss;
            labelSource = options.Labels ?? (data.Labels is null ? LabelSource.Predicted : LabelSource.True);
            if (labelSource == LabelSource.True && data.Labels is null)
            {
                throw new MeasurementInputException("labels", "labels 'true' needs labels in the data (npz array y or a label column); add them or use labels predicted.");
            }
            if (options.Labels is null && data.Labels is null) warnings.Add("the data has no labels: the loss uses the model's predicted labels.");
        }
        else
        {
            kind = classes >= 2 ? TargetKind.Logit : TargetKind.Output;
            if (options.Class is { } c && classes >= 2 && c >= classes)
            {
                throw new MeasurementInputException("class", $"class {c} does not exist: the model has {classes} classes (0..{classes - 1}).");
            }
        }

        // 3. Points.
        var eligible = SelectPoints(options, data, probabilities, classes);
        var chosen = Subset(eligible, options.MaxPoints, options.Seed);
        var pointCount = chosen.Length;
        var points = new double[pointCount * size];
        var targetClass = new int[pointCount];
        for (var i = 0; i < pointCount; i++)
        {
            var row = chosen[i];
            Array.Copy(data.X, (long)row * size, points, (long)i * size, size);
            targetClass[i] = kind switch
            {
                TargetKind.Loss => labelSource == LabelSource.True ? data.Labels![row] : predicted![row],
                TargetKind.Logit => options.Class ?? predicted![row],
                _ => 0,
            };
        }

        // 4. Directions and derivatives (at a layer: from the points' activations, along directions in the layer's space).
        var directions = Directions(pointCount, options.Directions, cut?.Size ?? size, options.Seed);
        var linePoints = cut is null ? points : cut.Activations(points, pointCount);
        var request = new DerivativeRequest(linePoints, pointCount, directions, options.Directions, kind, targetClass, options.MaxOrder);
        var derivatives = engine.Compute(request, progress, cancellationToken);

        // 5. Norms, fit, bootstrap, per-point slopes.
        var fit = Fit(derivatives, options, warnings);
        if (derivatives.Errors is { } errors)
        {
            foreach (var e in errors.Where(e => e.N >= options.MinOrder && e.P90 > 0.01))
            {
                warnings.Add($"finite-difference error estimate for order {e.N}: median {e.Median:P2}, 90th percentile {e.P90:P2}.");
            }
        }
        var unreliable = UnreliableOrders(derivatives, fit.Orders, options);
        if (unreliable.Length > 0)
        {
            var finding = $"derivatives unreliable: the {engine.Name} engine's error estimate exceeds maxDerivativeError {Percent(options.MaxDerivativeError)} at "
                + string.Join(", ", unreliable.Select(e => $"order {e.N} (median {Percent(e.Median)} over lines, {Percent(e.OfNorm)} of v_{e.N})"));
            if (!options.AllowUnreliable)
            {
                // auto only runs finite differences where no exact engine applies (the runner's notes say why), so it cannot suggest one.
                var why = string.Join("; ", model.Notes.Select(n => n.TrimEnd('.')));
                var remedy = options.Engine == EngineChoice.Auto
                    ? $"no exact engine can run this model as it is{(why.Length > 0 ? $" ({why})" : "")}: export it with operators the taylor engine supports, "
                        + "or use allowUnreliable: true to accept the number flagged"
                    : "use engine taylor or autograd (or auto), which compute derivatives exactly, or allowUnreliable: true to accept the number flagged";
                throw new MeasurementInputException("engine",
                    $"{finding}, so λ could be far from the exact value; {remedy} (on the command line: --allow-unreliable).",
                    title: UnreliableTitle);
            }
            warnings.Add($"{finding}; λ is returned because allowUnreliable is true, but it could be far from the exact value (the result is marked unreliable).");
        }
        if (pointCount < 20) warnings.Add($"only {pointCount} points: the bootstrap interval is rough; use more points for a firm value.");
        if (fit.Line.RSquared < 0.9) warnings.Add($"R² = {fit.Line.RSquared:F3}: log v_n is far from a straight line over orders {options.MinOrder}-{options.MaxOrder}; λ summarises a non-exponential trend.");

        var config = new ResolvedConfig(
            options.Target,
            labelSource?.ToString().ToLowerInvariant() ?? "n/a",
            options.Target == "logit" ? options.Class : null,
            options.Points.ToString().ToLowerInvariant(),
            [options.Band.Low, options.Band.High],
            options.Pairs.Select(p => $"{p.A}-{p.B}").ToArray(),
            options.MinOrder,
            options.MaxOrder,
            options.Directions,
            options.MaxPoints,
            options.Norm == NormKind.MeanAbs ? "mean-abs" : "rms",
            options.Normalization.ToString().ToLowerInvariant(),
            engine.Name,
            options.Seed,
            options.BootstrapResamples,
            signature.Sha256,
            data.Sha256,
            signature.Format == ModelFormat.Onnx ? "onnx" : "torchscript",
            model.SampleShape,
            finiteDifferenceScale,
            options.MaxDerivativeError,
            options.AllowUnreliable,
            options.Device,
            cut?.Layer ?? Layers.Input,
            cut?.Shape,
            options.MemoryBudgetMb,
            derivatives.Plan,
            TorchRuntime.Threads,
            MeasurementOptions.Name(options.Precision));
        return new MeasurementResult(
            fit.Line.Slope, fit.Line.Intercept, fit.Line.RSquared, fit.Ci95, fit.Orders, fit.PerPoint, pointCount, eligible.Length,
            engine.Name, engine.Device, derivatives.Precision, derivatives.Errors, unreliable.Length > 0, config, warnings,
            metrics?.Accuracy, metrics?.Ece, metrics?.Hard20Accuracy, signature, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Title of the problem a measurement with unreliable derivatives raises (<see cref="MeasurementInputException.Title"/>).</summary>
    public const string UnreliableTitle = "Derivatives unreliable";

    /// <summary>
    /// The orders in the fit whose median error estimate over lines, or the estimated error of their v_n, exceeds
    /// <see cref="MeasurementOptions.MaxDerivativeError"/> (an estimate
    /// that is not a number counts as exceeding it); none for engines without error estimates (the exact ones).
    /// </summary>
    private static OrderError[] UnreliableOrders(DerivativeResult derivatives, IReadOnlyList<OrderNorm> orders, MeasurementOptions options)
    {
        if (derivatives.Errors is not { } errors) return [];
        var fitted = orders.Where(o => o.UsedInFit).Select(o => o.N).ToHashSet();
        return errors.Where(e => fitted.Contains(e.N) && !(e.Median <= options.MaxDerivativeError && e.OfNorm <= options.MaxDerivativeError)).OrderBy(e => e.N).ToArray();
    }

    /// <summary>A fraction as a percentage with three significant digits: 0.05 → 5%, 5.07 → 507%.</summary>
    private static string Percent(double fraction) => double.IsFinite(fraction)
        ? (fraction * 100).ToString("G3", System.Globalization.CultureInfo.InvariantCulture) + "%"
        : "unbounded";

    private sealed record FitResult(LineFit Line, double[] Ci95, IReadOnlyList<OrderNorm> Orders, SlopeQuantiles PerPoint);

    private static FitResult Fit(DerivativeResult d, MeasurementOptions options, List<string> warnings)
    {
        var orders = Enumerable.Range(options.MinOrder, options.MaxOrder - options.MinOrder + 1).ToArray();
        var p = d.PointCount;
        // perPoint[i][j]: mean over the point's directions of |D| (mean-abs) or D² (rms), order orders[j].
        var perPoint = new double[p][];
        for (var i = 0; i < p; i++)
        {
            perPoint[i] = new double[orders.Length];
            for (var j = 0; j < orders.Length; j++)
            {
                double s = 0;
                for (var dir = 0; dir < d.DirectionsPerPoint; dir++)
                {
                    var value = d[i, dir, orders[j]];
                    s += options.Norm == NormKind.MeanAbs ? Math.Abs(value) : value * value;
                }
                perPoint[i][j] = s / d.DirectionsPerPoint;
            }
        }
        var logFactorial = orders.Select(n => options.Normalization == Normalization.Taylor ? LogFactorial(n) : 0.0).ToArray();

        double[] LogNorms(IEnumerable<int> sample)
        {
            var sums = new double[orders.Length];
            var count = 0;
            foreach (var i in sample)
            {
                for (var j = 0; j < orders.Length; j++) sums[j] += perPoint[i][j];
                count++;
            }
            return sums.Select((s, j) =>
            {
                var mean = s / count;
                var norm = options.Norm == NormKind.MeanAbs ? mean : Math.Sqrt(mean);
                return Math.Log(norm) - logFactorial[j];
            }).ToArray();
        }

        var logs = LogNorms(Enumerable.Range(0, p));
        var usable = Enumerable.Range(0, orders.Length).Where(j => double.IsFinite(logs[j])).ToArray();
        var skipped = orders.Where((_, j) => !usable.Contains(j)).ToArray();
        if (skipped.Length > 0)
        {
            warnings.Add($"orders {string.Join(", ", skipped)} have zero derivatives at every point (a piecewise-linear model?) and are left out of the fit.");
        }
        if (usable.Length < 2)
        {
            throw new MeasurementInputException("orders",
                $"fewer than two of orders {options.MinOrder}-{options.MaxOrder} have non-zero derivatives: the function is (piecewise) polynomial of low degree here, λ is −∞. Use lower orders or another target.");
        }
        var xs = usable.Select(j => (double)orders[j]).ToArray();
        var line = LinearFit.Fit(xs, usable.Select(j => logs[j]).ToArray());

        var ci = new[] { double.NaN, double.NaN };
        if (options.BootstrapResamples > 0 && p > 1)
        {
            var rng = new Random(unchecked(options.Seed * 7919 + 3));
            var slopes = new List<double>(options.BootstrapResamples);
            var indices = new int[p];
            for (var b = 0; b < options.BootstrapResamples; b++)
            {
                for (var i = 0; i < p; i++) indices[i] = rng.Next(p);
                var bl = LogNorms(indices);
                var ys = usable.Select(j => bl[j]).ToArray();
                if (ys.All(double.IsFinite)) slopes.Add(LinearFit.Fit(xs, ys).Slope);
            }
            slopes.Sort();
            ci = [Statistics.Quantile(slopes, 0.025), Statistics.Quantile(slopes, 0.975)];
        }

        var pointSlopes = new List<double>(p);
        for (var i = 0; i < p; i++)
        {
            var idx = usable.Where(j => perPoint[i][j] > 0).ToArray();
            if (idx.Length < 2) continue;
            var ys = idx.Select(j => Math.Log(options.Norm == NormKind.MeanAbs ? perPoint[i][j] : Math.Sqrt(perPoint[i][j])) - logFactorial[j]).ToArray();
            pointSlopes.Add(LinearFit.Fit(idx.Select(j => (double)orders[j]).ToArray(), ys).Slope);
        }
        pointSlopes.Sort();
        var quantiles = new SlopeQuantiles(pointSlopes.Count, Statistics.Quantile(pointSlopes, 0.05), Statistics.Quantile(pointSlopes, 0.25),
            Statistics.Quantile(pointSlopes, 0.5), Statistics.Quantile(pointSlopes, 0.75), Statistics.Quantile(pointSlopes, 0.95));

        var orderNorms = orders.Select((n, j) => new OrderNorm(n, logs[j], Math.Exp(logs[j]), usable.Contains(j))).ToArray();
        return new FitResult(line, ci, orderNorms, quantiles);
    }

    private static int[] SelectPoints(MeasurementOptions options, Dataset data, double[]? probabilities, int classes)
    {
        switch (options.Points)
        {
            case PointSelection.Boundary:
                if (probabilities is null)
                {
                    throw new MeasurementInputException("points", "points 'boundary' needs a classifier's probabilities; this is a scalar model: use points all.");
                }
                var band = Enumerable.Range(0, data.Rows).Where(i =>
                {
                    var max = 0.0;
                    for (var c = 0; c < classes; c++) max = Math.Max(max, probabilities[i * classes + c]);
                    return max >= options.Band.Low && max <= options.Band.High;
                }).ToArray();
                if (band.Length == 0)
                {
                    throw new MeasurementInputException("band",
                        $"no sample has its largest predicted probability within {options.Band.Low}-{options.Band.High}; widen the band or use points all.");
                }
                return band;
            case PointSelection.Pairs:
                if (data.Labels is null) throw new MeasurementInputException("pairs", "points 'pairs' selects samples by label, and the data has no labels.");
                var wanted = options.Pairs.SelectMany(p => new[] { p.A, p.B }).ToHashSet();
                if (classes >= 2 && wanted.Any(c => c >= classes))
                {
                    throw new MeasurementInputException("pairs", $"a class pair names a class the model does not have (it has {classes} classes, 0..{classes - 1}).");
                }
                var selected = Enumerable.Range(0, data.Rows).Where(i => wanted.Contains(data.Labels[i])).ToArray();
                if (selected.Length == 0)
                {
                    throw new MeasurementInputException("pairs", $"no sample has a label in {string.Join(", ", options.Pairs.Select(p => $"{p.A}-{p.B}"))}.");
                }
                return selected;
            default:
                return Enumerable.Range(0, data.Rows).ToArray();
        }
    }

    /// <summary>A seeded random subset of at most <paramref name="max"/> indices, kept in their original order.</summary>
    private static int[] Subset(int[] eligible, int max, int seed)
    {
        if (eligible.Length <= max) return eligible;
        var copy = (int[])eligible.Clone();
        var rng = new Random(unchecked(seed * 7919 + 1));
        for (var i = 0; i < max; i++)
        {
            var j = i + rng.Next(copy.Length - i);
            (copy[i], copy[j]) = (copy[j], copy[i]);
        }
        var chosen = copy[..max];
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>
    /// Unit directions: independent standard normal components (Box–Muller on a <see cref="Random"/> seeded
    /// with the measurement's seed), normalised to length 1; point by point, direction by direction.
    /// </summary>
    public static double[] Directions(int points, int perPoint, int size, int seed)
    {
        var rng = new Random(unchecked(seed * 7919 + 2));
        var result = new double[(long)points * perPoint * size];
        for (var line = 0; line < points * perPoint; line++)
        {
            var v = result.AsSpan(line * size, size);
            double norm;
            do
            {
                for (var e = 0; e < size; e++)
                {
                    var u1 = 1.0 - rng.NextDouble();
                    var u2 = rng.NextDouble();
                    v[e] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
                }
                norm = 0;
                foreach (var x in v) norm += x * x;
                norm = Math.Sqrt(norm);
            }
            while (norm == 0);
            for (var e = 0; e < size; e++) v[e] /= norm;
        }
        return result;
    }

    /// <summary>Length scale of the inputs for finite differences: the median over features of the standard deviation across samples (1 when degenerate).</summary>
    public static double FeatureScale(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var size = data.SampleSize;
        var sd = new double[size];
        for (var e = 0; e < size; e++)
        {
            double mean = 0, sq = 0;
            for (var i = 0; i < data.Rows; i++) mean += data.X[(long)i * size + e];
            mean /= data.Rows;
            for (var i = 0; i < data.Rows; i++)
            {
                var dv = data.X[(long)i * size + e] - mean;
                sq += dv * dv;
            }
            sd[e] = Math.Sqrt(sq / Math.Max(1, data.Rows - 1));
        }
        Array.Sort(sd);
        var median = Statistics.Quantile(sd, 0.5);
        return median is > 1e-6 and < 1e6 ? median : 1.0;
    }

    private static int[] ArgMax(double[] probabilities, int classes)
    {
        var n = probabilities.Length / classes;
        var result = new int[n];
        for (var i = 0; i < n; i++)
        {
            var best = 0;
            for (var c = 1; c < classes; c++) if (probabilities[i * classes + c] > probabilities[i * classes + best]) best = c;
            result[i] = best;
        }
        return result;
    }

    private static double LogFactorial(int n)
    {
        double s = 0;
        for (var k = 2; k <= n; k++) s += Math.Log(k);
        return s;
    }
}

/// <summary>A model ready to run on its data (<see cref="CurvatureRate.Load"/>); disposing it releases the model's runtime.</summary>
/// <param name="Data">The data as read.</param>
/// <param name="Runner">The model prepared for that data.</param>
public sealed record LoadedMeasurement(Dataset Data, IModelRunner Runner) : IDisposable
{
    /// <inheritdoc />
    public void Dispose() => Runner.Dispose();
}
