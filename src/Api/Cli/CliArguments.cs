using System.Globalization;
using LambdaService.Measurement;

namespace LambdaService.Api.Cli;

/// <summary>
/// Options of one verb: <c>--name value</c> pairs and bare <c>--flag</c>s. Unknown names, missing values and
/// repeated options are user errors (<see cref="MeasurementInputException"/>, exit code 2).
/// </summary>
public sealed class CliArguments
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Parses <paramref name="args"/>; <paramref name="flags"/> are options without a value, <paramref name="valued"/> take one.</summary>
    public CliArguments(IReadOnlyList<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> flags)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new MeasurementInputException("arguments", $"unexpected argument '{arg}'; options are written --name value.");
            }
            var name = arg[2..];
            string? value = null;
            var eq = name.IndexOf('=');
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            if (flags.Contains(name))
            {
                if (value is not null) throw new MeasurementInputException(name, $"--{name} takes no value.");
            }
            else if (valued.Contains(name))
            {
                if (value is null)
                {
                    if (i + 1 >= args.Count || (args[i + 1].StartsWith("--", StringComparison.Ordinal) && args[i + 1].Length > 2))
                    {
                        throw new MeasurementInputException(name, $"--{name} needs a value.");
                    }
                    value = args[++i];
                }
            }
            else
            {
                var known = string.Join(", ", valued.Concat(flags).Order().Select(k => "--" + k));
                throw new MeasurementInputException(name, $"unknown option --{name}; this verb accepts {known}.");
            }
            if (!_values.TryAdd(name, value)) throw new MeasurementInputException(name, $"--{name} is given twice.");
        }
    }

    /// <summary>Whether a flag or option was given.</summary>
    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>The option's text, or null.</summary>
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v : null;

    /// <summary>The option's text; a missing option is an error.</summary>
    public string Required(string name) => Get(name) ?? throw new MeasurementInputException(name, $"--{name} is required.");

    /// <summary>An integer option.</summary>
    public int? Int(string name, int min = int.MinValue, int max = int.MaxValue)
    {
        var text = Get(name);
        if (text is null) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
        {
            throw new MeasurementInputException(name, $"--{name} must be an integer between {min} and {max}; got '{text}'.");
        }
        return v;
    }

    /// <summary>A finite number option.</summary>
    public double? Double(string name)
    {
        var text = Get(name);
        if (text is null) return null;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            ? v
            : throw new MeasurementInputException(name, $"--{name} must be a number; got '{text}'.");
    }

    /// <summary>Two numbers <c>a,b</c>.</summary>
    public (double, double)? Pair(string name)
    {
        var text = Get(name);
        if (text is null) return null;
        var parts = text.Split(',');
        if (parts.Length != 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var a)
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var b))
        {
            throw new MeasurementInputException(name, $"--{name} must be two numbers separated by a comma, e.g. 0.45,0.65; got '{text}'.");
        }
        return (a, b);
    }

    /// <summary>An integer range <c>a-b</c> (a single number n means n-n).</summary>
    public (int, int)? Range(string name)
    {
        var text = Get(name);
        if (text is null) return null;
        var parts = text.Split('-');
        if (parts.Length is < 1 or > 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var a)
            || !int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var b))
        {
            throw new MeasurementInputException(name, $"--{name} must be a range of whole numbers such as 1-4; got '{text}'.");
        }
        return (a, b);
    }

    /// <summary>A shape of positive whole numbers <c>1,28,28</c>.</summary>
    public int[]? Shape(string name)
    {
        var text = Get(name);
        if (text is null) return null;
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var dims = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i]) || dims[i] < 1)
            {
                throw new MeasurementInputException(name, $"--{name} must be positive whole numbers separated by commas, e.g. 1,28,28; got '{text}'.");
            }
        }
        return dims;
    }
}
