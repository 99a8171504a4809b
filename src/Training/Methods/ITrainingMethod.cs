using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Methods;

/// <summary>What one optimisation step reports: the batch's mean cross-entropy before the step, and the CRR penalty when one was computed.</summary>
/// <param name="Loss">Mean cross-entropy of the batch at the parameters before the step.</param>
/// <param name="Penalty">CRR penalty P of the batch (before scaling), or null when not computed on this step.</param>
public readonly record struct StepLoss(double Loss, double? Penalty);

/// <summary>
/// A training method: one optimisation step on one batch. Implementations call
/// <c>optimizer.zero_grad()</c> themselves, leave the parameters' gradients filled and call
/// <c>optimizer.step()</c> once; they do not dispose the network, the optimizer or the batch.
/// </summary>
public interface ITrainingMethod
{
    /// <summary><c>baseline</c>, <c>crr</c> or <c>sam</c>.</summary>
    string Name { get; }

    /// <summary>The objective in words and symbols, echoed in results.</summary>
    string Formula { get; }

    /// <summary>Performs step number <paramref name="step"/> (0-based, counted over the whole run) on batch (<paramref name="x"/>, <paramref name="y"/>).</summary>
    /// <param name="network">The network, in training mode, mapping <c>[B, sample…]</c> to logits <c>[B, C]</c>.</param>
    /// <param name="x">Batch of inputs.</param>
    /// <param name="y">Labels, int64 <c>[B]</c>.</param>
    /// <param name="optimizer">The optimizer over the network's parameters.</param>
    /// <param name="step">Index of the step in the run.</param>
    StepLoss Step(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, optim.Optimizer optimizer, long step);
}

/// <summary>Plain empirical risk minimisation: <c>w ← optimizer(w, ∇_w mean_i CE(f_w(x_i), y_i))</c>.</summary>
public sealed class BaselineMethod : ITrainingMethod
{
    /// <inheritdoc />
    public string Name => "baseline";

    /// <inheritdoc />
    public string Formula => "L(w) = mean_i CE(f_w(x_i), y_i)";

    /// <inheritdoc />
    public StepLoss Step(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, optim.Optimizer optimizer, long step)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(network.call(x), y);
        loss.backward();
        optimizer.step();
        return new StepLoss(loss.ToDouble(), null);
    }
}
