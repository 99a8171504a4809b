using static TorchSharp.torch;

namespace LambdaService.Measurement.Engines;

/// <summary>Which scalar function of the model's output is differentiated.</summary>
public enum TargetKind
{
    /// <summary>Cross-entropy <c>log Σ_k exp(z_k) − z_y</c> against a class y per point.</summary>
    Loss,

    /// <summary>One logit <c>z_c</c> (class c per point).</summary>
    Logit,

    /// <summary>The single output of a scalar model.</summary>
    Output,
}

/// <summary>The scalar objective <c>f</c> evaluated from a model's outputs, in arrays and in tensors.</summary>
public static class Objective
{
    /// <summary>Evaluates the objective for one output row <paramref name="z"/> and class <paramref name="cls"/>.</summary>
    public static double Evaluate(TargetKind kind, ReadOnlySpan<double> z, int cls)
    {
        switch (kind)
        {
            case TargetKind.Loss:
                var max = double.NegativeInfinity;
                foreach (var v in z) max = Math.Max(max, v);
                double sum = 0;
                foreach (var v in z) sum += Math.Exp(v - max);
                return max + Math.Log(sum) - z[cls];
            case TargetKind.Logit:
                return z[cls];
            default:
                return z[0];
        }
    }

    /// <summary>Tensor form: <paramref name="output"/> is <c>[R, C]</c> or <c>[R]</c>, <paramref name="cls"/> int64 <c>[R]</c>; returns <c>[R]</c>.</summary>
    public static Tensor Evaluate(TargetKind kind, Tensor output, Tensor cls) => kind switch
    {
        TargetKind.Loss => output.logsumexp(1) - output.gather(1, cls.unsqueeze(1)).squeeze(1),
        TargetKind.Logit => output.gather(1, cls.unsqueeze(1)).squeeze(1),
        _ => output.reshape(output.shape[0]),
    };
}
