using System.Text.Json;
using LambdaService.Api.Measurements;

namespace LambdaService.Api.Jobs;

/// <summary>
/// What a sandbox process is asked to do: written as JSON to a file and passed to the <c>runner</c> verb
/// (<c>runner --spec FILE --out FILE</c>). Paths are absolute paths inside the service's store.
/// </summary>
/// <param name="Kind">Job kind; <c>measure</c> today.</param>
/// <param name="ModelPath">The model file.</param>
/// <param name="DataPath">The data file.</param>
/// <param name="LabelColumn">CSV label column, or null for the default.</param>
/// <param name="MaxDecompressedBytes">Decompression limit for the data file.</param>
/// <param name="Request">The measurement request (the HTTP body's options, same names as the CLI).</param>
public sealed record RunnerSpec(
    string Kind,
    string ModelPath,
    string DataPath,
    string? LabelColumn,
    long MaxDecompressedBytes,
    MeasurementRequest Request);

/// <summary>
/// Lines the runner writes on standard output, one JSON object per line:
/// <c>{"progress":0.42}</c> while it works. The result goes to the <c>--out</c> file, never to stdout:
/// on success the result JSON; on a user error (exit code 2) an object <c>{"field":…,"detail":…}</c>.
/// </summary>
public static class RunnerProtocol
{
    /// <summary>Exit code for a user error (the out file holds <see cref="RunnerUserError"/>).</summary>
    public const int UserErrorExitCode = 2;

    /// <summary>JSON options for the spec, progress lines and results.</summary>
    public static readonly JsonSerializerOptions Json = Cli.CliJson.Options;
}

/// <summary>A user error reported by the runner (bad model or data content discovered while running).</summary>
public sealed record RunnerUserError(string Field, string Detail);
