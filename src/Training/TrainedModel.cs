using LambdaService.Training.Models;
using static TorchSharp.torch;

namespace LambdaService.Training;

/// <summary>
/// A trained network handed to the caller (for export, further measurement). It owns the module: dispose it.
/// The module is in evaluation mode, float32, on the CPU.
/// </summary>
public sealed class TrainedModel : IDisposable
{
    internal TrainedModel(nn.Module<Tensor, Tensor> network, ModelSpec spec, int[] sampleShape, int classes)
    {
        Network = network;
        Spec = spec;
        SampleShape = sampleShape;
        Classes = classes;
    }

    /// <summary>The network: <c>[B, sample…]</c> → logits <c>[B, Classes]</c>.</summary>
    public nn.Module<Tensor, Tensor> Network { get; }

    /// <summary>The network as an <see cref="Models.Mlp"/> (with its <c>Parameters()</c> export), or null for other kinds.</summary>
    public Mlp? Mlp => Network as Mlp;

    /// <summary>What was built.</summary>
    public ModelSpec Spec { get; }

    /// <summary>Shape of one input sample.</summary>
    public int[] SampleShape { get; }

    /// <summary>Number of classes (outputs).</summary>
    public int Classes { get; }

    /// <inheritdoc />
    public void Dispose() => Network.Dispose();
}

/// <summary>A finished run: its result and the trained network (owned; dispose the outcome or <see cref="Model"/>).</summary>
/// <param name="Result">The metrics.</param>
/// <param name="Model">The trained network.</param>
public sealed record TrainingOutcome(TrainingResult Result, TrainedModel Model) : IDisposable
{
    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}
