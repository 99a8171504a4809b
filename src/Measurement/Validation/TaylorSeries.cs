namespace LambdaService.Measurement.Validation;

/// <summary>
/// A truncated power series <c>f(x₀ + h) = Σ_{k=0}^{N} a_k h^k</c> with double-precision coefficients
/// (a "jet" of order <c>N</c> at the centre <c>x₀</c>). Since <c>a_k = f⁽ᵏ⁾(x₀)/k!</c>, the coefficients are
/// the exact derivatives of <c>f</c> at <c>x₀</c> divided by <c>k!</c>, computed with nothing but the
/// recurrences below (no numerical differentiation).
/// </summary>
/// <remarks>
/// Arithmetic truncates to the smaller order of the two operands; both must have the same centre.
/// <list type="bullet">
/// <item><description>sum, difference: coefficient-wise;</description></item>
/// <item><description>product (Cauchy): <c>(ab)_n = Σ_{k=0}^{n} a_k b_{n-k}</c>;</description></item>
/// <item><description>quotient (recursive division): <c>q = a/b</c> with
/// <c>q_n = (a_n − Σ_{k=1}^{n} b_k q_{n-k}) / b_0</c>, defined when <c>b_0 ≠ 0</c>;</description></item>
/// <item><description>exponential: <c>b = e^a</c> from <c>b' = a'b</c>: <c>b_0 = e^{a_0}</c>,
/// <c>b_n = (1/n) Σ_{k=1}^{n} k a_k b_{n-k}</c>;</description></item>
/// <item><description>logarithm: <c>b = log a</c> from <c>a b' = a'</c>: <c>b_0 = log a_0</c>,
/// <c>b_n = (a_n − (1/n) Σ_{k=1}^{n-1} k b_k a_{n-k}) / a_0</c>, defined when <c>a_0 &gt; 0</c>.</description></item>
/// </list>
/// </remarks>
public sealed class TaylorSeries
{
    private readonly double[] _coefficients;

    private TaylorSeries(double[] coefficients, double center)
    {
        _coefficients = coefficients;
        Center = center;
    }

    /// <summary>The expansion point <c>x₀</c>.</summary>
    public double Center { get; }

    /// <summary>The truncation order <c>N</c> (the series holds <c>a_0..a_N</c>).</summary>
    public int Order => _coefficients.Length - 1;

    /// <summary>The coefficient <c>a_k = f⁽ᵏ⁾(x₀)/k!</c>.</summary>
    public double this[int k] => _coefficients[k];

    /// <summary>A copy of the coefficients <c>a_0..a_N</c>.</summary>
    public double[] ToArray() => (double[])_coefficients.Clone();

    /// <summary>A series with the given coefficients <c>a_0..a_N</c> around <paramref name="center"/>.</summary>
    /// <exception cref="ArgumentException">No coefficients, or a coefficient that is not finite.</exception>
    public static TaylorSeries FromCoefficients(ReadOnlySpan<double> coefficients, double center = 0)
    {
        if (coefficients.Length == 0) throw new ArgumentException("A series needs at least the coefficient a_0.", nameof(coefficients));
        foreach (var c in coefficients)
            if (!double.IsFinite(c)) throw new ArgumentException("Series coefficients must be finite.", nameof(coefficients));
        if (!double.IsFinite(center)) throw new ArgumentException("The centre must be finite.", nameof(center));
        return new TaylorSeries(coefficients.ToArray(), center);
    }

    /// <summary>The constant <c>c</c> as a series of order <paramref name="order"/>: <c>a_0 = c</c>, other coefficients 0.</summary>
    public static TaylorSeries Constant(double value, int order, double center = 0)
    {
        var c = NewCoefficients(order);
        c[0] = value;
        return FromCoefficients(c, center);
    }

    /// <summary>
    /// The independent variable <c>x = x₀ + h</c> around <paramref name="center"/> = <c>x₀</c>:
    /// <c>a_0 = x₀</c>, <c>a_1 = 1</c>, other coefficients 0.
    /// </summary>
    public static TaylorSeries Variable(double center, int order)
    {
        var c = NewCoefficients(order);
        c[0] = center;
        if (order >= 1) c[1] = 1;
        return FromCoefficients(c, center);
    }

    /// <summary><c>f⁽ⁿ⁾(x₀) = n!·a_n</c> (may overflow to infinity for large <c>n</c>).</summary>
    public double Derivative(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, Order);
        var value = _coefficients[n];
        for (var k = 2; k <= n; k++) value *= k;
        return value;
    }

    /// <summary>The truncated sum <c>Σ_{k=0}^{N} a_k (x − x₀)^k</c> by Horner's rule.</summary>
    public double Evaluate(double x)
    {
        var h = x - Center;
        var sum = 0.0;
        for (var k = Order; k >= 0; k--) sum = sum * h + _coefficients[k];
        return sum;
    }

    /// <summary>Sum, coefficient-wise.</summary>
    public static TaylorSeries operator +(TaylorSeries a, TaylorSeries b)
    {
        var n = CommonOrder(a, b);
        var c = NewCoefficients(n);
        for (var k = 0; k <= n; k++) c[k] = a[k] + b[k];
        return new TaylorSeries(c, a.Center);
    }

    /// <summary>Difference, coefficient-wise.</summary>
    public static TaylorSeries operator -(TaylorSeries a, TaylorSeries b)
    {
        var n = CommonOrder(a, b);
        var c = NewCoefficients(n);
        for (var k = 0; k <= n; k++) c[k] = a[k] - b[k];
        return new TaylorSeries(c, a.Center);
    }

    /// <summary>Negation.</summary>
    public static TaylorSeries operator -(TaylorSeries a) => a * -1.0;

    /// <summary>Cauchy product <c>(ab)_n = Σ_{k=0}^{n} a_k b_{n-k}</c>.</summary>
    public static TaylorSeries operator *(TaylorSeries a, TaylorSeries b)
    {
        var n = CommonOrder(a, b);
        var c = NewCoefficients(n);
        for (var i = 0; i <= n; i++)
        {
            var s = 0.0;
            for (var k = 0; k <= i; k++) s += a[k] * b[i - k];
            c[i] = s;
        }
        return new TaylorSeries(c, a.Center);
    }

    /// <summary>
    /// Recursive series division <c>q = a/b</c>: <c>q_n = (a_n − Σ_{k=1}^{n} b_k q_{n-k}) / b_0</c>.
    /// </summary>
    /// <exception cref="DivideByZeroException"><c>b_0 = 0</c>: <c>b</c> has no power-series inverse at this centre.</exception>
    public static TaylorSeries operator /(TaylorSeries a, TaylorSeries b)
    {
        var n = CommonOrder(a, b);
        if (b[0] == 0) throw new DivideByZeroException("The divisor series has b_0 = 0 (it vanishes at the centre), so the quotient has no power series there.");
        var q = NewCoefficients(n);
        for (var i = 0; i <= n; i++)
        {
            var s = a[i];
            for (var k = 1; k <= i; k++) s -= b[k] * q[i - k];
            q[i] = s / b[0];
        }
        return new TaylorSeries(q, a.Center);
    }

    /// <summary>Adds a constant to <c>a_0</c>.</summary>
    public static TaylorSeries operator +(TaylorSeries a, double s) => a + Constant(s, a.Order, a.Center);

    /// <summary>Adds a constant to <c>a_0</c>.</summary>
    public static TaylorSeries operator +(double s, TaylorSeries a) => a + s;

    /// <summary>Subtracts a constant from <c>a_0</c>.</summary>
    public static TaylorSeries operator -(TaylorSeries a, double s) => a + (-s);

    /// <summary>The constant minus the series.</summary>
    public static TaylorSeries operator -(double s, TaylorSeries a) => Constant(s, a.Order, a.Center) - a;

    /// <summary>Scales every coefficient.</summary>
    public static TaylorSeries operator *(TaylorSeries a, double s)
    {
        var c = a.ToArray();
        for (var k = 0; k < c.Length; k++) c[k] *= s;
        return new TaylorSeries(c, a.Center);
    }

    /// <summary>Scales every coefficient.</summary>
    public static TaylorSeries operator *(double s, TaylorSeries a) => a * s;

    /// <summary>Divides every coefficient by a constant.</summary>
    /// <exception cref="DivideByZeroException">The constant is zero.</exception>
    public static TaylorSeries operator /(TaylorSeries a, double s)
    {
        if (s == 0) throw new DivideByZeroException("Division of a series by the constant 0.");
        var c = a.ToArray();
        for (var k = 0; k < c.Length; k++) c[k] /= s;
        return new TaylorSeries(c, a.Center);
    }

    /// <summary>The constant divided by the series, by recursive series division.</summary>
    public static TaylorSeries operator /(double s, TaylorSeries a) => Constant(s, a.Order, a.Center) / a;

    /// <summary><c>a^p</c> for an integer <c>p ≥ 0</c> by repeated squaring of Cauchy products.</summary>
    public TaylorSeries Pow(int p)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(p);
        var result = Constant(1, Order, Center);
        var b = this;
        for (; p > 0; p >>= 1)
        {
            if ((p & 1) != 0) result *= b;
            if (p > 1) b *= b;
        }
        return result;
    }

    /// <summary><c>e^a</c>: <c>b_0 = e^{a_0}</c>, <c>b_n = (1/n) Σ_{k=1}^{n} k a_k b_{n-k}</c>.</summary>
    public static TaylorSeries Exp(TaylorSeries a)
    {
        var n = a.Order;
        var b = NewCoefficients(n);
        b[0] = Math.Exp(a[0]);
        for (var i = 1; i <= n; i++)
        {
            var s = 0.0;
            for (var k = 1; k <= i; k++) s += k * a[k] * b[i - k];
            b[i] = s / i;
        }
        return new TaylorSeries(b, a.Center);
    }

    /// <summary><c>log a</c>: <c>b_0 = log a_0</c>, <c>b_n = (a_n − (1/n) Σ_{k=1}^{n-1} k b_k a_{n-k}) / a_0</c>.</summary>
    /// <exception cref="ArgumentException"><c>a_0 ≤ 0</c>: the real logarithm is not analytic there.</exception>
    public static TaylorSeries Log(TaylorSeries a)
    {
        if (!(a[0] > 0)) throw new ArgumentException($"log needs a_0 > 0; got {a[0]}.", nameof(a));
        var n = a.Order;
        var b = NewCoefficients(n);
        b[0] = Math.Log(a[0]);
        for (var i = 1; i <= n; i++)
        {
            var s = 0.0;
            for (var k = 1; k < i; k++) s += k * b[k] * a[i - k];
            b[i] = (a[i] - s / i) / a[0];
        }
        return new TaylorSeries(b, a.Center);
    }

    private static double[] NewCoefficients(int order)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        return new double[order + 1];
    }

    private static int CommonOrder(TaylorSeries a, TaylorSeries b)
    {
        if (a.Center != b.Center)
            throw new ArgumentException($"Series around different centres ({a.Center} and {b.Center}) cannot be combined.", nameof(b));
        return Math.Min(a.Order, b.Order);
    }
}
