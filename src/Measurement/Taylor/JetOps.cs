using LambdaService.Measurement.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// Propagation rules of truncated Taylor series (<see cref="Jet"/>) through the operations of a network: for
/// <c>u(t) = Σ uₙ tⁿ</c> and an operation φ, each rule returns the coefficients of <c>φ(u(t))</c> up to the
/// jet's order K. All rules are ordinary TorchSharp operations on whole coefficient tensors (no detach), so a
/// result stays differentiable with respect to the operation's parameters and the input jet.
/// </summary>
/// <remarks>
/// <para>
/// Notation: x, y, … are jets with coefficients xₙ (tensors of the operand's shape), K the order, D the degree
/// (stored coefficients, see <see cref="Jet.Degree"/>). Dimension arguments (<c>dim</c>, axes) refer to the
/// shape of one coefficient, i.e. to the operand as the plain network sees it: 0 is the batch axis.
/// </para>
/// <para>
/// Linear maps L (linear and convolution layers, pooling by averaging, reshapes) act on every coefficient:
/// <c>(L u)ₙ = L uₙ</c>; a constant term (bias, shift) enters c_0 only. Coefficient tensors <c>[D+1, B, …]</c>
/// are folded into the batch axis so that a layer costs one call, not D+1.
/// </para>
/// <para>
/// Smooth elementwise functions use the recurrences of automatic differentiation by Taylor series (Griewank &amp;
/// Walther, <i>Evaluating Derivatives</i>, 2nd ed., §13.2): if <c>y' = g·x'</c> then, comparing coefficients of
/// <c>tⁿ⁻¹</c>, <c>n·yₙ = Σ_{k=1..n} k·x_k·g_{n−k}</c>. Each order allocates one tensor of one coefficient's size and
/// accumulates the other terms into it in place (<c>addcmul_</c>); autograd allows this because no operation saves the
/// accumulator for its backward pass (products save their factors). Allocating a fresh stacked block per order
/// instead (cat, multiply, sum) was about twice as slow here.
/// Parameters (weights, biases, statistics) are cast to the jet's dtype when they differ (autograd follows the cast).
/// </para>
/// </remarks>
public static partial class JetOps
{
    private static readonly double SqrtTwoPi = Math.Sqrt(2 * Math.PI);

    // ───────────────────────────── linear maps ─────────────────────────────

    /// <summary>
    /// Fully connected layer <c>y = x Wᵀ + b</c> (torch.nn.Linear): <c>y₀ = x₀ Wᵀ + b</c>, <c>yₙ = xₙ Wᵀ</c> (n ≥ 1),
    /// computed as one matrix product of the stacked coefficients <c>[D+1, B, …, in]</c>.
    /// </summary>
    /// <param name="x">Input jet with last axis <c>in</c>.</param>
    /// <param name="weight"><c>[out, in]</c>.</param>
    /// <param name="bias"><c>[out]</c> or null.</param>
    public static Jet Linear(Jet x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 2 || x.Shape.Length < 1 || x.Shape[^1] != weight.shape[1])
        {
            throw new ArgumentException($"Linear: weight [{Dims(weight.shape)}] does not map inputs of shape [{Dims(x.Shape)}] (expected [out, {(x.Shape.Length > 0 ? x.Shape[^1] : 0)}]).", nameof(weight));
        }
        var w = Like(weight, x.Leading);
        if (SharesValues(x)) return FoldedSharingValues(x, f => nn.functional.linear(f, w), bias is null ? null : Like(bias, x.Leading));
        var y = nn.functional.linear(x.Leading, w);
        return x.With(bias is null ? y : AddToFreshValue(y, Like(bias, y)));
    }

    /// <summary>
    /// Matrix product with a constant on the right, <c>y = x·W</c> (ONNX/numpy MatMul semantics, W broadcast over
    /// leading axes): <c>yₙ = xₙ·W</c>.
    /// </summary>
    public static Jet MatMul(Jet x, Tensor w)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        var rx = x.Shape.Length;
        if (rx == 0 || w.dim() == 0) throw new ArgumentException("MatMul needs operands of rank ≥ 1.", nameof(w));
        CheckMatMul(x.Shape, w.shape);
        var c = Like(w, x.Leading);
        var a = x.Leading;
        if (rx == 1) a = a.unsqueeze(1);                                    // [D+1, m] → [D+1, 1, m]
        a = AlignRank(a, Math.Max(Math.Max(rx, 2), (int)c.dim()));
        var y = a.matmul(c);
        if (rx == 1) y = y.squeeze(c.dim() == 1 ? -1 : -2);
        return x.With(y);
    }

    /// <summary>Matrix product with a constant on the left, <c>y = W·x</c>: <c>yₙ = W·xₙ</c>.</summary>
    public static Jet MatMul(Tensor w, Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        var rx = x.Shape.Length;
        if (rx == 0 || w.dim() == 0) throw new ArgumentException("MatMul needs operands of rank ≥ 1.", nameof(w));
        CheckMatMul(w.shape, x.Shape);
        var c = Like(w, x.Leading);
        var b = x.Leading;
        if (rx == 1) b = b.unsqueeze(-1);                                   // [D+1, m] → [D+1, m, 1]
        b = AlignRank(b, Math.Max(Math.Max(rx, 2), (int)c.dim()));
        var y = c.matmul(b);
        if (rx == 1) y = y.squeeze(-1);
        return x.With(y);
    }

    /// <summary>
    /// Matrix product of two jets (a bilinear Cauchy product): <c>yₙ = Σ_{k=0..n} a_k·b_{n−k}</c>.
    /// </summary>
    public static Jet MatMul(Jet a, Jet b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        SameOrder(a, b);
        if (a.Degree == 0) return MatMul(a.Value, b);
        if (b.Degree == 0) return MatMul(a, b.Value);
        if (a.Shape.Length < 2 || b.Shape.Length < 2) throw new ArgumentException("MatMul of two jets needs operands of rank ≥ 2.", nameof(b));
        CheckMatMul(a.Shape, b.Shape);
        var rank = Math.Max(a.Shape.Length, b.Shape.Length);
        return new Jet(Cauchy(AlignRank(a.Leading, rank), AlignRank(b.Leading, rank), a.Order, (p, q) => p.matmul(q)), a.Order);
    }

    /// <summary>
    /// 2-D convolution (torch.nn.functional.conv2d) of <c>[B, C, H, W]</c> jets: <c>y₀ = W ∗ x₀ + b</c>,
    /// <c>yₙ = W ∗ xₙ</c>; one convolution over the coefficients folded into the batch, <c>[(D+1)·B, C, H, W]</c>. In float32
    /// with no gradient to carry (a measurement pass) grouped and k×k convolutions run on oneDNN (<see cref="Models.OneDnnForward"/>).
    /// </summary>
    /// <param name="x">Input jet, per-coefficient shape <c>[B, C, H, W]</c>.</param>
    /// <param name="weight"><c>[C_out, C/groups, kh, kw]</c>.</param>
    /// <param name="bias"><c>[C_out]</c> or null.</param>
    /// <param name="stride">Strides (default 1).</param>
    /// <param name="padding">Zero padding on both sides (default 0).</param>
    /// <param name="dilation">Dilations (default 1).</param>
    /// <param name="groups">Groups (default 1).</param>
    public static Jet Conv2d(Jet x, Tensor weight, Tensor? bias = null, long[]? stride = null, long[]? padding = null, long[]? dilation = null, long groups = 1)
    {
        ArgumentNullException.ThrowIfNull(weight);
        RequireRank(x, 4, "Conv2d");
        if (SharesValues(x))
        {
            var w = Like(weight, x.Leading);
            return FoldedSharingValues(x, f => Models.OneDnnForward.Conv2d(f, w, stride, padding, dilation, groups), bias is null ? null : Like(bias, x.Leading).view(-1, 1, 1));
        }
        var y = Folded(x, f => Models.OneDnnForward.Conv2d(f, Like(weight, f), stride, padding, dilation, groups));
        return bias is null ? y : y.With(AddToFreshValue(y.Leading, Like(bias, y.Leading).view(-1, 1, 1)));
    }

    /// <summary>
    /// Constant zero padding (torch.nn.functional.pad order: last axis first, <c>[left, right, top, bottom, …]</c>),
    /// linear: <c>yₙ = pad(xₙ)</c>. The batch axis is never padded.
    /// </summary>
    public static Jet Pad(Jet x, long[] pad)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(pad);
        if (pad.Length % 2 != 0 || pad.Length / 2 > x.Shape.Length - 1)
        {
            throw new ArgumentException($"Give two paddings per padded axis (at most {x.Shape.Length - 1} axes besides the batch); got {pad.Length} numbers.", nameof(pad));
        }
        return x.With(nn.functional.pad(x.Leading, pad));
    }

    /// <summary>2-D average pooling (torch.nn.functional.avg_pool2d), linear: <c>yₙ = avgpool(xₙ)</c>.</summary>
    public static Jet AvgPool2d(Jet x, long[] kernel, long[]? stride = null, long[]? padding = null, bool ceilMode = false, bool countIncludePad = true)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        RequireRank(x, 4, "AvgPool2d");
        return Folded(x, f => nn.functional.avg_pool2d(f, kernel, stride, padding, ceilMode, countIncludePad));
    }

    /// <summary>Mean over the given axes (global average pooling with axes 2, 3), linear: <c>yₙ = mean(xₙ)</c>.</summary>
    public static Jet Mean(Jet x, long[] dims, bool keepdim)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(dims);
        return x.With(x.Leading.mean([.. dims.Select(d => Axis(x, d))], keepdim));
    }

    /// <summary>Sum over the given axes, linear: <c>yₙ = Σ xₙ</c>.</summary>
    public static Jet Sum(Jet x, long[] dims, bool keepdim)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(dims);
        return x.With(x.Leading.sum([.. dims.Select(d => Axis(x, d))], keepdim));
    }

    /// <summary>
    /// Batch normalisation in evaluation mode (running statistics), an affine map per channel (axis 1):
    /// <c>s = γ/√(σ² + ε)</c>, <c>y₀ = s·(x₀ − μ) + β</c>, <c>yₙ = s·xₙ</c>.
    /// </summary>
    public static Jet BatchNormEval(Jet x, Tensor runningMean, Tensor runningVar, Tensor? weight, Tensor? bias, double eps = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(runningMean);
        ArgumentNullException.ThrowIfNull(runningVar);
        if (x.Shape.Length < 2) throw new ArgumentException($"BatchNorm needs inputs [B, C, …]; got [{Dims(x.Shape)}].", nameof(x));
        var channels = x.Shape[1];
        long[] perChannel = [channels, .. Enumerable.Repeat(1L, x.Shape.Length - 2)];
        var l = x.Leading;
        var scale = (Like(runningVar, l) + eps).rsqrt();
        if (weight is not null) scale = scale * Like(weight, l);
        var shift = -Like(runningMean, l) * scale;
        if (bias is not null) shift = shift + Like(bias, l);
        var y = l * scale.view(perChannel);
        return x.With(AddToFreshValue(y, shift.view(perChannel)));
    }

    /// <summary>Dropout in evaluation mode: the identity. Throws in training mode (a random mask is no function of t).</summary>
    /// <exception cref="InvalidOperationException"><paramref name="training"/> is true.</exception>
    public static Jet Dropout(Jet x, bool training = false)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (training) throw new InvalidOperationException("Dropout in training mode draws a random mask; Taylor jets need the module in evaluation mode (call eval()).");
        return x;
    }

    /// <summary>Reshape of every coefficient to <paramref name="shape"/> (−1 infers one axis).</summary>
    public static Jet Reshape(Jet x, long[] shape)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(shape);
        return KeepingRows(x, x.Leading.reshape([x.Leading.shape[0], .. shape]));
    }

    /// <summary>Flattens axes <paramref name="startDim"/>..<paramref name="endDim"/> of every coefficient (default: all but the batch axis).</summary>
    public static Jet Flatten(Jet x, long startDim = 1, long endDim = -1)
    {
        ArgumentNullException.ThrowIfNull(x);
        return KeepingRows(x, x.Leading.flatten(Axis(x, startDim), Axis(x, endDim)));
    }

    /// <summary>Swaps two axes of every coefficient.</summary>
    public static Jet Transpose(Jet x, long dim0, long dim1)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.With(x.Leading.transpose(Axis(x, dim0), Axis(x, dim1)));
    }

    /// <summary>Permutes the axes of every coefficient (<c>yₙ = xₙ.permute(perm)</c>).</summary>
    public static Jet Permute(Jet x, long[] permutation)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(permutation);
        if (permutation.Length != x.Shape.Length) throw new ArgumentException($"A permutation of {x.Shape.Length} axes is needed; got {permutation.Length}.", nameof(permutation));
        return x.With(x.Leading.permute([0, .. permutation.Select(p => Axis(x, p))]));
    }

    /// <summary>Inserts an axis of length 1 at <paramref name="dim"/> of every coefficient.</summary>
    public static Jet Unsqueeze(Jet x, long dim)
    {
        ArgumentNullException.ThrowIfNull(x);
        var rank = x.Shape.Length + 1;
        var d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"An axis in [{-rank}, {rank - 1}] is needed.");
        return KeepingRows(x, x.Leading.unsqueeze(d + 1));
    }

    /// <summary>Removes axis <paramref name="dim"/> (of length 1) of every coefficient.</summary>
    public static Jet Squeeze(Jet x, long dim)
    {
        ArgumentNullException.ThrowIfNull(x);
        var a = Axis(x, dim);
        if (x.Leading.shape[a] != 1) throw new ArgumentException($"Axis {dim} has length {x.Leading.shape[a]}, not 1.", nameof(dim));
        return KeepingRows(x, x.Leading.squeeze(a));
    }

    /// <summary>Concatenation along axis <paramref name="dim"/>: <c>yₙ = cat(a_n, b_n, …)</c>.</summary>
    public static Jet Concat(IReadOnlyList<Jet> parts, long dim)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("Concat needs at least one jet.", nameof(parts));
        foreach (var p in parts) SameOrder(parts[0], p);
        var degree = parts.Max(p => p.Degree);
        var axis = Axis(parts[0], dim);
        return new Jet(cat(parts.Select(p => p.Padded(degree)).ToArray(), axis), parts[0].Order);
    }

    // ───────────────────────────── arithmetic ─────────────────────────────

    /// <summary>Sum (with broadcasting): <c>yₙ = aₙ + bₙ</c>.</summary>
    public static Jet Add(Jet a, Jet b)
    {
        var (p, q) = Aligned(a, b);
        if (a.Degree == b.Degree) return a.With(p + q);
        return a.Degree > b.Degree ? a.With(AddPrefix(p, q)) : a.With(AddPrefix(q, p));
    }

    /// <summary>Adds a constant (broadcast): <c>y₀ = x₀ + c</c>, <c>yₙ = xₙ</c>.</summary>
    public static Jet Add(Jet x, Tensor c) => Add(x, Jet.Constant(Like(c, x.Leading), x.Order));

    /// <summary>Difference (with broadcasting): <c>yₙ = aₙ − bₙ</c>.</summary>
    public static Jet Sub(Jet a, Jet b) => Add(a, Neg(b));

    /// <summary>Subtracts a constant: <c>y₀ = x₀ − c</c>, <c>yₙ = xₙ</c>.</summary>
    public static Jet Sub(Jet x, Tensor c) => Add(x, -Like(c, x.Leading));

    /// <summary>A constant minus a jet: <c>y₀ = c − x₀</c>, <c>yₙ = −xₙ</c>.</summary>
    public static Jet Sub(Tensor c, Jet x) => Add(Neg(x), c);

    /// <summary>Negation: <c>yₙ = −xₙ</c>.</summary>
    public static Jet Neg(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.With(-x.Leading);
    }

    /// <summary>Scalar scale: <c>yₙ = s·xₙ</c>.</summary>
    public static Jet Scale(Jet x, double s)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.With(x.Leading * s);
    }

    /// <summary>Scalar shift: <c>y₀ = x₀ + c</c>, <c>yₙ = xₙ</c>.</summary>
    public static Jet Shift(Jet x, double c)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.With(AddToValue(x.Leading, tensor(c, x.DType, x.Leading.device)));
    }

    /// <summary>
    /// Product (with broadcasting), the Cauchy product <c>yₙ = Σ_{k=0..n} a_k·b_{n−k}</c>; one multiply and one sum
    /// per order (a constant factor costs one multiply in all).
    /// </summary>
    public static Jet Mul(Jet a, Jet b)
    {
        var (p, q) = Aligned(a, b);
        if (a.Degree == 0 || b.Degree == 0) return a.With(p * q);
        return a.With(Cauchy(p, q, a.Order, Multiply));
    }

    /// <summary>Product with a constant (broadcast): <c>yₙ = c·xₙ</c>.</summary>
    public static Jet Mul(Jet x, Tensor c) => Mul(x, Jet.Constant(Like(c, x.Leading), x.Order));

    /// <summary>
    /// Quotient (with broadcasting) <c>q = a/b</c>, from <c>b·q = a</c>:
    /// <c>qₙ = (aₙ − Σ_{k=1..n} b_k·q_{n−k}) / b₀</c>.
    /// </summary>
    public static Jet Div(Jet a, Jet b)
    {
        var (p, q) = Aligned(a, b);
        if (b.Degree == 0) return a.With(p / q);
        var k = a.Order;
        var db = b.Degree;
        var r0 = q.select(0, 0).reciprocal();
        var qs = new List<Tensor>(k + 1) { p.select(0, 0) * r0 };
        for (var n = 1; n <= k; n++)
        {
            // acc = Σ_{k=1..min(n, D_b)} b_k q_{n−k}, accumulated in place (autograd keeps the factors, not acc).
            var acc = q.select(0, 1) * qs[n - 1];
            for (var j = 2; j <= Math.Min(n, db); j++) acc.addcmul_(q.select(0, j), qs[n - j], 1);
            acc.neg_();
            if (n <= a.Degree) acc.add_(p.select(0, n));
            qs.Add(acc * r0);
        }
        return a.With(stack(qs, 0));
    }

    /// <summary>Quotient by a constant: <c>yₙ = xₙ / c</c>.</summary>
    public static Jet Div(Jet x, Tensor c) => Div(x, Jet.Constant(Like(c, x.Leading), x.Order));

    /// <summary>A constant divided by a jet: <c>c/x = c·(1/x)</c> (see <see cref="Div(Jet, Jet)"/>).</summary>
    public static Jet Div(Tensor c, Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return Div(Jet.Constant(Like(c, x.Leading), x.Order), x);
    }

    /// <summary>Reciprocal <c>r = 1/x</c>: <c>r₀ = 1/x₀</c>, <c>rₙ = −(Σ_{k=1..n} x_k·r_{n−k}) / x₀</c>.</summary>
    public static Jet Reciprocal(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return Div(Jet.Constant(ones(Array.Empty<long>(), dtype: x.DType, device: x.Leading.device), x.Order), x);
    }

    // ───────────────────────────── smooth elementwise functions ─────────────────────────────

    /// <summary>Exponential: <c>y' = y·x'</c>, so <c>y₀ = e^{x₀}</c>, <c>n·yₙ = Σ_{k=1..n} k·x_k·y_{n−k}</c>.</summary>
    public static Jet Exp(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return Recur(x, x.Value.exp(), static ys => ys[^1]);
    }

    /// <summary>
    /// Natural logarithm: <c>x·y' = x'</c>, so <c>y₀ = log x₀</c>,
    /// <c>yₙ = (xₙ − (1/n)·Σ_{k=1..n−1} k·y_k·x_{n−k}) / x₀</c>.
    /// </summary>
    public static Jet Log(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y0 = x.Value.log();
        var k = x.Order;
        var d = x.Degree;
        if (k == 0 || d == 0) return x.With(y0.unsqueeze(0));
        var r0 = x.Value.reciprocal();
        var ys = new List<Tensor>(k + 1) { y0 };
        for (var n = 1; n <= k; n++)
        {
            Tensor? acc = null;
            for (var j = Math.Max(1, n - d); j < n; j++)
            {
                if (acc is null) acc = ys[j] * x.Leading.select(0, n - j) * (j / (double)-n);
                else acc.addcmul_(ys[j], x.Leading.select(0, n - j), j / (double)-n);
            }
            if (n <= d) acc = acc is null ? x.Leading.select(0, n) : acc.add_(x.Leading.select(0, n));
            ys.Add(acc is null ? zeros_like(y0) : acc * r0);
        }
        return x.With(stack(ys, 0));
    }

    /// <summary>
    /// Hyperbolic tangent: <c>y' = (1 − y²)·x'</c>, so with <c>g = 1 − y²</c>
    /// (<c>g₀ = 1 − y₀²</c>, <c>g_m = −Σ_{j=0..m} y_j y_{m−j}</c>): <c>n·yₙ = Σ_{k=1..n} k·x_k·g_{n−k}</c>.
    /// </summary>
    public static Jet Tanh(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y0 = x.Value.tanh();
        return Recur(x, y0, ys => ys.Count == 1 ? ys[0].square().neg_().add_(1) : SelfProduct(ys, ys.Count - 1, -1));
    }

    /// <summary>
    /// Logistic sigmoid <c>σ(x) = 1/(1 + e^{−x})</c>: <c>y' = y(1 − y)·x'</c>, so with <c>g = y − y²</c>:
    /// <c>n·yₙ = Σ_{k=1..n} k·x_k·g_{n−k}</c>.
    /// </summary>
    public static Jet Sigmoid(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y0 = x.Value.sigmoid();
        return Recur(x, y0, ys => ys.Count == 1 ? ys[0].square().neg_().add_(ys[0]) : SelfProduct(ys, ys.Count - 1, -1).add_(ys[^1]));
    }

    /// <summary>
    /// Softplus <c>log(1 + eˣ)</c> (torch's, β = 1: c_0 is torch's value, which is x itself above 20):
    /// <c>y' = σ(x)·x'</c>, so <c>n·yₙ = Σ_{k=1..n} k·x_k·σ_{n−k}</c> with the sigmoid jet σ to order K−1.
    /// </summary>
    public static Jet Softplus(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y0 = nn.functional.softplus(x.Value);
        if (x.Order == 0 || x.Degree == 0) return x.With(y0.unsqueeze(0));
        return Integrate(x, y0, Sigmoid(Truncate(x, x.Order - 1)));
    }

    /// <summary>
    /// Sine, paired with cosine: <c>s' = c·x'</c>, <c>c' = −s·x'</c>, so
    /// <c>n·sₙ = Σ_{k=1..n} k·x_k·c_{n−k}</c>, <c>n·cₙ = −Σ_{k=1..n} k·x_k·s_{n−k}</c>.
    /// </summary>
    public static Jet Sin(Jet x) => SinCos(x).Sin;

    /// <summary>Cosine (the pair of <see cref="Sin"/>).</summary>
    public static Jet Cos(Jet x) => SinCos(x).Cos;

    /// <summary>
    /// Error function: <c>erf'(x) = (2/√π)·e^{−x²}</c>, so <c>n·yₙ = Σ_{k=1..n} k·x_k·g_{n−k}</c> with
    /// <c>g = (2/√π)·exp(−x²)</c> as a jet of order K−1.
    /// </summary>
    public static Jet Erf(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y0 = x.Value.erf();
        if (x.Order == 0 || x.Degree == 0) return x.With(y0.unsqueeze(0));
        var t = Truncate(x, x.Order - 1);
        var g = Scale(Exp(Neg(Mul(t, t))), 2 / Math.Sqrt(Math.PI));
        return Integrate(x, y0, g);
    }

    /// <summary>
    /// GELU, exact form <c>x·Φ(x)</c> (torch.nn.functional.gelu without approximation): Φ' = φ, so
    /// <c>n·Φₙ = Σ_{k=1..n} k·x_k·φ_{n−k}</c> with <c>φ = exp(−x²/2)/√(2π)</c> (jet of order K−1), then the
    /// Cauchy product <c>x·Φ</c>.
    /// </summary>
    public static Jet Gelu(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var phi0 = 0.5 * (1 + (x.Value * (1 / Math.Sqrt(2))).erf());
        if (x.Order == 0 || x.Degree == 0) return x.With((x.Value * phi0).unsqueeze(0));
        var t = Truncate(x, x.Order - 1);
        var density = Scale(Exp(Scale(Mul(t, t), -0.5)), 1 / SqrtTwoPi);
        return Mul(x, Integrate(x, phi0, density));
    }

    // ───────────────────────────── piecewise-linear functions ─────────────────────────────

    /// <summary>
    /// ReLU <c>max(x, 0)</c>: <c>yₙ = m·xₙ</c> with the mask m = 1 where x(t) &gt; 0 for small t &gt; 0, else 0.
    /// m is decided by c_0's sign; where c_0 = 0 exactly, by the sign of the first nonzero coefficient (the
    /// one-sided, t → 0⁺, series; torch's autograd instead uses slope 0 at 0). The mask carries no gradient.
    /// </summary>
    public static Jet Relu(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (SharesValues(x))
        {
            // The mask from each point's c_0 once, applied to its lines' higher coefficients; where some c_0 is exactly 0 the mask
            // follows the higher coefficients of each line (the general rule below), and c_0·mask = 0 there whatever it is, so rows
            // that shared c_0 still do.
            var value = GroupValues(x);
            if (!value.eq(0).any().item<bool>())
            {
                var positive = value.gt(0);
                var higher = x.Leading.narrow(0, 1, x.Degree);
                var masked = higher.view([x.Degree, .. value.shape[..1], x.SharedValueRows, .. value.shape[1..]]) * positive.unsqueeze(1).to(x.DType);
                return WithGroupValues(x, nn.functional.relu(value), masked);
            }
        }
        return x.WithSharedValueRows(x.Leading * PositiveSide(x).to(x.DType), x.SharedValueRows);
    }

    /// <summary>
    /// Leaky ReLU: <c>yₙ = s·xₙ</c> with s = 1 where x(t) &gt; 0 for small t &gt; 0 and s = α elsewhere (sign rule of
    /// <see cref="Relu"/>).
    /// </summary>
    public static Jet LeakyRelu(Jet x, double negativeSlope = 0.01)
    {
        ArgumentNullException.ThrowIfNull(x);
        var slope = PositiveSide(x).to(x.DType) * (1 - negativeSlope) + negativeSlope;
        return x.WithSharedValueRows(x.Leading * slope, x.SharedValueRows);
    }

    /// <summary>
    /// 2-D max pooling: each window's winner is chosen from c_0 (torch's max_pool2d_with_indices: ties go to the
    /// first index in the window; found by <see cref="MaxPooling"/>), and every coefficient is gathered at that index,
    /// <c>yₙ = xₙ[argmax x₀]</c>.
    /// This is the series of the pooled function for small t wherever the winner is unique.
    /// </summary>
    public static Jet MaxPool2d(Jet x, long[] kernel, long[]? stride = null, long[]? padding = null, long[]? dilation = null, bool ceilMode = false)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        RequireRank(x, 4, "MaxPool2d");
        if (SharesValues(x))
        {
            // Each point's windows are chosen once, from its c_0; its lines' higher coefficients are gathered there.
            var g = x.SharedValueRows;
            var (value, index) = MaxPooling.WithIndices(GroupValues(x), kernel, stride, padding, dilation, ceilMode);
            var points = value.shape[0];
            var degree = x.Degree;
            var higher = x.Leading.narrow(0, 1, degree).reshape([degree, points, g, x.Shape[1], -1]);
            var at = index.flatten(2).view([1, points, 1, value.shape[1], -1]).expand([degree, points, g, -1, -1]);
            return WithGroupValues(x, value, higher.gather(4, at));
        }
        var indices = MaxPooling.Winners(x.Value, kernel, stride, padding, dilation, ceilMode);
        var outShape = indices.shape;
        var d1 = x.Leading.shape[0];
        var flatIndex = indices.flatten(2).unsqueeze(0).expand(d1, -1, -1, -1);
        var gathered = x.Leading.flatten(3).gather(3, flatIndex);
        // Equal value rows choose equal winners.
        return x.WithSharedValueRows(gathered.view([d1, .. outShape]), x.SharedValueRows);
    }

    // ───────────────────────────── heads ─────────────────────────────

    /// <summary>
    /// <c>log Σ_c exp(z_c)</c> along <paramref name="dim"/>, stably: with <c>m = max z₀</c> (a constant shift),
    /// <c>m + log Σ_c exp(z_c − m)</c> by the <see cref="Exp"/> and <see cref="Log"/> recurrences.
    /// </summary>
    public static Jet LogSumExp(Jet z, long dim, bool keepdim = false)
    {
        ArgumentNullException.ThrowIfNull(z);
        var a = Axis(z, dim);
        // The result does not depend on m; detaching it keeps the shift out of the graph.
        var m = z.Value.amax([a - 1], keepdim: true).detach();
        var sum = Sum(Exp(Sub(z, m)), [dim], keepdim: true);
        var lse = Add(Log(sum), m);
        return keepdim ? lse : Squeeze(lse, dim);
    }

    /// <summary>Softmax along <paramref name="dim"/>: <c>e = exp(z − max z₀)</c>, <c>y = e / Σ e</c> (<see cref="Div(Jet, Jet)"/>).</summary>
    public static Jet Softmax(Jet z, long dim)
    {
        ArgumentNullException.ThrowIfNull(z);
        var a = Axis(z, dim);
        var m = z.Value.amax([a - 1], keepdim: true).detach();
        var e = Exp(Sub(z, m));
        return Div(e, Sum(e, [dim], keepdim: true));
    }

    /// <summary>Log-softmax along <paramref name="dim"/>: <c>z − logsumexp(z)</c>.</summary>
    public static Jet LogSoftmax(Jet z, long dim) => Sub(z, LogSumExp(z, dim, keepdim: true));

    /// <summary>
    /// Per-sample cross-entropy against class indices, <c>ℓ = logsumexp(z) − z_y</c>, for logits <c>[B, C]</c>;
    /// returns a jet of shape <c>[B]</c>.
    /// </summary>
    /// <param name="logits">Jet of per-coefficient shape <c>[B, C]</c>.</param>
    /// <param name="classes">int64 <c>[B]</c>.</param>
    public static Jet CrossEntropy(Jet logits, Tensor classes) => Sub(LogSumExp(logits, 1), SelectLogit(logits, classes));

    /// <summary>Selects one logit per sample, <c>yₙ[b] = zₙ[b, y_b]</c>, for logits <c>[B, C]</c>; returns a jet <c>[B]</c>.</summary>
    public static Jet SelectLogit(Jet logits, Tensor classes)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(classes);
        RequireRank(logits, 2, "SelectLogit");
        var b = logits.Shape[0];
        if (classes.dim() != 1 || classes.shape[0] != b)
        {
            throw new ArgumentException($"Give one class index per sample ([{b}]); got [{Dims(classes.shape)}].", nameof(classes));
        }
        var d1 = logits.Leading.shape[0];
        var index = classes.to(ScalarType.Int64, logits.Leading.device).view(1, b, 1).expand(d1, b, 1);
        return logits.With(logits.Leading.gather(2, index).squeeze(2));
    }

    // ───────────────────────────── building blocks ─────────────────────────────

    /// <summary>The same series truncated to order <paramref name="order"/> (≤ the jet's order).</summary>
    public static Jet Truncate(Jet x, int order)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(order, x.Order);
        return new Jet(x.Degree <= order ? x.Leading : x.Leading.narrow(0, 0, order + 1), order);
    }

    /// <summary>
    /// Applies a linear map that treats axis 0 of its argument as a batch (a layer, a pooling) to every coefficient at
    /// once: <c>[D+1, B, …]</c> is folded to <c>[(D+1)·B, …]</c>, mapped, and unfolded.
    /// </summary>
    internal static Jet Folded(Jet x, Func<Tensor, Tensor> batchMap)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Length < 1) throw new ArgumentException("A batch axis is needed to fold coefficients into.", nameof(x));
        var d1 = x.Leading.shape[0];
        var b = x.Shape[0];
        var y = batchMap(x.Leading.flatten(0, 1));
        return x.With(y.view([d1, b, .. y.shape[1..]]));
    }

    /// <summary>
    /// <see cref="Folded"/> for a jet whose value rows are shared (<see cref="SharesValues"/>): c_0 is mapped once per group of rows, the
    /// higher coefficients folded into one batch; <paramref name="bias"/> (broadcast against one coefficient) is added to c_0.
    /// </summary>
    private static Jet FoldedSharingValues(Jet x, Func<Tensor, Tensor> batchMap, Tensor? bias)
    {
        var value = batchMap(GroupValues(x));
        if (bias is not null) value.add_(bias);
        var higher = batchMap(x.Leading.narrow(0, 1, x.Degree).flatten(0, 1));
        return WithGroupValues(x, value, higher.view([x.Degree, x.Shape[0], .. higher.shape[1..]]));
    }

    /// <summary>Whether <paramref name="x"/>'s value rows come in groups (<see cref="Jet.SharedValueRows"/> &gt; 1) and it has coefficients above c_0.</summary>
    private static bool SharesValues(Jet x) => x.SharedValueRows > 1 && x.Degree >= 1;

    /// <summary>c_0 once per group of <see cref="Jet.SharedValueRows"/> rows: <c>[B/g, …]</c> (a strided view of every g-th row).</summary>
    private static Tensor GroupValues(Jet x) => x.Value.unflatten(0, [x.Shape[0] / x.SharedValueRows, x.SharedValueRows]).select(1, 0);

    /// <summary>
    /// The jet whose c_0 is <paramref name="value"/> <c>[B/g, …]</c> repeated g times along the rows and whose higher coefficients are
    /// <paramref name="higher"/> <c>[D, B, …]</c> (one copy: the expanded value and the higher coefficients are concatenated at once).
    /// </summary>
    private static Jet WithGroupValues(Jet x, Tensor value, Tensor higher)
    {
        var g = x.SharedValueRows;
        var points = value.shape[0];
        long[] rest = value.shape[1..];
        var repeated = value.unsqueeze(1).expand([points, g, .. rest]).unsqueeze(0);
        var leading = cat([repeated, higher.view([higher.shape[0], points, g, .. rest])], 0).view([higher.shape[0] + 1, points * g, .. rest]);
        return x.WithSharedValueRows(leading, g);
    }

    /// <summary>x's rows kept in place by a reshape that leaves the batch axis alone (<paramref name="leading"/>'s axis 1 still has B rows).</summary>
    private static Jet KeepingRows(Jet x, Tensor leading) =>
        leading.dim() >= 2 && leading.shape[1] == x.Shape[0] ? x.WithSharedValueRows(leading, x.SharedValueRows) : x.With(leading);

    /// <summary>y with <c>y₀ = v + c</c> and the other coefficients unchanged (c broadcast against one coefficient).</summary>
    private static Tensor AddToValue(Tensor leading, Tensor c)
    {
        if (leading.shape[0] == 1) return leading + c;
        var head = leading.narrow(0, 0, 1) + c;
        var tail = leading.narrow(0, 1, leading.shape[0] - 1);
        if (!tail.shape.AsSpan(1).SequenceEqual(head.shape.AsSpan(1))) tail = tail.expand([tail.shape[0], .. head.shape[1..]]);
        return cat([head, tail], 0);
    }

    /// <summary>
    /// <see cref="AddToValue"/> for a freshly computed stack whose producer's backward does not need it (a matrix product,
    /// a convolution, a product): c is added to c_0 in place when that does not change the shape.
    /// </summary>
    private static Tensor AddToFreshValue(Tensor fresh, Tensor c)
    {
        var shape = fresh.shape;
        var cs = c.shape;
        var fits = cs.Length < shape.Length;
        for (var i = 1; fits && i <= cs.Length; i++) fits = cs[^i] == 1 || cs[^i] == shape[^i];
        if (!fits) return AddToValue(fresh, c);
        fresh.narrow(0, 0, 1).add_(c);
        return fresh;
    }

    /// <summary>p + q where q has fewer coefficients than p (broadcast).</summary>
    private static Tensor AddPrefix(Tensor p, Tensor q)
    {
        var dq = q.shape[0];
        var head = p.narrow(0, 0, dq) + q;
        var tail = p.narrow(0, dq, p.shape[0] - dq);
        if (!tail.shape.AsSpan(1).SequenceEqual(head.shape.AsSpan(1))) tail = tail.expand([tail.shape[0], .. head.shape[1..]]);
        return cat([head, tail], 0);
    }

    /// <summary>
    /// Cauchy product of coefficient stacks <c>[Da+1, …]</c> and <c>[Db+1, …]</c> under a bilinear <paramref name="op"/>
    /// that batches over axis 0: <c>cₙ = Σ_{k} op(a_k, b_{n−k})</c> for n = 0..min(K, Da+Db), one op and one sum per n
    /// (the second factor is reversed once and sliced).
    /// </summary>
    private static Tensor Cauchy(Tensor a, Tensor b, int order, Func<Tensor, Tensor, Tensor> op)
    {
        if (op == Multiply) return CauchyElementwise(a, b, order);
        var da = (int)a.shape[0] - 1;
        var db = (int)b.shape[0] - 1;
        var degree = Math.Min(order, da + db);
        var flipped = db == 0 ? b : b.flip(0);               // flipped[i] = b[db − i]
        var terms = new Tensor[degree + 1];
        for (var n = 0; n <= degree; n++)
        {
            var lo = Math.Max(0, n - db);
            var hi = Math.Min(n, da);
            var count = hi - lo + 1;
            var product = op(a.narrow(0, lo, count), flipped.narrow(0, db - n + lo, count));
            terms[n] = count == 1 ? product.squeeze(0) : product.sum(0L, false);
        }
        return stack(terms, 0);
    }

    private static readonly Func<Tensor, Tensor, Tensor> Multiply = static (u, w) => u * w;

    /// <summary>
    /// Elementwise Cauchy product <c>cₙ = Σ_k a_k·b_{n−k}</c>: the first product allocates, the others accumulate in place
    /// (<c>addcmul_</c>; autograd keeps the factors, never the accumulator).
    /// </summary>
    private static Tensor CauchyElementwise(Tensor a, Tensor b, int order)
    {
        var da = (int)a.shape[0] - 1;
        var db = (int)b.shape[0] - 1;
        var degree = Math.Min(order, da + db);
        var terms = new Tensor[degree + 1];
        for (var n = 0; n <= degree; n++)
        {
            var lo = Math.Max(0, n - db);
            var hi = Math.Min(n, da);
            var acc = a.select(0, lo) * b.select(0, n - lo);
            for (var j = lo + 1; j <= hi; j++) acc.addcmul_(a.select(0, j), b.select(0, n - j), 1);
            terms[n] = acc;
        }
        return stack(terms, 0);
    }

    /// <summary>
    /// Solves <c>y' = g(y)·x'</c> order by order: <c>n·yₙ = Σ_{k=1..min(n,D)} k·x_k·g_{n−k}</c>, where
    /// <paramref name="nextG"/> returns <c>g_m</c> from <c>y₀..y_m</c>. Each order allocates one tensor; the other terms
    /// accumulate in place.
    /// </summary>
    private static Jet Recur(Jet x, Tensor y0, Func<IReadOnlyList<Tensor>, Tensor> nextG)
    {
        var k = x.Order;
        var d = x.Degree;
        if (k == 0 || d == 0) return x.With(y0.unsqueeze(0));
        var ys = new List<Tensor>(k + 1) { y0 };
        var gs = new List<Tensor>(k);
        for (var n = 1; n <= k; n++)
        {
            gs.Add(nextG(ys));
            ys.Add(Step(x, gs, n, d));
        }
        return x.With(stack(ys, 0));
    }

    /// <summary>
    /// <c>y₀</c> given, <c>n·yₙ = Σ_{k=1..n} k·x_k·g_{n−k}</c> for a known jet g (order ≥ K−1): the Cauchy product of
    /// <c>(k·x_k)_{k≥1}</c> and g, divided by n.
    /// </summary>
    private static Jet Integrate(Jet x, Tensor y0, Jet g)
    {
        var k = x.Order;
        if (k == 0 || x.Degree == 0) return x.With(y0.unsqueeze(0));
        var gs = Enumerable.Range(0, Math.Min(g.Degree, k - 1) + 1).Select(i => g.Leading.select(0, i)).ToList();
        var degree = Math.Min(k, x.Degree + gs.Count);
        var ys = new List<Tensor>(degree + 1) { y0 };
        for (var n = 1; n <= degree; n++) ys.Add(Step(x, gs, n, x.Degree));
        return x.With(stack(ys, 0));
    }

    private static (Jet Sin, Jet Cos) SinCos(Jet x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var s0 = x.Value.sin();
        var c0 = x.Value.cos();
        var k = x.Order;
        var d = x.Degree;
        if (k == 0 || d == 0) return (x.With(s0.unsqueeze(0)), x.With(c0.unsqueeze(0)));
        var ss = new List<Tensor>(k + 1) { s0 };
        var cs = new List<Tensor>(k + 1) { c0 };
        for (var n = 1; n <= k; n++)
        {
            var sn = Step(x, cs, n, d);
            cs.Add(Step(x, ss, n, d).neg_());
            ss.Add(sn);
        }
        return (x.With(stack(ss, 0)), x.With(stack(cs, 0)));
    }

    /// <summary>
    /// <c>yₙ = (1/n)·Σ_{k=1..min(n, D)} k·x_k·g_{n−k}</c> (terms with <c>n−k</c> beyond the listed g are zero); one allocation,
    /// the rest in place.
    /// </summary>
    private static Tensor Step(Jet x, IReadOnlyList<Tensor> gs, int n, int d)
    {
        Tensor? acc = null;
        for (var j = 1; j <= Math.Min(n, d); j++)
        {
            if (n - j >= gs.Count) continue;
            if (acc is null) acc = j == 1 ? x.Leading.select(0, 1) * gs[n - 1] : x.Leading.select(0, j) * gs[n - j] * (double)j;
            else acc.addcmul_(x.Leading.select(0, j), gs[n - j], j);
        }
        if (acc is null) return zeros_like(x.Value);
        return n == 1 ? acc : acc.div_(n);
    }

    /// <summary>
    /// <c>scale·(y²)_m = scale·Σ_{j=0..m} y_j·y_{m−j}</c> (m ≥ 1) from the listed coefficients, using the symmetry
    /// (half the products), one allocation and in-place accumulation.
    /// </summary>
    private static Tensor SelfProduct(IReadOnlyList<Tensor> ys, int m, double scale)
    {
        var half = (m + 1) / 2;                             // pairs j < m − j
        var acc = ys[0] * ys[m];
        for (var j = 1; j < half; j++) acc.addcmul_(ys[j], ys[m - j], 1);
        acc.mul_(2 * scale);
        if (m % 2 == 0) acc.addcmul_(ys[m / 2], ys[m / 2], scale);
        return acc;
    }

    /// <summary>
    /// Per element: true where x(t) &gt; 0 for small t &gt; 0, i.e. where the first nonzero coefficient is positive
    /// (false where all are zero).
    /// </summary>
    private static Tensor PositiveSide(Jet x)
    {
        var c0 = x.Value;
        var positive = c0.gt(0);
        if (x.Degree == 0) return positive;
        var zero = c0.eq(0);
        if (!zero.any().item<bool>()) return positive;     // the usual case: no coefficient c_0 is exactly 0
        var key = c0;
        for (var n = 1; n <= x.Degree; n++) key = where(key.eq(0), x.Leading.select(0, n), key);
        return key.gt(0);
    }

    /// <summary>Both operands' stored coefficients with their per-coefficient ranks made equal (leading axes of length 1), for broadcasting.</summary>
    private static (Tensor P, Tensor Q) Aligned(Jet a, Jet b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        SameOrder(a, b);
        var rank = Math.Max(a.Shape.Length, b.Shape.Length);
        return (AlignRank(a.Leading, rank), AlignRank(b.Leading, rank));
    }

    private static Tensor AlignRank(Tensor leading, int rank)
    {
        var r = (int)leading.dim() - 1;
        if (r >= rank) return leading;
        return leading.view([leading.shape[0], .. Enumerable.Repeat(1L, rank - r), .. leading.shape[1..]]);
    }

    private static Tensor Like(Tensor p, Tensor reference)
    {
        ArgumentNullException.ThrowIfNull(p);
        if (p.dtype == reference.dtype && p.device_type == reference.device_type && p.device_index == reference.device_index) return p;
        return p.to(reference.dtype, reference.device);
    }

    private static long Axis(Jet x, long dim)
    {
        var rank = x.Shape.Length;
        var d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"An axis of a [{Dims(x.Shape)}] operand is needed.");
        return d + 1;
    }

    private static void RequireRank(Jet x, int rank, string op)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Shape.Length != rank) throw new ArgumentException($"{op} needs operands of rank {rank}; got [{Dims(x.Shape)}].", nameof(x));
    }

    private static void SameOrder(Jet a, Jet b)
    {
        if (a.Order != b.Order) throw new ArgumentException($"Jets of orders {a.Order} and {b.Order} cannot be combined; truncate one first.", nameof(b));
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless numpy's matmul accepts operands of these shapes (checked here because a
    /// libtorch error inside TorchSharp's matmul terminates the process instead of raising).
    /// </summary>
    internal static void CheckMatMul(long[] a, long[] b)
    {
        var ok = a.Length > 0 && b.Length > 0;
        if (ok)
        {
            var inner = a[^1];
            var rows = b.Length == 1 ? b[0] : b[^2];
            ok = inner == rows;
            if (ok && a.Length > 2 && b.Length > 2)
            {
                try
                {
                    BroadcastShape(a[..^2], b[..^2]);
                }
                catch (ArgumentException)
                {
                    ok = false;
                }
            }
        }
        if (!ok) throw new ArgumentException($"MatMul of shapes [{Dims(a)}] and [{Dims(b)}] is not defined (inner sizes or batch axes differ).", nameof(b));
    }

    private static string Dims(long[] shape) => string.Join(",", shape);
}
