using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

/// <summary>
/// A truncated Taylor series in one scalar t ("jet") of a tensor-valued function u(t), stored as one tensor of
/// normalised coefficients: <c>u(t) = Σ_{n=0}^{K} c_n tⁿ + O(t^{K+1})</c> with <c>c_n = (1/n!)·dⁿu/dtⁿ(0)</c>.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Coefficients"/> has shape <c>[K+1, B, …]</c>: axis 0 is the order n, the rest is the shape of u
/// (for a network's activations, axis 1 is the batch of lines <c>x_b + t v_b</c>). Every rule of
/// <see cref="JetOps"/> works on whole coefficient tensors with ordinary TorchSharp operations, so a jet stays
/// in the autograd graph: gradients of any function of the coefficients reach whatever produced them
/// (a network's parameters, <c>x</c>, <c>v</c>).
/// </para>
/// <para>
/// Known-zero tail: a jet keeps only its leading coefficients <c>c_0..c_D</c> (<see cref="Leading"/>,
/// <see cref="Degree"/> D ≤ K); <c>c_{D+1}..c_K</c> are exactly zero. A line <c>x + t v</c> has D = 1 and
/// linear layers, ReLU masks and max-pooling keep D, so a ReLU network propagates two coefficients whatever K
/// is; nonlinear smooth rules raise D to K. <see cref="Coefficients"/> always returns all K+1 coefficients.
/// </para>
/// </remarks>
public sealed class Jet
{
    /// <summary>A jet of order K = <c>coefficients.shape[0] − 1</c> holding every coefficient.</summary>
    /// <param name="coefficients"><c>[K+1, …]</c>, floating point.</param>
    public Jet(Tensor coefficients)
        : this(coefficients, CheckedOrder(coefficients))
    {
    }

    /// <summary>
    /// A jet of order <paramref name="order"/> whose coefficients above <c>leading.shape[0] − 1</c> are zero.
    /// </summary>
    /// <param name="leading"><c>[D+1, …]</c> with 1 ≤ D+1 ≤ order+1, floating point.</param>
    /// <param name="order">The truncation order K ≥ 0.</param>
    public Jet(Tensor leading, int order)
    {
        ArgumentNullException.ThrowIfNull(leading);
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        if (leading.dim() < 1 || leading.shape[0] < 1 || leading.shape[0] > order + 1)
        {
            throw new ArgumentException(
                $"A jet of order {order} needs between 1 and {order + 1} coefficients along axis 0; got a tensor of shape [{string.Join(",", leading.shape)}].",
                nameof(leading));
        }
        if (!leading.is_floating_point())
        {
            throw new ArgumentException($"Jet coefficients must be floating point (float32 or float64), not {leading.dtype}.", nameof(leading));
        }
        Leading = leading;
        Order = order;
    }

    /// <summary>The truncation order K: coefficients c_0..c_K are represented.</summary>
    public int Order { get; }

    /// <summary>D: the coefficients above D are known to be exactly zero (D ≤ <see cref="Order"/>).</summary>
    public int Degree => (int)Leading.shape[0] - 1;

    /// <summary>The stored coefficients <c>c_0..c_D</c>, shape <c>[D+1, …]</c>.</summary>
    public Tensor Leading { get; }

    /// <summary>All coefficients <c>c_0..c_K</c>, shape <c>[K+1, …]</c> (the known-zero tail filled in).</summary>
    public Tensor Coefficients => Degree == Order ? Leading : Padded(Order);

    /// <summary>The shape of u, i.e. of one coefficient (<c>[B, …]</c> for activations of a batch).</summary>
    public long[] Shape => Leading.shape[1..];

    /// <summary>The value u(0) = c_0.</summary>
    public Tensor Value => Leading.select(0, 0);

    /// <summary>Element type of the coefficients.</summary>
    public ScalarType DType => Leading.dtype;

    /// <summary>Coefficient c_n (zeros above <see cref="Degree"/>).</summary>
    public Tensor Coefficient(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, Order);
        return n <= Degree ? Leading.select(0, n) : zeros(Shape, dtype: Leading.dtype, device: Leading.device);
    }

    /// <summary>The derivatives <c>dⁿu/dtⁿ(0) = n!·c_n</c> for n = 0..K, shape <c>[K+1, …]</c>.</summary>
    public Tensor Derivatives()
    {
        var factorials = new double[Order + 1];
        factorials[0] = 1;
        for (var n = 1; n <= Order; n++) factorials[n] = factorials[n - 1] * n;
        var f = tensor(factorials, ScalarType.Float64).to(Leading.dtype, Leading.device).view([Order + 1, .. Enumerable.Repeat(1L, Shape.Length)]);
        return Coefficients * f;
    }

    /// <summary>
    /// The line <c>u(t) = x + t·v</c>: <c>c_0 = x</c>, <c>c_1 = v</c>, all higher coefficients zero.
    /// </summary>
    /// <param name="x">Base points, e.g. <c>[B, sample…]</c>.</param>
    /// <param name="v">Directions, same shape, dtype and device as <paramref name="x"/>.</param>
    /// <param name="order">Truncation order K ≥ 0 (for K = 0 the jet is x alone).</param>
    public static Jet Line(Tensor x, Tensor v, int order)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(v);
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        if (!x.shape.SequenceEqual(v.shape))
        {
            throw new ArgumentException($"x [{string.Join(",", x.shape)}] and v [{string.Join(",", v.shape)}] must have the same shape.", nameof(v));
        }
        if (x.dtype != v.dtype) throw new ArgumentException($"x is {x.dtype} but v is {v.dtype}; give both in one dtype.", nameof(v));
        return order == 0 ? new Jet(x.unsqueeze(0), 0) : new Jet(stack([x, v], 0), order);
    }

    /// <summary>A constant <c>u(t) = value</c>: <c>c_0 = value</c>, all higher coefficients zero.</summary>
    public static Jet Constant(Tensor value, int order)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new Jet(value.unsqueeze(0), order);
    }

    /// <summary>The same series with its stored coefficients padded with zeros to <paramref name="degree"/> (≥ D, ≤ K).</summary>
    internal Tensor Padded(int degree)
    {
        if (degree == Degree) return Leading;
        if (degree < Degree || degree > Order) throw new ArgumentOutOfRangeException(nameof(degree), degree, $"Pad to between {Degree} and {Order}.");
        var tail = zeros([degree - Degree, .. Shape], dtype: Leading.dtype, device: Leading.device);
        return cat([Leading, tail], 0);
    }

    /// <summary>A jet of the same order with other stored coefficients.</summary>
    internal Jet With(Tensor leading) => new(leading, Order);

    /// <summary>
    /// g ≥ 1: the value coefficient c_0 is known to be the same in each group of g consecutive rows of the batch axis (the lines
    /// <c>x_p + t v_{p,d}</c> of one point along its g directions: their value is <c>f(x_p)</c> at every layer). Rules that map rows
    /// independently keep it, and the costly ones (<see cref="JetOps.Conv2d"/>, <see cref="JetOps.Linear"/>) then compute c_0 once
    /// per group instead of once per line; every other rule drops it (1: nothing known). It only saves work: the coefficients are
    /// the same with or without it.
    /// </summary>
    public int SharedValueRows { get; private init; } = 1;

    /// <summary>A jet of the same order with other stored coefficients whose value rows come in groups of <paramref name="rows"/> (see <see cref="SharedValueRows"/>).</summary>
    internal Jet WithSharedValueRows(Tensor leading, int rows)
    {
        var batch = leading.dim() >= 2 ? leading.shape[1] : 0;
        return rows > 1 && batch > 0 && batch % rows == 0 ? new Jet(leading, Order) { SharedValueRows = rows } : new Jet(leading, Order);
    }

    /// <summary>
    /// The lines <c>x_p + t·v_{p,d}</c> of P points along g directions each, point-major (row <c>p·g + d</c>), as one jet of batch P·g:
    /// <c>c_0</c> = each point repeated g times, <c>c_1</c> = the directions. The rules that allow it compute the value coefficient once
    /// per point instead of once per line (<see cref="SharedValueRows"/>); the coefficients are those of <see cref="Line(Tensor, Tensor, int)"/> on the
    /// repeated points.
    /// </summary>
    /// <param name="points"><c>[P, sample…]</c>.</param>
    /// <param name="directions"><c>[P·g, sample…]</c>, g ≥ 1, same dtype.</param>
    /// <param name="order">Truncation order K ≥ 0.</param>
    public static Jet PointLines(Tensor points, Tensor directions, int order)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(directions);
        if (points.dim() < 1 || points.shape[0] < 1 || directions.dim() != points.dim() || directions.shape[0] % points.shape[0] != 0
            || !directions.shape[1..].SequenceEqual(points.shape[1..]))
        {
            throw new ArgumentException($"Directions [{string.Join(",", directions.shape)}] must be g ≥ 1 rows per point of [{string.Join(",", points.shape)}], point-major.", nameof(directions));
        }
        var g = (int)(directions.shape[0] / points.shape[0]);
        return Line(g == 1 ? points : points.repeat_interleave(g, 0), directions, order, g);
    }

    /// <summary>
    /// The line jet of <see cref="Line(Tensor, Tensor, int)"/> for x whose rows come in groups of <paramref name="linesPerPoint"/> equal points (row
    /// <c>p·g + d</c> is point p, along its direction d): the caller vouches for the equality, which lets the rules share c_0 per point.
    /// </summary>
    internal static Jet Line(Tensor x, Tensor v, int order, int linesPerPoint)
    {
        var line = Line(x, v, order);
        return linesPerPoint > 1 ? line.WithSharedValueRows(line.Leading, linesPerPoint) : line;
    }

    private static int CheckedOrder(Tensor coefficients)
    {
        ArgumentNullException.ThrowIfNull(coefficients);
        if (coefficients.dim() < 1 || coefficients.shape[0] < 1)
        {
            throw new ArgumentException($"Jet coefficients need an order axis 0 of length ≥ 1; got shape [{string.Join(",", coefficients.shape)}].", nameof(coefficients));
        }
        return checked((int)coefficients.shape[0] - 1);
    }
}
