using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Runs a TorchSharp module — a loaded TorchScript model or one of the project's own
/// <c>Module&lt;Tensor, Tensor&gt;</c> networks — in evaluation mode, in float64 when the module allows it (or in float32 when asked).
/// </summary>
public sealed class TorchModelRunner : IModelRunner
{
    private readonly nn.Module _module;
    private readonly nn.IModule<Tensor, Tensor> _forward;
    private readonly bool _owns;
    private readonly Device _device;
    private readonly List<string> _notes = [];

    private TorchModelRunner(nn.Module module, nn.IModule<Tensor, Tensor> forward, bool owns, int[] sampleShape, ModelFormat format,
        IReadOnlyList<TensorInfo> inputs, string sha256, Device? device, IReadOnlyList<TensorInfo>? declaredOutputs = null,
        ScalarType dtype = ScalarType.Float64)
    {
        if (dtype is not (ScalarType.Float64 or ScalarType.Float32)) throw new ArgumentException($"A model runs in float64 or float32, not {dtype}.", nameof(dtype));
        TorchRuntime.EnsureConfigured();
        _module = module;
        _forward = forward;
        _owns = owns;
        _device = device ?? CPU;
        SampleShape = sampleShape;
        _module.eval();
        _module.to(_device);
        _module.to(dtype);
        DType = dtype;
        double[] probe;
        try
        {
            probe = dtype == ScalarType.Float64 ? Forward(new double[SampleSize], 1) : ProbeOrReject();
        }
        catch (ExternalException) when (dtype == ScalarType.Float64)
        {
            // Some scripted models hard-code float32 constants; run those in float32.
            _module.to(ScalarType.Float32);
            DType = ScalarType.Float32;
            _notes.Add("the model does not run in float64; derivatives are computed in float32.");
            probe = ProbeOrReject();
        }
        var outputs = probe.Length;
        // A file that declares its outputs (ONNX) is reported as it declares them (names, element types), whatever precision the
        // derivatives are computed in; a TorchScript module declares none, so its output is described as it runs here.
        Signature = new ModelSignature(format, inputs,
            declaredOutputs is { Count: > 0 } ? declaredOutputs : [new TensorInfo("output", outputs == 1 ? [-1] : [-1, outputs], TorchRuntime.PrecisionName(DType))],
            outputs >= 2 ? ModelKind.Classifier : ModelKind.Scalar, outputs, sha256);
    }

    private double[] ProbeOrReject()
    {
        try
        {
            return Forward(new double[SampleSize], 1);
        }
        catch (ExternalException e)
        {
            throw new MeasurementInputException("data",
                $"the model cannot accept one sample of shape [{string.Join(",", SampleShape)}]: {e.Message.Split('\n', 2)[0]}", e);
        }
    }

    /// <summary>Loads a TorchScript file (already checked by <see cref="ModelFile"/>) for samples of <paramref name="sampleShape"/>.</summary>
    /// <param name="file">The model file.</param>
    /// <param name="sampleShape">Shape of one sample.</param>
    /// <param name="device">Where it runs (default the CPU).</param>
    /// <param name="dtype">Float64 (default: float32 only when the module cannot run in float64) or Float32.</param>
    public static TorchModelRunner LoadTorchScript(ModelFile file, int[] sampleShape, Device? device = null, ScalarType dtype = ScalarType.Float64)
    {
        if (file.Format != ModelFormat.TorchScript) throw new ArgumentException("Not a TorchScript file.", nameof(file));
        jit.ScriptModule<Tensor, Tensor> module;
        try
        {
            module = jit.load<Tensor, Tensor>(file.Bytes);
        }
        catch (ExternalException e)
        {
            throw new MeasurementInputException("model", $"libtorch cannot load the TorchScript model: {e.Message.Split('\n', 2)[0]}", e);
        }
        var inputs = new[] { new TensorInfo("x", [-1, .. sampleShape.Select(d => (long)d)], "float32") };
        return new TorchModelRunner(module, module, owns: true, sampleShape, ModelFormat.TorchScript, inputs, file.Sha256, device, dtype: dtype)
        {
            ScriptOperators = TorchScriptOperators.Find(file),
        };
    }

    /// <summary>
    /// Wraps a TorchSharp module (not owned: the caller disposes it; its dtype is changed to <paramref name="dtype"/>, default float64,
    /// and it is moved to <paramref name="device"/>, default the CPU). Casting a float64 module to float32 rounds its parameters.
    /// </summary>
    public static TorchModelRunner FromModule(nn.Module<Tensor, Tensor> module, int[] sampleShape, string sha256 = "", Device? device = null,
        ScalarType dtype = ScalarType.Float64)
    {
        var inputs = new[] { new TensorInfo("x", [-1, .. sampleShape.Select(d => (long)d)], TorchRuntime.PrecisionName(dtype)) };
        return new TorchModelRunner(module, module, owns: false, sampleShape, ModelFormat.TorchScript, inputs, sha256, device, dtype: dtype);
    }

    /// <summary>
    /// Runs an ONNX graph imported into TorchSharp (<see cref="Taylor.JetGraph"/>; owned: disposed with the runner) in
    /// <paramref name="dtype"/> (default float64), so that the exact engines (Taylor mode, autograd) can differentiate it.
    /// </summary>
    public static TorchModelRunner FromOnnxGraph(Taylor.JetGraph graph, ModelFile file, int[] sampleShape, Device? device = null,
        ScalarType dtype = ScalarType.Float64)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(file);
        var runner = new TorchModelRunner(graph, graph, owns: true, sampleShape, ModelFormat.Onnx, file.Inputs, file.Sha256, device, file.Outputs, dtype);
        runner._notes.Add($"the ONNX graph ({string.Join(", ", graph.Operators)}) was imported into libtorch for exact derivatives.");
        return runner;
    }

    /// <summary>
    /// For a loaded TorchScript file, the operators of <see cref="TorchScriptOperators"/> its code calls (inexact or missing
    /// higher derivatives, piecewise); empty otherwise.
    /// </summary>
    public IReadOnlyList<string> ScriptOperators { get; private init; } = [];

    /// <summary>The module as a jet-capable network (Taylor mode), or null when it is not one (TorchScript).</summary>
    public Taylor.IJetModule? JetModule => _module as Taylor.IJetModule;

    /// <summary>
    /// Cuts the model at <paramref name="layer"/>; a name that is not a layer (or a model whose structure is not readable)
    /// raises <see cref="MeasurementInputException"/> on <paramref name="field"/> listing the valid names.
    /// </summary>
    public LayerCut Cut(string layer, string field = "at") => new(this, _module, layer, field);

    /// <inheritdoc />
    public ModelSignature Signature { get; }

    /// <inheritdoc />
    public int[] SampleShape { get; }

    /// <summary>Values per sample.</summary>
    public int SampleSize => SampleShape.Aggregate(1, (a, b) => a * b);

    /// <summary>The dtype the module computes in.</summary>
    public ScalarType DType { get; private set; }

    /// <inheritdoc />
    public string Device => ComputeDevice.Name(_device);

    /// <summary>The libtorch device the module and its inputs live on.</summary>
    public Device TorchDevice => _device;

    /// <inheritdoc />
    public string Precision => TorchRuntime.PrecisionName(DType);

    /// <inheritdoc />
    public int MaxBatch => 4096;

    /// <inheritdoc />
    public IReadOnlyList<string> Notes => _notes;

    /// <summary>The differentiable forward pass: <c>[B, sample...]</c> → <c>[B, C]</c> or <c>[B]</c>.</summary>
    public Tensor ForwardTensor(Tensor x) => _forward.call(x);

    /// <inheritdoc />
    public double[] Forward(ReadOnlySpan<double> x, int batch)
    {
        if (x.Length != batch * SampleSize) throw new ArgumentException($"Expected {batch * SampleSize} values for {batch} samples, got {x.Length}.", nameof(x));
        var result = new List<double>();
        var data = x.ToArray();
        for (var start = 0; start < batch; start += MaxBatch)
        {
            var n = Math.Min(MaxBatch, batch - start);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var input = tensor(data.AsSpan(start * SampleSize, n * SampleSize).ToArray(), [n, .. SampleShape.Select(d => (long)d)], ScalarType.Float64).to(DType, _device);
            var output = ForwardTensor(input);
            if (output.dim() == 0 || output.dim() > 2 || output.shape[0] != n)
            {
                throw new MeasurementInputException("model",
                    $"the model's output has shape [{string.Join(",", output.shape)}] for a batch of {n}; expected [N, C] (classifier) or [N] / [N, 1] (scalar model).");
            }
            result.AddRange(output.to(ScalarType.Float64).cpu().reshape(-1).data<double>().ToArray());
        }
        return [.. result];
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_owns) _module.Dispose();
    }
}
