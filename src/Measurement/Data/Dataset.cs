namespace LambdaService.Measurement.Data;

/// <summary>
/// Samples read from a data file: <see cref="X"/> holds <see cref="Rows"/> samples of
/// <see cref="SampleShape"/> each, flattened row-major in double precision.
/// </summary>
/// <param name="X">Row-major values, length <c>Rows * product(SampleShape)</c>, all finite.</param>
/// <param name="Rows">Number of samples.</param>
/// <param name="SampleShape">Shape of one sample (for a CSV or a 2-D array: <c>[features]</c>).</param>
/// <param name="Labels">Integer labels, one per sample (non-negative), or null when the file has none.</param>
/// <param name="Format">"npz", "npy" or "csv".</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file's bytes.</param>
public sealed record Dataset(double[] X, int Rows, int[] SampleShape, int[]? Labels, string Format, string Sha256)
{
    /// <summary>Number of values in one sample.</summary>
    public int SampleSize => SampleShape.Aggregate(1, (a, b) => a * b);

    /// <summary>Number of classes implied by the labels (max label + 1), or 0 without labels.</summary>
    public int LabelClasses => Labels is { Length: > 0 } ? Labels.Max() + 1 : 0;
}
