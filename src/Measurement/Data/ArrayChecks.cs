namespace LambdaService.Measurement.Data;

/// <summary>Checks on the feature array <c>x</c> read from a <c>.npy</c> or <c>.npz</c> file.</summary>
internal static class ArrayChecks
{
    /// <summary>
    /// Checks that <paramref name="header"/> describes a usable feature array (at least 1-D, at least one row, at least one
    /// value per row, at most <paramref name="maxValues"/> values) and returns its number of values.
    /// </summary>
    public static long FeatureCount(NpyHeader header, string source, long maxValues)
    {
        var shape = header.Shape;
        var shown = DataText.Tuple(shape);
        if (shape.Length == 0)
        {
            throw new MeasurementInputException("data",
                $"{source} holds a 0-d array (a single number); save an array with one row per sample, shape (N, ...)");
        }
        if (shape[0] == 0)
        {
            throw new MeasurementInputException("data", $"{source} has shape {shown}, with zero rows; save at least one sample");
        }
        if (shape.Skip(1).Contains(0))
        {
            throw new MeasurementInputException("data",
                $"{source} has shape {shown}, with no values per sample; save at least one feature per sample");
        }

        var limit = Math.Min(maxValues, Array.MaxLength);
        long count = 1;
        foreach (var dim in shape)
        {
            if (count > limit / dim)
            {
                throw new MeasurementInputException("data",
                    $"{source} has shape {shown}, more values than the limit of {limit}; upload fewer samples");
            }
            count *= dim;
        }
        return count;
    }

    /// <summary>Rows and per-sample shape of a checked feature shape: <c>[N, ...]</c> gives N and the rest, <c>[N]</c> gives <c>[1]</c>.</summary>
    public static (int Rows, int[] SampleShape) Split(long[] shape) =>
        ((int)shape[0], shape.Length == 1 ? [1] : shape.Skip(1).Select(d => (int)d).ToArray());

    /// <summary>Rejects NaN and infinite values, naming the first one's row.</summary>
    /// <param name="values">Row-major values.</param>
    /// <param name="sampleSize">Values per row.</param>
    /// <param name="name">The array's name in messages (<c>x</c>).</param>
    public static void CheckFinite(double[] values, int sampleSize, string name)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!double.IsFinite(values[i]))
            {
                throw new MeasurementInputException("data",
                    $"{name} contains {DataText.Number(values[i])} at row {i / sampleSize}; clean the data (drop or replace NaN and infinite values)");
            }
        }
    }
}
