using LambdaService.Training.Methods;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

[Collection(TorchGeneratorCollection.Name)]
public class CrrMethodTests
{
    private static readonly double[] Start = [0.9, -0.4, 0.3, 1.1, -0.7, 0.5, 0.2, -0.1, 0.3];
    private static readonly double[][] X = [[0.3, -1.2], [1.1, 0.4], [-0.7, 0.9]];
    private static readonly int[] Y = [0, 2, 1];
    private const int Directions = 2;

    private static double[][] DrawnDirections(int seed)
    {
        // A method with the same seed draws the same directions first; read them as the step will see them.
        using var v = new CrrMethod(1, 1, 1, Directions, 1, new Random(seed)).DrawDirections(X.Length, [2], ScalarType.Float64);
        return ParameterAccess.Split(v.data<double>().ToArray(), 2);
    }

    [Fact]
    public void One_crr_step_on_a_linear_softmax_model_matches_closed_form_derivatives_and_a_finite_difference_gradient()
    {
        const double lr = 0.05, scale = 0.7;
        using var mlp = ParameterAccess.Float64Mlp([2, 3], Start);
        using var sgd = optim.SGD(mlp.parameters(), lr);
        var method = new CrrMethod(scale, 1, 3, Directions, 1, new Random(9));
        using var scope = NewDisposeScope();
        var loss = method.Step(mlp, ParameterAccess.Rows(X), ParameterAccess.Labels(Y), sgd, 0);

        // By hand: P from the cumulant formulas (LinearSoftmax), ∇P by central differences in double
        // (h = 1e-5: truncation ~h²·P‴ ≈ 1e-10, rounding ~1e-16/h ≈ 1e-11), ∇CE by the textbook formula.
        var v = DrawnDirections(9);
        double P(double[] w) => LinearSoftmax.FromFlat(w, 3, 2).Penalty(X, Y, v, Directions, 1, 3);
        const double h = 1e-5;
        var gradP = Start.Select((_, i) =>
        {
            var plus = (double[])Start.Clone();
            var minus = (double[])Start.Clone();
            plus[i] += h;
            minus[i] -= h;
            return (P(plus) - P(minus)) / (2 * h);
        }).ToArray();
        var gradCe = LinearSoftmax.FromFlat(Start, 3, 2).CrossEntropyGradient(X, Y);
        var expected = Start.Select((w, i) => w - lr * (gradCe[i] + scale * gradP[i])).ToArray();
        var actual = ParameterAccess.Get(mlp);
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 9);
        Assert.Equal(P(Start), loss.Penalty!.Value, 12);
        Assert.True(gradP.Select(Math.Abs).Max() > 1e-3, "the penalty's gradient should not vanish here");
    }

    [Fact]
    public void The_penalty_of_a_linear_model_equals_the_cumulant_formulas_for_orders_one_to_four()
    {
        using var mlp = ParameterAccess.Float64Mlp([2, 3], Start);
        var method = new CrrMethod(1, 1, 4, Directions, 1, new Random(2));
        var v = DrawnDirections(2);
        using var scope = NewDisposeScope();
        var penalty = method.Penalty(mlp, ParameterAccess.Rows(X), ParameterAccess.Labels(Y), ParameterAccess.Rows(v)).ToDouble();
        // Independent closed form (float64 both sides).
        Assert.Equal(LinearSoftmax.FromFlat(Start, 3, 2).Penalty(X, Y, v, Directions, 1, 4), penalty, 12);
    }

    [Fact]
    public void The_penalty_gradient_of_a_tanh_mlp_matches_central_finite_differences_in_double()
    {
        manual_seed(5);
        using var mlp = new LambdaService.Training.Models.Mlp([2, 4, 3]);
        mlp.to(ScalarType.Float64);
        var method = new CrrMethod(1, 2, 4, Directions, 1, new Random(3));
        using var scope = NewDisposeScope();
        var x = ParameterAccess.Rows(X);
        var y = ParameterAccess.Labels(Y);
        var v = method.DrawDirections(X.Length, [2], ScalarType.Float64);
        var penalty = method.Penalty(mlp, x, y, v);
        var parameters = mlp.parameters().ToArray();
        var grads = autograd.grad([penalty], parameters).Select(g => g.data<double>().ToArray()).SelectMany(g => g).ToArray();

        var start = ParameterAccess.Get(mlp);
        double At(double[] w)
        {
            ParameterAccess.Set(mlp, w);
            return method.Penalty(mlp, x, y, v).ToDouble();
        }
        // Central differences of the penalty itself (forward evaluations only) with h = 1e-5: error ≈ h²·P‴/6 + ε·P/h, about 1e-9 here.
        const double h = 1e-5;
        for (var i = 0; i < start.Length; i++)
        {
            var plus = (double[])start.Clone();
            var minus = (double[])start.Clone();
            plus[i] += h;
            minus[i] -= h;
            var fd = (At(plus) - At(minus)) / (2 * h);
            Assert.True(Math.Abs(fd - grads[i]) <= 1e-6 * Math.Max(1, Math.Abs(fd)), $"parameter {i}: autograd {grads[i]} vs finite difference {fd}");
        }
        Assert.True(grads.Select(Math.Abs).Max() > 1e-3);
    }

    [Fact]
    public void The_penalty_is_added_only_on_every_kth_step()
    {
        using var mlp = ParameterAccess.Float64Mlp([2, 3], Start);
        using var sgd = optim.SGD(mlp.parameters(), 0.01);
        var method = new CrrMethod(0.1, 2, 3, 1, 3, new Random(1));
        using var scope = NewDisposeScope();
        var penalised = Enumerable.Range(0, 7).Select(s => method.Step(mlp, ParameterAccess.Rows(X), ParameterAccess.Labels(Y), sgd, s).Penalty is not null).ToArray();
        Assert.Equal(new[] { true, false, false, true, false, false, true }, penalised);
    }

    [Fact]
    public void The_formula_names_the_orders_the_scale_and_the_directions()
    {
        var method = new CrrMethod(0.003, 2, 3, 4, 2, new Random(1));
        Assert.Contains("0.003 * P(w)", method.Formula);
        Assert.Contains("sum_{n=2..3}", method.Formula);
        Assert.Contains("d=1..4", method.Formula);
        Assert.Contains("s mod 2 = 0", method.Formula);
    }

    [Theory]
    [InlineData("tanh", ScalarType.Float64, false, "input")]
    [InlineData("relu", ScalarType.Float64, false, "input")]
    [InlineData("softplus", ScalarType.Float32, false, "input")]
    [InlineData("tanh", ScalarType.Float64, true, "input")]
    [InlineData("sigmoid", ScalarType.Float64, false, "act1")]
    [InlineData("tanh", ScalarType.Float64, true, "fc2")]
    public void Steps_through_the_fused_kernel_move_the_parameters_as_steps_through_taylor_mode_in_libtorch_do(string activation, ScalarType dtype, bool classFilter, string at)
    {
        // Two constructions of the same exact gradient: the fused kernel's hand-written reverse pass, and autograd through the
        // libtorch jet graph. Five Adam steps each from the same start and the same direction stream; float64 agrees to rounding,
        // float32 to single precision.
        int[] widths = [2, 8, 8, 3];
        double[] Train(bool fused, List<StepLoss> losses)
        {
            manual_seed(17);
            using var mlp = new LambdaService.Training.Models.Mlp(widths, activation);
            mlp.to(dtype);
            using var adam = optim.Adam(mlp.parameters(), 0.01);
            // With the class filter only the points of class 2 (one of the three) are penalised.
            var method = new CrrMethod(0.5, 1, 4, Directions, 1, new Random(4), fused: fused, classes: classFilter ? [2] : null, at: at);
            using var scope = NewDisposeScope();
            var x = ParameterAccess.Rows(X).to(dtype);
            var y = ParameterAccess.Labels(Y);
            for (var s = 0; s < 5; s++) losses.Add(method.Step(mlp, x, y, adam, s));
            return [.. mlp.parameters().SelectMany(p => p.to(ScalarType.Float64).data<double>().ToArray())];
        }
        var fusedLosses = new List<StepLoss>();
        var opsLosses = new List<StepLoss>();
        var fusedParameters = Train(true, fusedLosses);
        var opsParameters = Train(false, opsLosses);
        var tolerance = dtype == ScalarType.Float64 ? 1e-10 : 1e-4;
        for (var i = 0; i < opsParameters.Length; i++) Assert.True(Math.Abs(fusedParameters[i] - opsParameters[i]) <= tolerance, $"parameter {i}: {fusedParameters[i]:R} vs {opsParameters[i]:R}");
        for (var s = 0; s < 5; s++)
        {
            Assert.Equal(opsLosses[s].Loss, fusedLosses[s].Loss, tolerance);
            Assert.True(Math.Abs(fusedLosses[s].Penalty!.Value - opsLosses[s].Penalty!.Value) <= tolerance * Math.Max(1, opsLosses[s].Penalty!.Value), $"step {s}'s penalty");
        }
        Assert.True(opsLosses[0].Penalty > 1e-4, "the penalty should matter here");
    }

    [Theory]
    [InlineData("relu", 1)]
    [InlineData("relu", 2)]
    [InlineData("tanh", 2)]
    public void A_cnn_step_that_takes_its_loss_from_the_penalty_jet_has_the_gradient_of_a_loss_pass_and_nested_autograd(string activation, int directions)
    {
        // The Taylor step reads h_pool(x) from the jet's order-0 coefficient and runs only hidden → output in training mode (dropout
        // on); the nested-autograd step makes a forward pass of its own for the loss and differentiates the penalty's lines by reverse
        // mode through the whole network. The same seed before each step gives both the same dropout masks and the same directions,
        // so the objective and its gradient agree to float64 rounding (expected 1e-10 relative to the largest gradient entry).
        (StepLoss Loss, double[] Gradient, double EvaluationLoss) OneStep(bool taylor)
        {
            manual_seed(41);
            using var cnn = new Cnn(new CnnOptions
            {
                InputChannels = 2, ImageSize = 8, Conv1Channels = 3, Conv2Channels = 4, Hidden = 6, Classes = 3, Activation = activation,
                PoolDropout = 0.25, HiddenDropout = 0.5,
            });
            cnn.to(ScalarType.Float64);
            cnn.train();
            using var sgd = optim.SGD(cnn.parameters(), 0.0);
            using var scope = NewDisposeScope();
            var rng = new Random(42);
            var x = tensor(Enumerable.Range(0, 4 * 2 * 8 * 8).Select(_ => rng.NextDouble()).ToArray(), [4, 2, 8, 8]);
            var y = tensor(new long[] { 0, 2, 1, 2 });
            var method = new CrrMethod(0.7, 1, 4, directions, 1, new Random(43), taylor: taylor);
            double evaluationLoss;
            using (no_grad())
            {
                cnn.eval();
                evaluationLoss = nn.functional.cross_entropy(cnn.call(x), y).ToDouble();
                cnn.train();
            }
            manual_seed(44);
            var loss = method.Step(cnn, x, y, sgd, 0);
            Assert.True(cnn.training, "the step leaves the network in training mode");
            return (loss, [.. cnn.parameters().SelectMany(p => p.grad!.data<double>().ToArray())], evaluationLoss);
        }
        var (sharedLoss, shared, evaluationLoss) = OneStep(taylor: true);
        var (nestedLoss, nested, _) = OneStep(taylor: false);
        Assert.Equal(nested.Length, shared.Length);
        var scale = nested.Max(Math.Abs);
        for (var i = 0; i < nested.Length; i++) Assert.True(Math.Abs(shared[i] - nested[i]) <= 1e-10 * scale, $"gradient {i}: {shared[i]:R} vs {nested[i]:R}");
        Assert.Equal(nestedLoss.Loss, sharedLoss.Loss, 1e-12);
        Assert.Equal(nestedLoss.Penalty!.Value, sharedLoss.Penalty!.Value, 1e-10 * Math.Max(1, nestedLoss.Penalty!.Value));
        Assert.True(nestedLoss.Penalty > 1e-6, "the penalty should matter here");
        // The loss is the training-mode one: dropout changed it from the evaluation-mode loss of the same network.
        Assert.True(Math.Abs(sharedLoss.Loss - evaluationLoss) > 1e-6, $"{sharedLoss.Loss:R} vs evaluation mode {evaluationLoss:R}");
    }

    [Fact]
    public void A_required_fused_kernel_refuses_a_network_it_has_no_rules_for()
    {
        manual_seed(1);
        using var mlp = new LambdaService.Training.Models.Mlp([2, 4, 3], "gelu");
        using var sgd = optim.SGD(mlp.parameters(), 0.01);
        using var scope = NewDisposeScope();
        var method = new CrrMethod(0.1, 1, 2, 1, 1, new Random(1), fused: true);
        var e = Assert.Throws<InvalidOperationException>(() => method.Step(mlp, ParameterAccess.Rows(X).to(ScalarType.Float32), ParameterAccess.Labels(Y), sgd, 0));
        Assert.Contains("activation gelu", e.Message, StringComparison.Ordinal);
        // Where it applies only when it can (the default), the same network steps through Taylor mode instead.
        var fallback = new CrrMethod(0.1, 1, 2, 1, 1, new Random(1)).Step(mlp, ParameterAccess.Rows(X).to(ScalarType.Float32), ParameterAccess.Labels(Y), sgd, 0);
        Assert.True(fallback.Penalty > 0);
    }

    [Fact]
    public void Auto_takes_the_fused_kernel_for_small_mlps_on_the_cpu_and_taylor_mode_where_it_would_be_slower_or_has_no_rules()
    {
        manual_seed(2);
        using var small = new LambdaService.Training.Models.Mlp([2, 32, 32, 2]);
        using var wide = new LambdaService.Training.Models.Mlp([2, 1024, 1024, 2]);
        using var gelu = new LambdaService.Training.Models.Mlp([2, 8, 2], "gelu");
        using var scope = NewDisposeScope();
        var x32 = zeros(32, 2);
        var auto = new CrrMethod(0.1, 1, 4, 1, 1, new Random(1));
        // Work per pass (CrrMethod.AutoFusedWorkLimit = 12e6): small 32·(2·2·32 + 5·(32·32 + 32·2)) ≈ 0.18 M; wide 32·(2·2·1024 + 5·(1024² + 2048)) ≈ 168 M.
        Assert.Equal("fused", auto.StepEngine(small, x32));
        Assert.Equal("taylor", auto.StepEngine(wide, x32));
        Assert.Equal("taylor", auto.StepEngine(gelu, x32));
        Assert.Equal("fused", new CrrMethod(0.1, 1, 4, 1, 1, new Random(1), fused: true).StepEngine(wide, x32));
        Assert.Equal("taylor", new CrrMethod(0.1, 1, 4, 1, 1, new Random(1), fused: false).StepEngine(small, x32));
        Assert.Equal("autograd", new CrrMethod(0.1, 1, 4, 1, 1, new Random(1), taylor: false).StepEngine(small, x32));
        Assert.Equal("fused", new CrrMethod(0.1, 1, 4, 1, 1, new Random(1), at: "act1").StepEngine(small, x32));
        Assert.Equal("fused", new CrrMethod(0.1, 1, 4, 1, 1, new Random(1), classes: [1]).StepEngine(small, x32));

        // The objective names the engine the steps used, once there were steps.
        Assert.EndsWith("derivatives by taylor", auto.Formula, StringComparison.Ordinal);
        using var adam = optim.Adam(small.parameters(), 0.01);
        auto.Step(small, x32, tensor(new long[32]), adam, 0);
        Assert.EndsWith("derivatives by fused", auto.Formula, StringComparison.Ordinal);
    }
}
