using System.Text;

namespace LambdaService.Measurement.Data;

/// <summary>Raised by <see cref="PythonLiteral"/> for text that is not a literal it accepts.</summary>
internal sealed class PythonLiteralException(string message) : Exception(message);

/// <summary>A Python tuple or list read by <see cref="PythonLiteral"/>.</summary>
/// <param name="Items">The elements.</param>
/// <param name="IsTuple">True for a tuple, false for a list.</param>
internal sealed record PythonSequence(IReadOnlyList<object?> Items, bool IsTuple);

/// <summary>
/// Parses (never evaluates) the small subset of Python literals used by NumPy headers: dicts with string keys,
/// tuples, lists, strings, integers, <c>True</c>, <c>False</c> and <c>None</c>. Values come back as
/// <see cref="Dictionary{TKey,TValue}"/>, <see cref="PythonSequence"/>, <see cref="string"/>, <see cref="long"/>,
/// <see cref="bool"/> or null for <c>None</c>.
/// </summary>
internal sealed class PythonLiteral
{
    private const int MaxDepth = 16;
    private readonly string _text;
    private int _pos;

    private PythonLiteral(string text) => _text = text;

    /// <summary>Parses <paramref name="text"/> as a single literal with optional surrounding whitespace.</summary>
    /// <exception cref="PythonLiteralException">The text is not such a literal.</exception>
    public static object? Parse(string text)
    {
        var parser = new PythonLiteral(text);
        parser.SkipSpace();
        var value = parser.ParseValue(0);
        parser.SkipSpace();
        if (parser._pos != text.Length) throw parser.Error("unexpected text after the value");
        return value;
    }

    private object? ParseValue(int depth)
    {
        if (depth > MaxDepth) throw Error("nested too deeply");
        if (_pos >= _text.Length) throw Error("unexpected end");
        var c = _text[_pos];
        return c switch
        {
            '{' => ParseDict(depth),
            '(' => ParseSequence(')', isTuple: true, depth),
            '[' => ParseSequence(']', isTuple: false, depth),
            '\'' or '"' => ParseString(),
            '-' or '+' or (>= '0' and <= '9') => ParseInteger(),
            _ when char.IsAsciiLetter(c) || c == '_' => ParseName(),
            _ => throw Error($"unexpected character '{DataText.Clip(c.ToString())}'"),
        };
    }

    private Dictionary<string, object?> ParseDict(int depth)
    {
        _pos++;
        var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
        SkipSpace();
        while (!TryTake('}'))
        {
            if (ParseValue(depth + 1) is not string key) throw Error("a dictionary key is not a string");
            SkipSpace();
            if (!TryTake(':')) throw Error("expected ':' after a dictionary key");
            SkipSpace();
            var value = ParseValue(depth + 1);
            if (!dict.TryAdd(key, value)) throw Error($"the key '{DataText.Clip(key)}' appears twice");
            SkipSpace();
            if (TryTake(',')) SkipSpace();
            else if (!TryTake('}')) throw Error("expected ',' or '}' in a dictionary");
            else break;
        }
        return dict;
    }

    private object? ParseSequence(char close, bool isTuple, int depth)
    {
        _pos++;
        var items = new List<object?>();
        var sawComma = false;
        SkipSpace();
        while (!TryTake(close))
        {
            items.Add(ParseValue(depth + 1));
            SkipSpace();
            if (TryTake(','))
            {
                sawComma = true;
                SkipSpace();
            }
            else if (!TryTake(close)) throw Error($"expected ',' or '{close}'");
            else break;
        }
        // "(3)" is a parenthesised 3, not a tuple; "(3,)" and "()" are tuples.
        if (isTuple && items.Count == 1 && !sawComma) return items[0];
        return new PythonSequence(items, isTuple);
    }

    private string ParseString()
    {
        var quote = _text[_pos++];
        var builder = new StringBuilder();
        while (true)
        {
            if (_pos >= _text.Length) throw Error("a string is not closed");
            var c = _text[_pos++];
            if (c == quote) return builder.ToString();
            if (c is '\n' or '\r') throw Error("a string runs past the end of the line");
            if (c != '\\')
            {
                builder.Append(c);
                continue;
            }
            if (_pos >= _text.Length) throw Error("a string is not closed");
            var escaped = _text[_pos++];
            builder.Append(escaped switch
            {
                'n' => "\n",
                't' => "\t",
                'r' => "\r",
                '\\' or '\'' or '"' => escaped.ToString(),
                _ => "\\" + escaped,
            });
        }
    }

    private long ParseInteger()
    {
        var negative = _text[_pos] == '-';
        if (_text[_pos] is '-' or '+') _pos++;
        var start = _pos;
        long value = 0;
        while (_pos < _text.Length && (char.IsAsciiDigit(_text[_pos]) || (_text[_pos] == '_' && _pos > start)))
        {
            if (_text[_pos] != '_')
            {
                var digit = _text[_pos] - '0';
                if (value > (long.MaxValue - digit) / 10) throw Error("a number is too large");
                value = value * 10 + digit;
            }
            _pos++;
        }
        if (_pos == start) throw Error("expected a number");
        if (_pos < _text.Length && _text[_pos] is 'L' or 'l') _pos++; // Python 2 long literal, e.g. (3L, 4L)
        if (_pos < _text.Length && (char.IsAsciiLetterOrDigit(_text[_pos]) || _text[_pos] == '.'))
        {
            throw Error("only whole numbers are allowed");
        }
        return negative ? -value : value;
    }

    private object? ParseName()
    {
        var start = _pos;
        while (_pos < _text.Length && (char.IsAsciiLetterOrDigit(_text[_pos]) || _text[_pos] == '_')) _pos++;
        var name = _text[start.._pos];
        return name switch
        {
            "True" => true,
            "False" => false,
            "None" => null,
            _ => throw Error($"the name '{DataText.Clip(name)}' is not a literal"),
        };
    }

    private bool TryTake(char c)
    {
        if (_pos < _text.Length && _text[_pos] == c)
        {
            _pos++;
            return true;
        }
        return false;
    }

    private void SkipSpace()
    {
        while (_pos < _text.Length && _text[_pos] is ' ' or '\t' or '\n' or '\r') _pos++;
    }

    private PythonLiteralException Error(string what) => new($"{what} at character {_pos}");
}
