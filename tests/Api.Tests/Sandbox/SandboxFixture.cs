using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LambdaService.Api.Jobs;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Measurements;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using Microsoft.Extensions.Logging;

namespace LambdaService.Api.Tests.Sandbox;

/// <summary>The sandbox tests start real child processes: they run one after another, sharing one set of files.</summary>
[CollectionDefinition(Name)]
public sealed class SandboxCollection : ICollectionFixture<SandboxFixture>
{
    public const string Name = "Sandbox";
}

/// <summary>
/// A temporary folder with small models (an ONNX and a TorchScript tanh MLP with the same weights, a TorchScript
/// archive whose forward does not compile), CSV data (good, with a non-numeric cell, with labels out of range,
/// a large one for slow jobs) and the command that starts the built runner.
/// </summary>
public sealed class SandboxFixture : IDisposable
{
    public SandboxFixture()
    {
        Folder = Path.Combine(Path.GetTempPath(), "lambdaservice-sandbox-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        var rng = new Random(11);
        float R() => (float)(rng.NextDouble() * 2 - 1);
        var w1 = new float[8, 2];
        var w2 = new float[2, 8];
        for (var i = 0; i < 8; i++)
        {
            w1[i, 0] = 2 * R();
            w1[i, 1] = 2 * R();
            w2[0, i] = R();
            w2[1, i] = R();
        }
        float[][,] weights = [w1, w2];
        float[][] biases = [Enumerable.Range(0, 8).Select(_ => R()).ToArray(), [0.1f, -0.1f]];
        OnnxModelBuilder.Save(OnnxModelBuilder.Mlp(weights, biases), OnnxPath);
        TorchScriptWriter.Write(TorchScriptPath, TorchScriptWriter.Mlp(weights, biases));
        TorchScriptWriter.Write(BrokenTorchScriptPath, new TorchScriptModuleSpec(
            "Broken", [new TorchScriptParameter("w", [2], [1f, 2f])], "return torch.no_such_op(x)"));

        File.WriteAllText(CsvPath, Csv(rng, 40, label: (x1, x2) => x1 + x2 > 0 ? "1" : "0"));
        File.WriteAllText(BigCsvPath, Csv(rng, 4000, label: (x1, x2) => x1 + x2 > 0 ? "1" : "0"));
        File.WriteAllText(LabelsOutOfRangeCsvPath, Csv(rng, 20, label: (x1, _) => x1 > 0 ? "5" : "0"));
        var bad = Csv(rng, 10, label: (_, _) => "0").Split('\n');
        bad[4] = "0.5,abc,1";
        File.WriteAllText(NonNumericCsvPath, string.Join('\n', bad));
    }

    public string Folder { get; }

    public string OnnxPath => Path.Combine(Folder, "mlp.onnx");

    public string TorchScriptPath => Path.Combine(Folder, "mlp.pt");

    public string BrokenTorchScriptPath => Path.Combine(Folder, "broken.pt");

    public string CsvPath => Path.Combine(Folder, "points.csv");

    public string BigCsvPath => Path.Combine(Folder, "big.csv");

    public string NonNumericCsvPath => Path.Combine(Folder, "non-numeric.csv");

    public string LabelsOutOfRangeCsvPath => Path.Combine(Folder, "labels-5.csv");

    /// <summary>The dotnet host that runs the tests.</summary>
    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>The built service beside the test assembly.</summary>
    public static string ApiDll => Path.Combine(AppContext.BaseDirectory, "LambdaService.Api.dll");

    /// <summary>The runner command for <see cref="SandboxOptions.RunnerCommand"/> (the test host is not the service).</summary>
    public static string RunnerCommand => $"{DotnetHost} {ApiDll}";

    /// <summary>Limits no test job comes near (each takes a few seconds).</summary>
    public static SandboxLimits Roomy => new(TimeSpan.FromSeconds(60), 8L << 30);

    /// <summary>
    /// A job that runs for minutes: nested autograd to order 8 on all 4000 points, 256 directions each. (With 16 directions
    /// the runner sometimes finished within 1.5 s once the glibc malloc tuning made nested autograd about 1.7× faster, and
    /// the watchdog test that needs a runner still alive after 1.5 s failed about half the time.)
    /// </summary>
    public RunnerSpec SlowSpec() => Spec(TorchScriptPath, BigCsvPath,
        new MeasurementRequest("", "", Points: PointSelection.All, Orders: new OrderRange(1, 8), Directions: 256, MaxPoints: 4000, Engine: EngineChoice.Autograd));

    public static RunnerSpec Spec(string model, string data, MeasurementRequest request) =>
        new("measure", model, data, null, 1L << 30, request);

    /// <summary>A sandbox whose job folders go to a fresh folder of their own (so a test can see that nothing is left).</summary>
    public (SandboxProcess Sandbox, ListLogger<SandboxProcess> Log, string WorkDirectory) Sandbox(string? runnerCommand = null)
    {
        var work = Path.Combine(Folder, "work-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var log = new ListLogger<SandboxProcess>();
        var options = new SandboxOptions { RunnerCommand = runnerCommand ?? RunnerCommand, WorkDirectory = work };
        return (new SandboxProcess(options, log), log, work);
    }

    /// <summary>Writes a spec file for starting the runner by hand.</summary>
    public string WriteSpec(RunnerSpec spec)
    {
        var path = Path.Combine(Folder, "spec-" + Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(spec, RunnerProtocol.Json));
        return path;
    }

    /// <summary>Writes an executable bash script (a fake runner) and returns its path.</summary>
    public string Script(string body)
    {
        var path = Path.Combine(Folder, "fake-runner-" + Guid.NewGuid().ToString("N") + ".sh");
        File.WriteAllText(path, "#!/bin/bash\n# Arguments: runner --spec FILE --out FILE --parent-pid PID\n" + body + "\n");
        return path;
    }

    /// <summary>Whether a process no longer runs (absent, or a zombie waiting to be reaped).</summary>
    public static bool IsGone(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return stat[close + 2] is 'Z' or 'X';
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>Waits until <paramref name="pid"/> is gone; false if it still runs after <paramref name="timeout"/>.</summary>
    public static async Task<bool> WaitUntilGone(int pid, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!IsGone(pid))
        {
            if (DateTime.UtcNow > until) return false;
            await Task.Delay(50);
        }
        return true;
    }

    private static string Csv(Random rng, int rows, Func<double, double, string> label)
    {
        var csv = new StringBuilder("f1,f2,label\n");
        for (var i = 0; i < rows; i++)
        {
            var x1 = rng.NextDouble() * 3 - 1.5;
            var x2 = rng.NextDouble() * 3 - 1.5;
            csv.Append(string.Create(CultureInfo.InvariantCulture, $"{x1:R},{x2:R},{label(x1, x2)}\n"));
        }
        return csv.ToString();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A logger that keeps every entry with its structured values.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    public ConcurrentQueue<(LogLevel Level, EventId Id, string Message, IReadOnlyDictionary<string, object?> Values)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var values = state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? pairs.ToDictionary(p => p.Key, p => p.Value)
            : new Dictionary<string, object?>();
        Entries.Enqueue((logLevel, eventId, formatter(state, exception), values));
    }

    /// <summary>The process id of the runner the sandbox started (from its "started" entry), once it is logged.</summary>
    public int? StartedProcessId() =>
        Entries.Where(e => e.Values.ContainsKey("ProcessId") && e.Message.Contains("started", StringComparison.Ordinal))
            .Select(e => (int?)Convert.ToInt32(e.Values["ProcessId"], CultureInfo.InvariantCulture))
            .FirstOrDefault();
}
