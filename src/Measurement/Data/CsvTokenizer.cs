using System.Text;
using CsvHelper;

namespace LambdaService.Measurement.Data;

/// <summary>
/// Splits delimited text into records and fields: fields may be quoted (<c>"a ""b"""</c>, with separators and line
/// breaks inside), records end at <c>\n</c>, <c>\r\n</c> or <c>\r</c>, empty and blank lines are skipped, and spaces
/// (and tabs, unless tab separates fields) around fields are ignored. The records are read by CsvHelper
/// (<see cref="CsvReader"/>, RFC 4180 mode); this class keeps what the messages of
/// <c>tests/Measurement.Tests/Data/CsvRejectionTests.cs</c> need: rows named by the line on which they start, a quote
/// that is never closed or followed by text rejected with that row, and the field length limit.
/// </summary>
/// <remarks>
/// CsvHelper holds a whole record at a time (not one field, as the hand-written tokenizer this replaces did); its
/// <see cref="CsvReaderOptions.MaxRecordSize"/> bounds that record to what <see cref="ExpectedFields"/> fields of
/// <see cref="MaxFieldChars"/> characters can take, and a longer record is reported as a field that is too long.
/// The header row is read before CsvHelper starts (<see cref="ReadRawLine"/>), because the separator is detected from
/// it by <c>CsvDataReader</c>'s own rule (comma first), which is not CsvHelper's detection (it also weighs '|').
/// </remarks>
internal sealed class CsvTokenizer(TextReader reader) : IDisposable
{
    /// <summary>Longest field accepted, in characters.</summary>
    public const int MaxFieldChars = 1024;

    /// <summary>Bytes of input a field of <see cref="MaxFieldChars"/> characters can take: UTF-8, every quote doubled, blanks around.</summary>
    private const long MaxFieldBytes = 2L * 3 * MaxFieldChars + 64;

    private readonly char[] _field = new char[MaxFieldChars];
    private int _fieldLength;
    private CsvReader? _csv;
    private int _nextField;

    /// <summary>The line on which CsvHelper's line 1 lies: the line after those <see cref="ReadRawLine"/> consumed.</summary>
    private long _line = 1;

    /// <summary>The field separator (default comma); set it before the first <see cref="NextRecord"/>.</summary>
    public char Separator { get; set; } = ',';

    /// <summary>Fields a record is expected to have (the header's), for the bound on a record's size; 0 for no bound.</summary>
    public int ExpectedFields { get; set; }

    /// <summary>The 1-based line on which the current record starts.</summary>
    public long RecordLine { get; private set; }

    /// <summary>The field read by the last <see cref="NextField"/> that returned true.</summary>
    public ReadOnlySpan<char> Field => _field.AsSpan(0, _fieldLength);

    /// <summary>
    /// Skips empty lines and returns the next line as it stands (quotes are not interpreted), or null at the end.
    /// Used for the header row, before the separator is known; call it before the first <see cref="NextRecord"/>.
    /// </summary>
    /// <exception cref="MeasurementInputException">The line is longer than <paramref name="maxChars"/>.</exception>
    public string? ReadRawLine(int maxChars)
    {
        if (_csv is not null) throw new InvalidOperationException("The raw line must be read before the first record.");
        while (reader.Peek() is '\r' or '\n') TakeLineBreak();
        if (reader.Peek() < 0) return null;
        RecordLine = _line;
        var line = new StringBuilder();
        for (var c = reader.Peek(); c >= 0 && c is not ('\r' or '\n'); c = reader.Peek())
        {
            if (line.Length == maxChars)
            {
                throw new MeasurementInputException("data",
                    $"the header row is longer than {maxChars} characters; use fewer or shorter column names");
            }
            line.Append((char)reader.Read());
        }
        TakeLineBreak();
        return line.ToString();
    }

    /// <summary>Moves to the next record, skipping empty and blank lines; false at the end of the text.</summary>
    /// <exception cref="MeasurementInputException">A quote is not closed, text follows a closing quote, or the record is too long.</exception>
    public bool NextRecord()
    {
        _csv ??= CsvReader.Create(reader, Options(), leaveOpen: true);
        try
        {
            if (!_csv.Read()) return false;
        }
        catch (CsvFormatException e) when (e.LineNumber > 0)
        {
            // The only format error left to CsvHelper (quoting is reported through OnMalformedRecord): MaxRecordSize.
            throw FieldTooLong(_line - 1 + e.LineNumber);
        }
        RecordLine = _line - 1 + _csv.LineNumber;
        _nextField = 0;
        return true;
    }

    /// <summary>Reads the current record's next field into <see cref="Field"/>; false when the record has no more.</summary>
    /// <exception cref="MeasurementInputException">The field is longer than <see cref="MaxFieldChars"/> characters.</exception>
    public bool NextField()
    {
        if (_csv is null || _nextField >= _csv.FieldCount) return false;
        var bytes = _csv.GetSpan(_nextField++);
        if (bytes.Length > MaxFieldChars && Encoding.UTF8.GetCharCount(bytes) > MaxFieldChars) throw FieldTooLong(RecordLine);
        _fieldLength = Encoding.UTF8.GetChars(bytes, _field);
        return true;
    }

    /// <inheritdoc />
    public void Dispose() => _csv?.Dispose();

    private CsvReaderOptions Options()
    {
        var blanks = Separator == '\t' ? " " : " \t";
        long? maxRecord = ExpectedFields > 0 ? Math.Min(int.MaxValue, ExpectedFields * MaxFieldBytes) : null;
        return CsvReaderOptions.Default with
        {
            Separator = Separator,
            HasHeader = false,
            DetectSeparatorHint = false,
            TrimWhitespace = true,
            WhitespaceCharacters = blanks,
            SkipEmptyLines = true,
            TrackLineNumbers = true,
            MaxRecordSize = (int?)maxRecord,
            MalformedData = CsvMalformedDataHandling.Recover,
            // A stray quote inside an unquoted field (1,2"3) is kept as text, as before; the value check then names it.
            OnMalformedRecord = record =>
            {
                var row = _line - 1 + record.LineNumber;
                switch (record.Reason)
                {
                    case CsvMalformedReason.UnterminatedQuote:
                        throw new MeasurementInputException("data",
                            $"row {row} has a quote that is never closed; close every quoted field with \"");
                    case CsvMalformedReason.TextAfterClosingQuote:
                        throw new MeasurementInputException("data",
                            $"row {row} has text after a closing quote; quote whole fields only, doubling quotes inside them (\"\")");
                }
            },
        };
    }

    private static MeasurementInputException FieldTooLong(long row) => new("data",
        $"row {row} has a field longer than {MaxFieldChars} characters; fields hold single numbers");

    /// <summary>Consumes one line break (<c>\n</c>, <c>\r\n</c> or <c>\r</c>) if the reader is at one.</summary>
    private void TakeLineBreak()
    {
        var c = reader.Peek();
        if (c == '\r')
        {
            reader.Read();
            if (reader.Peek() == '\n') reader.Read();
            _line++;
        }
        else if (c == '\n')
        {
            reader.Read();
            _line++;
        }
    }
}
