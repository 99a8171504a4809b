using System.Numerics;
using System.Runtime.InteropServices;

namespace LambdaService.Training.Methods;

/// <summary>The CRR objective of one batch and its parts, as computed by <see cref="MlpCrrKernel{T}"/>.</summary>
/// <param name="Loss">Mean cross-entropy of the batch's points.</param>
/// <param name="Penalty">The penalty P (before scaling).</param>
public readonly record struct CrrObjective(double Loss, double Penalty);

/// <summary>
/// CRR's whole objective and its exact parameter gradient for a multilayer perceptron, in one fused pass of managed code: the
/// Taylor-mode jet of every line through the network and the cross-entropy head (forward), then the reverse of every
/// recurrence by hand (backward). No tensor library is involved, so the cost is the arithmetic — no per-operation dispatch,
/// no autograd graph — which on networks of CRR's size (tens of units, batches of tens) is a small fraction of what the same
/// computation costs as a few hundred small libtorch operations and their autograd nodes.
/// </summary>
/// <remarks>
/// <para>
/// The network: <c>a⁰ = x</c>, <c>hˡ = Wˡ aˡ + bˡ</c>, <c>aˡ⁺¹ = φ(hˡ)</c> for the hidden layers, logits <c>z = h^{L−1}</c>
/// (torch.nn.Linear layout, <c>W</c> of shape <c>[out, in]</c>, row-major). φ is tanh, sigmoid, softplus or ReLU. On B points with
/// D directions each (lines <c>r = p·D + d</c>, point-major, as <see cref="CrrMethod.DrawDirections"/> draws them) the kernel
/// computes, with <c>ℓ_r(t) = CE(f(x_p + t v_r), y_p) = Σ_k ℓ_{r,k} tᵏ</c> truncated at order K = nmax:
/// <code>
/// J = (1/B) Σ_p ℓ_{pD,0} + scale · Σ_{n=nmin}^{nmax} (1/(B·D)) Σ_r (n! ℓ_{r,n})²
/// </code>
/// — exactly <see cref="CrrMethod"/>'s objective, whose loss is read from the order-0 coefficient of each point's first line.
/// </para>
/// <para>
/// Forward rules (Griewank &amp; Walther, <i>Evaluating Derivatives</i>, §13.2), per element, coefficients 0..K:
/// linear <c>hₖ = W aₖ (+ b for k = 0)</c>; for <c>y = φ(x)</c> with <c>y' = g·x'</c>, <c>k·yₖ = Σ_{j=1..k} j·x_j·g_{k−j}</c>, where
/// <c>g = 1 − y²</c> (tanh), <c>g = y − y²</c> (sigmoid; <c>g_k = c₁yₖ + c₂Σ_j y_j y_{k−j}</c> for k ≥ 1), <c>g = σ(x)</c> as a sigmoid jet
/// (softplus), and <c>yₖ = xₖ</c> on the positive side, 0 elsewhere (ReLU, the sign rule of <c>JetOps.Relu</c>). The head, with
/// <c>m = max_c z_{c,0}</c> held constant: <c>e_c = exp(z_c − m)</c> (<c>k·e_{c,k} = Σ_j j z_{c,j} e_{c,k−j}</c>), <c>S = Σ_c e_c</c>,
/// <c>l = log S</c> (<c>l₀ = log S₀</c>, <c>lₖ = (Sₖ − (1/k)Σ_{j=1..k−1} j l_j S_{k−j}) / S₀</c>), <c>ℓ = l + m − z_y</c>.
/// </para>
/// <para>
/// Backward: the adjoint of every statement above, in reverse order (each <c>u += c·a·b</c> gives <c>ā += c·ū·b</c>,
/// <c>b̄ += c·ū·a</c>); the linear layer's <c>W̄ = Σ_k h̄ₖ aₖᵀ</c>, <c>b̄ = Σ_r h̄₀</c>, <c>āₖ = Wᵀ h̄ₖ</c>. Coefficients that are zero by
/// construction (orders ≥ 2 of the input line, all orders ≥ 2 behind ReLU layers) are skipped in both directions.
/// Elementwise recurrences run on whole coefficient rows with <see cref="Vector{T}"/>; the matrix products of all coefficients of a layer
/// are one product each (<c>H = A Wᵀ</c>, <c>Ā = H̄ W</c>, <c>W̄ = H̄ᵀ A</c>), register-blocked four rows at a time.
/// </para>
/// <para>Instances keep their buffers between calls (sized for the last batch); an instance is not thread-safe.</para>
/// </remarks>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>: the precision of every operation.</typeparam>
public sealed class MlpCrrKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int[] widths;
    private readonly string activation;
    private int lines = -1, order = -1;
    private T[][] post = [], pre = [], aux = [], aux2 = [], gPost = [], gPre = [], gAux = [], gAux2 = [];
    private T[] head = [];
    private readonly T[][] transposed;

    /// <summary>Creates a kernel for an MLP with these widths (input first) and activation.</summary>
    /// <param name="widths">Input width, hidden widths…, number of classes (at least two numbers, all positive).</param>
    /// <param name="activation"><c>tanh</c>, <c>sigmoid</c>, <c>softplus</c> or <c>relu</c> (see <see cref="Supports"/>).</param>
    public MlpCrrKernel(IReadOnlyList<int> widths, string activation)
    {
        ArgumentNullException.ThrowIfNull(widths);
        if (widths.Count < 2 || widths.Any(w => w < 1)) throw new ArgumentException("Give at least an input and an output width, all positive.", nameof(widths));
        if (!Supports(activation)) throw new ArgumentException($"The fused kernel has no rule for activation '{activation}'; it takes tanh, sigmoid, softplus or relu.", nameof(activation));
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double)) throw new NotSupportedException("The kernel computes in float or double.");
        this.widths = [.. widths];
        this.activation = activation;
        transposed = [.. Enumerable.Range(0, widths.Count - 1).Select(l => new T[widths[l] * widths[l + 1]])];
    }

    /// <summary>Whether the kernel has a rule for <paramref name="activation"/>.</summary>
    public static bool Supports(string? activation) => activation is "tanh" or "sigmoid" or "softplus" or "relu";

    /// <summary>
    /// Evaluates <c>J</c> (see the remarks) and writes <c>∂J/∂Wˡ</c>, <c>∂J/∂bˡ</c> into <paramref name="weightGradients"/> and
    /// <paramref name="biasGradients"/> (overwritten, same layout as the parameters).
    /// </summary>
    /// <param name="weights">Per layer <c>Wˡ</c>, <c>[out, in]</c> row-major.</param>
    /// <param name="biases">Per layer <c>bˡ</c>, <c>[out]</c>.</param>
    /// <param name="x">The B points, <c>[B, in]</c> row-major.</param>
    /// <param name="y">The B labels, each in <c>0..classes−1</c>.</param>
    /// <param name="v">The B·D directions, <c>[B·D, in]</c>, point-major.</param>
    /// <param name="directions">D ≥ 1.</param>
    /// <param name="minOrder">nmin ≥ 1.</param>
    /// <param name="maxOrder">nmax ≥ nmin (the jet's order K).</param>
    /// <param name="scale">The penalty's weight (finite, ≥ 0).</param>
    /// <param name="weightGradients">Receives <c>∂J/∂Wˡ</c>.</param>
    /// <param name="biasGradients">Receives <c>∂J/∂bˡ</c>.</param>
    /// <param name="penalised">
    /// Empty (default): every point is penalised. Else one flag per point: the penalty averages over the lines of the flagged points only,
    /// <c>(1/(B_p·D)) Σ_{p flagged} Σ_d (n! ℓ_{pD+d,n})²</c> (0 when none is), while the loss still averages over all B points; the
    /// directions of unflagged points are not used.
    /// </param>
    /// <param name="start">
    /// Where the lines start (paper §7, CRR at a layer): 0 (default) the input, <c>x_p + t·v</c>; <c>2i − 1</c> the affine map of hidden layer i
    /// (<c>fc_i</c>) and <c>2i</c> its activation (<c>act_i</c>), <c>h(x_p) + t·v</c> with v in that layer's space (<paramref name="v"/> is then
    /// <c>[B·D, width_i]</c>). The layers before it carry the value alone, and the gradient flows through them.
    /// </param>
    public CrrObjective Evaluate(IReadOnlyList<T[]> weights, IReadOnlyList<T[]> biases, ReadOnlySpan<T> x, ReadOnlySpan<long> y, ReadOnlySpan<T> v,
        int directions, int minOrder, int maxOrder, double scale, IReadOnlyList<T[]> weightGradients, IReadOnlyList<T[]> biasGradients,
        ReadOnlySpan<bool> penalised = default, int start = 0)
    {
        var layers = widths.Length - 1;
        Check(weights, biases, weightGradients, biasGradients, layers);
        if (minOrder < 1 || maxOrder < minOrder) throw new ArgumentOutOfRangeException(nameof(maxOrder), $"Orders {minOrder}-{maxOrder} are not a range within 1..∞.");
        ArgumentOutOfRangeException.ThrowIfLessThan(directions, 1);
        if (!(scale >= 0) || !double.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "Scale must be finite and ≥ 0.");
        var inWidth = widths[0];
        var points = y.Length;
        if (points < 1 || x.Length != points * inWidth) throw new ArgumentException($"x holds {x.Length} values; {points} points of width {inWidth} need {points * inWidth}.", nameof(x));
        var r = points * directions;
        if (start < 0 || start > 2 * (layers - 1)) throw new ArgumentOutOfRangeException(nameof(start), start, $"Lines start at stage 0 (the input) to {2 * (layers - 1)} (the last hidden activation).");
        var startWidth = widths[(start + 1) / 2];
        if (v.Length != r * startWidth) throw new ArgumentException($"v holds {v.Length} values; {r} lines of width {startWidth} need {r * startWidth}.", nameof(v));
        if (!penalised.IsEmpty && penalised.Length != points) throw new ArgumentException($"Give one flag per point ({points}), not {penalised.Length}.", nameof(penalised));
        var penalisedLines = penalised.IsEmpty ? r : penalised.Count(true) * directions;
        var classes = widths[^1];
        foreach (var label in y)
        {
            if (label < 0 || label >= classes) throw new ArgumentOutOfRangeException(nameof(y), label, $"Labels must lie in 0..{classes - 1}.");
        }
        Allocate(r, maxOrder);
        var k = maxOrder;

        // Coefficient 0 of the input is the point (repeated for its D directions); the direction becomes coefficient 1 at `start`.
        var a0 = post[0];
        Array.Clear(a0);
        for (var line = 0; line < r; line++)
        {
            x.Slice(line / directions * inWidth, inWidth).CopyTo(a0.AsSpan(line * inWidth, inWidth));
        }
        if (start == 0) v.CopyTo(a0.AsSpan(r * inWidth, r * inWidth));
        var degrees = new int[layers + 1];      // the highest coefficient of post[l] that can be nonzero
        var preDegrees = new int[layers];       // the same for pre[l]
        degrees[0] = start == 0 ? 1 : 0;
        for (var l = 0; l < layers; l++)
        {
            Transpose(weights[l], transposed[l], widths[l + 1], widths[l]);
            LinearForward(post[l], transposed[l], biases[l], pre[l], r, widths[l], widths[l + 1], degrees[l]);
            preDegrees[l] = degrees[l];
            if (start == 2 * l + 1)
            {
                v.CopyTo(pre[l].AsSpan(r * widths[l + 1], r * widths[l + 1]));
                preDegrees[l] = 1;
            }
            if (l + 1 < layers)
            {
                degrees[l + 1] = activation == "relu" || preDegrees[l] == 0 ? preDegrees[l] : k;
                ActivationForward(l, r * widths[l + 1], preDegrees[l]);
                if (start == 2 * l + 2)
                {
                    v.CopyTo(post[l + 1].AsSpan(r * widths[l + 1], r * widths[l + 1]));
                    degrees[l + 1] = 1;
                }
            }
        }

        // The head, forward and backward line by line: a line's adjoints depend on its own coefficients only.
        var logits = pre[layers - 1];
        var gLogits = gPre[layers - 1];
        Array.Clear(gLogits);
        var factorials = new double[k + 1];
        factorials[0] = 1;
        for (var n = 1; n <= k; n++) factorials[n] = factorials[n - 1] * n;
        double lossSum = 0, penaltySum = 0;
        var gl = new T[k + 1];
        var lk = new T[k + 1];
        for (var line = 0; line < r; line++)
        {
            HeadForward(logits, line, r, classes, (int)y[line / directions], k, lk);
            Array.Clear(gl);
            if (line % directions == 0)
            {
                lossSum += double.CreateChecked(lk[0]);
                gl[0] = T.CreateChecked(1.0 / points);
            }
            for (var n = minOrder; n <= maxOrder && (penalised.IsEmpty || penalised[line / directions]); n++)
            {
                var d = double.CreateChecked(lk[n]) * factorials[n];
                penaltySum += d * d;
                gl[n] = T.CreateChecked(scale * 2 * factorials[n] * d / penalisedLines);
            }
            HeadBackward(logits, gLogits, line, r, classes, (int)y[line / directions], k, gl);
        }

        // Backward through the layers.
        for (var l = layers - 1; l >= 0; l--)
        {
            var gA = l > 0 ? gPost[l] : null;
            LinearBackward(post[l], weights[l], gPre[l], gA, weightGradients[l], biasGradients[l], r, widths[l], widths[l + 1], degrees[l]);
            // A direction entered at `start` is a constant: the reverse passes read only the coefficients each operation produced.
            if (l > 0) ActivationBackward(l - 1, r * widths[l], preDegrees[l - 1]);
        }
        return new CrrObjective(lossSum / points, penalisedLines == 0 ? 0 : penaltySum / penalisedLines);
    }

    private void Check(IReadOnlyList<T[]> weights, IReadOnlyList<T[]> biases, IReadOnlyList<T[]> weightGradients, IReadOnlyList<T[]> biasGradients, int layers)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        ArgumentNullException.ThrowIfNull(weightGradients);
        ArgumentNullException.ThrowIfNull(biasGradients);
        if (weights.Count != layers || biases.Count != layers || weightGradients.Count != layers || biasGradients.Count != layers)
        {
            throw new ArgumentException($"Give {layers} weight matrices, bias vectors and gradient buffers of each.", nameof(weights));
        }
        for (var l = 0; l < layers; l++)
        {
            var w = widths[l] * widths[l + 1];
            if (weights[l].Length != w || weightGradients[l].Length != w) throw new ArgumentException($"Layer {l}'s weights need {w} values ([{widths[l + 1]}, {widths[l]}]).", nameof(weights));
            if (biases[l].Length != widths[l + 1] || biasGradients[l].Length != widths[l + 1]) throw new ArgumentException($"Layer {l}'s bias needs {widths[l + 1]} values.", nameof(biases));
        }
    }

    private void Allocate(int r, int k)
    {
        if (r == lines && k == order) return;
        var layers = widths.Length - 1;
        T[] Block(int width) => new T[(k + 1) * r * width];
        post = [.. Enumerable.Range(0, layers).Select(l => Block(widths[l]))];
        gPost = [.. Enumerable.Range(0, layers).Select(l => Block(widths[l]))];
        pre = [.. Enumerable.Range(0, layers).Select(l => Block(widths[l + 1]))];
        gPre = [.. Enumerable.Range(0, layers).Select(l => Block(widths[l + 1]))];
        // aux: g of the activation's recurrence (tanh, sigmoid) or the sigmoid jet σ (softplus); aux2: σ's own g (softplus).
        aux = [.. Enumerable.Range(0, layers - 1).Select(l => Block(widths[l + 1]))];
        gAux = [.. Enumerable.Range(0, layers - 1).Select(l => Block(widths[l + 1]))];
        aux2 = activation == "softplus" ? [.. Enumerable.Range(0, layers - 1).Select(l => Block(widths[l + 1]))] : [];
        gAux2 = activation == "softplus" ? [.. Enumerable.Range(0, layers - 1).Select(l => Block(widths[l + 1]))] : [];
        head = new T[2 * (widths[^1] + 1) * (k + 1) + 2 * (k + 1)];
        lines = r;
        order = k;
    }

    // ───────────────────────────── linear layers ─────────────────────────────

    /// <summary><c>hₖ = W aₖ (+ b for k = 0)</c> for k ≤ <paramref name="degree"/>, one product <c>H = A Wᵀ</c> over those rows; higher coefficients are zero.</summary>
    private static void LinearForward(T[] a, T[] wT, T[] b, T[] h, int r, int inWidth, int outWidth, int degree)
    {
        Array.Clear(h);
        for (var line = 0; line < r; line++) b.AsSpan().CopyTo(h.AsSpan(line * outWidth, outWidth));
        var rows = (degree + 1) * r;
        MatMulAdd(h.AsSpan(0, rows * outWidth), a.AsSpan(0, rows * inWidth), inWidth, 1, wT, rows, inWidth, outWidth);
    }

    /// <summary><c>W̄ = Σ_k h̄ₖ aₖᵀ</c>, <c>b̄ = Σ h̄₀</c> and, when wanted, <c>āₖ = Wᵀ h̄ₖ</c> (k ≤ <paramref name="degree"/>; zero above).</summary>
    private static void LinearBackward(T[] a, T[] w, T[] gH, T[]? gA, T[] gW, T[] gB, int r, int inWidth, int outWidth, int degree)
    {
        var rows = (degree + 1) * r;
        Array.Clear(gB);
        for (var line = 0; line < r; line++) Axpy(gB, T.One, gH.AsSpan(line * outWidth, outWidth));
        Array.Clear(gW);
        MatMulAdd(gW, gH.AsSpan(0, rows * outWidth), 1, outWidth, a.AsSpan(0, rows * inWidth), outWidth, rows, inWidth);
        if (gA is null) return;
        Array.Clear(gA);
        MatMulAdd(gA.AsSpan(0, rows * inWidth), gH.AsSpan(0, rows * outWidth), outWidth, 1, w, rows, outWidth, inWidth);
    }

    /// <summary><c>t [columns, rows] = mᵀ</c> for row-major <c>m [rows, columns]</c>.</summary>
    private static void Transpose(T[] m, T[] t, int rows, int columns)
    {
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < columns; j++) t[j * rows + i] = m[i * columns + j];
        }
    }

    /// <summary>
    /// <c>C += X·Y</c> for row-major <c>C [m, n]</c> and <c>Y [p, n]</c>, with <c>X[i, q] = x[i·xRow + q·xColumn]</c> (so Xᵀ is read without a copy):
    /// four rows of C at a time, each <see cref="Vector{T}"/> of a row kept in a register over the whole sum, every load of Y used four times.
    /// </summary>
    private static void MatMulAdd(Span<T> c, ReadOnlySpan<T> x, int xRow, int xColumn, ReadOnlySpan<T> y, int m, int p, int n)
    {
        if (m == 0 || n == 0 || p == 0) return;
        // The loads below skip bounds checks: every index they use is checked here once.
        if (c.Length < m * n || y.Length < p * n || x.Length <= (m - 1) * xRow + (p - 1) * xColumn)
        {
            throw new ArgumentException($"MatMulAdd: [{m}, {n}] += X[{m}, {p}]·Y[{p}, {n}] does not fit the buffers.", nameof(c));
        }
        var width = Vector<T>.Count;
        var vectorised = Vector.IsHardwareAccelerated ? n / width * width : 0;
        ref var cRef = ref MemoryMarshal.GetReference(c);
        ref var yRef = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i + 4 <= m; i += 4)
        {
            var r0 = i * n;
            for (var j = 0; j < vectorised; j += width)
            {
                var c0 = Vector.LoadUnsafe(ref cRef, (nuint)(r0 + j));
                var c1 = Vector.LoadUnsafe(ref cRef, (nuint)(r0 + n + j));
                var c2 = Vector.LoadUnsafe(ref cRef, (nuint)(r0 + 2 * n + j));
                var c3 = Vector.LoadUnsafe(ref cRef, (nuint)(r0 + 3 * n + j));
                var xq = i * xRow;
                for (var q = 0; q < p; q++, xq += xColumn)
                {
                    var yq = Vector.LoadUnsafe(ref yRef, (nuint)(q * n + j));
                    c0 = MultiplyAdd(new Vector<T>(x[xq]), yq, c0);
                    c1 = MultiplyAdd(new Vector<T>(x[xq + xRow]), yq, c1);
                    c2 = MultiplyAdd(new Vector<T>(x[xq + 2 * xRow]), yq, c2);
                    c3 = MultiplyAdd(new Vector<T>(x[xq + 3 * xRow]), yq, c3);
                }
                c0.StoreUnsafe(ref cRef, (nuint)(r0 + j));
                c1.StoreUnsafe(ref cRef, (nuint)(r0 + n + j));
                c2.StoreUnsafe(ref cRef, (nuint)(r0 + 2 * n + j));
                c3.StoreUnsafe(ref cRef, (nuint)(r0 + 3 * n + j));
            }
            for (var j = vectorised; j < n; j++)
            {
                for (var row = 0; row < 4; row++)
                {
                    var sum = c[r0 + row * n + j];
                    for (var q = 0; q < p; q++) sum += x[(i + row) * xRow + q * xColumn] * y[q * n + j];
                    c[r0 + row * n + j] = sum;
                }
            }
        }
        for (; i < m; i++)
        {
            var cRow = c.Slice(i * n, n);
            for (var q = 0; q < p; q++) Axpy(cRow, x[i * xRow + q * xColumn], y.Slice(q * n, n));
        }
    }

    /// <summary><c>a·b + c</c>, fused where the processor has FMA.</summary>
    private static Vector<T> MultiplyAdd(Vector<T> a, Vector<T> b, Vector<T> c)
    {
        if (typeof(T) == typeof(float)) return Vector.As<float, T>(Vector.MultiplyAddEstimate(Vector.As<T, float>(a), Vector.As<T, float>(b), Vector.As<T, float>(c)));
        if (typeof(T) == typeof(double)) return Vector.As<double, T>(Vector.MultiplyAddEstimate(Vector.As<T, double>(a), Vector.As<T, double>(b), Vector.As<T, double>(c)));
        return a * b + c;
    }

    // ───────────────────────────── activations ─────────────────────────────

    /// <summary>Hidden activation <paramref name="layer"/>: <c>post[layer + 1] = φ(pre[layer])</c> on <paramref name="n"/> elements per coefficient.</summary>
    private void ActivationForward(int layer, int n, int degree)
    {
        var xs = pre[layer];
        var ys = post[layer + 1];
        var k = degree == 0 ? 0 : order;        // before the lines' start only the value passes
        Array.Clear(ys, (k + 1) * n, (order - k) * n);
        switch (activation)
        {
            case "relu":
                Array.Clear(ys);
                for (var e = 0; e < n; e++)
                {
                    if (!PositiveSide(xs, e, n, degree)) continue;
                    for (var c = 0; c <= degree; c++) ys[c * n + e] = xs[c * n + e];
                }
                break;
            case "tanh":
                PolynomialRecurrence(xs, ys, aux[layer], n, k, T.One, T.Zero, -T.One, T.Tanh);
                break;
            case "sigmoid":
                PolynomialRecurrence(xs, ys, aux[layer], n, k, T.Zero, T.One, -T.One, Sigmoid);
                break;
            default:
                // softplus: y' = σ(x)·x'. aux = σ's jet (orders 0..K−1), aux2 = σ's g.
                PolynomialRecurrence(xs, aux[layer], aux2[layer], n, k - 1, T.Zero, T.One, -T.One, Sigmoid);
                var y0 = ys.AsSpan(0, n);
                for (var e = 0; e < n; e++) y0[e] = Softplus(xs[e]);
                Integrate(xs, ys, aux[layer], n, k);
                break;
        }
    }

    /// <summary>The reverse of <see cref="ActivationForward"/>: <c>gPre[layer]</c> from <c>gPost[layer + 1]</c>.</summary>
    private void ActivationBackward(int layer, int n, int degree)
    {
        var xs = pre[layer];
        var gX = gPre[layer];
        var gY = gPost[layer + 1];
        var k = degree == 0 ? 0 : order;
        Array.Clear(gX);
        switch (activation)
        {
            case "relu":
                for (var e = 0; e < n; e++)
                {
                    if (!PositiveSide(xs, e, n, degree)) continue;
                    for (var c = 0; c <= degree; c++) gX[c * n + e] = gY[c * n + e];
                }
                break;
            case "tanh":
                PolynomialRecurrenceBackward(xs, post[layer + 1], aux[layer], gX, gY, gAux[layer], n, k, T.Zero, -T.One);
                break;
            case "sigmoid":
                PolynomialRecurrenceBackward(xs, post[layer + 1], aux[layer], gX, gY, gAux[layer], n, k, T.One, -T.One);
                break;
            default:
                var gS = gAux2[layer];      // adjoint of σ's jet (aux)
                Array.Clear(gS);
                IntegrateBackward(xs, aux[layer], gX, gY, gS, n, k);
                var y0Bar = gY.AsSpan(0, n);
                var s0 = aux[layer].AsSpan(0, n);
                MulAdd(gX.AsSpan(0, n), T.One, y0Bar, s0);                   // softplus'(x₀) = σ(x₀)
                // σ's jet to order K−1 from the same x; its g lives in aux2 (forward) and needs a scratch adjoint.
                var scratch = gAux[layer];
                PolynomialRecurrenceBackward(xs, aux[layer], aux2[layer], gX, gS, scratch, n, k - 1, T.One, -T.One);
                break;
        }
    }

    /// <summary>
    /// <c>y₀ = φ(x₀)</c>, then for k = 1..K: <c>k·yₖ = Σ_{j=1..k} j·x_j·g_{k−j}</c> and <c>gₖ = c₁yₖ + c₂Σ_{j=0..k} y_j y_{k−j}</c>
    /// (<c>g₀ = c₀ + c₁y₀ + c₂y₀²</c>), which is φ' along the line for tanh (1, 0, −1) and sigmoid (0, 1, −1).
    /// </summary>
    private static void PolynomialRecurrence(T[] xs, T[] ys, T[] gs, int n, int k, T c0, T c1, T c2, Func<T, T> phi)
    {
        var y0 = ys.AsSpan(0, n);
        var g0 = gs.AsSpan(0, n);
        for (var e = 0; e < n; e++)
        {
            var y = phi(xs[e]);
            y0[e] = y;
            g0[e] = c0 + (c1 + c2 * y) * y;
        }
        for (var c = 1; c <= k; c++)
        {
            var yc = IntegrateOrder(xs, ys, gs, n, c);
            var gc = gs.AsSpan(c * n, n);
            Scale(gc, c1, yc);
            for (var j = 0; j <= c; j++) MulAdd(gc, c2, ys.AsSpan(j * n, n), ys.AsSpan((c - j) * n, n));
        }
    }

    /// <summary>
    /// The adjoint of <see cref="PolynomialRecurrence"/> with the same <paramref name="c1"/>, <paramref name="c2"/> (c₀ has no adjoint):
    /// adds to <paramref name="gX"/> given <paramref name="gY"/>, which it consumes; <paramref name="gG"/> is scratch.
    /// </summary>
    private static void PolynomialRecurrenceBackward(T[] xs, T[] ys, T[] gs, T[] gX, T[] gY, T[] gG, int n, int k, T c1, T c2)
    {
        Array.Clear(gG, 0, (k + 1) * n);
        for (var c = k; c >= 1; c--)
        {
            var gGc = gG.AsSpan(c * n, n);
            // gₖ = c₁yₖ + c₂Σ_j y_j y_{k−j}
            if (c1 != T.Zero) Axpy(gY.AsSpan(c * n, n), c1, gGc);
            for (var j = 0; j <= c; j++)
            {
                MulAdd(gY.AsSpan(j * n, n), c2, gGc, ys.AsSpan((c - j) * n, n));
                MulAdd(gY.AsSpan((c - j) * n, n), c2, gGc, ys.AsSpan(j * n, n));
            }
            // yₖ = Σ_j (j/k)·x_j·g_{k−j}
            IntegrateOrderBackward(xs, gs, gX, gY, gG, n, c);
        }
        // g₀ = c₀ + c₁y₀ + c₂y₀², y₀ = φ(x₀) with φ'(x₀) = g₀.
        var y0 = ys.AsSpan(0, n);
        var gy0 = gY.AsSpan(0, n);
        var gg0 = gG.AsSpan(0, n);
        var g0 = gs.AsSpan(0, n);
        var gx0 = gX.AsSpan(0, n);
        var two = T.CreateChecked(2);
        for (var e = 0; e < n; e++)
        {
            var total = gy0[e] + gg0[e] * (c1 + two * c2 * y0[e]);
            gx0[e] += total * g0[e];
        }
    }

    /// <summary><c>k·yₖ = Σ_{j=1..k} j·x_j·s_{k−j}</c> for k = 1..K (y₀ given): the rule for <c>y' = s·x'</c>.</summary>
    private static void Integrate(T[] xs, T[] ys, T[] ss, int n, int k)
    {
        for (var c = 1; c <= k; c++) IntegrateOrder(xs, ys, ss, n, c);
    }

    /// <summary>One order of <see cref="Integrate"/>: <c>y_c = Σ_{j=1..c} (j/c)·x_j·s_{c−j}</c>, returned as a span of <paramref name="ys"/>.</summary>
    private static Span<T> IntegrateOrder(T[] xs, T[] ys, T[] ss, int n, int c)
    {
        var yc = ys.AsSpan(c * n, n);
        yc.Clear();
        for (var j = 1; j <= c; j++) MulAdd(yc, T.CreateChecked((double)j / c), xs.AsSpan(j * n, n), ss.AsSpan((c - j) * n, n));
        return yc;
    }

    /// <summary>The adjoint of <see cref="Integrate"/>: adds to <paramref name="gX"/> and <paramref name="gS"/>.</summary>
    private static void IntegrateBackward(T[] xs, T[] ss, T[] gX, T[] gY, T[] gS, int n, int k)
    {
        for (var c = k; c >= 1; c--) IntegrateOrderBackward(xs, ss, gX, gY, gS, n, c);
    }

    /// <summary>The adjoint of <see cref="IntegrateOrder"/> for order <paramref name="c"/>: adds to <paramref name="gX"/> and <paramref name="gS"/>.</summary>
    private static void IntegrateOrderBackward(T[] xs, T[] ss, T[] gX, T[] gY, T[] gS, int n, int c)
    {
        var gYc = gY.AsSpan(c * n, n);
        for (var j = 1; j <= c; j++)
        {
            var w = T.CreateChecked((double)j / c);
            MulAdd(gX.AsSpan(j * n, n), w, gYc, ss.AsSpan((c - j) * n, n));
            MulAdd(gS.AsSpan((c - j) * n, n), w, gYc, xs.AsSpan(j * n, n));
        }
    }

    /// <summary>The sign rule of <c>JetOps.Relu</c>: the first nonzero coefficient of element <paramref name="e"/> is positive.</summary>
    private static bool PositiveSide(T[] xs, int e, int n, int degree)
    {
        for (var c = 0; c <= degree; c++)
        {
            var value = xs[c * n + e];
            if (value != T.Zero) return value > T.Zero;
        }
        return false;
    }

    private static T Sigmoid(T x)
    {
        if (x >= T.Zero) return T.One / (T.One + T.Exp(-x));
        var e = T.Exp(x);
        return e / (T.One + e);
    }

    /// <summary>torch's softplus (β = 1, threshold 20): x itself above 20.</summary>
    private static T Softplus(T x) => x > T.CreateChecked(20) ? x : T.Max(x, T.Zero) + T.LogP1(T.Exp(-T.Abs(x)));

    // ───────────────────────────── the cross-entropy head ─────────────────────────────

    /// <summary>The coefficients <c>ℓ₀..ℓ_K</c> of one line's loss into <paramref name="loss"/>; keeps e, S, l in the head buffer.</summary>
    private void HeadForward(T[] logits, int line, int r, int classes, int label, int k, T[] loss)
    {
        var span = head.AsSpan();
        var e = span[..(classes * (k + 1))];                     // e[c·(K+1) + j]
        var s = span.Slice(2 * classes * (k + 1), k + 1);
        var l = span.Slice(2 * classes * (k + 1) + (k + 1), k + 1);
        T Z(int c, int j) => logits[(j * r + line) * classes + c];
        var m = Z(0, 0);
        for (var c = 1; c < classes; c++) m = T.Max(m, Z(c, 0));
        s.Clear();
        for (var c = 0; c < classes; c++)
        {
            var ec = e.Slice(c * (k + 1), k + 1);
            ec[0] = T.Exp(Z(c, 0) - m);
            for (var j = 1; j <= k; j++)
            {
                var sum = T.Zero;
                for (var i = 1; i <= j; i++) sum += T.CreateChecked(i) * Z(c, i) * ec[j - i];
                ec[j] = sum / T.CreateChecked(j);
            }
            for (var j = 0; j <= k; j++) s[j] += ec[j];
        }
        l[0] = T.Log(s[0]);
        for (var j = 1; j <= k; j++)
        {
            var sum = T.Zero;
            for (var i = 1; i < j; i++) sum += T.CreateChecked(i) * l[i] * s[j - i];
            l[j] = (s[j] - sum / T.CreateChecked(j)) / s[0];
        }
        for (var j = 0; j <= k; j++) loss[j] = l[j] - Z(label, j) + (j == 0 ? m : T.Zero);
    }

    /// <summary>The adjoint of <see cref="HeadForward"/> (run right after it for the same line): adds <c>∂J/∂z</c> to <paramref name="gLogits"/>.</summary>
    private void HeadBackward(T[] logits, T[] gLogits, int line, int r, int classes, int label, int k, T[] gLoss)
    {
        var span = head.AsSpan();
        var e = span[..(classes * (k + 1))];
        var ge = span.Slice(classes * (k + 1), classes * (k + 1));
        var s = span.Slice(2 * classes * (k + 1), k + 1);
        var l = span.Slice(2 * classes * (k + 1) + (k + 1), k + 1);
        Span<T> gl = stackalloc T[k + 1];
        Span<T> gs = stackalloc T[k + 1];
        gLoss.AsSpan().CopyTo(gl);
        gs.Clear();
        int Index(int c, int j) => (j * r + line) * classes + c;
        for (var j = 0; j <= k; j++) gLogits[Index(label, j)] -= gl[j];
        for (var j = k; j >= 1; j--)
        {
            var q = gl[j] / s[0];
            gs[j] += q;
            for (var i = 1; i < j; i++)
            {
                var w = T.CreateChecked((double)i / j);
                gl[i] -= q * w * s[j - i];
                gs[j - i] -= q * w * l[i];
            }
            gs[0] -= q * l[j];
        }
        gs[0] += gl[0] / s[0];
        for (var c = 0; c < classes; c++)
        {
            var ec = e.Slice(c * (k + 1), k + 1);
            var gec = ge.Slice(c * (k + 1), k + 1);
            gs.CopyTo(gec);
            for (var j = k; j >= 1; j--)
            {
                for (var i = 1; i <= j; i++)
                {
                    var w = T.CreateChecked((double)i / j) * gec[j];
                    gLogits[Index(c, i)] += w * ec[j - i];
                    gec[j - i] += w * logits[Index(c, i)];
                }
            }
            gLogits[Index(c, 0)] += gec[0] * ec[0];
        }
    }

    // ───────────────────────────── vector helpers ─────────────────────────────

    /// <summary><c>y += α·x</c>.</summary>
    private static void Axpy(Span<T> y, T alpha, ReadOnlySpan<T> x)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && y.Length >= Vector<T>.Count)
        {
            var vy = MemoryMarshal.Cast<T, Vector<T>>(y);
            var vx = MemoryMarshal.Cast<T, Vector<T>>(x);
            var va = new Vector<T>(alpha);
            for (var j = 0; j < vy.Length; j++) vy[j] += va * vx[j];
            i = vy.Length * Vector<T>.Count;
        }
        for (; i < y.Length; i++) y[i] += alpha * x[i];
    }

    /// <summary><c>y = α·x</c>.</summary>
    private static void Scale(Span<T> y, T alpha, ReadOnlySpan<T> x)
    {
        for (var i = 0; i < y.Length; i++) y[i] = alpha * x[i];
    }

    /// <summary><c>y += α·a⊙b</c>.</summary>
    private static void MulAdd(Span<T> y, T alpha, ReadOnlySpan<T> a, ReadOnlySpan<T> b)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && y.Length >= Vector<T>.Count)
        {
            var vy = MemoryMarshal.Cast<T, Vector<T>>(y);
            var va = MemoryMarshal.Cast<T, Vector<T>>(a);
            var vb = MemoryMarshal.Cast<T, Vector<T>>(b);
            var al = new Vector<T>(alpha);
            for (var j = 0; j < vy.Length; j++) vy[j] += al * va[j] * vb[j];
            i = vy.Length * Vector<T>.Count;
        }
        for (; i < y.Length; i++) y[i] += alpha * a[i] * b[i];
    }
}
