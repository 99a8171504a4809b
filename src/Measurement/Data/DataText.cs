using System.Globalization;
using System.Text;

namespace LambdaService.Measurement.Data;

/// <summary>Formatting helpers for the one-line messages of data errors.</summary>
internal static class DataText
{
    private const int MaxClipped = 60;

    /// <summary>
    /// Makes untrusted text safe to quote in a one-line message: control characters become <c>?</c>
    /// and text longer than <paramref name="max"/> characters (default 60) is cut with an ellipsis.
    /// </summary>
    public static string Clip(ReadOnlySpan<char> text, int max = MaxClipped)
    {
        var builder = new StringBuilder(Math.Min(text.Length, max + 1));
        foreach (var c in text)
        {
            if (builder.Length == max)
            {
                builder.Append('…');
                break;
            }
            builder.Append(char.IsControl(c) ? '?' : c);
        }
        return builder.ToString();
    }

    /// <summary>The message of a library exception, made safe and short enough to quote in a one-line message.</summary>
    public static string Detail(Exception e) => Clip(e.Message.TrimEnd('.'), 160);

    /// <summary>Formats a shape as a Python tuple, as NumPy prints it: <c>()</c>, <c>(3,)</c>, <c>(3, 4)</c>.</summary>
    public static string Tuple(IReadOnlyList<long> shape) => shape.Count switch
    {
        0 => "()",
        1 => $"({shape[0].ToString(CultureInfo.InvariantCulture)},)",
        _ => "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")",
    };

    /// <summary>Formats a shape as a list, dynamic (non-positive) dimensions as <c>?</c>: <c>[1, 28, 28]</c>.</summary>
    public static string List(IEnumerable<long> shape) =>
        "[" + string.Join(", ", shape.Select(d => d > 0 ? d.ToString(CultureInfo.InvariantCulture) : "?")) + "]";

    /// <summary>Lists up to ten names, clipped, followed by the total when there are more.</summary>
    /// <param name="names">The names, or at least the first eleven of them.</param>
    /// <param name="total">How many names there are in all (default: as many as given).</param>
    public static string Names(IReadOnlyList<string> names, int? total = null)
    {
        const int shown = 10;
        var count = total ?? names.Count;
        var listed = string.Join(", ", names.Take(shown).Select(n => $"'{Clip(n)}'"));
        return count > shown ? $"{listed}, … ({count} in all)" : listed;
    }

    /// <summary>Formats a number with the invariant culture, in the shortest form that round-trips.</summary>
    public static string Number(double value) => value switch
    {
        double.NaN => "NaN",
        double.PositiveInfinity => "+inf",
        double.NegativeInfinity => "-inf",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };
}
