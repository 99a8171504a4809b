namespace LambdaService.Measurement.Models;

/// <summary>File format of a model.</summary>
public enum ModelFormat
{
    /// <summary>ONNX protobuf, run by ONNX Runtime.</summary>
    Onnx,

    /// <summary>TorchScript zip archive, run by libtorch through TorchSharp.</summary>
    TorchScript,
}

/// <summary>What the model's output means.</summary>
public enum ModelKind
{
    /// <summary>Output <c>[N, C]</c> with C ≥ 2: class logits.</summary>
    Classifier,

    /// <summary>Output <c>[N, 1]</c> or <c>[N]</c>: one real value per sample.</summary>
    Scalar,
}

/// <summary>One input or output of a model. Dimensions that are not fixed are −1.</summary>
public sealed record TensorInfo(string Name, long[] Shape, string ElementType);

/// <summary>The signature of a loaded model, as reported to users.</summary>
/// <param name="Format">File format.</param>
/// <param name="Inputs">All inputs (the first is the one measured).</param>
/// <param name="Outputs">All outputs (the first is the one measured).</param>
/// <param name="Kind">Classifier or scalar model.</param>
/// <param name="OutputsPerSample">Values per sample of the measured output: classes for a classifier, 1 for a scalar model.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the model file.</param>
public sealed record ModelSignature(
    ModelFormat Format,
    IReadOnlyList<TensorInfo> Inputs,
    IReadOnlyList<TensorInfo> Outputs,
    ModelKind Kind,
    int OutputsPerSample,
    string Sha256)
{
    /// <summary>Number of classes of a classifier (0 for a scalar model).</summary>
    public int Classes => Kind == ModelKind.Classifier ? OutputsPerSample : 0;
}
