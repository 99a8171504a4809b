using LambdaService.Measurement.Models;
using LambdaService.Measurement.Numerics;

namespace LambdaService.Measurement.Engines;

/// <summary>Settings of the finite-difference engine.</summary>
/// <param name="Scale">Length scale of the input space; windows run from 2·Scale down by halving.</param>
/// <param name="Windows">Number of window widths tried (each half the previous).</param>
/// <param name="HalfPoints">Samples on each side of the point (2·HalfPoints + 1 per window).</param>
/// <param name="ExtraDegree">Fit degree above the highest order (capped at 2·HalfPoints).</param>
public sealed record FiniteDifferenceSettings(double Scale = 1.0, int Windows = 8, int HalfPoints = 8, int ExtraDegree = 6);

/// <summary>
/// Directional derivatives from forward passes along each line <c>g(t) = f(x + t v)</c>.
/// For window half-widths <c>h_c = 2·s·2^{−c}</c> (s = <see cref="FiniteDifferenceSettings.Scale"/>,
/// c = 0..C−1) the engine samples g at <c>t_j = h_c·j/m</c> (j = −m..m), fits a polynomial
/// <c>Σ_k a_k (t/h_c)^k</c> of degree <c>min(K + extra, 2m)</c> by least squares in float64, and reads
/// <c>gⁿ(0) ≈ n!·a_n / h_cⁿ</c>. Per line and order it keeps the window that agrees best with both of
/// its neighbours (<c>max(|Dₙ(h_c) − Dₙ(h_{c−1})|, |Dₙ(h_c) − Dₙ(h_{c+1})|)</c> minimal; the widest and
/// narrowest windows have one neighbour) and reports that disagreement as the error estimate. All forward passes of a chunk of lines run as one batch;
/// the graph computes in float64 where the model allows (see <see cref="IModelRunner.Precision"/>). The chunk's size (lines, each
/// <c>C·(2m+1)</c> forward samples) comes from <paramref name="budget"/> (<see cref="PassPlanner"/>, default <see cref="LineBudget.Default"/>).
/// </summary>
/// <param name="model">The network.</param>
/// <param name="settings">Windows and fit.</param>
/// <param name="budget">Memory budget (or fixed size) of a chunk.</param>
public sealed class FiniteDifferenceEngine(IModelRunner model, FiniteDifferenceSettings? settings = null, LineBudget? budget = null) : IDerivativeEngine
{
    private readonly FiniteDifferenceSettings _s = settings ?? new FiniteDifferenceSettings();
    private readonly LineBudget _budget = budget ?? LineBudget.Default;

    /// <inheritdoc />
    public string Name => "finite-difference";

    /// <inheritdoc />
    public string Device => model.Device;

    /// <inheritdoc />
    public DerivativeResult Compute(DerivativeRequest request, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var k = request.MaxOrder;
        var m = _s.HalfPoints;
        var samples = 2 * m + 1;
        var degree = Math.Min(k + _s.ExtraDegree, 2 * m);
        if (degree < k) throw new ArgumentException($"Order {k} needs at least {k} samples each side; raise HalfPoints.", nameof(request));
        var u = Enumerable.Range(-m, samples).Select(j => (double)j / m).ToArray();
        var w = PolynomialFit.Weights(u, degree);
        var windows = Enumerable.Range(0, _s.Windows).Select(c => 2.0 * _s.Scale * Math.Pow(0.5, c)).ToArray();
        var factorial = new double[k + 1];
        factorial[0] = 1;
        for (var n = 1; n <= k; n++) factorial[n] = factorial[n - 1] * n;

        var size = model.SampleShape.Aggregate(1, (a, b) => a * b);
        var classes = model.Signature.OutputsPerSample;
        var lines = request.PointCount * request.DirectionsPerPoint;
        var values = new double[lines * (k + 1)];
        var relErrors = new double[k + 1][];
        for (var n = 0; n <= k; n++) relErrors[n] = new double[lines];
        var absoluteError = new double[k + 1];
        var magnitude = new double[k + 1];
        var perLine = windows.Length * samples;

        // The forward samples of lines start..start+count−1: window c, sample j of line i at row i·perLine + c·samples + j.
        double[] Inputs(int start, int count)
        {
            var inputs = new double[(long)count * perLine * size];
            for (var i = 0; i < count; i++)
            {
                var line = start + i;
                var p = line / request.DirectionsPerPoint;
                var x = request.Points.AsSpan(p * size, size);
                var v = request.Directions.AsSpan(line * size, size);
                for (var c = 0; c < windows.Length; c++)
                {
                    for (var j = 0; j < samples; j++)
                    {
                        var t = windows[c] * u[j];
                        var row = inputs.AsSpan((int)(((long)i * perLine + c * samples + j) * size), size);
                        for (var e = 0; e < size; e++) row[e] = x[e] + t * v[e];
                    }
                }
            }
            return inputs;
        }

        cancellationToken.ThrowIfCancellationRequested();
        // Inputs and outputs are indexed with int: a chunk holds at most int.MaxValue values of each.
        var maxLines = (int)Math.Max(1, int.MaxValue / ((long)perLine * Math.Max(size, classes)));
        // One pass over lines start..start+count−1: its values, error estimates and progress.
        void RunLines(int start, int count)
        {
            var inputs = Inputs(start, count);
            var outputs = model.Forward(inputs, count * perLine);
            var g = new double[samples];
            var estimates = new double[windows.Length, k + 1];
            for (var i = 0; i < count; i++)
            {
                var line = start + i;
                var cls = request.TargetClass.Length > 0 ? request.TargetClass[line / request.DirectionsPerPoint] : 0;
                for (var c = 0; c < windows.Length; c++)
                {
                    for (var j = 0; j < samples; j++)
                    {
                        var offset = ((long)i * perLine + c * samples + j) * classes;
                        g[j] = Objective.Evaluate(request.Target, outputs.AsSpan((int)offset, classes), cls);
                    }
                    for (var n = 0; n <= k; n++)
                    {
                        double a = 0;
                        for (var j = 0; j < samples; j++) a += w[n, j] * g[j];
                        estimates[c, n] = factorial[n] * a / Math.Pow(windows[c], n);
                    }
                }
                var baseIndex = (long)line * (k + 1);
                values[baseIndex] = g[m]; // t = 0 sample of the last window: f itself
                for (var n = 1; n <= k; n++)
                {
                    // The window whose estimate agrees best with both neighbours (half and double width): in the
                    // truncation regime larger windows drift, in the round-off regime smaller ones scatter, and a
                    // window straddling a kink disagrees with its neighbours; the centre of the most consistent
                    // triple is the most trustworthy value, and the larger disagreement its error estimate.
                    var best = 0;
                    var bestChange = double.PositiveInfinity;
                    for (var c = 0; c < windows.Length; c++)
                    {
                        var below = c > 0 ? Math.Abs(estimates[c, n] - estimates[c - 1, n]) : 0;
                        var above = c + 1 < windows.Length ? Math.Abs(estimates[c, n] - estimates[c + 1, n]) : 0;
                        var change = Math.Max(below, above);
                        if (change < bestChange)
                        {
                            bestChange = change;
                            best = c;
                        }
                    }
                    var value = estimates[best, n];
                    values[baseIndex + n] = value;
                    relErrors[n][line] = value == 0 ? (bestChange == 0 ? 0 : double.PositiveInfinity) : bestChange / Math.Abs(value);
                    absoluteError[n] += bestChange;
                    magnitude[n] += Math.Abs(value);
                }
            }
            progress?.Report((double)(start + count) / lines);
        }

        // The planner's probe passes are the first passes (their values are kept), the rest follow in passes of the planned size.
        var plan = PassPlanner.Run(_budget, lines, 1, Name, RunLines, cancellationToken, maxLines);
        var errors = Enumerable.Range(1, k).Select(n =>
        {
            var sorted = relErrors[n].Order().ToArray();
            var ofNorm = magnitude[n] > 0 ? absoluteError[n] / magnitude[n] : absoluteError[n] == 0 ? 0 : double.PositiveInfinity;
            return new OrderError(n, Statistics.Quantile(sorted, 0.5), Statistics.Quantile(sorted, 0.9), ofNorm);
        }).ToArray();
        return new DerivativeResult(values, request.PointCount, request.DirectionsPerPoint, k, model.Precision, errors, plan);
    }
}
