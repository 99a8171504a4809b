using System.Diagnostics;
using LambdaService.Measurement.Engines;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Taylor;
using LambdaService.Training;
using LambdaService.Training.Methods;
using LambdaService.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Api.Cli;

/// <summary>
/// Where the time of one training step goes, baseline against CRR 1–4 in Taylor mode (as <see cref="Training.Methods.CrrMethod"/>
/// steps now, with the loss read from the jet's order-0 coefficient, and as it stepped before, with a forward pass of its own for
/// the loss), on the Two Moons setup of
/// <see cref="BenchVerb"/> (2-32-32-2 tanh MLP, batch 32, one direction, float32, Adam): each phase timed with a stopwatch
/// over many steps (libtorch on the CPU runs synchronously, so a phase's wall time is its cost). The CRR forward pass is
/// taken apart layer by layer with the same jet rules <see cref="Mlp.Forward(Jet)"/> uses.
/// </summary>
public static class CrrProfile
{
    /// <summary>One phase: its name and its mean time per step in microseconds, for baseline or CRR.</summary>
    public sealed record Phase(string Step, string Name, double Microseconds);

    /// <summary>Profiles <paramref name="steps"/> steps of each after as many untimed ones.</summary>
    public static IReadOnlyList<Phase> Run(int steps = 400, int batch = 32, int maxOrder = 4, Device? device = null, int[]? hidden = null)
    {
        TorchRuntime.EnsureConfigured();
        device ??= CPU;
        var network = TrainingRun.CreateNetwork(new ModelSpec { Hidden = hidden ?? [32, 32] }, [2], 2, seed: 3);
        using var owned = network;
        network.to(device);
        var mlp = (Mlp)network;
        var weights = network.parameters().ToArray();   // layers.i.weight, layers.i.bias in order
        using var optimizer = optim.Adam(network.parameters(), lr: 0.001);
        var rng = new Random(5);
        var x = tensor(Enumerable.Range(0, batch * 2).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), [batch, 2]).to(device);
        var y = tensor(Enumerable.Range(0, batch).Select(i => (long)(i % 2)).ToArray()).to(device);
        var v = tensor(Enumerable.Range(0, batch * 2).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), [batch, 2]).to(device);
        v = v / v.norm(1, keepdim: true);

        var baseline = new Phases("baseline");
        var separate = new Phases("crr 1-4 (taylor, libtorch ops), loss from its own pass");
        var crr = new Phases("crr 1-4 (taylor, libtorch ops), loss read from the jet");
        var fused = new Phases("crr 1-4 (fused kernel, now)");
        // The fused kernel's step as CrrMethod takes it (MlpCrrKernel), phase by phase.
        var linear = mlp.LinearParameters();
        var kernel = new MlpCrrKernel<float>(mlp.Widths, mlp.Activation);
        float[][] wValues = [.. linear.Select(p => new float[p.Weight.numel()])], bValues = [.. linear.Select(p => new float[p.Bias.numel()])];
        float[][] gw = [.. wValues.Select(a => new float[a.Length])], gb = [.. bValues.Select(a => new float[a.Length])];
        var xValues = x.cpu().data<float>().ToArray();
        var vValues = v.cpu().data<float>().ToArray();
        var yValues = y.cpu().data<long>().ToArray();

        return Phases.Measure(steps, () =>
        {
            using (NewDisposeScope())
            {
                Tensor loss = null!;
                baseline.Time("zero_grad", () => optimizer.zero_grad());
                baseline.Time("forward + cross-entropy", () => loss = nn.functional.cross_entropy(network.call(x), y));
                baseline.Time("backward", () => loss.backward());
                baseline.Time("optimizer step", () => optimizer.step());
                baseline.Time("read the loss", () => loss.ToDouble());
            }
            using (NewDisposeScope())
            {
                // The step as it was before the loss was read from the jet: a plain forward pass for the loss, then the jet pass.
                Tensor ce = null!, objective = null!, loss = null!;
                separate.Time("zero_grad", () => optimizer.zero_grad());
                separate.Time("forward + cross-entropy", () => ce = nn.functional.cross_entropy(network.call(x), y));
                separate.Time("jet pass (line, layers, head)", () => objective = TaylorMode.Objective(mlp.Forward(Jet.Line(x, v, maxOrder)), TargetKind.Loss, y).Derivatives());
                separate.Time("loss + penalty terms", () => loss = ce + 0.003 * CrrMethod.Penalty(objective, orderAxis: 0, firstOrder: 0, 1, maxOrder));
                separate.Time("backward", () => loss.backward());
                separate.Time("optimizer step", () => optimizer.step());
                separate.Time("read the loss", () => loss.ToDouble());
            }
            using (NewDisposeScope())
            {
                Jet h = null!;
                Tensor objective = null!, loss = null!;
                crr.Time("zero_grad", () => optimizer.zero_grad());
                crr.Time("line jet x + t·v", () => h = Jet.Line(x, v, maxOrder));
                for (var layer = 0; layer < mlp.Widths.Length - 1; layer++)
                {
                    var w = weights[2 * layer];
                    var b = weights[2 * layer + 1];
                    crr.Time("jet: linear layers", () => h = JetOps.Linear(h, w, b));
                    if (layer < mlp.Widths.Length - 2) crr.Time("jet: tanh rules", () => h = JetOps.Tanh(h));
                }
                crr.Time("jet: cross-entropy head", () => objective = TaylorMode.Objective(h, TargetKind.Loss, y).Derivatives());
                crr.Time("loss + penalty terms", () => loss = objective.select(0, 0).mean() + 0.003 * CrrMethod.Penalty(objective, orderAxis: 0, firstOrder: 0, 1, maxOrder));
                crr.Time("backward", () => loss.backward());
                crr.Time("optimizer step", () => optimizer.step());
                crr.Time("read the loss", () => loss.ToDouble());
            }
            using (NewDisposeScope())
            {
                fused.Time("read parameters and batch", () =>
                {
                    for (var i = 0; i < linear.Count; i++)
                    {
                        TensorValues.CopyTo(linear[i].Weight, wValues[i]);
                        TensorValues.CopyTo(linear[i].Bias, bValues[i]);
                    }
                    TensorValues.CopyTo(x, xValues);
                });
                fused.Time("kernel: jets, head, penalty, reverse pass", () => kernel.Evaluate(wValues, bValues, xValues, yValues, vValues, 1, 1, maxOrder, 0.003, gw, gb));
                fused.Time("write the gradients", () =>
                {
                    for (var i = 0; i < linear.Count; i++)
                    {
                        TensorValues.SetGradient(linear[i].Weight, gw[i]);
                        TensorValues.SetGradient(linear[i].Bias, gb[i]);
                    }
                });
                fused.Time("optimizer step", () => optimizer.step());
            }
        }, baseline, separate, crr, fused);
    }

    /// <summary>
    /// The same for the paper's CNN (<see cref="Cnn"/>: conv 1→16, conv 16→32, ReLU, max pooling, dropout, 128 units; MNIST-sized images,
    /// float32, Adam) at batch <paramref name="batch"/>, one direction: baseline; CRR 1–4 in Taylor mode with a training-mode forward pass of
    /// its own for the loss (the step before the loss was read from the jet); and CRR 1–4 as <see cref="CrrMethod"/> steps now — the
    /// jet through conv1 … pool once, its value at pool feeding the training-mode hidden and output layers for the loss. The images are
    /// seeded uniform noise: the time of a step does not depend on what the pixels show.
    /// </summary>
    public static IReadOnlyList<Phase> RunCnn(int steps = 12, int batch = 128, int maxOrder = 4, Device? device = null)
    {
        TorchRuntime.EnsureConfigured();
        device ??= CPU;
        var network = TrainingRun.CreateNetwork(new ModelSpec { Kind = "cnn", Activation = "relu" }, [1, 28, 28], 10, seed: 3);
        using var owned = network;
        network.to(device);
        var cnn = (Cnn)network;
        using var optimizer = optim.Adam(network.parameters(), lr: 0.001);
        var rng = new Random(5);
        var x = tensor(Enumerable.Range(0, batch * 784).Select(_ => (float)rng.NextDouble()).ToArray(), [batch, 1, 28, 28]).to(device);
        var y = tensor(Enumerable.Range(0, batch).Select(i => (long)(i % 10)).ToArray()).to(device);
        var v = tensor(Enumerable.Range(0, batch * 784).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), [batch, 1, 28, 28]).to(device);
        v = v / v.flatten(1).norm(1, keepdim: true).view(-1, 1, 1, 1);
        var split = cnn.ModeIndependentThrough;

        var baseline = new Phases("baseline");
        var separate = new Phases("crr 1-4 (taylor), loss from its own pass");
        var shared = new Phases("crr 1-4 (taylor, now), loss from the jet's value at pool");
        Tensor Penalty(Jet output) => CrrMethod.Penalty(TaylorMode.Objective(output, TargetKind.Loss, y).Derivatives(), orderAxis: 0, firstOrder: 0, 1, maxOrder);

        return Phases.Measure(steps, () =>
        {
            using (NewDisposeScope())
            {
                Tensor loss = null!;
                network.train();
                baseline.Time("zero_grad", () => optimizer.zero_grad());
                baseline.Time("forward + cross-entropy (training mode)", () => loss = nn.functional.cross_entropy(network.call(x), y));
                baseline.Time("backward", () => loss.backward());
                baseline.Time("optimizer step", () => optimizer.step());
            }
            using (NewDisposeScope())
            {
                Tensor ce = null!, penalty = null!, loss = null!;
                Jet h = null!;
                network.train();
                separate.Time("zero_grad", () => optimizer.zero_grad());
                separate.Time("forward + cross-entropy (training mode)", () => ce = nn.functional.cross_entropy(network.call(x), y));
                network.eval();
                separate.Time("jet: conv1 … pool", () => h = cnn.ForwardTo(split, Jet.Line(x, v, maxOrder)));
                separate.Time("jet: hidden, output, cross-entropy head, penalty", () => penalty = Penalty(cnn.ForwardFrom(split, h)));
                network.train();
                separate.Time("backward", () => (loss = ce + 0.003 * penalty).backward());
                separate.Time("optimizer step", () => optimizer.step());
            }
            using (NewDisposeScope())
            {
                Tensor ce = null!, penalty = null!, loss = null!;
                Jet h = null!;
                shared.Time("zero_grad", () => optimizer.zero_grad());
                network.eval();
                shared.Time("jet: conv1 … pool", () => h = cnn.ForwardTo(split, Jet.PointLines(x, v, maxOrder)));
                shared.Time("jet: hidden, output, cross-entropy head, penalty", () => penalty = Penalty(cnn.ForwardFrom(split, h)));
                network.train();
                shared.Time("loss: hidden, output, cross-entropy from the jet's value (training mode)", () => ce = nn.functional.cross_entropy(cnn.ForwardFrom(split, h.Value), y));
                shared.Time("backward", () => (loss = ce + 0.003 * penalty).backward());
                shared.Time("optimizer step", () => optimizer.step());
            }
        }, baseline, separate, shared);
    }

    /// <summary>The phases of one kind of step: each phase's time summed over the steps it was timed in.</summary>
    private sealed class Phases(string step)
    {
        private readonly Dictionary<string, double> totals = [];

        /// <summary>Runs <paramref name="action"/> and adds its wall time to <paramref name="phase"/>.</summary>
        public void Time(string phase, Action action)
        {
            var start = Stopwatch.GetTimestamp();
            action();
            totals[phase] = totals.GetValueOrDefault(phase) + Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        /// <summary>
        /// Runs <paramref name="step"/> <paramref name="steps"/> times twice — the first pass warms up (the JIT, the heap) and is
        /// forgotten — and returns each kind's mean phase times per step from the second, kinds in the order given.
        /// </summary>
        public static IReadOnlyList<Phase> Measure(int steps, Action step, params Phases[] kinds)
        {
            for (var pass = 0; pass < 2; pass++)
            {
                foreach (var kind in kinds) kind.totals.Clear();
                for (var s = 0; s < steps; s++) step();
            }
            return [.. kinds.SelectMany(k => k.PerStep(steps))];
        }

        /// <summary>Each phase's mean time per step, in the order the phases were first timed.</summary>
        private IEnumerable<Phase> PerStep(int steps) => totals.Select(p => new Phase(step, p.Key, p.Value / steps));
    }

    /// <summary>Prints the profile as a Markdown table with each phase's share of its step.</summary>
    public static void Print(IReadOnlyList<Phase> phases, TextWriter stdout)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var baselineTotal = phases.Where(p => p.Step == "baseline").Sum(p => p.Microseconds);
        stdout.WriteLine("| step | phase | µs per step | share of its step |");
        stdout.WriteLine("|---|---|---|---|");
        foreach (var group in phases.GroupBy(p => p.Step))
        {
            var total = group.Sum(p => p.Microseconds);
            foreach (var p in group) stdout.WriteLine(string.Format(c, "| {0} | {1} | {2:F0} | {3:P0} |", p.Step, p.Name, p.Microseconds, p.Microseconds / total));
            stdout.WriteLine(string.Format(c, "| {0} | **total** | **{1:F0}** | {2:F2}× baseline |", group.Key, total, total / baselineTotal));
        }
    }
}
