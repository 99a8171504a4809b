using System.Text.Json;
using System.Text.Json.Serialization;

namespace LambdaService.Api.Cli;

/// <summary>JSON settings shared by every verb's <c>--json</c> output (camelCase, enums as words).</summary>
public static class CliJson
{
    /// <summary>The serializer options.</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    /// <summary>Serialises a result.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);
}
