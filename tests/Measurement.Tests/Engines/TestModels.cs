using LambdaService.Measurement.Data;
using LambdaService.Measurement.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Engines;

/// <summary>A TorchSharp tanh (or ReLU) MLP holding given weights (the test's own module, as a user's TorchSharp network would be).</summary>
internal sealed class FixedTanhMlp : nn.Module<Tensor, Tensor>
{
    private readonly ParameterList weights = new();
    private readonly ParameterList biases = new();

    private readonly bool relu;

    public FixedTanhMlp(float[][,] w, float[][] b, bool relu = false) : base(nameof(FixedTanhMlp))
    {
        this.relu = relu;
        for (var l = 0; l < w.Length; l++)
        {
            var rows = w[l].GetLength(0);
            var cols = w[l].GetLength(1);
            var flat = new float[rows * cols];
            Buffer.BlockCopy(w[l], 0, flat, 0, flat.Length * sizeof(float));
            weights.Add(new Parameter(tensor(flat, [rows, cols]), requires_grad: false));
            biases.Add(new Parameter(tensor(b[l], [rows]), requires_grad: false));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = x;
        for (var l = 0; l < weights.Count; l++)
        {
            h = nn.functional.linear(h, weights[l], biases[l]);
            if (l < weights.Count - 1) h = relu ? nn.functional.relu(h) : h.tanh();
        }
        return h;
    }
}

internal static class TestData
{
    public static Dataset Make(double[] x, int rows, int[] sampleShape, int[]? labels = null) =>
        new(x, rows, sampleShape, labels, "npz", "test-data");

    public static ModelFile Onnx(Onnx.ModelProto model, string name = "test.onnx") =>
        ModelFile.FromBytes(name, Google.Protobuf.MessageExtensions.ToByteArray(model));

    public static double[] Uniform(int count, int seed, double low = -1, double high = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => low + (high - low) * rng.NextDouble()).ToArray();
    }
}
