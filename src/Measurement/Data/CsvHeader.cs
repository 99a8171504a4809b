namespace LambdaService.Measurement.Data;

/// <summary>
/// The column names of a CSV header, trimmed, kept in one buffer rather than one string each so that a header with
/// a million columns stays cheap.
/// </summary>
internal sealed class CsvHeader
{
    private readonly List<(int Start, int Length)> _names = [];
    private char[] _text = new char[256];
    private int _textLength;

    /// <summary>Number of columns.</summary>
    public int Count => _names.Count;

    /// <summary>The name of column <paramref name="index"/> (0-based).</summary>
    public string this[int index] => Name(index).ToString();

    /// <summary>Splits a header line with <paramref name="separator"/>, honouring quotes.</summary>
    /// <exception cref="MeasurementInputException">More than <paramref name="maxColumns"/> columns, or a bad quote.</exception>
    public static CsvHeader Parse(string line, char separator, int maxColumns)
    {
        var header = new CsvHeader();
        using var tokenizer = new CsvTokenizer(new StringReader(line)) { Separator = separator };
        tokenizer.NextRecord();
        while (tokenizer.NextField())
        {
            if (header.Count == maxColumns)
            {
                throw new MeasurementInputException("data",
                    $"the CSV header has more than {maxColumns} columns; use fewer features or a .npy/.npz file");
            }
            header.Add(tokenizer.Field.Trim());
        }
        return header;
    }

    /// <summary>Indices of the columns called <paramref name="name"/>, at most <paramref name="max"/> of them.</summary>
    public List<int> IndicesOf(string name, int max)
    {
        var found = new List<int>();
        for (var i = 0; i < Count && found.Count < max; i++)
        {
            if (Name(i).SequenceEqual(name)) found.Add(i);
        }
        return found;
    }

    /// <summary>The first few names, for messages.</summary>
    public IReadOnlyList<string> FirstNames(int count) =>
        Enumerable.Range(0, Math.Min(count, Count)).Select(i => this[i]).ToList();

    private ReadOnlySpan<char> Name(int index) => _text.AsSpan(_names[index].Start, _names[index].Length);

    private void Add(ReadOnlySpan<char> name)
    {
        if (_textLength + name.Length > _text.Length)
        {
            Array.Resize(ref _text, Math.Max(_text.Length * 2, _textLength + name.Length));
        }
        name.CopyTo(_text.AsSpan(_textLength));
        _names.Add((_textLength, name.Length));
        _textLength += name.Length;
    }
}
