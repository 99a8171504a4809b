namespace LambdaService.Measurement.Data;

/// <summary>
/// Splits delimited text into records and fields, one field at a time, without holding more than one field:
/// fields may be quoted (<c>"a ""b"""</c>, with separators and line breaks inside), records end at <c>\n</c>,
/// <c>\r\n</c> or <c>\r</c>, and empty lines are skipped.
/// </summary>
internal sealed class CsvTokenizer(TextReader reader)
{
    /// <summary>Longest field accepted, in characters.</summary>
    public const int MaxFieldChars = 1024;

    private readonly char[] _buffer = new char[1 << 14];
    private int _position;
    private int _length;
    private char[] _field = new char[64];
    private int _fieldLength;
    private bool _inRecord;
    private bool _recordDone;

    /// <summary>The field separator (default comma).</summary>
    public char Separator { get; set; } = ',';

    /// <summary>The 1-based line that the reader is on.</summary>
    public long Line { get; private set; } = 1;

    /// <summary>The 1-based line on which the current record starts.</summary>
    public long RecordLine { get; private set; }

    /// <summary>The field read by the last <see cref="NextField"/> that returned true.</summary>
    public ReadOnlySpan<char> Field => _field.AsSpan(0, _fieldLength);

    /// <summary>
    /// Skips empty lines and returns the next line as it stands (quotes are not interpreted), or null at the end.
    /// Used for the header row, before the separator is known.
    /// </summary>
    /// <exception cref="MeasurementInputException">The line is longer than <paramref name="maxChars"/>.</exception>
    public string? ReadRawLine(int maxChars)
    {
        SkipLineBreaks();
        if (Peek() < 0) return null;
        RecordLine = Line;
        var line = new System.Text.StringBuilder();
        for (var c = Peek(); c >= 0 && c is not ('\r' or '\n'); c = Peek())
        {
            if (line.Length == maxChars)
            {
                throw new MeasurementInputException("data",
                    $"the header row is longer than {maxChars} characters; use fewer or shorter column names");
            }
            line.Append((char)Take());
        }
        TakeLineBreak();
        return line.ToString();
    }

    /// <summary>Moves to the next record, skipping empty and blank lines; false at the end of the text.</summary>
    public bool NextRecord()
    {
        while (NextField())
        {
        }
        while (true)
        {
            SkipLineBreaks();
            while (IsBlank(Peek())) Take();
            if (Peek() < 0) return false;
            if (Peek() is not ('\r' or '\n')) break;
        }
        RecordLine = Line;
        _inRecord = true;
        _recordDone = false;
        return true;
    }

    /// <summary>Reads the current record's next field into <see cref="Field"/>; false when the record has no more.</summary>
    /// <exception cref="MeasurementInputException">A quote is not closed, text follows a closing quote, or the field is too long.</exception>
    public bool NextField()
    {
        if (!_inRecord || _recordDone) return false;
        _fieldLength = 0;
        while (IsBlank(Peek())) Take();
        if (Peek() == '"')
        {
            Take();
            ReadQuoted();
            while (IsBlank(Peek())) Take();
            var after = Peek();
            if (after == Separator)
            {
                Take();
            }
            else if (after < 0 || after is '\r' or '\n')
            {
                EndRecord();
            }
            else
            {
                throw new MeasurementInputException("data",
                    $"row {RecordLine} has text after a closing quote; quote whole fields only, doubling quotes inside them (\"\")");
            }
            return true;
        }

        while (true)
        {
            var c = Peek();
            if (c == Separator)
            {
                Take();
                break;
            }
            if (c < 0 || c is '\r' or '\n')
            {
                EndRecord();
                break;
            }
            Append((char)Take());
        }
        return true;
    }

    private void ReadQuoted()
    {
        while (true)
        {
            var c = Take();
            if (c < 0)
            {
                throw new MeasurementInputException("data",
                    $"row {RecordLine} has a quote that is never closed; close every quoted field with \"");
            }
            if (c == '"')
            {
                if (Peek() != '"') return;
                Take();
            }
            else if (c == '\n' || (c == '\r' && Peek() != '\n'))
            {
                Line++;
            }
            Append((char)c);
        }
    }

    /// <summary>Spaces, and tabs unless tab separates fields: skipped around fields.</summary>
    private bool IsBlank(int c) => c == ' ' || (c == '\t' && Separator != '\t');

    private void EndRecord()
    {
        TakeLineBreak();
        _recordDone = true;
    }

    private void Append(char c)
    {
        if (_fieldLength == _field.Length)
        {
            if (_fieldLength == MaxFieldChars)
            {
                throw new MeasurementInputException("data",
                    $"row {RecordLine} has a field longer than {MaxFieldChars} characters; fields hold single numbers");
            }
            Array.Resize(ref _field, Math.Min(_field.Length * 2, MaxFieldChars));
        }
        _field[_fieldLength++] = c;
    }

    private void SkipLineBreaks()
    {
        while (Peek() is '\r' or '\n') TakeLineBreak();
    }

    /// <summary>Consumes one line break (<c>\n</c>, <c>\r\n</c> or <c>\r</c>) if the reader is at one.</summary>
    private void TakeLineBreak()
    {
        var c = Peek();
        if (c == '\r')
        {
            Take();
            if (Peek() == '\n') Take();
            Line++;
        }
        else if (c == '\n')
        {
            Take();
            Line++;
        }
    }

    private int Peek()
    {
        if (_position == _length)
        {
            _length = reader.Read(_buffer, 0, _buffer.Length);
            _position = 0;
            if (_length <= 0)
            {
                _length = 0;
                return -1;
            }
        }
        return _buffer[_position];
    }

    private int Take()
    {
        var c = Peek();
        if (c >= 0) _position++;
        return c;
    }
}
