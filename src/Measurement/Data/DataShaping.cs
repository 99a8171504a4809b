namespace LambdaService.Measurement.Data;

/// <summary>Fits a <see cref="Dataset"/> to a model: the per-sample shape to feed it and the range of its labels.</summary>
public static class DataShaping
{
    /// <summary>
    /// Returns the per-sample shape to feed a model whose input shape is <paramref name="modelInputShape"/> (batch
    /// dimension first; a dimension of 0 or less is dynamic). When the model's per-sample dimensions are all static,
    /// their product must equal <see cref="Dataset.SampleSize"/> and they are the answer (784 CSV columns become
    /// <c>[1, 28, 28]</c> for a model input <c>[N, 1, 28, 28]</c>). When some are dynamic, the data's sample shape must
    /// have the same rank and agree on every static dimension, and it is the answer.
    /// </summary>
    /// <param name="data">The samples.</param>
    /// <param name="modelInputShape">The model's input shape, batch dimension first.</param>
    /// <returns>A new array holding the per-sample shape.</returns>
    /// <exception cref="MeasurementInputException">
    /// Field <c>data</c> when the samples do not fit the model; field <c>model</c> when the model's input has no batch dimension.
    /// </exception>
    public static int[] ConformSampleShape(Dataset data, long[] modelInputShape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(modelInputShape);
        if (modelInputShape.Length == 0)
        {
            throw new MeasurementInputException("model",
                "the model's input is a single scalar; use a model that takes a batch of samples shaped [N, ...]");
        }
        var expected = modelInputShape[1..];
        if (expected.All(d => d > 0))
        {
            if (Product(expected) == data.SampleSize) return expected.Select(d => (int)d).ToArray();
        }
        else if (expected.Length == data.SampleShape.Length
                 && expected.Zip(data.SampleShape).All(p => p.First <= 0 || p.First == p.Second))
        {
            return (int[])data.SampleShape.Clone();
        }

        var wanted = DataText.List(expected);
        var batch = DataText.List(modelInputShape.Skip(1).Prepend(0)).Replace("[?", "[N", StringComparison.Ordinal);
        throw new MeasurementInputException("data",
            $"the model expects {wanted} per sample but the data has {DataText.List(data.SampleShape.Select(d => (long)d))} " +
            $"({data.SampleSize} values per sample); reshape the data to {batch} or use a model whose input matches it");
    }

    /// <summary>
    /// Checks that every label lies in <c>[0, classes)</c>; a dataset without labels passes.
    /// </summary>
    /// <param name="data">The samples.</param>
    /// <param name="classes">The number of classes the model predicts.</param>
    /// <exception cref="MeasurementInputException">Field <c>labels</c>, naming the first label out of range and its row (counting from 0).</exception>
    public static void CheckLabels(Dataset data, int classes)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        if (data.Labels is not { } labels) return;
        for (var row = 0; row < labels.Length; row++)
        {
            var label = labels[row];
            if (label >= 0 && label < classes) continue;
            var remedy = label < 0
                ? $"use labels 0..{classes - 1}"
                : $"use labels 0..{classes - 1} or a model with at least {(long)label + 1} classes";
            throw new MeasurementInputException("labels",
                $"label {label} at row {row} is outside 0..{classes - 1} for a model with {classes} classes; {remedy}");
        }
    }

    /// <summary>Product of positive dimensions, saturating at <see cref="long.MaxValue"/>.</summary>
    private static long Product(IEnumerable<long> dims)
    {
        long product = 1;
        foreach (var d in dims)
        {
            if (product > long.MaxValue / d) return long.MaxValue;
            product *= d;
        }
        return product;
    }
}
