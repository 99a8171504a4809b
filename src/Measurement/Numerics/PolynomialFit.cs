namespace LambdaService.Measurement.Numerics;

/// <summary>Least-squares polynomial fits on fixed sample positions.</summary>
public static class PolynomialFit
{
    /// <summary>
    /// Returns the matrix <c>W</c> (<c>(degree+1) × positions</c>) with <c>c = W y</c> the least-squares
    /// coefficients of <c>y ≈ Σ_k c_k u^k</c> at the given positions. Computed from a QR factorisation
    /// (modified Gram–Schmidt, applied twice for stability) of the Vandermonde matrix, not the normal equations.
    /// </summary>
    /// <remarks>
    /// Kept hand-written rather than MathNet.Numerics' QR (<c>Matrix.QR(QRMethod.Thin).Solve(I)</c>, Householder), which
    /// was tried: both give <c>W</c> of the same accuracy (<c>|W·V − I|</c> about 7e-10 for the engine's default 17
    /// positions and degree 16, where <c>|W|</c> reaches 7e5), but they differ by about 1e-11 relative, and the
    /// finite-difference engine divides by <c>hⁿ</c> of windows as narrow as 0.005, so on a non-smooth model the
    /// round-off-dominated error estimates move. <c>DerivativeReliabilityTests.
    /// A_relu_cnn_measured_with_finite_differences_fails_naming_the_orders_above_the_default_five_percent</c> pins
    /// them: with MathNet the order-4 median became 376% instead of 423%, order 3's 1.33% instead of below 0.3%, and
    /// order 2 was newly flagged — numbers a measurement reports, which this change must keep.
    /// </remarks>
    public static double[,] Weights(ReadOnlySpan<double> positions, int degree)
    {
        var m = positions.Length;
        var cols = degree + 1;
        if (degree < 0 || cols > m) throw new ArgumentException($"A degree-{degree} fit needs at least {cols} positions; got {m}.", nameof(degree));
        var q = new double[m, cols];
        for (var i = 0; i < m; i++)
        {
            double p = 1;
            for (var k = 0; k < cols; k++)
            {
                q[i, k] = p;
                p *= positions[i];
            }
        }
        var r = new double[cols, cols];
        for (var k = 0; k < cols; k++)
        {
            for (var pass = 0; pass < 2; pass++)
            {
                for (var j = 0; j < k; j++)
                {
                    double dot = 0;
                    for (var i = 0; i < m; i++) dot += q[i, j] * q[i, k];
                    for (var i = 0; i < m; i++) q[i, k] -= dot * q[i, j];
                    r[j, k] += dot;
                }
            }
            double norm = 0;
            for (var i = 0; i < m; i++) norm += q[i, k] * q[i, k];
            norm = Math.Sqrt(norm);
            if (norm == 0) throw new ArgumentException("Positions must be distinct.", nameof(positions));
            r[k, k] = norm;
            for (var i = 0; i < m; i++) q[i, k] /= norm;
        }
        // W = R⁻¹ Qᵀ by back substitution, one column of Qᵀ at a time.
        var w = new double[cols, m];
        for (var i = 0; i < m; i++)
        {
            for (var k = cols - 1; k >= 0; k--)
            {
                var s = q[i, k];
                for (var j = k + 1; j < cols; j++) s -= r[k, j] * w[j, i];
                w[k, i] = s / r[k, k];
            }
        }
        return w;
    }
}
