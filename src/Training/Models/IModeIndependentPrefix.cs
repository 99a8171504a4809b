using LambdaService.Measurement.Taylor;

namespace LambdaService.Training.Models;

/// <summary>
/// A network whose layers up to <see cref="ModeIndependentThrough"/> compute the same function in training and in evaluation mode:
/// its dropout (and anything else that depends on the mode) comes after that layer. A CRR step on it can read the activation that
/// its training-mode loss needs at that layer from the penalty's jet — the jet's order-0 coefficient there is exactly that
/// activation — and run only the rest of the network in training mode, instead of a whole forward pass (and backward pass) of its
/// own through the layers before it.
/// </summary>
public interface IModeIndependentPrefix : ILayeredModule, IJetModule
{
    /// <summary>The last layer (one of <see cref="ILayeredModule.Layers"/>) up to which training and evaluation mode compute the same.</summary>
    string ModeIndependentThrough { get; }

    /// <summary>
    /// <c>h_L</c> on jets: the input's jet → the jet of the activation of <paramref name="layer"/> (evaluation mode, like every jet pass).
    /// </summary>
    Jet ForwardTo(string layer, Jet input);
}
