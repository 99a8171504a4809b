using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Taylor;
using TorchSharp;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>
/// Every rule of <see cref="JetOps"/> against nested reverse-mode autograd (<see cref="AutogradDifferentiableEngine"/>)
/// on the equivalent plain TorchSharp function, in float64. Each case maps a batch of 3 lines to an output that a
/// fixed random weight tensor reduces to one scalar per line; the derivatives n!·c_n of orders 0..K must match the
/// reference to 1e-6 relative (see <see cref="TaylorTestSupport.AssertClose"/>; float64 rounding leaves them ~1e-12 apart).
/// </summary>
public class JetOpRuleTests
{
    private const int Lines = 3;

    private sealed record Case(long[] Sample, Func<Tensor, Tensor> Plain, Func<Jet, Jet> Taylor, double Low = -1.5, double High = 1.5);

    private static readonly Tensor Classes = tensor(new long[] { 2, 0, 4 });

    /// <summary>Part i of a jet whose samples are stacked along axis 1 (a test-side slice of the coefficients).</summary>
    private static Jet Part(Jet j, int i) => new(j.Coefficients.select(2, i));

    private static Tensor P(int seed, params long[] shape) => Uniform(new Random(seed), shape, -0.8, 0.8);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["exp"] = new([5], x => x.exp(), JetOps.Exp),
        ["log"] = new([5], x => x.log(), JetOps.Log, 0.4, 2.0),
        ["tanh"] = new([5], x => x.tanh(), JetOps.Tanh),
        ["sigmoid"] = new([5], x => x.sigmoid(), JetOps.Sigmoid),
        ["softplus"] = new([5], x => nn.functional.softplus(x), JetOps.Softplus, -3, 3),
        ["sin"] = new([5], x => x.sin(), JetOps.Sin, -3, 3),
        ["cos"] = new([5], x => x.cos(), JetOps.Cos, -3, 3),
        ["erf"] = new([5], x => x.erf(), JetOps.Erf),
        ["gelu"] = new([5], x => nn.functional.gelu(x), JetOps.Gelu, -3, 3),
        ["relu"] = new([6], x => nn.functional.relu(x).exp(), j => JetOps.Exp(JetOps.Relu(j))),
        ["leaky relu"] = new([6], x => nn.functional.leaky_relu(x, 0.1).exp(), j => JetOps.Exp(JetOps.LeakyRelu(j, 0.1))),
        ["reciprocal"] = new([5], x => x.reciprocal(), JetOps.Reciprocal, 0.4, 2.0),
        ["square"] = new([5], x => x * x, j => JetOps.Mul(j, j)),
        ["mul"] = new([2, 4], x => x.select(1, 0) * x.select(1, 1).exp(), j => JetOps.Mul(Part(j, 0), JetOps.Exp(Part(j, 1)))),
        ["div"] = new([2, 4], x => x.select(1, 0).sin() / x.select(1, 1), j => JetOps.Div(JetOps.Sin(Part(j, 0)), Part(j, 1)), 0.4, 2.0),
        ["constant over jet"] = new([4], x => P(1, 4) / x, j => JetOps.Div(P(1, 4), j), 0.4, 2.0),
        ["add and sub"] = new([2, 4], x => (x.select(1, 0).exp() + x.select(1, 1).sin() - P(2, 4)) - x.select(1, 1).square(),
            j => JetOps.Sub(JetOps.Sub(JetOps.Add(JetOps.Exp(Part(j, 0)), JetOps.Sin(Part(j, 1))), P(2, 4)), JetOps.Mul(Part(j, 1), Part(j, 1)))),
        ["scale and shift"] = new([4], x => (x * 2.5 - 0.7).tanh(), j => JetOps.Tanh(JetOps.Shift(JetOps.Scale(j, 2.5), -0.7))),
        ["constant minus jet"] = new([4], x => (P(3, 4) - x).exp() * P(4, 4), j => JetOps.Mul(JetOps.Exp(JetOps.Sub(P(3, 4), j)), P(4, 4))),
        ["linear"] = new([6], x => nn.functional.linear(x, P(5, 4, 6), P(6, 4)).tanh(), j => JetOps.Tanh(JetOps.Linear(j, P(5, 4, 6), P(6, 4)))),
        ["matmul by a constant on the right"] = new([3, 4], x => x.matmul(P(7, 4, 5)).exp(), j => JetOps.Exp(JetOps.MatMul(j, P(7, 4, 5)))),
        ["matmul by a constant on the left"] = new([3, 4], x => P(8, 2, 3).matmul(x).exp(), j => JetOps.Exp(JetOps.MatMul(P(8, 2, 3), j))),
        ["matmul of two jets"] = new([2, 3, 3], x => x.select(1, 0).matmul(x.select(1, 1).tanh()), j => JetOps.MatMul(Part(j, 0), JetOps.Tanh(Part(j, 1)))),
        ["conv2d"] = new([1, 6, 6], x => nn.functional.conv2d(x, P(9, 3, 1, 3, 3), P(10, 3)).tanh(), j => JetOps.Tanh(JetOps.Conv2d(j, P(9, 3, 1, 3, 3), P(10, 3)))),
        ["conv2d with stride padding dilation and groups"] = new([2, 7, 7],
            x => nn.functional.conv2d(x, P(11, 4, 1, 3, 3), P(12, 4), [2, 2], [1, 1], [2, 2], 2).sin(),
            j => JetOps.Sin(JetOps.Conv2d(j, P(11, 4, 1, 3, 3), P(12, 4), [2, 2], [1, 1], [2, 2], 2))),
        ["average pooling"] = new([2, 6, 6], x => nn.functional.avg_pool2d(x.exp(), [2, 2]), j => JetOps.AvgPool2d(JetOps.Exp(j), [2, 2])),
        ["average pooling with padding excluded from the count"] = new([2, 6, 6],
            x => nn.functional.avg_pool2d(x.exp(), [3, 3], [2, 2], [1, 1], false, false),
            j => JetOps.AvgPool2d(JetOps.Exp(j), [3, 3], [2, 2], [1, 1], false, false)),
        ["max pooling"] = new([2, 6, 6], x => nn.functional.max_pool2d(x.tanh(), [2, 2]).exp(), j => JetOps.Exp(JetOps.MaxPool2d(JetOps.Tanh(j), [2, 2]))),
        ["max pooling with padding and stride"] = new([2, 7, 7],
            x => nn.functional.max_pool2d(x.sin(), [3, 3], [2, 2], [1, 1]).exp(),
            j => JetOps.Exp(JetOps.MaxPool2d(JetOps.Sin(j), [3, 3], [2, 2], [1, 1]))),
        ["batch normalisation in evaluation mode"] = new([3, 4, 4],
            x => nn.functional.batch_norm(x, P(13, 3), P(14, 3).abs() + 0.5, P(15, 3), P(16, 3), false, 0.1, 1e-3).tanh(),
            j => JetOps.Tanh(JetOps.BatchNormEval(j, P(13, 3), P(14, 3).abs() + 0.5, P(15, 3), P(16, 3), 1e-3))),
        ["global average pooling"] = new([3, 4, 4], x => x.exp().mean([2, 3], keepdim: true), j => JetOps.Mean(JetOps.Exp(j), [2, 3], keepdim: true)),
        ["reshape flatten transpose permute concat unsqueeze squeeze"] = new([2, 3, 4],
            x => cat([x.transpose(1, 2).reshape(Lines, -1), x.permute(0, 2, 1, 3).flatten(1), x.unsqueeze(1).squeeze(1).flatten(1)], 1).exp(),
            j => JetOps.Exp(JetOps.Concat([
                JetOps.Reshape(JetOps.Transpose(j, 1, 2), [Lines, -1]),
                JetOps.Flatten(JetOps.Permute(j, [0, 2, 1, 3])),
                JetOps.Flatten(JetOps.Squeeze(JetOps.Unsqueeze(j, 1), 1))], 1))),
        ["sum"] = new([3, 4], x => x.exp().sum(1), j => JetOps.Sum(JetOps.Exp(j), [1], keepdim: false)),
        ["softmax"] = new([5], x => x.softmax(1), j => JetOps.Softmax(j, 1), -3, 3),
        ["log softmax"] = new([5], x => x.log_softmax(1), j => JetOps.LogSoftmax(j, 1), -3, 3),
        ["logsumexp"] = new([5], x => x.logsumexp(1), j => JetOps.LogSumExp(j, 1), -3, 3),
        ["cross entropy"] = new([5], x => Objective.Evaluate(TargetKind.Loss, x, Classes), j => JetOps.CrossEntropy(j, Classes), -3, 3),
        ["logit selection"] = new([5], x => Objective.Evaluate(TargetKind.Logit, x.tanh(), Classes), j => JetOps.SelectLogit(JetOps.Tanh(j), Classes)),
        ["dropout in evaluation mode"] = new([5], x => nn.functional.dropout(x, 0.5, training: false).exp(), j => JetOps.Exp(JetOps.Dropout(j))),
    };

    public static TheoryData<string, int> Rules()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in Cases.Keys)
        {
            foreach (var k in new[] { 1, 2, 6 }) data.Add(name, k);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Each_rule_gives_the_derivatives_of_nested_autograd_to_1e_6_relative(string rule, int maxOrder)
    {
        using var scope = NewDisposeScope();
        var c = Cases[rule];
        var rng = new Random(rule.GetHashCode(StringComparison.Ordinal) & 0xffff);
        long[] shape = [Lines, .. c.Sample];
        var x = Uniform(rng, shape, c.Low, c.High);
        var v = Uniform(rng, shape, -1, 1);
        var w = Weights(c.Plain(x).shape[1..], 99);
        var expected = NestedAutograd(z => Reduce(c.Plain(z), w), x, v, maxOrder);
        var actual = TaylorDerivatives(j => Reduce(c.Taylor(j), w), x, v, maxOrder);
        AssertClose(actual, expected, 1e-6, rule);
    }

    [Fact]
    public void Dropout_in_training_mode_is_refused_with_a_message_that_asks_for_evaluation_mode()
    {
        using var scope = NewDisposeScope();
        var j = Jet.Line(zeros(2, 3, dtype: ScalarType.Float64), ones(2, 3, dtype: ScalarType.Float64), 2);
        var e = Assert.Throws<InvalidOperationException>(() => JetOps.Dropout(j, training: true));
        Assert.Contains("evaluation mode", e.Message, StringComparison.Ordinal);
    }
}
