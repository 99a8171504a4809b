using System.Globalization;
using System.Text;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Tests.Service;

/// <summary>Model and data files the end-to-end tests upload: a tanh MLP as ONNX and TorchScript, labelled CSV points, a ReLU CNN with images.</summary>
public sealed class TestFiles : IDisposable
{
    public TestFiles()
    {
        Folder = Path.Combine(Path.GetTempPath(), "lambdaservice-files-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        var rng = new Random(7);
        float R() => (float)(rng.NextDouble() * 2 - 1);
        float[,] Matrix(int rows, int cols)
        {
            var m = new float[rows, cols];
            for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) m[i, j] = 1.5f * R();
            return m;
        }
        float[] Vector(int n) => Enumerable.Range(0, n).Select(_ => R()).ToArray();
        float[][,] w = [Matrix(16, 2), Matrix(16, 16), Matrix(2, 16)];
        float[][] b = [Vector(16), Vector(16), Vector(2)];
        OnnxModelBuilder.Save(OnnxModelBuilder.Mlp(w, b), Onnx);
        // The same network with Einsum for Gemm: ONNX Runtime runs it, the Taylor-mode importer has no rule for Einsum.
        OnnxModelBuilder.Save(UnsupportedModels.WithEinsum(OnnxModelBuilder.Mlp(w, b)), UnsupportedOnnx);
        TorchScriptWriter.Write(TorchScript, TorchScriptWriter.Mlp(w, b));

        // A bigger network for slow jobs (cancel, kill -9): 2-256-256-2.
        float[][,] bw = [Matrix(256, 2), Matrix(256, 256), Matrix(2, 256)];
        float[][] bb = [Vector(256), Vector(256), Vector(2)];
        OnnxModelBuilder.Save(OnnxModelBuilder.Mlp(bw, bb), SlowOnnx);

        // The same shape of network with torch.layer_norm, whose 3rd/4th derivatives nested autograd gets wrong (TorchScriptOperators).
        // Its own random stream, so that the files made after it keep their values.
        var normRng = new Random(25);
        float[] Weights(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(normRng.NextDouble() * 2 - 1))];
        TorchScriptWriter.Write(LayerNormTorchScript, new TorchScriptModuleSpec("LayerNormNet",
            [new TorchScriptParameter("w0", [4, 2], Weights(8)), new TorchScriptParameter("b0", [4], Weights(4)),
                new TorchScriptParameter("w1", [2, 4], Weights(8)), new TorchScriptParameter("b1", [2], Weights(2))],
            "z = torch.linear(x, self.w0, self.b0)\nh = torch.layer_norm(z, [4], None, None, 1e-05)\nreturn torch.linear(torch.tanh(h), self.w1, self.b1)"));

        // torch.cdist to three fixed centres: libtorch has no derivative of its backward (aten::_cdist_backward), so nested autograd
        // aborts the process at the second order instead of raising (TorchScriptOperators.WithoutSecondDerivative explains why).
        // Written after the networks above, so their values do not move.
        TorchScriptWriter.Write(CdistTorchScript, new TorchScriptModuleSpec("CdistNet",
            [new TorchScriptParameter("c", [3, 2], [0.5f, -0.25f, -1f, 0.75f, 0.2f, 1.1f])], "return torch.cdist(x, self.c)"));

        // TorchScript whose forward does not compile: torch.jit.load aborts the process (std::terminate).
        TorchScriptWriter.Write(Aborting, new TorchScriptModuleSpec("Broken", [new TorchScriptParameter("w", [1], [1f])], "return torch.no_such_op(x * self.w)"));

        var csv = new StringBuilder("f1,f2,label\n");
        var unlabelled = new StringBuilder("f1,f2\n");
        for (var i = 0; i < 120; i++)
        {
            var x1 = rng.NextDouble() * 3 - 1.5;
            var x2 = rng.NextDouble() * 3 - 1.5;
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{x1:R},{x2:R},{(x1 * x2 > 0 ? 1 : 0)}"));
            unlabelled.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{x1:R},{x2:R}"));
        }
        File.WriteAllText(Csv, csv.ToString());
        File.WriteAllText(UnlabelledCsv, unlabelled.ToString());
        File.WriteAllText(NanCsv, "f1,f2,label\n0.1,NaN,1\n");
        File.WriteAllBytes(Garbage, Encoding.ASCII.GetBytes("this is not a model at all, just some text that pretends"));

        // sin(3·(x1 + x2)) as a scalar ONNX model (output [N, 1]), for scalar-model request checks.
        var sb = new OnnxModelBuilder("x", 2);
        var linear = sb.Node("Gemm", [sb.Input, sb.Constant([3f, 3f], 1, 2), sb.Constant([0f], 1)], ("transB", 1L));
        OnnxModelBuilder.Save(sb.Build(sb.Node("Sin", [linear]), "y", 1), Scalar);

        // A ReLU CNN and labelled 8×8 images: finite differences on it are refused as unreliable.
        (ReluCnn, Images) = ReluCnnFiles.Write(Folder);
    }

    public string Folder { get; }

    public string Onnx => Path.Combine(Folder, "mlp.onnx");

    public string TorchScript => Path.Combine(Folder, "mlp.pt");

    public string UnsupportedOnnx => Path.Combine(Folder, "einsum-mlp.onnx");

    public string SlowOnnx => Path.Combine(Folder, "big.onnx");

    public string Aborting => Path.Combine(Folder, "broken.pt");

    /// <summary>A TorchScript model of two inputs and three outputs calling torch.cdist.</summary>
    public string CdistTorchScript => Path.Combine(Folder, "cdist.pt");

    /// <summary>A 2-4-2 TorchScript network calling torch.layer_norm.</summary>
    public string LayerNormTorchScript => Path.Combine(Folder, "layernorm.pt");

    public string Csv => Path.Combine(Folder, "points.csv");

    public string UnlabelledCsv => Path.Combine(Folder, "unlabelled.csv");

    public string NanCsv => Path.Combine(Folder, "nan.csv");

    public string Garbage => Path.Combine(Folder, "garbage.onnx");

    public string Scalar => Path.Combine(Folder, "sin.onnx");

    public string ReluCnn { get; }

    public string Images { get; }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
