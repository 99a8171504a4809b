using System.Text.Json;

namespace LambdaService.Api.Hosting;

/// <summary>Numbers read back from stored result JSON (measurement and training results, sweep summaries, plots).</summary>
public static class ResultNumbers
{
    /// <summary>A number of a stored result (JSON numbers, or the named literals NaN/Infinity that results may carry).</summary>
    public static double Number(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Number => element.GetDouble(),
        JsonValueKind.String when double.TryParse(element.GetString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) => v,
        JsonValueKind.String => element.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            _ => double.NaN,
        },
        _ => double.NaN,
    };
}
