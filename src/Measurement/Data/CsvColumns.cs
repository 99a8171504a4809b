using System.Globalization;

namespace LambdaService.Measurement.Data;

/// <summary>Parses the cells of a CSV file's columns, naming the row and column of any bad cell.</summary>
/// <param name="names">The header's column names.</param>
/// <param name="separator">The field separator, for hints about decimal commas.</param>
internal sealed class CsvColumns(CsvHeader names, char separator)
{
    /// <summary>Parses a feature cell: a finite number in invariant notation.</summary>
    public double ParseValue(ReadOnlySpan<char> field, long row, int column)
    {
        var text = field.Trim();
        if (text.IsEmpty)
        {
            throw new MeasurementInputException("data", $"row {row}, {Describe(column)} is empty; fill in a number or remove the row");
        }
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            if (!double.IsFinite(value)) throw NonFinite(DataText.Number(value), row, column);
            return value;
        }
        if (NonFiniteWord(text) is { } word) throw NonFinite(word, row, column);
        var hint = separator == ';' && text.Contains(',')
            ? "use '.' as the decimal point"
            : "use plain numbers such as 0.5 or -3e-2";
        throw new MeasurementInputException("data",
            $"row {row}, {Describe(column)} has '{DataText.Clip(text)}', which is not a number; {hint}");
    }

    /// <summary>Parses a label cell: a non-negative whole number.</summary>
    public int ParseLabel(ReadOnlySpan<char> field, long row, int column)
    {
        var text = field.Trim();
        if (text.IsEmpty)
        {
            throw new MeasurementInputException("labels",
                $"row {row} has no label in {Describe(column)}; give every row a class index 0, 1, 2, ...");
        }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw new MeasurementInputException("labels",
                $"row {row} has the label '{DataText.Clip(text)}' in {Describe(column)}, which is not a class index; labels must be non-negative integers 0, 1, 2, ...");
        }
        return LabelValues.ToClassIndex(value, row);
    }

    private string Describe(int column) => names[column].Length == 0
        ? $"column {column + 1}"
        : $"column {column + 1} ('{DataText.Clip(names[column])}')";

    private MeasurementInputException NonFinite(string what, long row, int column) => new("data",
        $"the data contains {what} at row {row}, {Describe(column)}; clean the data (drop or replace NaN and infinite values)");

    /// <summary>Spellings of NaN and infinity that .NET does not parse but other tools write.</summary>
    private static string? NonFiniteWord(ReadOnlySpan<char> text)
    {
        var body = text.TrimStart("+-");
        var negative = text.StartsWith("-");
        if (body.Equals("nan", StringComparison.OrdinalIgnoreCase)) return "NaN";
        if (body.Equals("inf", StringComparison.OrdinalIgnoreCase) || body.Equals("infinity", StringComparison.OrdinalIgnoreCase))
        {
            return negative ? "-inf" : "+inf";
        }
        return null;
    }
}
