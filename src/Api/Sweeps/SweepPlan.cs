using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using LambdaService.Api.Contracts;
using LambdaService.Api.Measurements;
using LambdaService.Api.Training;
using LambdaService.Measurement;

namespace LambdaService.Api.Sweeps;

/// <summary>
/// A sweep: a base training request and a grid of values for some of its fields. Every combination of the grid's
/// values is one run; the combinations of the factors other than <c>seed</c> are the cells, and the seeds are a
/// cell's replicates.
/// </summary>
public sealed record SweepRequest(
    [property: Description("A name of your choice.")] string? Name = null,
    [property: Description("The training request every run starts from (POST /v1/training-runs body).")] TrainingRunRequest? Base = null,
    [property: Description("Factor → values. Keys are paths into the training request: method, crr.scale, crr.orders, dataset.labelNoise, model.hidden, seed, …")]
    Dictionary<string, JsonElement[]>? Grid = null,
    [property: Description("Shorthand for the factor seed = [0, 1, …, seeds−1] (not together with grid.seed).")] int? Seeds = null);

/// <summary>One cell of a sweep: its factor values (seed excluded) and its runs' requests, one per seed.</summary>
public sealed record SweepCellPlan(IReadOnlyDictionary<string, JsonElement> Parameters, IReadOnlyList<TrainingRunRequest> Runs);

/// <summary>Expands a <see cref="SweepRequest"/> into cells and runs, checking every run before any is queued.</summary>
public static class SweepPlan
{
    /// <summary>The factor that makes replicates rather than cells.</summary>
    public const string SeedKey = "seed";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Every path a grid key may name (camelCase, dot-separated), from the request records themselves.</summary>
    public static IReadOnlySet<string> Paths { get; } = CollectPaths(typeof(TrainingRunRequest), "").ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The cells of <paramref name="request"/> in grid order (the first factor varies slowest; keys in the order given),
    /// each with its runs in seed order. Each run's request is validated as POST /v1/training-runs would.
    /// </summary>
    /// <exception cref="MeasurementInputException">An unknown key, an empty or mistyped value list, more runs than <paramref name="maxRuns"/>,
    /// or a run that would be refused (field <c>grid.{key}</c> or <c>base.{field}</c>).</exception>
    public static IReadOnlyList<SweepCellPlan> Expand(SweepRequest request, int maxRuns)
    {
        ArgumentNullException.ThrowIfNull(request);
        var grid = new List<(string Key, JsonElement[] Values)>();
        foreach (var (key, values) in request.Grid ?? [])
        {
            if (!Paths.Contains(key))
            {
                throw new MeasurementInputException($"grid.{key}", $"'{key}' is not a field of a training request; use paths such as method, crr.scale, dataset.labelNoise, model.hidden or seed.");
            }
            if (values is null || values.Length == 0) throw new MeasurementInputException($"grid.{key}", $"grid.{key} needs at least one value, e.g. [0.001, 0.01].");
            grid.Add((key, values));
        }
        if (request.Seeds is { } seeds)
        {
            if (grid.Any(g => g.Key == SeedKey)) throw new MeasurementInputException("seeds", "give seeds or grid.seed, not both.");
            if (seeds is < 1 or > 10_000) throw new MeasurementInputException("seeds", $"seeds must be between 1 and 10000 (got {seeds}).");
            grid.Add((SeedKey, Enumerable.Range(0, seeds).Select(s => JsonSerializer.SerializeToElement(s)).ToArray()));
        }
        var total = grid.Aggregate(1L, (n, g) => n * g.Values.Length);
        if (total > maxRuns)
        {
            throw new MeasurementInputException("grid", $"the grid makes {total} runs; at most {maxRuns} are allowed per sweep (Limits:MaxSweepRuns). Split it into several sweeps.");
        }

        var baseNode = JsonSerializer.SerializeToNode(request.Base ?? new TrainingRunRequest(), Json)!.AsObject();
        var factors = grid.Where(g => g.Key != SeedKey).ToList();
        var seedValues = grid.FirstOrDefault(g => g.Key == SeedKey).Values;
        var cells = new List<SweepCellPlan>();
        foreach (var combination in Combinations(factors))
        {
            var runs = new List<TrainingRunRequest>();
            foreach (var seed in seedValues ?? [default])
            {
                var node = baseNode.DeepClone().AsObject();
                foreach (var (key, value) in combination) Set(node, key, value);
                if (seedValues is not null) Set(node, SeedKey, seed);
                runs.Add(Check(node, combination.Select(c => c.Key).Append(SeedKey).ToHashSet(StringComparer.Ordinal)));
            }
            cells.Add(new SweepCellPlan(combination.ToDictionary(c => c.Key, c => c.Value.Clone(), StringComparer.Ordinal), runs));
        }
        return cells;
    }

    /// <summary>A cell's label for plots and tables, e.g. <c>method=crr, dataset.labelNoise=0.3</c> (<paramref name="except"/> left out).</summary>
    public static string Label(IReadOnlyDictionary<string, JsonElement> parameters, params string[] except)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var parts = parameters.Where(p => !except.Contains(p.Key)).Select(p => $"{p.Key}={(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText())}");
        var label = string.Join(", ", parts);
        return label.Length == 0 ? "all runs" : label;
    }

    private static TrainingRunRequest Check(JsonObject node, HashSet<string> gridKeys)
    {
        TrainingRunRequest run;
        try
        {
            run = node.Deserialize<TrainingRunRequest>(Json) ?? throw new MeasurementInputException("base", "the base request is null.");
        }
        catch (UnknownWordException e)
        {
            // A word outside a closed set, e.g. grid.method ["xyz"]: named as the library's check named it when the field was a string.
            var path = e.Field;
            var key = gridKeys.FirstOrDefault(k => path == k || path.StartsWith(k + ".", StringComparison.Ordinal));
            throw new MeasurementInputException(key is null ? $"base.{path}" : $"grid.{key}", e.Message, e);
        }
        catch (JsonException e)
        {
            var path = (e.Path ?? "$").TrimStart('$', '.');
            var key = gridKeys.FirstOrDefault(k => path == k || path.StartsWith(k + ".", StringComparison.Ordinal) || path.StartsWith(k + "[", StringComparison.Ordinal));
            throw new MeasurementInputException(key is null ? $"base.{path}" : $"grid.{key}", $"a value has the wrong type for '{path}': {e.Message.Split('.')[0]}.", e);
        }
        try
        {
            run.ToTrainingRequest();
        }
        catch (MeasurementInputException e)
        {
            var key = gridKeys.FirstOrDefault(k => e.Field == k || e.Field.StartsWith(k + ".", StringComparison.Ordinal) || k.StartsWith(e.Field + ".", StringComparison.Ordinal));
            throw new MeasurementInputException(key is null ? $"base.{e.Field}" : $"grid.{key}", e.Message, e);
        }
        return run;
    }

    private static void Set(JsonObject root, string path, JsonElement value)
    {
        var segments = path.Split('.');
        var node = root;
        foreach (var segment in segments[..^1])
        {
            if (node[segment] is not JsonObject child)
            {
                child = new JsonObject();
                node[segment] = child;
            }
            node = child;
        }
        node[segments[^1]] = JsonNode.Parse(value.GetRawText());
    }

    private static IEnumerable<List<(string Key, JsonElement Value)>> Combinations(List<(string Key, JsonElement[] Values)> factors)
    {
        if (factors.Count == 0)
        {
            yield return [];
            yield break;
        }
        foreach (var value in factors[0].Values)
        {
            foreach (var rest in Combinations(factors[1..]))
            {
                yield return [(factors[0].Key, value), .. rest];
            }
        }
    }

    private static IEnumerable<string> CollectPaths(Type type, string prefix)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.DeclaringType == typeof(object)) continue;
            if (property.Name == "EqualityContract") continue;
            var path = prefix + JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            yield return path;
            var inner = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (inner.Namespace is "LambdaService.Api.Training" || inner == typeof(OrderRange))
            {
                foreach (var child in CollectPaths(inner, path + ".")) yield return child;
            }
        }
    }
}
