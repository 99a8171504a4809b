using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LambdaService.Measurement.Models;

/// <summary>Options for running ONNX models.</summary>
public sealed record OnnxRunnerOptions
{
    /// <summary>Rewrite the graph to float64 when ONNX Runtime has float64 kernels for all of its operators (default true).</summary>
    public bool PreferFloat64 { get; init; } = true;

    /// <summary><c>auto</c> (CUDA when a GPU and its libraries are present, else CPU), <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Largest batch sent in one call when the model's batch dimension is dynamic.</summary>
    public int MaxBatch { get; init; } = 4096;
}

/// <summary>Runs an ONNX model with ONNX Runtime (CUDA execution provider when available, else CPU).</summary>
public sealed class OnnxRunner : IModelRunner
{
    private readonly InferenceSession _session;

    // One RunOptions for the runner's lifetime, referenced by a field: InferenceSession.Run hands ONNX Runtime its native
    // handle as a plain IntPtr, so a RunOptions created inline for a call (`Run(new RunOptions(), …)`) is unreachable
    // during the native call and the GC may finalize it (free the native options) while ONNX Runtime still reads them.
    // That crashed `bench` with SIGSEGV inside libonnxruntime (a core dump showed a run-options lookup in freed memory).
    private readonly RunOptions _runOptions = new();
    private readonly string _inputName;
    private readonly string _outputName;
    private readonly bool _float64;
    private readonly int _fixedBatch;
    private readonly long[] _inputShape;
    private readonly List<string> _notes = [];

    /// <summary>
    /// ONNX Runtime's own log level for this process: fatal only. Its warnings (coloured with ANSI codes, on standard error) would
    /// otherwise reach a job's stderr tail and the command line; every failure it reports also surfaces as an exception, which
    /// becomes one line of ours (README, <em>Errors</em>).
    /// </summary>
    internal const OrtLoggingLevel QuietLogging = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;

    static OnnxRunner()
    {
        // The process-wide environment logs through its own default logger (level WARNING unless told otherwise) outside any
        // session's options: quiet it once, whoever created it.
        OrtEnv.Instance().EnvLogLevel = QuietLogging;
    }

    private OnnxRunner(ModelFile file, int[] sampleShape, OnnxRunnerOptions options)
    {
        var model = file.Onnx ?? throw new ArgumentException("Not an ONNX model file.", nameof(file));
        SampleShape = sampleShape;
        if (file.Inputs.Count != 1)
        {
            throw new MeasurementInputException("model",
                $"the ONNX model has {file.Inputs.Count} inputs ({string.Join(", ", file.Inputs.Select(i => i.Name))}); only models with one input tensor can be measured. Export a model with a single input.");
        }
        var input = file.Inputs[0];
        if (input.ElementType is not ("float32" or "float64"))
        {
            throw new MeasurementInputException("model",
                $"the model's input '{input.Name}' is {input.ElementType}; input derivatives need a float32 or float64 input (models taking token ids or integers cannot be measured).");
        }
        _inputName = input.Name;
        _outputName = file.Outputs[0].Name;
        _fixedBatch = input.Shape.Length > 0 && input.Shape[0] > 0 ? (int)input.Shape[0] : 0;
        MaxBatch = _fixedBatch > 0 ? _fixedBatch : Math.Max(1, options.MaxBatch);

        var inputRank = input.Shape.Length;
        if (inputRank != 0 && inputRank != sampleShape.Length + 1)
        {
            throw new MeasurementInputException("data",
                $"the model's input '{input.Name}' has rank {inputRank} but the data gives samples of shape [{string.Join(",", sampleShape)}]; reshape the data to the model's input [{string.Join(",", input.Shape)}].");
        }

        (_session, Device) = CreateSession(model, options, out _float64, out var rewritten);
        var kinks = model.Graph.Node.Select(n => n.OpType).Where(op => PiecewiseOperators.Contains(op)).Distinct().ToList();
        if (kinks.Count > 0)
        {
            _notes.Add($"the graph has piecewise-linear operators ({string.Join(", ", kinks)}): finite differences of order ≥ 2 are unreliable for lines "
                + "that pass near a switch of these operators; an exact engine (taylor or autograd, which engine auto picks where the graph's operators allow) avoids this.");
        }
        _inputShape = [1, .. sampleShape.Select(d => (long)d)];

        double[] probe;
        try
        {
            probe = Probe();
        }
        catch (MeasurementInputException e) when (rewritten && e.InnerException is OnnxRuntimeException native)
        {
            // ONNX Runtime looks some kernels up only when a node first runs (GRU, LSTM and RNN have no float64 kernel, yet a
            // session on the rewritten graph is created): the first run on one sample decides, and the float32 graph runs instead.
            _session.Dispose();
            _notes.Add(Float32Note(native));
            _float64 = false;
            (_session, Device) = CreateOriginalSession(model, options, out _);
            probe = Probe();
        }
        Precision = _float64 ? "float64" : "float32";
        var outputs = probe.Length;
        var kind = outputs >= 2 ? ModelKind.Classifier : ModelKind.Scalar;
        Signature = new ModelSignature(ModelFormat.Onnx, file.Inputs, file.Outputs, kind, outputs, file.Sha256);
    }

    private static readonly HashSet<string> PiecewiseOperators =
        ["Relu", "LeakyRelu", "PRelu", "MaxPool", "GlobalMaxPool", "Clip", "Max", "Min", "Abs", "HardSigmoid", "HardSwish", "ThresholdedRelu", "Elu", "Selu", "ReduceMax", "ReduceMin"];

    /// <summary>Creates a runner for samples of <paramref name="sampleShape"/>.</summary>
    public static OnnxRunner Create(ModelFile file, int[] sampleShape, OnnxRunnerOptions? options = null) =>
        new(file, sampleShape, options ?? new OnnxRunnerOptions());

    /// <inheritdoc />
    public ModelSignature Signature { get; }

    /// <inheritdoc />
    public int[] SampleShape { get; }

    /// <inheritdoc />
    public string Device { get; }

    /// <inheritdoc />
    public string Precision { get; }

    /// <inheritdoc />
    public int MaxBatch { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Notes => _notes;

    /// <summary>Adds a note for the result (e.g. why this runner was chosen).</summary>
    internal void AddNote(string note) => _notes.Add(note);

    /// <summary>
    /// The session: on the float64 rewrite of a float32 graph when <see cref="OnnxRunnerOptions.PreferFloat64"/> and ONNX Runtime
    /// accepts it (<paramref name="rewritten"/> true), else on the graph as it is.
    /// </summary>
    private (InferenceSession Session, string Device) CreateSession(Onnx.ModelProto model, OnnxRunnerOptions options, out bool float64, out bool rewritten)
    {
        rewritten = false;
        if (options.PreferFloat64 && OnnxGraphChecks.ElementTypeName(model.Graph.Input.First(i => i.Name == _inputName).Type.TensorType.ElemType) == "float32")
        {
            var bytes = OnnxPrecision.ToFloat64(model).ToByteArray();
            try
            {
                var s = NewSession(bytes, WantsCuda(options), options.Device == "cuda", out var device, GraphOptimizationLevel.ORT_ENABLE_BASIC);
                float64 = true;
                rewritten = true;
                return (s, device);
            }
            catch (OnnxRuntimeException e)
            {
                _notes.Add(Float32Note(e));
            }
        }
        return CreateOriginalSession(model, options, out float64);
    }

    /// <summary>The note of a float32 fallback; the result carries it as a warning.</summary>
    private static string Float32Note(OnnxRuntimeException e) =>
        $"float64 is not available for every operator of this graph ({FirstLine(e.Message)}); the model runs in float32 (precision float32: "
        + "finite differences of orders 3 and 4 can be tens of percent off; engine taylor or autograd computes them exactly where the graph's operators allow).";

    private static bool WantsCuda(OnnxRunnerOptions options) => options.Device switch
    {
        "cpu" => false,
        "cuda" => true,
        _ => OnnxDevices.CudaLikely(),
    };

    /// <summary>The session on the graph in its own element type.</summary>
    private (InferenceSession Session, string Device) CreateOriginalSession(Onnx.ModelProto model, OnnxRunnerOptions options, out bool float64)
    {
        var wantsCuda = WantsCuda(options);
        float64 = OnnxGraphChecks.ElementTypeName(model.Graph.Input.First(i => i.Name == _inputName).Type.TensorType.ElemType) == "float64";
        try
        {
            var session = NewSession(model.ToByteArray(), wantsCuda, options.Device == "cuda", out var dev);
            return (session, dev);
        }
        catch (OnnxRuntimeException e)
        {
            throw new MeasurementInputException("model", $"ONNX Runtime cannot load the model: {FirstLine(e.Message)}", e);
        }
    }

    /// <summary>
    /// A session on <paramref name="bytes"/>. The float64 rewrite runs with ONNX Runtime's basic graph optimisations only
    /// (<paramref name="level"/>): one of its extended fusions moved the logits of a real export (a torchvision ConvNeXt at opset 13,
    /// LayerNorm2d spelled out by torch.onnx) by 4e-4 in float64 while the float32 graph was right
    /// (tests/Measurement.Tests/RealModels/RealModelTests.cs), and the extended fusions are written for float32 kernels.
    /// </summary>
    private InferenceSession NewSession(byte[] bytes, bool wantsCuda, bool cudaRequired, out string device, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        if (wantsCuda)
        {
            // ONNX Runtime copies the options into the session; they are released once it exists (or failed).
            using var cudaOptions = new SessionOptions { LogSeverityLevel = QuietLogging, GraphOptimizationLevel = level };
            try
            {
                cudaOptions.AppendExecutionProvider_CUDA(0);
                device = "cuda:0";
                return new InferenceSession(bytes, cudaOptions);
            }
            catch (OnnxRuntimeException e) when (!cudaRequired)
            {
                _notes.Add($"CUDA execution provider unavailable ({FirstLine(e.Message)}); running on CPU.");
            }
            catch (OnnxRuntimeException e)
            {
                throw ComputeDevice.Unavailable("device", $"ONNX Runtime's CUDA execution provider cannot start ({FirstLine(e.Message)})", e);
            }
        }
        using var cpu = new SessionOptions
        {
            GraphOptimizationLevel = level, LogSeverityLevel = QuietLogging, IntraOpNumThreads = TorchRuntime.Threads,
        };
        // Idle ONNX Runtime threads must not spin: libtorch shares the same cores in this process.
        cpu.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        device = "cpu";
        return new InferenceSession(bytes, cpu);
    }

    private double[] Probe()
    {
        try
        {
            var zeros = new double[SampleShape.Aggregate(1, (a, b) => a * b)];
            return Forward(zeros, 1);
        }
        catch (OnnxRuntimeException e)
        {
            throw new MeasurementInputException("data",
                $"the model cannot accept one sample of shape [{string.Join(",", SampleShape)}]: {FirstLine(e.Message)}", e);
        }
    }

    /// <inheritdoc />
    public double[] Forward(ReadOnlySpan<double> x, int batch)
    {
        var size = SampleShape.Aggregate(1, (a, b) => a * b);
        if (x.Length != batch * size) throw new ArgumentException($"Expected {batch * size} values for {batch} samples, got {x.Length}.", nameof(x));
        var result = new List<double>(batch * 2);
        var perSample = -1;
        for (var start = 0; start < batch; start += MaxBatch)
        {
            var n = Math.Min(MaxBatch, batch - start);
            var runBatch = _fixedBatch > 0 ? _fixedBatch : n;
            var slice = x.Slice(start * size, n * size);
            var shape = (long[])_inputShape.Clone();
            shape[0] = runBatch;
            using var inputValue = _float64 ? Tensor(slice, runBatch * size, shape) : TensorF(slice, runBatch * size, shape);
            using var outputs = _session.Run(_runOptions, [_inputName], [inputValue], [_outputName]);
            var output = outputs[0];
            var info = output.GetTensorTypeAndShape();
            var oshape = info.Shape;
            if (oshape.Length == 0 || oshape[0] != runBatch || oshape.Length > 2)
            {
                throw new MeasurementInputException("model",
                    $"the model's output '{_outputName}' has shape [{string.Join(",", oshape)}] for a batch of {runBatch}; expected [N, C] (classifier) or [N] / [N, 1] (scalar model).");
            }
            var per = oshape.Length == 1 ? 1 : (int)oshape[1];
            if (perSample >= 0 && per != perSample) throw new MeasurementInputException("model", "the model's output width changes between batches.");
            perSample = per;
            if (info.ElementDataType == TensorElementType.Double)
            {
                var span = output.GetTensorDataAsSpan<double>();
                for (var i = 0; i < n * per; i++) result.Add(span[i]);
            }
            else if (info.ElementDataType == TensorElementType.Float)
            {
                var span = output.GetTensorDataAsSpan<float>();
                for (var i = 0; i < n * per; i++) result.Add(span[i]);
            }
            else
            {
                throw new MeasurementInputException("model", $"the model's output '{_outputName}' is {info.ElementDataType}; a float output (logits or a real value) is needed.");
            }
        }
        return [.. result];
    }

    private static OrtValue Tensor(ReadOnlySpan<double> values, int total, long[] shape)
    {
        var data = new double[total];
        values.CopyTo(data);
        return OrtValue.CreateTensorValueFromMemory(data, shape);
    }

    private static OrtValue TensorF(ReadOnlySpan<double> values, int total, long[] shape)
    {
        var data = new float[total];
        for (var i = 0; i < values.Length; i++) data[i] = (float)values[i];
        return OrtValue.CreateTensorValueFromMemory(data, shape);
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    /// <inheritdoc />
    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }
}

/// <summary>Cheap checks for whether a CUDA device could be present.</summary>
internal static class OnnxDevices
{
    public static bool CudaLikely() => File.Exists("/dev/nvidiactl") || File.Exists("/dev/nvidia0");
}
