using System.Globalization;
using System.Text.Json;
using LambdaService.Api.Contracts;
using LambdaService.Api.Sweeps;
using LambdaService.Measurement;
using LambdaService.Training;
using LambdaService.Training.Sweeps;

namespace LambdaService.Api.Cli;

/// <summary>
/// <c>sweep --request FILE.json [--json]</c>: the grid of a <c>POST /v1/sweeps</c> body run here, one training run after
/// the other, with the same per-cell statistics and λ–error correlation as the service reports.
/// </summary>
public static class SweepVerb
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, ["request", "max-runs"], ["json"]);
        var path = a.Required("request");
        SweepRequest request;
        try
        {
            request = JsonSerializer.Deserialize<SweepRequest>(File.ReadAllText(path), Json) ?? throw new MeasurementInputException("request", "the request file holds null.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MeasurementInputException("request", $"cannot read '{path}': {e.Message}", e);
        }
        catch (UnknownWordException e)
        {
            // A word outside a closed set in the file's base (e.g. base.method): the field's own message, as the service answers it.
            throw new MeasurementInputException(e.Field, e.Message, e);
        }
        catch (JsonException e)
        {
            throw new MeasurementInputException("request", $"'{path}' is not a sweep request: {e.Message}", e);
        }
        var cells = SweepPlan.Expand(request, a.Int("max-runs", 1) ?? 1000);
        if (cells.SelectMany(c => c.Runs).Any(r => r.Dataset?.DatasetId is not null))
        {
            throw new MeasurementInputException("base.dataset.datasetId", "dataset ids name uploads of the service; the command line sweeps built-in data (two-moons, mnist).");
        }

        var states = new List<SweepRunState>();
        var total = cells.Sum(c => c.Runs.Count);
        foreach (var (cell, index) in cells.Select((c, i) => (c, i)))
        {
            foreach (var run in cell.Runs)
            {
                var result = TrainingRun.Run(run.ToTrainingRequest(), null, cancellationToken);
                states.Add(new SweepRunState(index, $"run-{states.Count + 1}", "succeeded", JsonSerializer.Serialize(result, CliJson.Options)));
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"sweep: run {states.Count}/{total} ({SweepPlan.Label(cell.Parameters)}, seed {run.Seed ?? 0}): test error {result.TestError:F4}, λ {result.Lambda?.Lambda:F4}"));
            }
        }
        var summary = SweepReport.Build(cells.Select(c => c.Parameters).ToList(), states);
        if (a.Has("json"))
        {
            stdout.WriteLine(CliJson.Serialize(new { request, summary }));
            return 0;
        }
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine($"{summary.Counts.Succeeded} runs in {summary.Cells.Count} cells");
        stdout.WriteLine("cell | runs | test error (mean [95% CI]) | λ (mean [95% CI]) | ECE | hardest-20% acc. | training s");
        foreach (var cell in summary.Cells)
        {
            var m = cell.Metrics;
            stdout.WriteLine($"{SweepPlan.Label(cell.Parameters)} | {cell.Counts.Succeeded} | {Format(m.TestError, c)} | {Format(m.Lambda, c)} | {Format(m.Ece, c)} | {Format(m.Hard20Accuracy, c)} | {Format(m.TrainingSeconds, c)}");
        }
        stdout.WriteLine(summary.LambdaVsTestError is { } r
            ? string.Create(c, $"λ vs test error over {r.Count} runs: Pearson r = {r.R:F3} (permutation p = {r.PValue:G3}), slope {r.Slope:F4} [95% CI {r.SlopeCi95?[0]:F4}, {r.SlopeCi95?[1]:F4}]")
            : $"λ vs test error: {summary.CorrelationNote}");
        return 0;
    }

    private static string Format(Summary? s, CultureInfo c) => s is null
        ? "n/a"
        : s.Ci95 is [var lo, var hi] ? string.Create(c, $"{s.Mean:F4} [{lo:F4}, {hi:F4}]") : string.Create(c, $"{s.Mean:F4}");
}
