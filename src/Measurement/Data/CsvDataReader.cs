using System.Text;

namespace LambdaService.Measurement.Data;

/// <summary>
/// Reads CSV text: a header row, then one row per sample of numeric feature columns and, optionally, a label column
/// of class indices. Rows are named by their 1-based line number in the file (the header is usually row 1).
/// </summary>
internal static class CsvDataReader
{
    /// <summary>Most columns a header may have.</summary>
    public const int MaxColumns = 1 << 20;

    /// <summary>Longest header row accepted, in characters.</summary>
    public const int MaxHeaderChars = 16 << 20;

    private static readonly string DefaultLabelColumn = new DataReadOptions().LabelColumn;

    /// <summary>Reads the text from <paramref name="stream"/> (UTF-8, or as its byte-order mark says).</summary>
    public static Dataset Read(Stream stream, DataReadOptions options, string sha256)
    {
        using var text = new StreamReader(stream, new UTF8Encoding(false, false), detectEncodingFromByteOrderMarks: true,
            bufferSize: 1 << 14, leaveOpen: true);
        using var tokenizer = new CsvTokenizer(text);
        var headerLine = tokenizer.ReadRawLine(MaxHeaderChars) ?? throw new MeasurementInputException("data",
            "the data file is empty; upload a CSV with a header row and one row per sample, or a .npy/.npz file");
        if (headerLine.Contains('\0'))
        {
            throw new MeasurementInputException("data",
                "the data file is neither text nor a NumPy array; upload a CSV, a .npy or a .npz file");
        }
        tokenizer.Separator = DetectSeparator(headerLine);
        var names = CsvHeader.Parse(headerLine, tokenizer.Separator, MaxColumns);
        var labelIndex = FindLabelColumn(names, options.LabelColumn);
        var features = names.Count - (labelIndex >= 0 ? 1 : 0);
        if (features == 0)
        {
            throw new MeasurementInputException("data",
                $"the CSV header has no feature columns besides the label column '{DataText.Clip(names[labelIndex])}'; add the features");
        }

        tokenizer.ExpectedFields = names.Count;
        var columns = new CsvColumns(names, tokenizer.Separator);
        var values = new ChunkedDoubleBuffer();
        List<int>? labels = labelIndex >= 0 ? [] : null;
        var limit = Math.Min(options.MaxValues, Array.MaxLength);
        var rows = 0;
        while (tokenizer.NextRecord())
        {
            var row = tokenizer.RecordLine;
            var fields = 0;
            while (tokenizer.NextField())
            {
                if (fields == labelIndex) labels!.Add(columns.ParseLabel(tokenizer.Field, row, fields));
                else if (fields < names.Count) values.Add(columns.ParseValue(tokenizer.Field, row, fields));
                fields++;
            }
            if (fields != names.Count)
            {
                throw new MeasurementInputException("data",
                    $"row {row} has {fields} field{(fields == 1 ? "" : "s")} but the header has {names.Count}; give every row one value per column");
            }
            if (values.Count > limit)
            {
                throw new MeasurementInputException("data",
                    $"the data has more than the limit of {limit} values (rows × features); upload fewer rows");
            }
            rows++;
        }
        if (rows == 0)
        {
            throw new MeasurementInputException("data", "the CSV file has a header but no data rows; add one row per sample");
        }
        return new Dataset(values.ToArray(), rows, [features], labels?.ToArray(), "csv", sha256);
    }

    /// <summary>Comma, unless the header has none outside quotes; then semicolon, then tab.</summary>
    private static char DetectSeparator(string header)
    {
        bool comma = false, semicolon = false, tab = false, quoted = false;
        foreach (var c in header)
        {
            if (c == '"') quoted = !quoted;
            else if (!quoted)
            {
                comma |= c == ',';
                semicolon |= c == ';';
                tab |= c == '\t';
            }
        }
        return comma ? ',' : semicolon ? ';' : tab ? '\t' : ',';
    }

    /// <summary>
    /// The index of the label column, or -1 when there is none. An absent default column means no labels; an absent
    /// column that the user named is an error, as is a name that several columns share.
    /// </summary>
    private static int FindLabelColumn(CsvHeader names, string? labelColumn)
    {
        if (string.IsNullOrEmpty(labelColumn)) return -1;
        var matches = names.IndicesOf(labelColumn, 2);
        if (matches.Count > 1)
        {
            throw new MeasurementInputException("labelColumn",
                $"the CSV header has several columns named '{DataText.Clip(labelColumn)}'; rename them so that the label column is unambiguous");
        }
        if (matches.Count == 1) return matches[0];
        if (labelColumn == DefaultLabelColumn) return -1;
        throw new MeasurementInputException("labelColumn",
            $"the label column '{DataText.Clip(labelColumn)}' is not in the CSV header ({DataText.Names(names.FirstNames(11), names.Count)}); set labelColumn to one of the header's column names");
    }
}
