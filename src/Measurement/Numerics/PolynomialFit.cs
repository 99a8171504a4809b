using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace LambdaService.Measurement.Numerics;

/// <summary>Least-squares polynomial fits on fixed sample positions.</summary>
public static class PolynomialFit
{
    /// <summary>
    /// Returns the matrix <c>W</c> (<c>(degree+1) × positions</c>) with <c>c = W y</c> the least-squares
    /// coefficients of <c>y ≈ Σ_k c_k u^k</c> at the given positions: <c>W = R⁻¹ Qᵀ</c> from the thin QR
    /// factorisation <c>V = Q R</c> of the Vandermonde matrix <c>V_ik = u_i^k</c> (MathNet.Numerics, Householder
    /// reflections), not the normal equations.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A negative degree, fewer positions than coefficients, or fewer distinct positions than coefficients (V is then
    /// rank-deficient).
    /// </exception>
    public static double[,] Weights(ReadOnlySpan<double> positions, int degree)
    {
        var m = positions.Length;
        var cols = degree + 1;
        if (degree < 0 || cols > m) throw new ArgumentException($"A degree-{degree} fit needs at least {cols} positions; got {m}.", nameof(degree));
        // Householder QR leaves a round-off-sized rather than a zero pivot on a rank-deficient V, so the rank is
        // checked exactly here: V has full column rank if and only if it has at least degree + 1 distinct positions.
        if (new HashSet<double>(positions.ToArray()).Count < cols) throw new ArgumentException("Positions must be distinct.", nameof(positions));

        var vandermonde = Matrix<double>.Build.Dense(m, cols);
        for (var i = 0; i < m; i++)
        {
            double p = 1;
            for (var k = 0; k < cols; k++)
            {
                vandermonde[i, k] = p;
                p *= positions[i];
            }
        }
        // Least-squares solution of V·W = I: W = R⁻¹ Qᵀ.
        var w = vandermonde.QR(QRMethod.Thin).Solve(Matrix<double>.Build.DenseIdentity(m));
        return w.ToArray();
    }
}
