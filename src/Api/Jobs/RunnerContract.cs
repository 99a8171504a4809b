using System.Text.Json;
using LambdaService.Api.Measurements;
using LambdaService.Training;

namespace LambdaService.Api.Jobs;

/// <summary>
/// What a sandbox process is asked to do: written as JSON to a file and passed to the <c>runner</c> verb
/// (<c>runner --spec FILE --out FILE</c>). Paths are absolute paths inside the service's store.
/// </summary>
/// <param name="Kind"><c>measure</c> (needs <paramref name="ModelPath"/>, <paramref name="DataPath"/>, <paramref name="Request"/>) or <c>train</c> (needs <paramref name="Training"/>).</param>
/// <param name="ModelPath">The model file (measure).</param>
/// <param name="DataPath">The data file (measure), or the uploaded training data (train; null for built-in data).</param>
/// <param name="LabelColumn">CSV label column of <paramref name="DataPath"/>, or null for the default.</param>
/// <param name="MaxDecompressedBytes">Decompression limit for data files.</param>
/// <param name="Request">The measurement request (the HTTP body's options, same names as the CLI).</param>
/// <param name="Training">The training run (kind train).</param>
public sealed record RunnerSpec(
    string Kind,
    string? ModelPath,
    string? DataPath,
    string? LabelColumn,
    long MaxDecompressedBytes,
    MeasurementRequest? Request,
    TrainingRunnerSpec? Training = null);

/// <summary>The training part of a <see cref="RunnerSpec"/>.</summary>
/// <param name="Request">The resolved training request (library names: <c>data.kind</c> two-moons, mnist or dataset).</param>
/// <param name="TestDataPath">An uploaded test set, or null to split the training data by <c>data.testFraction</c>.</param>
/// <param name="TestLabelColumn">CSV label column of the test set.</param>
/// <param name="ExportDirectory">Where the runner writes <c>model.onnx</c> and <c>model.pt</c> of the trained network.</param>
public sealed record TrainingRunnerSpec(TrainingRequest Request, string? TestDataPath, string? TestLabelColumn, string ExportDirectory);

/// <summary>
/// Lines the runner writes on standard output, one JSON object per line:
/// <c>{"progress":0.42}</c> while it works. The result goes to the <c>--out</c> file, never to stdout:
/// on success the result JSON; on a user error (exit code 2) an object <c>{"field":…,"detail":…,"title":…}</c>.
/// </summary>
public static class RunnerProtocol
{
    /// <summary>Exit code for a user error (the out file holds <see cref="RunnerUserError"/>).</summary>
    public const int UserErrorExitCode = 2;

    /// <summary>JSON options for the spec, progress lines and results.</summary>
    public static readonly JsonSerializerOptions Json = Cli.CliJson.Options;
}

/// <summary>A user error reported by the runner (bad model or data content discovered while running).</summary>
/// <param name="Field">The input at fault (<see cref="Measurement.MeasurementInputException.Field"/>).</param>
/// <param name="Detail">What is wrong and what to do.</param>
/// <param name="Title">The problem's title where the error has its own (<see cref="Measurement.MeasurementInputException.Title"/>, e.g.
/// <c>Derivatives unreliable</c>); null for the job kind's generic title.</param>
public sealed record RunnerUserError(string Field, string Detail, string? Title = null);
