using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Rules for the operators and patterns that <c>torch.onnx.export</c> emits for common small models: powers and
/// roots (the decomposed LayerNorm), Mish, normalisation layers, transposed convolutions, and the index maps
/// Expand, Slice and Split.
/// </summary>
public static partial class JetOps
{
    /// <summary>
    /// Power with a constant exponent, <c>y = x^p</c>. Integer p with |p| ≤ 4 uses Cauchy products (and
    /// <see cref="Reciprocal"/> for p &lt; 0), exact also where x₀ = 0; p = ½ is <see cref="Sqrt"/>. Otherwise, from
    /// <c>x·y' = p·y·x'</c>: <c>y₀ = x₀^p</c>, <c>yₙ = (1/(n·x₀))·Σ_{k=1..n} (p·k − (n − k))·x_k·y_{n−k}</c>
    /// (Griewank &amp; Walther §13.2; needs x₀ ≠ 0, as the derivatives do).
    /// </summary>
    public static Jet Pow(Jet x, double p)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (p == 0) return x.With(ones_like(x.Value).unsqueeze(0));
        if (p == 1) return x;
        if (p == 0.5) return Sqrt(x);
        if (p == Math.Round(p) && Math.Abs(p) <= 4)
        {
            var y = x;
            for (var i = 1; i < Math.Abs(p); i++) y = Mul(y, x);
            return p > 0 ? y : Reciprocal(y);
        }
        var y0 = x.Value.pow(p);
        var k = x.Order;
        var d = x.Degree;
        if (k == 0 || d == 0) return x.With(y0.unsqueeze(0));
        var r0 = x.Value.reciprocal();
        var ys = new List<Tensor>(k + 1) { y0 };
        for (var n = 1; n <= k; n++)
        {
            Tensor? acc = null;
            for (var j = 1; j <= Math.Min(n, d); j++)
            {
                var c = (p * j - (n - j)) / n;
                if (c == 0) continue;
                if (acc is null) acc = x.Leading.select(0, j) * ys[n - j] * c;
                else acc.addcmul_(x.Leading.select(0, j), ys[n - j], c);
            }
            ys.Add(acc is null ? zeros_like(y0) : acc * r0);
        }
        return x.With(stack(ys, 0));
    }

    /// <summary>
    /// Square root, from <c>y² = x</c>: <c>y₀ = √x₀</c>, <c>yₙ = (xₙ − Σ_{j=1..n−1} y_j·y_{n−j}) / (2·y₀)</c>.
    /// </summary>
    public static Jet Sqrt(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y0 = x.Value.sqrt();
        var k = x.Order;
        var d = x.Degree;
        if (k == 0 || d == 0) return x.With(y0.unsqueeze(0));
        var half = (y0 * 2).reciprocal();
        var ys = new List<Tensor>(k + 1) { y0 };
        for (var n = 1; n <= k; n++)
        {
            Tensor? acc = null;
            for (var j = 1; j < n; j++)
            {
                if (acc is null) acc = ys[j] * ys[n - j] * -1.0;
                else acc.addcmul_(ys[j], ys[n - j], -1);
            }
            if (n <= d) acc = acc is null ? x.Leading.select(0, n) : acc.add_(x.Leading.select(0, n));
            ys.Add(acc is null ? zeros_like(y0) : acc * half);
        }
        return x.With(stack(ys, 0));
    }

    /// <summary>Mish <c>x·tanh(softplus(x))</c> (torch.nn.Mish, ONNX Mish): the <see cref="Softplus"/>, <see cref="Tanh"/> and Cauchy-product rules.</summary>
    public static Jet Mish(Jet x) => Mul(x, Tanh(Softplus(x)));

    /// <summary>
    /// Layer normalisation over the trailing axes from <paramref name="axis"/> on (torch.nn.LayerNorm, ONNX
    /// LayerNormalization): <c>μ = mean(x)</c>, <c>c = x − μ</c>, <c>σ² = mean(c²)</c>, <c>y = c·(σ² + ε)^{−½}·γ + β</c>,
    /// composed of the mean, product and <see cref="Pow"/> rules (exact: μ and σ² are themselves series in t).
    /// </summary>
    /// <param name="x">Input jet.</param>
    /// <param name="axis">First normalised axis (negative counts from the end; 0 is the batch axis).</param>
    /// <param name="scale">γ, broadcast against the normalised axes, or null.</param>
    /// <param name="bias">β, or null.</param>
    /// <param name="eps">ε.</param>
    public static Jet LayerNorm(Jet x, long axis, Tensor? scale, Tensor? bias, double eps = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(x);
        var first = Axis(x, axis) - 1;
        var dims = Enumerable.Range((int)first, x.Shape.Length - (int)first).Select(i => (long)i).ToArray();
        var y = Normalize(x, dims, eps);
        if (scale is not null) y = Mul(y, scale);
        return bias is null ? y : Add(y, bias);
    }

    /// <summary>
    /// Instance normalisation (ONNX InstanceNormalization, torch.nn.InstanceNorm2d without running statistics): each
    /// sample's channel is normalised over its spatial axes, <c>y = (x − μ)·(σ² + ε)^{−½}·γ_c + β_c</c>.
    /// </summary>
    public static Jet InstanceNorm(Jet x, Tensor? scale, Tensor? bias, double eps = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Length < 3) throw new ArgumentException($"InstanceNorm needs inputs [B, C, spatial…]; got [{Dims(x.Shape)}].", nameof(x));
        var y = Normalize(x, [.. Enumerable.Range(2, x.Shape.Length - 2).Select(i => (long)i)], eps);
        return PerChannel(y, scale, bias);
    }

    /// <summary>
    /// Group normalisation (torch.nn.GroupNorm, ONNX GroupNormalization): the channels of each sample are split into
    /// <paramref name="groups"/> groups, each normalised over its channels and spatial axes, then scaled and shifted per
    /// channel (<paramref name="perGroupAffine"/>: γ and β have one value per group, as in ONNX GroupNormalization-18).
    /// </summary>
    public static Jet GroupNorm(Jet x, long groups, Tensor? scale, Tensor? bias, double eps = 1e-5, bool perGroupAffine = false)
    {
        ArgumentNullException.ThrowIfNull(x);
        var shape = x.Shape;
        if (shape.Length < 2 || groups < 1 || shape[1] % groups != 0)
        {
            throw new ArgumentException($"GroupNorm needs inputs [B, C, …] with C divisible by {groups} groups; got [{Dims(shape)}].", nameof(groups));
        }
        var grouped = Reshape(x, [shape[0], groups, -1]);
        var y = Reshape(Normalize(grouped, [2], eps), shape);
        var perChannel = shape[1] / groups;
        Tensor? Expand(Tensor? t) => t is null || !perGroupAffine ? t : t.reshape(-1).repeat_interleave(perChannel);
        return PerChannel(y, Expand(scale), Expand(bias));
    }

    /// <summary>
    /// Transposed 2-D convolution (ONNX ConvTranspose, torch.nn.ConvTranspose2d), linear: the full transposed
    /// convolution of every coefficient (no padding), cropped by <paramref name="pads"/> <c>[top, left, bottom, right]</c>
    /// and extended at the end by <paramref name="outputPadding"/>, so the output is
    /// <c>s·(in − 1) + op + (k − 1)·d + 1 − pad_begin − pad_end</c> per axis; the bias enters c_0.
    /// </summary>
    /// <param name="x">Input jet <c>[B, C_in, H, W]</c>.</param>
    /// <param name="weight"><c>[C_in, C_out/groups, kh, kw]</c>.</param>
    /// <param name="bias"><c>[C_out]</c> or null.</param>
    /// <param name="stride">Strides (default 1).</param>
    /// <param name="pads">ONNX pads <c>[top, left, bottom, right]</c> (default 0).</param>
    /// <param name="outputPadding">Extra rows and columns at the end (default 0).</param>
    /// <param name="dilation">Dilations (default 1).</param>
    /// <param name="groups">Groups (default 1).</param>
    public static Jet ConvTranspose2d(Jet x, Tensor weight, Tensor? bias = null, long[]? stride = null, long[]? pads = null, long[]? outputPadding = null,
        long[]? dilation = null, long groups = 1)
    {
        ArgumentNullException.ThrowIfNull(weight);
        RequireRank(x, 4, "ConvTranspose2d");
        var y = Folded(x, f => ConvTranspose2dPlain(f, Like(weight, f), null, stride, pads, outputPadding, dilation, groups));
        return bias is null ? y : y.With(AddToFreshValue(y.Leading, Like(bias, y.Leading).view(-1, 1, 1)));
    }

    /// <summary>The plain tensor form of <see cref="ConvTranspose2d"/> with ONNX's pads and output padding.</summary>
    public static Tensor ConvTranspose2dPlain(Tensor x, Tensor weight, Tensor? bias, long[]? stride, long[]? pads, long[]? outputPadding, long[]? dilation, long groups)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var full = nn.functional.conv_transpose2d(x, weight, null, stride ?? [1, 1], [0, 0], [0, 0], groups: groups, dilation: dilation ?? [1, 1]);
        var p = pads ?? [0, 0, 0, 0];
        var op = outputPadding ?? [0, 0];
        // F.pad takes the last axis first; negative amounts crop.
        long[] amounts = [-p[1], op[1] - p[3], -p[0], op[0] - p[2]];
        var y = amounts.All(a => a == 0) ? full : nn.functional.pad(full, amounts);
        return bias is null ? y : y + bias.view(-1, 1, 1);
    }

    /// <summary>
    /// Padding in torch's order (last axis first, <c>[left, right, top, bottom, …]</c>; negative amounts crop), linear in x:
    /// constant mode pads c_0 with <paramref name="value"/> and the other coefficients with 0; reflect, replicate (ONNX
    /// edge) and circular (ONNX wrap) copy entries of x, so they copy the same entries of every coefficient.
    /// </summary>
    public static Jet Pad(Jet x, long[] pad, PaddingModes mode, double value = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(pad);
        if (pad.Length % 2 != 0 || pad.Length / 2 > x.Shape.Length - 1)
        {
            throw new ArgumentException($"Give two paddings per padded axis (at most {x.Shape.Length - 1} axes besides the batch); got {pad.Length} numbers.", nameof(pad));
        }
        if (mode is not (PaddingModes.Constant or PaddingModes.Zeros)) return Folded(x, f => nn.functional.pad(f, pad, mode));
        var zero = nn.functional.pad(x.Leading, pad);
        if (value == 0) return x.With(zero);
        // value·(1 − pad(ones)) is value on the padded border and 0 inside; it enters c_0 only.
        var border = (1 - nn.functional.pad(ones_like(x.Value), pad)) * value;
        return x.With(AddToFreshValue(zero, border));
    }

    /// <summary>
    /// Bidirectional broadcast to <paramref name="shape"/> (ONNX Expand): the output has the broadcast of the operand's
    /// shape and <paramref name="shape"/>; <c>yₙ = broadcast(xₙ)</c>.
    /// </summary>
    public static Jet Expand(Jet x, long[] shape)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(shape);
        var target = BroadcastShape(x.Shape, shape);
        return x.With(AlignRank(x.Leading, target.Length).expand([x.Leading.shape[0], .. target]));
    }

    /// <summary>The numpy broadcast of two shapes.</summary>
    /// <exception cref="ArgumentException">The shapes do not broadcast.</exception>
    public static long[] BroadcastShape(long[] a, long[] b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var rank = Math.Max(a.Length, b.Length);
        var result = new long[rank];
        for (var i = 1; i <= rank; i++)
        {
            var da = i <= a.Length ? a[^i] : 1;
            var db = i <= b.Length ? b[^i] : 1;
            if (da != db && da != 1 && db != 1) throw new ArgumentException($"Shapes [{Dims(a)}] and [{Dims(b)}] do not broadcast.", nameof(b));
            result[^i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Picks the entries <paramref name="index"/> (int64, 1-D) along <paramref name="dim"/> of every coefficient (Slice with any step, Gather).</summary>
    public static Jet IndexSelect(Jet x, long dim, Tensor index)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(index);
        return x.With(x.Leading.index_select(Axis(x, dim), index.to(ScalarType.Int64, x.Leading.device)));
    }

    /// <summary>The entries <paramref name="start"/>..<paramref name="start"/>+<paramref name="length"/>−1 along <paramref name="dim"/> (Split, Slice with step 1).</summary>
    public static Jet Narrow(Jet x, long dim, long start, long length)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.With(x.Leading.narrow(Axis(x, dim), start, length));
    }

    /// <summary>
    /// The indices ONNX Slice takes along one axis of length <paramref name="size"/>: negative starts and ends count from
    /// the end, both are clamped (to [0, size] for a positive step, to [0, size − 1] and [−1, size − 1] for a negative
    /// one), and the indices run from start in steps of <paramref name="step"/> while before end.
    /// </summary>
    public static long[] SliceIndices(long size, long start, long end, long step)
    {
        if (step == 0) throw new ArgumentException("A Slice step must not be 0.", nameof(step));
        static long Wrap(long v, long size) => v < 0 ? (v < long.MinValue + size ? long.MinValue : v + size) : v;
        var s = Wrap(start, size);
        var e = Wrap(end, size);
        var list = new List<long>();
        if (step > 0)
        {
            s = Math.Clamp(s, 0, size);
            e = Math.Clamp(e, 0, size);
            for (var i = s; i < e; i += step) list.Add(i);
        }
        else
        {
            s = Math.Clamp(s, 0, size - 1);
            e = Math.Clamp(e, -1, size - 1);
            for (var i = s; i > e; i += step) list.Add(i);
        }
        return [.. list];
    }

    /// <summary><c>(x − mean(x))·(mean((x − mean(x))²) + ε)^{−½}</c> over <paramref name="dims"/>.</summary>
    private static Jet Normalize(Jet x, long[] dims, double eps)
    {
        var centered = Sub(x, Mean(x, dims, keepdim: true));
        var variance = Mean(Mul(centered, centered), dims, keepdim: true);
        return Mul(centered, Pow(Shift(variance, eps), -0.5));
    }

    /// <summary>Scales and shifts axis 1 (channels) by <c>[C]</c> vectors.</summary>
    private static Jet PerChannel(Jet y, Tensor? scale, Tensor? bias)
    {
        long[] view = [-1, .. Enumerable.Repeat(1L, y.Shape.Length - 2)];
        if (scale is not null) y = Mul(y, Like(scale, y.Leading).reshape(view));
        return bias is null ? y : Add(y, Like(bias, y.Leading).reshape(view));
    }
}
