using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Methods;

/// <summary>
/// Sharpness-Aware Minimization (Foret et al. 2021) and its adaptive variant ASAM (Kwon et al. 2021), as a
/// two-pass step on the batch loss <c>L(w) = mean_i CE(f_w(x_i), y_i)</c>.
/// </summary>
/// <remarks>
/// <code>
/// g  = ∇_w L(w)
/// e  = ρ g / (‖g‖ + 10⁻¹²)                        (SAM)
/// e  = ρ T_w² g / (‖T_w g‖ + 10⁻¹²),  T_w = |w|    (ASAM, elementwise; adaptive = true)
/// g' = ∇_w L(w + e)
/// w  ← optimizer step from w with gradient g'
/// </code>
/// Norms are taken over all parameters together (the global Euclidean norm). The parameters are restored to
/// exactly w (saved copies, not <c>w + e − e</c>) before the optimizer step, so weight decay and the
/// optimizer's state see w. Module buffers (batch-norm running statistics) are saved after the first pass and
/// restored after the second, so they are updated once per step as in plain training.
/// </remarks>
/// <param name="rho">Neighbourhood radius ρ &gt; 0.</param>
/// <param name="adaptive">ASAM instead of SAM.</param>
public sealed class SamMethod(double rho, bool adaptive) : ITrainingMethod
{
    /// <summary>Neighbourhood radius ρ.</summary>
    public double Rho { get; } = rho > 0 && double.IsFinite(rho) ? rho : throw new ArgumentOutOfRangeException(nameof(rho), rho, "ρ must be finite and > 0.");

    /// <summary>Whether the step is ASAM's.</summary>
    public bool Adaptive { get; } = adaptive;

    /// <inheritdoc />
    public string Name => "sam";

    /// <inheritdoc />
    public string Formula => Adaptive
        ? string.Create(CultureInfo.InvariantCulture, $"ASAM: g = grad L(w); e = {Rho:R} * |w|^2 g / ||(|w| g)||; step from w with grad L(w + e); L(w) = mean_i CE(f_w(x_i), y_i)")
        : string.Create(CultureInfo.InvariantCulture, $"SAM: g = grad L(w); e = {Rho:R} * g / ||g||; step from w with grad L(w + e); L(w) = mean_i CE(f_w(x_i), y_i)");

    /// <inheritdoc />
    public StepLoss Step(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, optim.Optimizer optimizer, long step)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        var parameters = network.parameters().Where(p => p.requires_grad).ToArray();

        optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(network.call(x), y);
        loss.backward();
        var lossValue = loss.ToDouble();

        var saved = new Tensor[parameters.Length];
        var perturbation = new Tensor?[parameters.Length];
        using (no_grad())
        {
            var scaled = new Tensor?[parameters.Length];
            var squares = new List<Tensor>();
            for (var i = 0; i < parameters.Length; i++)
            {
                saved[i] = parameters[i].detach().clone();
                var g = parameters[i].grad;
                if (g is null || g.IsInvalid) continue;
                // SAM: numerator g, norm of g. ASAM: numerator T²g, norm of Tg, T = |w|.
                var tg = Adaptive ? parameters[i].abs() * g : g;
                squares.Add(tg.square().sum());
                scaled[i] = Adaptive ? parameters[i].abs() * tg : g;
            }
            var norm = squares.Count == 0 ? 0.0 : stack(squares).sum().sqrt().ToDouble();
            var factor = Rho / (norm + 1e-12);
            for (var i = 0; i < parameters.Length; i++)
            {
                if (scaled[i] is not { } s) continue;
                perturbation[i] = s * factor;
                parameters[i].add_(perturbation[i]!);
            }
        }

        var buffers = network.buffers().ToArray();
        var savedBuffers = buffers.Select(b => b.detach().clone()).ToArray();
        optimizer.zero_grad();
        var perturbedLoss = nn.functional.cross_entropy(network.call(x), y);
        perturbedLoss.backward();

        using (no_grad())
        {
            for (var i = 0; i < parameters.Length; i++) parameters[i].copy_(saved[i]);
            for (var i = 0; i < buffers.Length; i++) buffers[i].copy_(savedBuffers[i]);
        }
        optimizer.step();
        return new StepLoss(lossValue, null);
    }
}
