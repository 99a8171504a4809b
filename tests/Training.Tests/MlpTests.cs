using Google.Protobuf;
using LambdaService.Measurement.Models;
using LambdaService.Training.Models;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

public class MlpTests
{
    [Fact]
    public void The_mlp_computes_tanh_layers_by_hand_arithmetic()
    {
        manual_seed(1);
        using var mlp = new Mlp([3, 4, 2]);
        var p = mlp.Parameters();
        double[] x = [0.3, -0.2, 0.5];
        // logits_k = Σ_j W1[k,j]·tanh(Σ_i W0[j,i]·x_i + b0_j) + b1_k, in double from the float32 weights.
        var h = new double[4];
        for (var j = 0; j < 4; j++)
        {
            double s = p[0].Bias[j];
            for (var i = 0; i < 3; i++) s += p[0].Weight[j, i] * x[i];
            h[j] = Math.Tanh(s);
        }
        using var scope = NewDisposeScope();
        var output = mlp.call(tensor(x.Select(v => (float)v).ToArray(), [1, 3])).data<float>().ToArray();
        for (var k = 0; k < 2; k++)
        {
            double s = p[1].Bias[k];
            for (var j = 0; j < 4; j++) s += p[1].Weight[k, j] * h[j];
            Assert.Equal(s, output[k], 5);
        }
    }

    [Fact]
    public void Its_weights_exported_to_onnx_give_the_same_logits_in_onnx_runtime()
    {
        manual_seed(2);
        using var mlp = new Mlp([2, 8, 8, 3]);
        var p = mlp.Parameters();
        var model = OnnxModelBuilder.Mlp(p.Select(l => l.Weight).ToList(), p.Select(l => l.Bias).ToList());
        using var onnx = OnnxRunner.Create(ModelFile.FromBytes("mlp.onnx", model.ToByteArray()), [2]);
        using var torch = TorchModelRunner.FromModule(mlp, [2]);
        var x = Enumerable.Range(0, 20).Select(i => Math.Sin(i)).ToArray();
        var a = onnx.Forward(x, 10);
        var b = torch.Forward(x, 10);
        for (var i = 0; i < a.Length; i++) Assert.Equal(b[i], a[i], 10);
    }

    [Fact]
    public void Unknown_activations_and_too_few_widths_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new Mlp([2, 3], "swish"));
        Assert.Throws<ArgumentException>(() => new Mlp([2]));
    }
}
