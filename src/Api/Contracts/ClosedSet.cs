using System.Collections.Frozen;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using LambdaService.Measurement;

namespace LambdaService.Api.Contracts;

/// <summary>
/// The words of a closed set on the wire (JSON fields, command-line options, the OpenAPI document, the usage text), read from
/// an enum: each member in kebab-case (<c>FiniteDifference</c> → <c>finite-difference</c>) or its
/// <see cref="JsonStringEnumMemberNameAttribute"/>, in declaration order. Words match exactly (case and all), as the
/// string fields they replace did.
/// </summary>
public static class ClosedSet
{
    /// <summary>The words of <typeparamref name="T"/>, in declaration order.</summary>
    public static IReadOnlyList<string> Words<T>() where T : struct, Enum => Table<T>.Words;

    /// <summary>The words of the enum <paramref name="type"/> (or of the enum a <see cref="Nullable{T}"/> wraps), in declaration order.</summary>
    public static IReadOnlyList<string> Words(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var enumType = Nullable.GetUnderlyingType(type) ?? type;
        if (!enumType.IsEnum) throw new ArgumentException($"{type} is not an enum.", nameof(type));
        return Fields(enumType).Select(f => f.Word).ToArray();
    }

    /// <summary>The word of <paramref name="value"/>.</summary>
    public static string Word<T>(T value) where T : struct, Enum =>
        Table<T>.ByValue.TryGetValue(value, out var word) ? word : throw new ArgumentOutOfRangeException(nameof(value), value, $"not a member of {typeof(T).Name}.");

    /// <summary>The member whose word is <paramref name="text"/> (ordinal comparison).</summary>
    public static bool TryParse<T>(string? text, out T value) where T : struct, Enum
    {
        if (text is not null && Table<T>.ByWord.TryGetValue(text, out value)) return true;
        value = default;
        return false;
    }

    /// <summary>
    /// The member whose word is <paramref name="text"/>, null for null; an unknown word is a <see cref="MeasurementInputException"/>
    /// naming <paramref name="field"/>: <c>{field} '{text}' is not known; use one of a, b, c.</c>
    /// </summary>
    public static T? Parse<T>(string field, string? text) where T : struct, Enum
    {
        if (text is null) return null;
        return TryParse<T>(text, out var value) ? value : throw new MeasurementInputException(field, UnknownMessage(OneOfFormat(field), text, Words<T>()));
    }

    /// <summary>The words separated by commas: <c>a, b, c</c>.</summary>
    public static string OneOf(IEnumerable<string> words) => string.Join(", ", words);

    /// <summary>The words as a list with "or": <c>a, b or c</c>.</summary>
    public static string Or(IEnumerable<string> words)
    {
        var list = words.ToList();
        return list.Count <= 1 ? string.Concat(list) : string.Join(", ", list.Take(list.Count - 1)) + " or " + list[^1];
    }

    /// <summary>The usage-text form of the words: <c>a|b|c</c>.</summary>
    public static string Bar<T>() where T : struct, Enum => string.Join("|", Words<T>());

    /// <summary>The message format of a field whose unknown word reads <c>{field} 'x' is not known; use one of a, b, c.</c></summary>
    public static string OneOfFormat(string field) => field + " '{0}' is not known; use one of {1}.";

    /// <summary>
    /// An unknown-word message from <paramref name="format"/>: <c>{0}</c> the word sent, <c>{1}</c> the words as <see cref="OneOf"/>,
    /// <c>{2}</c> the words as <see cref="Or"/>.
    /// </summary>
    public static string UnknownMessage(string format, string text, IReadOnlyList<string> words) =>
        string.Format(CultureInfo.InvariantCulture, format, text, OneOf(words), Or(words));

    private static IEnumerable<(FieldInfo Field, string Word)> Fields(Type enumType) =>
        enumType.GetFields(BindingFlags.Public | BindingFlags.Static)
            .OrderBy(f => f.MetadataToken)
            .Select(f => (f, f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? JsonNamingPolicy.KebabCaseLower.ConvertName(f.Name)));

    private static class Table<T> where T : struct, Enum
    {
        public static readonly string[] Words = [.. Fields(typeof(T)).Select(f => f.Word)];

        public static readonly FrozenDictionary<T, string> ByValue = Fields(typeof(T)).ToFrozenDictionary(f => (T)f.Field.GetValue(null)!, f => f.Word);

        public static readonly FrozenDictionary<string, T> ByWord = Fields(typeof(T)).ToFrozenDictionary(f => f.Word, f => (T)f.Field.GetValue(null)!, StringComparer.Ordinal);
    }
}

/// <summary>
/// Reads and writes a closed-set property (an enum, or a nullable one) as its <see cref="ClosedSet"/> word, whatever converters the
/// serializer options carry (a property's converter comes first). A word outside the set is an <see cref="UnknownWordException"/>
/// with the field's own message, which the service answers as a 400 naming the field (its JSON path) — as the string fields did.
/// </summary>
/// <param name="format">The message for an unknown word (<see cref="ClosedSet.UnknownMessage"/>: <c>{0}</c> the word, <c>{1}</c> one-of list, <c>{2}</c> or-list).</param>
[AttributeUsage(AttributeTargets.Property)]
public sealed class WordsAttribute(string format) : JsonConverterAttribute
{
    /// <summary>The message for an unknown word.</summary>
    public string Format { get; } = format;

    /// <inheritdoc />
    public override JsonConverter? CreateConverter(Type typeToConvert)
    {
        ArgumentNullException.ThrowIfNull(typeToConvert);
        var enumType = Nullable.GetUnderlyingType(typeToConvert) ?? typeToConvert;
        return (JsonConverter)Activator.CreateInstance(typeof(WordConverter<>).MakeGenericType(enumType), Format)!;
    }
}

/// <summary>A word outside a closed set; <see cref="JsonException.Path"/> names the field once the serializer has thrown it.</summary>
public sealed class UnknownWordException(string message) : JsonException(message)
{
    /// <summary>The field: the JSON path without <c>$.</c> (<c>model.kind</c>, <c>base.method</c>), or <c>body</c>.</summary>
    public string Field => string.IsNullOrEmpty(Path) || Path == "$" ? "body" : Path.TrimStart('$', '.');
}

/// <summary>The converter behind <see cref="WordsAttribute"/>.</summary>
/// <typeparam name="T">The enum.</typeparam>
public sealed class WordConverter<T>(string format) : JsonConverter<T> where T : struct, Enum
{
    /// <inheritdoc />
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException();
        var text = reader.GetString()!;
        return ClosedSet.TryParse<T>(text, out var value) ? value : throw new UnknownWordException(ClosedSet.UnknownMessage(format, text, ClosedSet.Words<T>()));
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(ClosedSet.Word(value));
    }
}
