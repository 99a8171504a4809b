using LambdaService.Training.Methods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Tests;

[Collection(TorchGeneratorCollection.Name)]
public class SamMethodTests
{
    private static readonly double[] Start = [0.5, -0.3, 0.8, 0.2, -0.6, 0.4, 0.1, -0.2, 0.05];
    private static readonly double[][] X = [[0.3, -1.2], [1.1, 0.4], [-0.7, 0.9], [0.2, 0.2]];
    private static readonly int[] Y = [0, 1, 2, 1];
    private const double LearningRate = 0.1;
    private const double Rho = 0.05;

    /// <summary>One SAM/ASAM step with plain SGD, by hand in double: w' = w − lr ∇L(w + e).</summary>
    private static double[] HandStep(bool adaptive)
    {
        var w = Start;
        var g = LinearSoftmax.FromFlat(w, 3, 2).CrossEntropyGradient(X, Y);
        // SAM: e = ρ g/‖g‖; ASAM: e = ρ T²g/‖Tg‖ with T = |w| elementwise.
        var t = adaptive ? w.Select(Math.Abs).ToArray() : w.Select(_ => 1.0).ToArray();
        var norm = Math.Sqrt(g.Select((gi, i) => Math.Pow(t[i] * gi, 2)).Sum());
        var perturbed = w.Select((wi, i) => wi + Rho * t[i] * t[i] * g[i] / (norm + 1e-12)).ToArray();
        var gPerturbed = LinearSoftmax.FromFlat(perturbed, 3, 2).CrossEntropyGradient(X, Y);
        return w.Select((wi, i) => wi - LearningRate * gPerturbed[i]).ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void One_sam_step_on_a_linear_softmax_model_matches_the_update_computed_by_hand(bool adaptive)
    {
        using var mlp = ParameterAccess.Float64Mlp([2, 3], Start);
        using var sgd = optim.SGD(mlp.parameters(), LearningRate);
        using var scope = NewDisposeScope();
        var loss = new SamMethod(Rho, adaptive).Step(mlp, ParameterAccess.Rows(X), ParameterAccess.Labels(Y), sgd, 0);

        var expected = HandStep(adaptive);
        var actual = ParameterAccess.Get(mlp);
        // Both in float64 from the same numbers; only summation order differs (≈1e-16 relative).
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 12);
        var p = X.Select(LinearSoftmax.FromFlat(Start, 3, 2).Probabilities).ToArray();
        Assert.Equal(-Y.Select((y, i) => Math.Log(p[i][y])).Average(), loss.Loss, 12);
        Assert.Null(loss.Penalty);
    }

    [Fact]
    public void Sam_and_asam_steps_differ_from_a_plain_gradient_step()
    {
        // Guards the comparison above against a perturbation that is silently zero.
        var plain = Start.Zip(LinearSoftmax.FromFlat(Start, 3, 2).CrossEntropyGradient(X, Y), (w, g) => w - LearningRate * g).ToArray();
        Assert.True(HandStep(false).Zip(plain, (a, b) => Math.Abs(a - b)).Max() > 1e-4);
        Assert.True(HandStep(true).Zip(plain, (a, b) => Math.Abs(a - b)).Max() > 1e-5);
    }

    private sealed class LinearBatchNorm : nn.Module<Tensor, Tensor>
    {
        private readonly Linear linear = nn.Linear(2, 3, dtype: ScalarType.Float64);
        private readonly BatchNorm1d norm = nn.BatchNorm1d(3, dtype: ScalarType.Float64);

        public LinearBatchNorm() : base(nameof(LinearBatchNorm)) => RegisterComponents();

        public Linear Linear => linear;

        public BatchNorm1d Norm => norm;

        public override Tensor forward(Tensor x) => norm.call(linear.call(x));
    }

    [Fact]
    public void A_sam_step_updates_batch_norm_statistics_once_from_the_unperturbed_pass()
    {
        manual_seed(3);
        using var model = new LinearBatchNorm();
        model.train();
        using var scope = NewDisposeScope();
        var x = ParameterAccess.Rows(X);
        double[] batchMean;
        using (no_grad()) batchMean = model.Linear.call(x).mean([0]).data<double>().ToArray();
        using var sgd = optim.SGD(model.parameters(), LearningRate);
        new SamMethod(Rho, adaptive: false).Step(model, x, ParameterAccess.Labels(Y), sgd, 0);
        // BatchNorm1d (momentum 0.1, running mean starting at 0): one update gives 0.1 · batch mean at w.
        var running = model.Norm.running_mean!.data<double>().ToArray();
        for (var k = 0; k < 3; k++) Assert.Equal(0.1 * batchMean[k], running[k], 14);
        Assert.Equal(1L, model.Norm.num_batches_tracked!.ToInt64());
    }
}
