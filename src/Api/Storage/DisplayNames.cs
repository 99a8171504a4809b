namespace LambdaService.Api.Storage;

/// <summary>Display names given with an upload or a sweep.</summary>
public static class DisplayNames
{
    /// <summary>
    /// The name's last path segment without control characters, trimmed and cut to 200 characters; null when nothing is left
    /// (the caller then uses its default, e.g. the file name).
    /// </summary>
    public static string? Clean(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return null;
        var file = Path.GetFileName(name.Replace('\\', '/'));
        var cleaned = new string(file.Where(c => !char.IsControl(c)).ToArray()).Trim();
        return cleaned.Length == 0 ? null : cleaned[..Math.Min(cleaned.Length, 200)];
    }
}
