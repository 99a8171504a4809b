using System.IO.Compression;
using System.Security.Cryptography;
using Google.Protobuf;
using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>
/// A model file read into memory and checked for structure, before any native code sees it: the upload and the
/// sandbox both open models here. ONNX: every tensor's data fills its dims (<see cref="OnnxGraphChecks.RejectMismatchedTensorData"/>).
/// TorchScript: unique entries, pickles naming only what torch.jit.save writes, storages and tensors within their
/// records (<see cref="TorchScriptArchiveCheck"/>). Nothing named inside the file (external data, URLs) is ever opened.
/// </summary>
public sealed class ModelFile
{
    private ModelFile(string path, byte[] bytes, ModelFormat format, ModelProto? onnx, IReadOnlyList<TensorInfo> inputs, IReadOnlyList<TensorInfo> outputs)
    {
        Path = path;
        Bytes = bytes;
        Format = format;
        Onnx = onnx;
        Inputs = inputs;
        Outputs = outputs;
        Sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    /// <summary>Where the file was read from.</summary>
    public string Path { get; }

    /// <summary>The file's bytes.</summary>
    public byte[] Bytes { get; }

    /// <summary>ONNX or TorchScript.</summary>
    public ModelFormat Format { get; }

    /// <summary>Parsed ONNX graph (null for TorchScript).</summary>
    public ModelProto? Onnx { get; }

    /// <summary>Declared inputs (TorchScript: names from the forward signature, shapes unknown).</summary>
    public IReadOnlyList<TensorInfo> Inputs { get; }

    /// <summary>Declared outputs (TorchScript: unknown until the model runs).</summary>
    public IReadOnlyList<TensorInfo> Outputs { get; }

    /// <summary>Lower-case hex SHA-256 of the file.</summary>
    public string Sha256 { get; }

    /// <summary>Most entries a TorchScript archive may have.</summary>
    public const int MaxArchiveEntries = 10_000;

    /// <summary>Most bytes a TorchScript archive may decompress to (its entries together).</summary>
    public const long MaxArchiveBytes = 4L << 30;

    /// <summary>Largest model file accepted (2 GiB, the protobuf limit).</summary>
    public const long MaxBytes = int.MaxValue;

    /// <summary>Reads and checks a model file. Throws <see cref="MeasurementInputException"/> (field <c>model</c>) on any problem.</summary>
    public static ModelFile Open(string path)
    {
        if (path.Contains("://", StringComparison.Ordinal))
        {
            throw new MeasurementInputException("model", $"'{path}' looks like a URL; models are only read from local files. Download it first and pass the file.");
        }
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new MeasurementInputException("model", $"model file '{path}' does not exist.");
            if (info.Length > MaxBytes) throw new MeasurementInputException("model", $"model file '{path}' is larger than 2 GiB; such models are not supported.");
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new MeasurementInputException("model", $"cannot read model file '{path}': {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new MeasurementInputException("model", $"cannot read model file '{path}': {e.Message}", e);
        }
        return FromBytes(path, bytes);
    }

    /// <summary>Checks model bytes already in memory; <paramref name="name"/> is used in messages only.</summary>
    public static ModelFile FromBytes(string name, byte[] bytes)
    {
        if (bytes.Length == 0) throw new MeasurementInputException("model", $"model file '{name}' is empty.");
        return bytes.Length >= 4 && bytes[0] == (byte)'P' && bytes[1] == (byte)'K' && bytes[2] == 3 && bytes[3] == 4
            ? OpenTorchScript(name, bytes)
            : OpenOnnx(name, bytes);
    }

    private static ModelFile OpenOnnx(string name, byte[] bytes)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new MeasurementInputException("model", $"'{name}' is neither a TorchScript archive nor a readable ONNX model (the file may be truncated): {e.Message}", e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0 || model.Graph.Output.Count == 0)
        {
            throw new MeasurementInputException("model", $"'{name}' is not a readable ONNX model: it has no graph, nodes or outputs (is the file truncated or of another format?).");
        }
        OnnxGraphChecks.RejectExternalData(model, name);
        OnnxGraphChecks.RejectMismatchedTensorData(model, name);
        var initializers = model.Graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Select(OnnxGraphChecks.Describe).ToList();
        var outputs = model.Graph.Output.Select(OnnxGraphChecks.Describe).ToList();
        if (inputs.Count == 0) throw new MeasurementInputException("model", $"ONNX model '{name}' has no inputs to differentiate against.");
        return new ModelFile(name, bytes, ModelFormat.Onnx, model, inputs, outputs);
    }

    private static ModelFile OpenTorchScript(string name, byte[] bytes)
    {
        try
        {
            using var zip = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            // libtorch takes the archive's folder from the first entry (caffe2/serialize/inline_container.cc).
            var slash = entries.Count == 0 ? -1 : entries[0].IndexOf('/');
            var root = slash > 0 ? entries[0][..slash] : null;
            if (root is null || !entries.Contains(root + "/data.pkl"))
            {
                throw new MeasurementInputException("model", $"'{name}' is a zip file but not a TorchScript archive (no <folder>/data.pkl); save the model with torch.jit.save.");
            }
            if (!entries.Any(e => e.StartsWith(root + "/code/", StringComparison.Ordinal)))
            {
                throw new MeasurementInputException("model", $"'{name}' has no TorchScript code ({root}/code/); it may be a plain state dict saved with torch.save. Save a scripted or traced model with torch.jit.save.");
            }
            if (zip.Entries.Count > MaxArchiveEntries)
            {
                throw new MeasurementInputException("model", $"TorchScript archive '{name}' has {zip.Entries.Count} entries; at most {MaxArchiveEntries} are accepted.");
            }
            TorchScriptArchiveCheck.Check(name, zip, root);
            var forwardArgs = new List<TensorInfo> { new("x", [-1], "unknown") };
            return new ModelFile(name, bytes, ModelFormat.TorchScript, null, forwardArgs, [new TensorInfo("output", [-1], "unknown")]);
        }
        catch (InvalidDataException e)
        {
            throw new MeasurementInputException("model", $"TorchScript archive '{name}' is damaged or truncated: {e.Message}", e);
        }
    }
}
