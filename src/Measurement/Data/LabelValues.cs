namespace LambdaService.Measurement.Data;

/// <summary>Turns label values read from a file into class indices.</summary>
internal static class LabelValues
{
    /// <summary>
    /// Returns <paramref name="value"/> as a class index, or throws a <see cref="MeasurementInputException"/> (field
    /// <c>labels</c>) when it is not a finite, whole, non-negative number that fits an <see cref="int"/>.
    /// </summary>
    /// <param name="value">The label as read.</param>
    /// <param name="row">The row to name in messages.</param>
    public static int ToClassIndex(double value, long row)
    {
        const string what = "labels must be class indices 0, 1, 2, ...";
        var shown = DataText.Number(value);
        if (!double.IsFinite(value))
        {
            throw new MeasurementInputException("labels", $"label {shown} at row {row} is not a class index; {what}");
        }
        if (value != Math.Floor(value))
        {
            throw new MeasurementInputException("labels", $"label {shown} at row {row} is not a whole number; {what}");
        }
        if (value < 0)
        {
            throw new MeasurementInputException("labels", $"label {shown} at row {row} is negative; {what}");
        }
        if (value > int.MaxValue)
        {
            throw new MeasurementInputException("labels", $"label {shown} at row {row} is too large; {what}");
        }
        return (int)value;
    }
}
