using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Piecewise rules. Each branch is chosen per element by the side rule of <see cref="Relu"/>: the branch on which
/// the line lies for small t &gt; 0, decided by c_0 and, where c_0 sits exactly on a kink, by the first coefficient
/// of the difference that is not zero. The series is then the branch's own series, which is the series of the
/// function wherever the point is not on a kink (almost everywhere). Masks carry no gradient.
/// </summary>
public static partial class JetOps
{
    /// <summary>Absolute value: <c>yₙ = s·xₙ</c> with s = +1 where x(t) &gt; 0 for small t &gt; 0, else −1.</summary>
    public static Jet Abs(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var sign = PositiveSide(x).to(x.DType) * 2 - 1;
        return x.With(x.Leading * sign);
    }

    /// <summary>
    /// Parametric ReLU (torch.nn.PReLU, ONNX PRelu): <c>yₙ = s·xₙ</c> with s = 1 where x(t) &gt; 0 for small t &gt; 0 and
    /// s = <paramref name="slope"/> (broadcast against one coefficient, e.g. <c>[C, 1, 1]</c>) elsewhere.
    /// </summary>
    public static Jet PRelu(Jet x, Tensor slope)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(slope);
        var s = where(PositiveSide(x), ones(Array.Empty<long>(), dtype: x.DType, device: x.Leading.device), Like(slope, x.Leading));
        return x.With(x.Leading * s);
    }

    /// <summary>
    /// Elementwise maximum (with broadcasting): <c>y = a</c> where a(t) &gt; b(t) for small t &gt; 0 (the sign of the
    /// first non-zero coefficient of a − b), else <c>y = b</c>; the chosen operand's coefficients.
    /// </summary>
    public static Jet Max(Jet a, Jet b) => Where(PositiveSide(Sub(a, b)), a, b);

    /// <summary>Elementwise maximum with a constant (broadcast), see <see cref="Max(Jet, Jet)"/>.</summary>
    public static Jet Max(Jet x, Tensor c) => Max(x, Jet.Constant(Like(c, x.Leading), x.Order));

    /// <summary>Elementwise minimum (with broadcasting): <c>y = a</c> where a(t) &lt; b(t) for small t &gt; 0, else <c>y = b</c>.</summary>
    public static Jet Min(Jet a, Jet b) => Where(PositiveSide(Sub(b, a)), a, b);

    /// <summary>Elementwise minimum with a constant (broadcast), see <see cref="Min(Jet, Jet)"/>.</summary>
    public static Jet Min(Jet x, Tensor c) => Min(x, Jet.Constant(Like(c, x.Leading), x.Order));

    /// <summary>
    /// Clamping <c>min(max(x, low), high)</c> (ONNX Clip, torch.clamp; ReLU6 is low 0, high 6): inside the interval
    /// the series of x, outside it the constant bound. Either bound may be null (no bound).
    /// </summary>
    public static Jet Clip(Jet x, Tensor? low, Tensor? high)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = low is null ? x : Max(x, low);
        return high is null ? y : Min(y, high);
    }

    /// <summary>Hard sigmoid <c>max(0, min(1, α·x + β))</c> (ONNX HardSigmoid; torch's hardsigmoid is α = 1/6, β = 1/2).</summary>
    public static Jet HardSigmoid(Jet x, double alpha = 0.2, double beta = 0.5)
    {
        ArgumentNullException.ThrowIfNull(x);
        var z = Shift(Scale(x, alpha), beta);
        return Clip(z, zeros(Array.Empty<long>(), dtype: x.DType, device: x.Leading.device), ones(Array.Empty<long>(), dtype: x.DType, device: x.Leading.device));
    }

    /// <summary>Hard swish <c>x·hardsigmoid(x)</c> with α = 1/6, β = 1/2 (ONNX HardSwish, torch.nn.Hardswish): the Cauchy product of x and the clamped line.</summary>
    public static Jet HardSwish(Jet x) => Mul(x, HardSigmoid(x, 1.0 / 6, 0.5));

    /// <summary>
    /// ELU: <c>x</c> where x(t) &gt; 0 for small t &gt; 0, else <c>α·(eˣ − 1)</c> (the <see cref="Exp"/> recurrence).
    /// </summary>
    public static Jet Elu(Jet x, double alpha = 1.0)
    {
        ArgumentNullException.ThrowIfNull(x);
        var positive = PositiveSide(x);
        return Where(positive, x, Scale(Shift(Exp(x), -1), alpha));
    }

    /// <summary>SELU <c>γ·elu(x, α)</c> (ONNX Selu defaults α ≈ 1.6733, γ ≈ 1.0507).</summary>
    public static Jet Selu(Jet x, double alpha = 1.67326319217681884765625, double gamma = 1.05070102214813232421875) => Scale(Elu(x, alpha), gamma);

    /// <summary>
    /// Selection <c>y = condition ? a : b</c> (ONNX Where with a condition that does not depend on t; broadcasting):
    /// <c>yₙ = condition ? aₙ : bₙ</c>.
    /// </summary>
    /// <param name="condition">Boolean, broadcastable against one coefficient of a and b.</param>
    /// <param name="a">Chosen where the condition holds.</param>
    /// <param name="b">Chosen elsewhere.</param>
    public static Jet Where(Tensor condition, Jet a, Jet b)
    {
        ArgumentNullException.ThrowIfNull(condition);
        SameOrder(a, b);
        var degree = Math.Max(a.Degree, b.Degree);
        var rank = Math.Max(Math.Max(a.Shape.Length, b.Shape.Length), (int)condition.dim());
        var p = AlignRank(a.Padded(degree), rank);
        var q = AlignRank(b.Padded(degree), rank);
        var mask = condition.to(ScalarType.Bool, a.Leading.device);
        if (mask.dim() < rank) mask = mask.view([.. Enumerable.Repeat(1L, rank - (int)mask.dim()), .. mask.shape]);
        return new Jet(where(mask.unsqueeze(0), p, q), a.Order);
    }

    /// <summary>
    /// Maximum over <paramref name="dims"/> (ONNX ReduceMax): per output element the winner is chosen from c_0 (ties
    /// go to the first index in row-major order of the reduced axes) and every coefficient is taken there.
    /// </summary>
    public static Jet ReduceMax(Jet x, long[] dims, bool keepdim) => ReduceExtreme(x, dims, keepdim, max: true);

    /// <summary>Minimum over <paramref name="dims"/> (ONNX ReduceMin), the rule of <see cref="ReduceMax"/>.</summary>
    public static Jet ReduceMin(Jet x, long[] dims, bool keepdim) => ReduceExtreme(x, dims, keepdim, max: false);

    private static Jet ReduceExtreme(Jet x, long[] dims, bool keepdim, bool max)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(dims);
        var shape = x.Shape;
        var reduced = dims.Select(d => Axis(x, d) - 1).Distinct().Order().ToArray();
        var kept = Enumerable.Range(0, shape.Length).Select(i => (long)i).Where(i => !reduced.Contains(i)).ToArray();
        var d1 = x.Leading.shape[0];
        var permuted = x.Leading.permute([0, .. kept.Select(i => i + 1), .. reduced.Select(i => i + 1)]);
        var flat = permuted.reshape([d1, .. kept.Select(i => shape[i]), -1]);
        Tensor index;
        using (no_grad())
        {
            var c0 = flat.select(0, 0);
            index = (max ? c0.argmax(-1, keepdim: true) : c0.argmin(-1, keepdim: true)).unsqueeze(0).expand([d1, .. c0.shape[..^1], 1]);
        }
        var picked = flat.gather(-1, index).squeeze(-1);
        if (!keepdim) return x.With(picked);
        return x.With(picked.reshape([d1, .. shape.Select((s, i) => reduced.Contains(i) ? 1 : s)]));
    }
}
