namespace LambdaService.Measurement.Models;

/// <summary>
/// A loaded model that can be evaluated on a batch of samples. Values cross this boundary in double
/// precision; <see cref="Precision"/> says in which precision the model itself computes.
/// </summary>
public interface IModelRunner : IDisposable
{
    /// <summary>Signature of the model (after it has been conformed to the data's sample shape).</summary>
    ModelSignature Signature { get; }

    /// <summary>Per-sample input shape the runner was prepared for (without the batch dimension).</summary>
    int[] SampleShape { get; }

    /// <summary>Where the forward pass runs, e.g. <c>cpu</c> or <c>cuda:0</c>.</summary>
    string Device { get; }

    /// <summary><c>float64</c> or <c>float32</c>: the precision the forward pass computes in.</summary>
    string Precision { get; }

    /// <summary>Largest batch accepted in one call (models with a fixed batch dimension accept only that size).</summary>
    int MaxBatch { get; }

    /// <summary>
    /// Evaluates <paramref name="batch"/> samples stored row-major in <paramref name="x"/>
    /// (<c>batch × product(SampleShape)</c> values) and returns <c>batch × Signature.OutputsPerSample</c> outputs.
    /// </summary>
    double[] Forward(ReadOnlySpan<double> x, int batch);

    /// <summary>Human-readable notes gathered while loading (e.g. a fallback to float32).</summary>
    IReadOnlyList<string> Notes { get; }
}
