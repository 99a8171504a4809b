using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Taylor;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// Property test: random small networks built from the supported operations (<see cref="DualModel.Random"/>, seeded)
/// give, through <see cref="TaylorMode"/>, the derivatives of nested reverse-mode autograd on their plain form at every
/// order 0..5, to 1e-6 relative (float64; see <see cref="TaylorTestSupport.AssertClose"/>).
/// </summary>
public class RandomGraphTests
{
    private const int Lines = 4;
    private const int MaxOrder = 5;

    public static TheoryData<int, bool> Graphs()
    {
        var data = new TheoryData<int, bool>();
        for (var seed = 0; seed < 12; seed++)
        {
            data.Add(seed, false);
            data.Add(seed, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Graphs))]
    public void A_random_network_has_the_derivatives_of_nested_autograd_at_every_order(int seed, bool convolutional)
    {
        using var scope = NewDisposeScope();
        var (model, sample) = DualModel.Random(seed, convolutional);
        var rng = new Random(1000 + seed);
        long[] shape = [Lines, .. sample];
        var x = Uniform(rng, shape, -1.5, 1.5);
        var v = Uniform(rng, shape, -1, 1);
        var classes = tensor(Enumerable.Range(0, Lines).Select(i => (long)rng.Next(3)).ToArray());
        foreach (var target in new[] { TargetKind.Loss, TargetKind.Logit })
        {
            var expected = NestedAutograd(z => Objective.Evaluate(target, model.Plain(z), classes), x, v, MaxOrder);
            var actual = TaylorMode.ObjectiveDerivatives(model, x, v, MaxOrder, target, classes);
            AssertClose(actual, expected, 1e-6, $"seed {seed} {target}: {model.Describe()}");
        }
    }
}
