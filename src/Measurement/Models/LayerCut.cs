using LambdaService.Measurement.Taylor;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Models;

/// <summary>
/// A model runner cut at layer L (see <see cref="ILayeredModule"/>): <see cref="Activations"/> maps input samples to
/// <c>h_L(x)</c>, and <see cref="Suffix"/> runs <c>g_L</c> on activations, so that the engines differentiate <c>g_L</c> at
/// <c>h_L(x)</c> exactly as they differentiate a whole model at x.
/// </summary>
public sealed class LayerCut : IDisposable
{
    private readonly TorchModelRunner _model;
    private readonly ILayeredModule _layers;
    private readonly LayerSuffix _suffix;

    internal LayerCut(TorchModelRunner model, nn.Module network, string layer, string field)
    {
        _model = model;
        _layers = Taylor.Layers.Resolve(network, layer, field);
        _suffix = new LayerSuffix(_layers, layer);
        Layer = layer;
        Shape = Taylor.Layers.ActivationShape(_layers, layer, model.SampleShape, model.DType, model.TorchDevice);
        // The suffix shares the model's parameters: it runs in the model's dtype (a cast would change the whole model's).
        Suffix = TorchModelRunner.FromModule(_suffix, Shape, model.Signature.Sha256, model.TorchDevice, model.DType);
    }

    /// <summary>The layer's name.</summary>
    public string Layer { get; }

    /// <summary>Shape of one sample's activation at the layer (without the batch axis).</summary>
    public int[] Shape { get; }

    /// <summary>Values per activation.</summary>
    public int Size => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary><c>g_L</c> as a runner (its module has jet rules, so both exact engines run on it).</summary>
    public TorchModelRunner Suffix { get; }

    /// <summary><c>h_L(x)</c> for <paramref name="count"/> row-major samples, row-major <c>count × Size</c>, in double precision.</summary>
    public double[] Activations(double[] samples, int count)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var inSize = _model.SampleSize;
        if (samples.Length != (long)count * inSize) throw new ArgumentException($"Expected {count}×{inSize} values, got {samples.Length}.", nameof(samples));
        var result = new double[(long)count * Size];
        const int batch = 256;
        for (var start = 0; start < count; start += batch)
        {
            var n = Math.Min(batch, count - start);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var x = tensor(samples.AsSpan(start * inSize, n * inSize).ToArray(), [n, .. _model.SampleShape.Select(d => (long)d)], ScalarType.Float64)
                .to(_model.DType, _model.TorchDevice);
            var h = _layers.ForwardTo(Layer, x).to(ScalarType.Float64).cpu().contiguous();
            h.data<double>().CopyTo(result.AsSpan(start * Size, n * Size));
        }
        return result;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Suffix.Dispose();
        _suffix.Dispose();
    }
}
