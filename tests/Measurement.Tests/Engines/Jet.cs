namespace LambdaService.Measurement.Tests.Engines;

/// <summary>
/// Test reference: truncated Taylor series in t (coefficients c_k of t^k, k = 0..K) in double precision,
/// with the textbook recurrences for exp, log and tanh. The n-th derivative at t = 0 is n!·c_n.
/// Independent of TorchSharp, ONNX Runtime and the engines under test.
/// </summary>
internal sealed class Jet
{
    public readonly double[] C;

    public Jet(int order) => C = new double[order + 1];

    public int K => C.Length - 1;

    public static Jet Line(int order, double value, double slope)
    {
        var j = new Jet(order);
        j.C[0] = value;
        if (order >= 1) j.C[1] = slope;
        return j;
    }

    public static Jet operator +(Jet a, Jet b)
    {
        var r = new Jet(a.K);
        for (var k = 0; k <= a.K; k++) r.C[k] = a.C[k] + b.C[k];
        return r;
    }

    public static Jet operator -(Jet a, Jet b)
    {
        var r = new Jet(a.K);
        for (var k = 0; k <= a.K; k++) r.C[k] = a.C[k] - b.C[k];
        return r;
    }

    public static Jet operator *(double s, Jet a)
    {
        var r = new Jet(a.K);
        for (var k = 0; k <= a.K; k++) r.C[k] = s * a.C[k];
        return r;
    }

    public static Jet operator *(Jet a, Jet b)
    {
        var r = new Jet(a.K);
        for (var k = 0; k <= a.K; k++)
        {
            for (var j = 0; j <= k; j++) r.C[k] += a.C[j] * b.C[k - j];
        }
        return r;
    }

    /// <summary>y = exp(a): y' = a' y ⇒ k·y_k = Σ_{j=1..k} j·a_j·y_{k−j}.</summary>
    public Jet Exp()
    {
        var y = new Jet(K);
        y.C[0] = Math.Exp(C[0]);
        for (var k = 1; k <= K; k++)
        {
            double s = 0;
            for (var j = 1; j <= k; j++) s += j * C[j] * y.C[k - j];
            y.C[k] = s / k;
        }
        return y;
    }

    /// <summary>y = log(a): a·y' = a' ⇒ y_k = (a_k − Σ_{j=1..k−1} j·y_j·a_{k−j} / k) / a_0.</summary>
    public Jet Log()
    {
        var y = new Jet(K);
        y.C[0] = Math.Log(C[0]);
        for (var k = 1; k <= K; k++)
        {
            double s = 0;
            for (var j = 1; j < k; j++) s += j * y.C[j] * C[k - j];
            y.C[k] = (C[k] - s / k) / C[0];
        }
        return y;
    }

    /// <summary>y = tanh(a): y' = (1 − y²)·a' ⇒ k·y_k = Σ_{j=1..k} j·a_j·(δ_{k−j} − (y²)_{k−j}).</summary>
    public Jet Tanh()
    {
        var y = new Jet(K);
        var y2 = new double[K + 1];
        y.C[0] = Math.Tanh(C[0]);
        y2[0] = y.C[0] * y.C[0];
        for (var k = 1; k <= K; k++)
        {
            double s = 0;
            for (var j = 1; j <= k; j++) s += j * C[j] * ((k - j == 0 ? 1 : 0) - y2[k - j]);
            y.C[k] = s / k;
            double sq = 0;
            for (var j = 0; j <= k; j++) sq += y.C[j] * y.C[k - j];
            y2[k] = sq;
        }
        return y;
    }

    /// <summary>y = sin(a), z = cos(a): y' = z a', z' = −y a'.</summary>
    public Jet Sin()
    {
        var y = new Jet(K);
        var z = new Jet(K);
        y.C[0] = Math.Sin(C[0]);
        z.C[0] = Math.Cos(C[0]);
        for (var k = 1; k <= K; k++)
        {
            double sy = 0, sz = 0;
            for (var j = 1; j <= k; j++)
            {
                sy += j * C[j] * z.C[k - j];
                sz -= j * C[j] * y.C[k - j];
            }
            y.C[k] = sy / k;
            z.C[k] = sz / k;
        }
        return y;
    }

    /// <summary>dⁿ/dtⁿ at 0 = n!·c_n.</summary>
    public double Derivative(int n)
    {
        double f = 1;
        for (var i = 2; i <= n; i++) f *= i;
        return f * C[n];
    }
}

/// <summary>A dense tanh MLP in double precision with random weights, and its exact line derivatives via <see cref="Jet"/>.</summary>
internal sealed class ReferenceMlp
{
    public ReferenceMlp(int[] widths, int seed, double weightScale = 1.0)
    {
        var rng = new Random(seed);
        Weights = new float[widths.Length - 1][,];
        Biases = new float[widths.Length - 1][];
        for (var l = 0; l + 1 < widths.Length; l++)
        {
            var w = new float[widths[l + 1], widths[l]];
            for (var i = 0; i < widths[l + 1]; i++)
            {
                for (var j = 0; j < widths[l]; j++) w[i, j] = (float)((rng.NextDouble() * 2 - 1) * weightScale * Math.Sqrt(3.0 / widths[l]));
            }
            Weights[l] = w;
            Biases[l] = Enumerable.Range(0, widths[l + 1]).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        }
    }

    public float[][,] Weights { get; }

    public float[][] Biases { get; }

    /// <summary>Logits along the line x + t v as jets.</summary>
    public Jet[] Logits(double[] x, double[] v, int order)
    {
        var h = x.Select((xi, i) => Jet.Line(order, xi, v[i])).ToArray();
        for (var l = 0; l < Weights.Length; l++)
        {
            var w = Weights[l];
            var next = new Jet[w.GetLength(0)];
            for (var i = 0; i < next.Length; i++)
            {
                var acc = Jet.Line(order, Biases[l][i], 0);
                for (var j = 0; j < h.Length; j++) acc += (double)w[i, j] * h[j];
                next[i] = l < Weights.Length - 1 ? acc.Tanh() : acc;
            }
            h = next;
        }
        return h;
    }

    /// <summary>Cross-entropy log Σ exp(z) − z_y along the line, as a jet.</summary>
    public Jet Loss(double[] x, double[] v, int label, int order)
    {
        var z = Logits(x, v, order);
        var sum = z[0].Exp();
        for (var c = 1; c < z.Length; c++) sum += z[c].Exp();
        return sum.Log() - z[label];
    }
}
