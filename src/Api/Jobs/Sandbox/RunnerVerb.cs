using System.Globalization;
using System.Text;
using System.Text.Json;
using LambdaService.Api.Cli;
using LambdaService.Api.Training;
using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Training;
using LambdaService.Training.Export;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>
/// <c>runner --spec FILE --out FILE [--parent-pid PID]</c>: the sandbox process (internal; started by
/// <see cref="SandboxProcess"/>, not by people). It runs one <see cref="RunnerSpec"/> and speaks
/// <see cref="RunnerProtocol"/>: progress lines on standard output, the result JSON in the out file and exit code 0;
/// a user error as <see cref="RunnerUserError"/> in the out file and exit code 2 (a model or data file that cannot be loaded
/// among them, <see cref="MeasurementInputException.Loading{T}"/>); phase lines (<see cref="RunnerPhase"/>) around the loading; any other failure as one line on
/// standard error and exit code 1. Native code (libtorch, ONNX Runtime) may still end the process with a signal;
/// the parent reports that. The process ends itself (exit code 137) as soon as its parent has gone.
/// </summary>
public static class RunnerVerb
{
    /// <summary>The verb's name on the command line.</summary>
    public const string Name = "runner";

    /// <summary>Exit code for an internal error (bad invocation, unreadable spec, unexpected exception).</summary>
    public const int InternalErrorExitCode = 1;

    /// <summary>Exit code when the run was canceled (Ctrl+C, SIGTERM).</summary>
    public const int CanceledExitCode = 130;

    private static readonly string[] Valued = ["spec", "out", "parent-pid"];

    /// <summary>Runs the verb; <paramref name="args"/> are the arguments after <c>runner</c>. Returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        string specPath, outPath;
        int? parentPid;
        try
        {
            var a = new CliArguments(args, Valued, []);
            specPath = a.Required("spec");
            outPath = a.Required("out");
            parentPid = a.Int("parent-pid", 1);
        }
        catch (MeasurementInputException e)
        {
            return Fail(stderr, $"bad invocation: {e.Message}");
        }

        // First of all, so that an orphaned runner never gets as far as loading a model.
        if (!ParentWatchdog.Start(parentPid)) stderr.WriteLine("runner: warning: no parent watchdog on this platform.");

        try
        {
            var spec = JsonSerializer.Deserialize<RunnerSpec>(File.ReadAllText(specPath), RunnerProtocol.Json)
                ?? throw new InvalidDataException("the spec file holds null.");
            if (spec.Kind is not ("measure" or "train"))
            {
                return Fail(stderr, $"unknown job kind '{spec.Kind}'.");
            }
            var progress = new ThrottledProgressWriter(stdout);
            progress.ReportNow(0);
            var json = spec.Kind == "train"
                ? JsonSerializer.Serialize(Train(spec, progress, ct), RunnerProtocol.Json)
                : JsonSerializer.Serialize(Measure(spec, progress, progress.ReportPhase, ct), RunnerProtocol.Json);
            progress.ReportNow(1);
            WriteAtomically(outPath, json);
            return 0;
        }
        catch (MeasurementInputException e)
        {
            try
            {
                WriteAtomically(outPath, JsonSerializer.Serialize(new RunnerUserError(e.Field, e.Message, e.Title), RunnerProtocol.Json));
            }
            catch (Exception write) when (write is IOException or UnauthorizedAccessException)
            {
                return Fail(stderr, $"cannot write the out file: {write.Message}");
            }
            return RunnerProtocol.UserErrorExitCode;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            stderr.WriteLine("runner: canceled.");
            return CanceledExitCode;
        }
        catch (Exception e)
        {
            return Fail(stderr, $"{e.GetType().Name}: {MeasurementInputException.FirstLine(e.Message)}");
        }
    }

    /// <summary>
    /// The measurement of <paramref name="spec"/>: the same options (<see cref="MeasurementRequest.ToOptions"/>) and
    /// the same steps as <see cref="CurvatureRate.Measure"/> (<see cref="CurvatureRate.Load"/>, then the estimate), announcing
    /// <see cref="RunnerPhase.Load"/> before the first and <see cref="RunnerPhase.Run"/> before the second through <paramref name="onPhase"/>.
    /// </summary>
    public static MeasurementResult Measure(RunnerSpec spec, IProgress<double>? progress, Action<string>? onPhase, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Request is null || spec.ModelPath is null || spec.DataPath is null) throw new InvalidDataException("a measure spec needs a model, data and a request.");
        var options = spec.Request.ToOptions();
        var dataOptions = new DataReadOptions
        {
            LabelColumn = spec.LabelColumn ?? new DataReadOptions().LabelColumn,
            MaxDecompressedBytes = spec.MaxDecompressedBytes > 0 ? spec.MaxDecompressedBytes : new DataReadOptions().MaxDecompressedBytes,
        };
        // The same front door as the CLI's measure verb: the stored upload is detected by content.
        onPhase?.Invoke(RunnerPhase.Load);
        using var loaded = CurvatureRate.Load(spec.ModelPath, spec.DataPath, options, dataOptions);
        onPhase?.Invoke(RunnerPhase.Run);
        return CurvatureRate.Estimate(loaded.Runner, loaded.Data, options, progress, ct);
    }

    /// <summary>
    /// The training run of <paramref name="spec"/> (<see cref="TrainingRun.Train"/> on the data it names), reporting
    /// one progress line per epoch (value <c>0.95 · epoch / epochs</c>; the final measurement takes the rest) with the
    /// epoch's figures as detail, then writing the trained network as <c>model.onnx</c> and <c>model.pt</c> to the
    /// spec's export folder. Returns the result (the same JSON as <c>train --json</c>).
    /// </summary>
    internal static TrainingResult Train(RunnerSpec spec, ThrottledProgressWriter progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var training = spec.Training ?? throw new InvalidDataException("a train spec needs its training part.");
        var request = training.Request;
        var limit = spec.MaxDecompressedBytes > 0 ? spec.MaxDecompressedBytes : new DataReadOptions().MaxDecompressedBytes;
        progress.ReportPhase(RunnerPhase.Load);
        var data = MeasurementInputException.Loading("dataset.datasetId", "the training data", () => TrainingInputs.Load(request, spec.DataPath,
            new DataReadOptions { LabelColumn = spec.LabelColumn ?? new DataReadOptions().LabelColumn, MaxDecompressedBytes = limit },
            training.TestDataPath,
            new DataReadOptions { LabelColumn = training.TestLabelColumn ?? new DataReadOptions().LabelColumn, MaxDecompressedBytes = limit },
            "dataset.datasetId", "dataset.testDatasetId"));
        progress.ReportPhase(RunnerPhase.Run);
        var epochs = new EpochReporter(progress);
        using var outcome = TrainingRun.Train(request, data, epochs, ct);
        Directory.CreateDirectory(training.ExportDirectory);
        ModelExport.Write(outcome.Model.Network, training.ExportDirectory);
        return outcome.Result;
    }

    /// <summary>Turns each finished epoch into a progress line with its figures (synchronously, on the training thread).</summary>
    private sealed class EpochReporter(ThrottledProgressWriter writer) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => writer.ReportDetail(0.95 * value.Fraction, value);
    }

    /// <summary>Writes <paramref name="text"/> to a temporary file beside <paramref name="path"/>, then renames it over <paramref name="path"/>.</summary>
    internal static void WriteAtomically(string path, string text)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full) ?? ".", "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine("runner: " + message);
        stderr.Flush();
        return InternalErrorExitCode;
    }
}
