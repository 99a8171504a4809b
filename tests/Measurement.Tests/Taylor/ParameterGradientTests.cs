using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Taylor;
using TorchSharp;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// Taylor derivatives are ordinary tensor arithmetic, so a training loss built from them (here the CRR-style
/// <c>P = Σ_lines Σ_{n=2..3} (Dⁿ CE)²</c>) has parameter gradients; they must equal the gradients of the same
/// P computed by nested autograd (<see cref="AutogradDifferentiableEngine"/>), to 1e-6 relative per parameter tensor
/// (largest difference against the largest reference entry; float64).
/// </summary>
public class ParameterGradientTests
{
    private static Tensor P(Random rng, params long[] shape) => Uniform(rng, shape, -0.8, 0.8).requires_grad_(true);

    private static void AssertSameGradients(DualModel model, IList<Tensor> parameters, long[] sample, int seed)
    {
        var rng = new Random(seed);
        const int lines = 5;
        long[] shape = [lines, .. sample];
        var x = Uniform(rng, shape, -1.2, 1.2);
        var v = Uniform(rng, shape, -1, 1);
        var classes = tensor(Enumerable.Range(0, lines).Select(i => (long)(i % 3)).ToArray());
        using var grad = enable_grad();
        var taylor = new TaylorDifferentiableEngine().DirectionalDerivatives(model, TargetKind.Loss, classes, x, v, 3);
        var nested = new AutogradDifferentiableEngine().DirectionalDerivatives(z => Objective.Evaluate(TargetKind.Loss, model.Plain(z), classes), x, v, 3);
        AssertClose(taylor, nested, 1e-6, "derivatives");
        var pTaylor = taylor.narrow(1, 1, 2).square().sum();
        var pNested = nested.narrow(1, 1, 2).square().sum();
        Assert.True(pTaylor.requires_grad);
        var gTaylor = autograd.grad([pTaylor], parameters, retain_graph: true);
        var gNested = autograd.grad([pNested], parameters, retain_graph: true);
        for (var i = 0; i < parameters.Count; i++)
        {
            var scale = gNested[i].abs().max().ToDouble();
            var diff = (gTaylor[i] - gNested[i]).abs().max().ToDouble();
            Assert.True(scale > 0, $"parameter {i}: the reference gradient is zero; the test would be vacuous");
            Assert.True(diff <= 1e-6 * scale, $"parameter {i} [{string.Join(",", parameters[i].shape)}]: max |Δgrad| {diff:E2} vs max |grad| {scale:E2}");
        }
    }

    [Fact]
    public void Gradients_through_a_conv_maxpool_gelu_network_equal_those_through_nested_autograd()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(21);
        var cw = P(rng, 2, 1, 3, 3);
        var cb = P(rng, 2);
        var w1 = P(rng, 4, 8);
        var b1 = P(rng, 4);
        var w2 = P(rng, 3, 4);
        var b2 = P(rng, 3);
        var model = new DualModel(
        [
            new("conv", x => nn.functional.conv2d(x, cw, cb), j => JetOps.Conv2d(j, cw, cb)),
            DualModel.Activation("tanh"),
            new("maxpool", x => nn.functional.max_pool2d(x, [2, 2], [2, 2]), j => JetOps.MaxPool2d(j, [2, 2], [2, 2])),
            new("flatten", x => x.flatten(1), j => JetOps.Flatten(j, 1)),
            DualModel.Linear(w1, b1),
            DualModel.Activation("gelu"),
            DualModel.Linear(w2, b2),
        ], ["MaxPool"]);
        AssertSameGradients(model, [cw, cb, w1, b1, w2, b2], [1, 6, 6], 22);
    }

    [Fact]
    public void Gradients_through_every_smooth_recurrence_equal_those_through_nested_autograd()
    {
        // sigmoid, softplus, sin, erf, exp, log, reciprocal (div) and softmax all accumulate their coefficients in place;
        // autograd must see through that.
        using var scope = NewDisposeScope();
        var rng = new Random(23);
        var w1 = P(rng, 6, 3);
        var b1 = P(rng, 6);
        var w2 = P(rng, 3, 6);
        var b2 = P(rng, 3);
        var gamma = Uniform(rng, [6], 0.5, 1.5).requires_grad_(true);
        var model = new DualModel(
        [
            DualModel.Linear(w1, b1),
            new("bn", x => nn.functional.batch_norm(x, zeros(6, dtype: ScalarType.Float64), ones(6, dtype: ScalarType.Float64), gamma, null, false, 0.1, 1e-5),
                j => JetOps.BatchNormEval(j, zeros(6, dtype: ScalarType.Float64), ones(6, dtype: ScalarType.Float64), gamma, null, 1e-5)),
            new("mix", x => x.sigmoid() + nn.functional.softplus(x) * x.sin() + x.erf() / (x.exp() + 1) + (x.square() + 1).log(),
                j => JetOps.Add(JetOps.Add(JetOps.Add(JetOps.Sigmoid(j), JetOps.Mul(JetOps.Softplus(j), JetOps.Sin(j))),
                    JetOps.Div(JetOps.Erf(j), JetOps.Shift(JetOps.Exp(j), 1))), JetOps.Log(JetOps.Shift(JetOps.Mul(j, j), 1)))),
            DualModel.Linear(w2, b2),
            new("softmax", x => x.softmax(1), j => JetOps.Softmax(j, 1)),
            DualModel.Activation("tanh"),
        ], []);
        AssertSameGradients(model, [w1, b1, w2, b2, gamma], [3], 24);
    }
}
