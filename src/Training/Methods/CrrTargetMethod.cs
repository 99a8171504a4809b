using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Methods;

/// <summary>
/// λ-targeting CRR (method <c>crr-target</c>): the steps of <see cref="CrrMethod"/> with a scale that a
/// <see cref="LambdaBandController"/> adapts between steps, from measurements of λ that the training loop takes on held-out
/// samples (<see cref="Observe"/>). The objective at step s is <c>mean CE + s_k · P(w)</c> with the scale s_k in force.
/// </summary>
public sealed class CrrTargetMethod : ITrainingMethod
{
    private readonly CrrMethod crr;

    /// <summary>Wraps <paramref name="crr"/> (whose scale the controller sets from now on).</summary>
    public CrrTargetMethod(CrrMethod crr, LambdaBandController controller)
    {
        this.crr = crr ?? throw new ArgumentNullException(nameof(crr));
        Controller = controller ?? throw new ArgumentNullException(nameof(controller));
        crr.Scale = controller.Scale;
    }

    /// <summary>The controller.</summary>
    public LambdaBandController Controller { get; }

    /// <summary>The CRR steps this method takes, with the scale the controller set last.</summary>
    public CrrMethod Crr => crr;

    /// <inheritdoc />
    public string Name => "crr-target";

    /// <inheritdoc />
    public string Formula
    {
        get
        {
            var t = Controller.Settings;
            var where = (Measurement.Taylor.Layers.IsInput(crr.At) ? "" : $"; penalty and λ at layer {crr.At}")
                + (crr.Classes is null ? "" : $"; penalty on y_i in {{{string.Join(",", crr.Classes)}}}");
            return string.Create(CultureInfo.InvariantCulture,
                $"J(w) = mean_i CE(f_w(x_i), y_i) + s_k * P(w), P(w) as crr with orders {crr.MinOrder}..{crr.MaxOrder}, {crr.Directions} direction(s), derivatives by {crr.EngineUsed}; "
                + $"s_k held λ in [{t.Min:R}, {t.Max:R}]: every {t.Every} steps λ is measured on {t.MonitorPoints} held-out training samples and "
                + $"log s += clamp({t.Gain:R} * e, -{t.MaxStep:R}, {t.MaxStep:R}) with e the distance of λ outside the middle {t.Deadband:R} of the band (0 inside); "
                + $"s < {t.MinScale:R} is 0, s ≤ {t.MaxScale:R}; s_0 = {t.InitialScale:R}{where}");
        }
    }

    /// <summary>Feeds one measurement of λ to the controller and sets the scale of the following steps.</summary>
    public void Observe(double lambda) => crr.Scale = Controller.Update(lambda);

    /// <summary>The scale in force.</summary>
    public double Scale => crr.Scale;

    /// <summary>Stops a run whose loss or penalty stopped being finite: a <see cref="Measurement.MeasurementInputException"/> titled "Training diverged" (field <c>crr.target</c>).</summary>
    public static void CheckFinite(StepLoss loss, long step, int epoch, double scale)
    {
        var penaltyFinite = loss.Penalty is not { } penalty || double.IsFinite(penalty);
        if (double.IsFinite(loss.Loss) && penaltyFinite) return;
        throw new Measurement.MeasurementInputException("crr.target",
            string.Create(CultureInfo.InvariantCulture, $"the training loss became {loss.Loss} (penalty {loss.Penalty}) at step {step} of epoch {epoch}, with the CRR scale at {scale:G4}; ")
            + "lower crr.target.maxScale, gain or maxStep, or the learning rate.", title: "Training diverged");
    }

    /// <inheritdoc />
    public StepLoss Step(nn.Module<Tensor, Tensor> network, Tensor x, Tensor y, optim.Optimizer optimizer, long step) =>
        crr.Step(network, x, y, optimizer, step);
}
