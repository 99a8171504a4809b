using System.Globalization;

namespace LambdaService.Measurement.Estimation;

/// <summary>Class pairs written <c>"a-b"</c> (e.g. <c>"4-9"</c>), as the CLI, the HTTP API and training requests take them.</summary>
public static class ClassPair
{
    /// <summary>Parses <c>"a-b"</c> with two non-negative whole numbers; false for anything else.</summary>
    public static bool TryParse(string? text, out int a, out int b)
    {
        a = b = 0;
        var parts = (text ?? "").Split('-');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out a)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out b);
    }
}
