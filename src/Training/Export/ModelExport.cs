using System.Globalization;
using Google.Protobuf;
using LambdaService.Measurement.Models;
using LambdaService.Training.Models;
using Onnx;
using static TorchSharp.torch;

namespace LambdaService.Training.Export;

/// <summary>Where <see cref="ModelExport.Write"/> put a model, and what its files take and give.</summary>
/// <param name="OnnxPath">The ONNX file (opset 17, float32, input <c>x</c>, output <c>logits</c>).</param>
/// <param name="TorchScriptPath">The TorchScript archive (<c>torch.jit.load</c>-able; <c>forward(x) → logits</c>).</param>
/// <param name="SampleShape">Shape of one input sample: <c>[features]</c> for an MLP, <c>[C, H, W]</c> for a CNN.</param>
/// <param name="Classes">Logits per sample.</param>
public sealed record ExportedModel(string OnnxPath, string TorchScriptPath, int[] SampleShape, int Classes);

/// <summary>
/// Writes the project's trained networks (<see cref="Mlp"/>, <see cref="Cnn"/>) as ONNX (via <see cref="OnnxModelBuilder"/>)
/// and as TorchScript (via <see cref="TorchScriptWriter"/>), with their float32 weights. Both files compute the network
/// in evaluation mode (dropout is the identity) and give the same logits as the module, so λ can be measured on
/// either: TorchScript with exact autograd, ONNX with finite differences.
/// </summary>
/// <remarks>
/// <para>MLP: ONNX input <c>x [N, in]</c>, Gemm (transB = 1) per layer; TorchScript <c>torch.linear</c> per layer (class <c>Mlp</c>).</para>
/// <para>
/// CNN: ONNX input <c>x [N, C, H, W]</c> → Conv → act → Conv → act → MaxPool 2×2 → Flatten → Gemm → act → Gemm.
/// TorchScript class <c>Cnn</c> with parameters <c>conv1_weight, conv1_bias, conv2_weight, conv2_bias, hidden_weight,
/// hidden_bias, output_weight, output_bias</c>; its forward first reshapes its input to <c>[-1, C, H, W]</c>, so it
/// accepts flattened samples too, then calls <c>torch.conv2d</c>, <c>torch.relu</c> (or <c>torch.tanh</c>),
/// <c>torch.max_pool2d</c>, <c>torch.flatten</c> and <c>torch.linear</c>: core ATen operators that libtorch 2.10
/// compiles from archived code without Python (no <c>torch.nn.functional</c>, no dtype arguments).
/// </para>
/// </remarks>
public static class ModelExport
{
    /// <summary>Base name of the files <see cref="Write"/> writes (<c>model.onnx</c>, <c>model.pt</c>).</summary>
    public const string DefaultName = "model";

    /// <summary>
    /// Writes <paramref name="module"/> as <c>{name}.onnx</c> and <c>{name}.pt</c> (TorchScript) into
    /// <paramref name="directory"/> (created when missing; existing files are replaced).
    /// </summary>
    /// <exception cref="ArgumentException">The module is not an <see cref="Mlp"/> or a <see cref="Cnn"/>, or the name is not a plain file name.</exception>
    public static ExportedModel Write(nn.Module<Tensor, Tensor> module, string directory, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.Contains('/') || name.Contains('\\') || name is "." or "..")
            throw new ArgumentException($"'{name}' is not a plain file name.", nameof(name));
        var onnx = ToOnnx(module);
        var script = ToTorchScript(module);
        Directory.CreateDirectory(directory);
        var onnxPath = Path.Combine(directory, name + ".onnx");
        var torchScriptPath = Path.Combine(directory, name + ".pt");
        File.WriteAllBytes(onnxPath, onnx.ToByteArray());
        TorchScriptWriter.Write(torchScriptPath, script);
        return new ExportedModel(onnxPath, torchScriptPath, SampleShape(module), Classes(module));
    }

    /// <summary>The ONNX file's bytes for <paramref name="module"/>.</summary>
    public static byte[] OnnxBytes(nn.Module<Tensor, Tensor> module) => ToOnnx(module).ToByteArray();

    /// <summary>The TorchScript archive's bytes for <paramref name="module"/>.</summary>
    public static byte[] TorchScriptBytes(nn.Module<Tensor, Tensor> module)
    {
        using var buffer = new MemoryStream();
        TorchScriptWriter.Write(buffer, ToTorchScript(module));
        return buffer.ToArray();
    }

    /// <summary>The ONNX model of an <see cref="Mlp"/> or a <see cref="Cnn"/> (see remarks of <see cref="ModelExport"/>).</summary>
    /// <exception cref="ArgumentException">Another kind of module.</exception>
    public static ModelProto ToOnnx(nn.Module<Tensor, Tensor> module) => module switch
    {
        Mlp mlp => MlpOnnx(mlp),
        Cnn cnn => CnnOnnx(cnn),
        null => throw new ArgumentNullException(nameof(module)),
        _ => throw Unsupported(module),
    };

    /// <summary>The TorchScript spec of an <see cref="Mlp"/> or a <see cref="Cnn"/> (see remarks of <see cref="ModelExport"/>).</summary>
    /// <exception cref="ArgumentException">Another kind of module.</exception>
    public static TorchScriptModuleSpec ToTorchScript(nn.Module<Tensor, Tensor> module) => module switch
    {
        Mlp mlp => MlpTorchScript(mlp),
        Cnn cnn => CnnTorchScript(cnn),
        null => throw new ArgumentNullException(nameof(module)),
        _ => throw Unsupported(module),
    };

    /// <summary>Shape of one input sample of the exported files: <c>[in]</c> for an MLP, <c>[C, H, W]</c> for a CNN.</summary>
    public static int[] SampleShape(nn.Module<Tensor, Tensor> module) => module switch
    {
        Mlp mlp => [mlp.Widths[0]],
        Cnn cnn => cnn.SampleShape,
        null => throw new ArgumentNullException(nameof(module)),
        _ => throw Unsupported(module),
    };

    private static int Classes(nn.Module<Tensor, Tensor> module) => module switch
    {
        Mlp mlp => mlp.Widths[^1],
        Cnn cnn => cnn.Options.Classes,
        _ => throw Unsupported(module),
    };

    private static ArgumentException Unsupported(nn.Module<Tensor, Tensor> module) =>
        new($"Only the project's Mlp and Cnn can be exported, not {module.GetType().Name}.", nameof(module));

    private static ModelProto MlpOnnx(Mlp mlp)
    {
        var p = mlp.Parameters();
        return OnnxModelBuilder.Mlp(p.Select(l => l.Weight).ToList(), p.Select(l => l.Bias).ToList(), mlp.Activation);
    }

    private static TorchScriptModuleSpec MlpTorchScript(Mlp mlp)
    {
        var p = mlp.Parameters();
        return TorchScriptWriter.Mlp(p.Select(l => l.Weight).ToList(), p.Select(l => l.Bias).ToList(), mlp.Activation);
    }

    private static ModelProto CnnOnnx(Cnn cnn)
    {
        var o = cnn.Options;
        var p = cnn.Parameters();
        var act = o.Activation == "tanh" ? "Tanh" : "Relu";
        var b = new OnnxModelBuilder("x", o.InputChannels, o.ImageSize, o.ImageSize);
        // The values carry the layer names of the project's Cnn (conv1, act1, …, act3), so `at` means the same in both.
        var h = b.Name(b.Node(act, [b.Name(b.Conv2d(b.Input, p.Conv1.Weight, p.Conv1.Bias), "conv1")]), "act1");
        h = b.Name(b.Node(act, [b.Name(b.Conv2d(h, p.Conv2.Weight, p.Conv2.Bias), "conv2")]), "act2");
        h = b.Flatten(b.Name(b.MaxPool2d(h, 2, 2), "pool"));
        h = b.Name(b.Node(act, [b.Name(b.Linear(h, p.Hidden.Weight, p.Hidden.Bias), "hidden")]), "act3");
        h = b.Linear(h, p.Output.Weight, p.Output.Bias);
        return b.Build(h, "logits", o.Classes);
    }

    private static TorchScriptModuleSpec CnnTorchScript(Cnn cnn)
    {
        var o = cnn.Options;
        var p = cnn.Parameters();
        TorchScriptParameter Conv(string name, float[,,,] w) =>
            new(name, [w.GetLength(0), w.GetLength(1), w.GetLength(2), w.GetLength(3)], Flat(w));
        TorchScriptParameter Dense(string name, float[,] w) => new(name, [w.GetLength(0), w.GetLength(1)], Flat(w));
        TorchScriptParameter Vector(string name, float[] v) => new(name, [v.Length], (float[])v.Clone());
        var parameters = new List<TorchScriptParameter>
        {
            Conv("conv1_weight", p.Conv1.Weight), Vector("conv1_bias", p.Conv1.Bias),
            Conv("conv2_weight", p.Conv2.Weight), Vector("conv2_bias", p.Conv2.Bias),
            Dense("hidden_weight", p.Hidden.Weight), Vector("hidden_bias", p.Hidden.Bias),
            Dense("output_weight", p.Output.Weight), Vector("output_bias", p.Output.Bias),
        };
        var act = o.Activation == "tanh" ? "torch.tanh" : "torch.relu";
        var shape = string.Create(CultureInfo.InvariantCulture, $"[-1, {o.InputChannels}, {o.ImageSize}, {o.ImageSize}]");
        var source = string.Join('\n',
            $"x0 = torch.reshape(x, {shape})",
            $"h = {act}(torch.conv2d(x0, self.conv1_weight, self.conv1_bias))",
            $"h = {act}(torch.conv2d(h, self.conv2_weight, self.conv2_bias))",
            "h = torch.flatten(torch.max_pool2d(h, [2, 2], [2, 2]), 1)",
            $"h = {act}(torch.linear(h, self.hidden_weight, self.hidden_bias))",
            "return torch.linear(h, self.output_weight, self.output_bias)");
        return new TorchScriptModuleSpec("Cnn", parameters, source);
    }

    private static float[] Flat(Array a)
    {
        var flat = new float[a.Length];
        Buffer.BlockCopy(a, 0, flat, 0, flat.Length * sizeof(float));
        return flat;
    }
}
