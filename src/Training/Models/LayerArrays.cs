using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Models;

/// <summary>Layer parameters as plain float32 arrays in torch layouts, for export (shared by <see cref="Mlp"/> and <see cref="Cnn"/>).</summary>
internal static class LayerArrays
{
    /// <summary>A fully connected layer: weight <c>[out, in]</c> and bias <c>[out]</c>.</summary>
    public static LinearParameters Linear(Linear layer)
    {
        var (flat, shape) = Values(layer.weight!);
        var weight = new float[shape[0], shape[1]];
        Buffer.BlockCopy(flat, 0, weight, 0, flat.Length * sizeof(float));
        return new LinearParameters(weight, Values(layer.bias!).Flat);
    }

    /// <summary>A 2-D convolution: weight <c>[out, in, kh, kw]</c> and bias <c>[out]</c>.</summary>
    public static ConvParameters Conv(Conv2d layer)
    {
        var (flat, shape) = Values(layer.weight!);
        var weight = new float[shape[0], shape[1], shape[2], shape[3]];
        Buffer.BlockCopy(flat, 0, weight, 0, flat.Length * sizeof(float));
        return new ConvParameters(weight, Values(layer.bias!).Flat);
    }

    private static (float[] Flat, long[] Shape) Values(Tensor parameter)
    {
        // The scope holds the chain's intermediates (detach, to, cpu): TorchSharp passes bare handles to native code, so an
        // unreferenced intermediate could be finalized while the next call still reads it.
        using var scope = NewDisposeScope();
        var t = parameter.detach().to(ScalarType.Float32).cpu().contiguous();
        return (t.data<float>().ToArray(), t.shape);
    }
}
