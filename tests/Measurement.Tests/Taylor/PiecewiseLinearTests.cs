using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Taylor;
using TorchSharp;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>ReLU and max-pooling networks: reported as piecewise linear, and their logits have no curvature along a line.</summary>
public class PiecewiseLinearTests
{
    private static DualModel ReluCnn()
    {
        var rng = new Random(5);
        var cw = Uniform(rng, [3, 1, 3, 3], -0.8, 0.8);
        var cb = Uniform(rng, [3], -0.3, 0.3);
        var (w1, b1) = DualModel.Dense(rng, 12, 5);
        var (w2, b2) = DualModel.Dense(rng, 5, 4);
        return new DualModel(
        [
            new("conv", x => nn.functional.conv2d(x, cw, cb), j => JetOps.Conv2d(j, cw, cb)),
            DualModel.Activation("relu"),
            new("maxpool", x => nn.functional.max_pool2d(x, [2, 2], [2, 2]), j => JetOps.MaxPool2d(j, [2, 2], [2, 2])),
            new("flatten", x => x.flatten(1), j => JetOps.Flatten(j, 1)),
            DualModel.Linear(w1, b1),
            DualModel.Activation("leaky relu"),
            DualModel.Linear(w2, b2),
        ], ["Relu", "MaxPool", "LeakyRelu"]);
    }

    [Fact]
    public void The_logits_of_a_relu_max_pool_network_have_exactly_zero_derivatives_above_order_one_while_its_loss_does_not()
    {
        using var scope = NewDisposeScope();
        var model = ReluCnn();
        Assert.Equal(["Relu", "MaxPool", "LeakyRelu"], model.PiecewiseLinearOperators);
        var rng = new Random(6);
        var x = Uniform(rng, [6, 1, 6, 6], -1, 1);
        var v = Uniform(rng, [6, 1, 6, 6], -1, 1);
        var classes = tensor(new long[] { 0, 1, 2, 3, 0, 1 });
        var logit = TaylorMode.DirectionalDerivatives(model, x, v, 5, TargetKind.Logit, classes).data<double>().ToArray();
        for (var line = 0; line < 6; line++)
        {
            Assert.NotEqual(0.0, logit[line * 5]);
            // Exact zeros: masks and the gather of max pooling keep the jet's degree 1 (see Jet.Degree).
            for (var n = 2; n <= 5; n++) Assert.Equal(0.0, logit[line * 5 + n - 1]);
        }
        var loss = TaylorMode.DirectionalDerivatives(model, x, v, 5, TargetKind.Loss, classes);
        Assert.True(loss.narrow(1, 1, 4).abs().max().ToDouble() > 1e-6, "the softmax head is smooth: the loss's higher orders do not vanish");
        // The same numbers as nested autograd (1e-6 relative; orders ≥ 2 of the logit are zero there as well).
        AssertClose(TaylorMode.ObjectiveDerivatives(model, x, v, 5, TargetKind.Logit, classes),
            NestedAutograd(z => Objective.Evaluate(TargetKind.Logit, model.Plain(z), classes), x, v, 5), 1e-6, "logit");
    }

    [Fact]
    public void A_relu_whose_input_is_exactly_zero_follows_the_sign_of_the_first_nonzero_coefficient()
    {
        // x(t) = 0 + t·v: relu(x(t)) = t·v for v > 0 and 0 for v < 0 (t → 0⁺); x(t) = 0 + 0·t + t² (built by hand)
        // gives t² for the positive second coefficient.
        using var scope = NewDisposeScope();
        var line = Jet.Line(zeros(1, 3, dtype: ScalarType.Float64), tensor(new[] { 2.0, -3.0, 0.0 }, [1, 3], ScalarType.Float64), 3);
        var y = JetOps.Relu(line).Coefficients.data<double>().ToArray();
        Assert.Equal([0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0], y);
        var square = new Jet(tensor(new[] { 0.0, 0.0, 0.0, 0.0, 1.0, -1.0 }, [3, 1, 2], ScalarType.Float64));
        Assert.Equal([0, 0, 0, 0, 1, 0], JetOps.Relu(square).Coefficients.data<double>().ToArray());
        var leaky = JetOps.LeakyRelu(square, 0.25).Coefficients.data<double>().ToArray();
        Assert.Equal([0, 0, 0, 0, 1, -0.25], leaky);
    }

    [Fact]
    public void Abs_clip_max_min_and_elu_on_a_switch_take_the_piece_the_line_enters()
    {
        // x(t) = 0 + t·v with v = (2, −3): |x(t)| = (2t, 3t); clip(x, 0, 1) = (2t, 0); max(x, 0) = (2t, 0); min(x, 0) = (0, −3t);
        // elu(x) = (2t, e^{−3t} − 1 = −3t + 4.5t² − 4.5t³ …). Each by hand for t → 0⁺.
        using var scope = NewDisposeScope();
        var x = Jet.Line(zeros(1, 2, dtype: ScalarType.Float64), tensor(new[] { 2.0, -3.0 }, [1, 2], ScalarType.Float64), 3);
        var zero = tensor(0.0, ScalarType.Float64);
        double[] Coefficients(Jet j) => j.Coefficients.data<double>().ToArray();
        Assert.Equal([0, 0, 2, 3, 0, 0, 0, 0], Coefficients(JetOps.Abs(x)));
        Assert.Equal([0, 0, 2, 0, 0, 0, 0, 0], Coefficients(JetOps.Clip(x, zero, tensor(1.0, ScalarType.Float64))));
        Assert.Equal([0, 0, 2, 0, 0, 0, 0, 0], Coefficients(JetOps.Max(x, zero)));
        Assert.Equal([0, 0, 0, -3, 0, 0, 0, 0], Coefficients(JetOps.Min(x, zero)));
        var elu = Coefficients(JetOps.Elu(x));
        double[] expected = [0, 0, 2, -3, 0, 4.5, 0, -4.5];
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], elu[i], 12);
        // The bound of a clip is reached at t = 0 from inside: x(t) = 1 − t stays inside, 1 + t is clipped to the constant 1.
        var edge = Jet.Line(ones(1, 2, dtype: ScalarType.Float64), tensor(new[] { -1.0, 1.0 }, [1, 2], ScalarType.Float64), 2);
        Assert.Equal([1, 1, -1, 0, 0, 0], Coefficients(JetOps.Clip(edge, zero, tensor(1.0, ScalarType.Float64))));
    }

    [Fact]
    public void An_imported_graph_reports_piecewise_smooth_operators_apart_from_piecewise_linear_ones()
    {
        var (model, _) = ExportedGraphs.Elementwise(18);
        Assert.True(JetGraph.TryImport(model, out var graph, out _, ScalarType.Float64));
        using var g = graph!;
        Assert.Equal(["Abs", "Clip", "HardSigmoid", "Elu", "PRelu", "Selu", "Min", "Max", "HardSwish"], g.PiecewiseOperators);   // in order of first appearance
        Assert.Equal(["Abs", "Clip", "HardSigmoid", "PRelu", "Min", "Max"], g.PiecewiseLinearOperators);
    }
}
