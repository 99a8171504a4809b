using System.Globalization;
using System.Text;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Tests;

/// <summary>
/// A small ReLU CNN as ONNX and labelled 8×8 images as CSV (64 feature columns and a label), for the checks that finite
/// differences on a piecewise-linear network are refused as unreliable. The same network, weights and points as
/// <c>DerivativeReliabilityTests.ReluCnn(5)</c> in Measurement.Tests (order-4 median error estimate 423% there; exact λ ≈ −1.78).
/// </summary>
internal static class ReluCnnFiles
{
    /// <summary>Writes <c>relu-cnn.onnx</c> and <c>images.csv</c> into <paramref name="folder"/> and returns their paths.</summary>
    public static (string Onnx, string Csv) Write(string folder)
    {
        var onnx = Path.Combine(folder, "relu-cnn.onnx");
        var csv = Path.Combine(folder, "images.csv");
        OnnxModelBuilder.Save(Model(5), onnx);

        const int rows = 40, size = 64;
        var rng = new Random(11);
        var text = new StringBuilder(string.Join(",", Enumerable.Range(0, size).Select(i => $"p{i}")) + ",label\n");
        var x = Enumerable.Range(0, rows * size).Select(_ => rng.NextDouble()).ToArray();
        for (var r = 0; r < rows; r++)
        {
            text.AppendLine(string.Join(",", x.Skip(r * size).Take(size).Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "," + (r % 3).ToString(CultureInfo.InvariantCulture));
        }
        File.WriteAllText(csv, text.ToString());
        return (onnx, csv);
    }

    /// <summary>Conv(1→4, 3×3, pad 1) → Relu → MaxPool(2) → Conv(4→8, 3×3) → Relu → Flatten → Gemm(→3), input [N, 1, 8, 8].</summary>
    private static Onnx.ModelProto Model(int seed)
    {
        var rng = new Random(seed);
        float[] Rand(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() - 0.5) * 2 * scale)).ToArray();
        var b = new OnnxModelBuilder("x", 1, 8, 8);
        var c1 = b.Node("Conv", [b.Input, b.Constant(Rand(4 * 9, 0.6), 4, 1, 3, 3), b.Constant(Rand(4, 0.1), 4)],
            ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }));
        var p1 = b.Node("MaxPool", [b.Node("Relu", [c1])], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }));
        var c2 = b.Node("Conv", [p1, b.Constant(Rand(8 * 4 * 9, 0.3), 8, 4, 3, 3), b.Constant(Rand(8, 0.1), 8)], ("kernel_shape", new long[] { 3, 3 }));
        var flat = b.Node("Flatten", [b.Node("Relu", [c2])], ("axis", 1L));
        var logits = b.Node("Gemm", [flat, b.Constant(Rand(3 * 32, 0.5), 3, 32), b.Constant(Rand(3, 0.1), 3)], ("transB", 1L));
        return b.Build(logits, "logits", 3);
    }
}
