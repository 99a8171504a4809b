using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace LambdaService.Measurement.Tests.RealModels;

/// <summary>
/// The folder of real PyTorch files and their float64 references that <c>tests/Fixtures/torch/make_torch_fixtures.py</c>
/// writes (README "Set-up"): <c>$LAMBDASERVICE_TORCH_FIXTURES</c> (set by <c>.ci/run</c>), else the cache folder
/// <c>${XDG_CACHE_HOME:-$HOME/.cache}/lambdaservice/torch-fixtures/&lt;first 16 hex digits of the script's SHA-256&gt;</c>, else
/// the script is run once here into that folder with Debian's <c>/usr/bin/python3</c> (installing python3-torch first when this
/// runs as root with apt-get). Without python3-torch the constructor throws, so every test of the collection fails with the message saying what to install.
/// </summary>
public sealed class TorchFixtures
{
    /// <summary>The variable <c>.ci/run</c> exports.</summary>
    public const string Variable = "LAMBDASERVICE_TORCH_FIXTURES";

    private const string Python = "/usr/bin/python3";

    /// <summary>The script, relative to the repository root.</summary>
    public const string Script = "tests/Fixtures/torch/make_torch_fixtures.py";

    private const string Install = "install Debian's python3-torch and python3-torchvision (apt-get install python3-torch python3-torchvision) or run bash .ci/run, which installs them and builds the fixtures";

    /// <summary>Builds or finds the folder.</summary>
    public TorchFixtures()
    {
        var given = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrEmpty(given))
        {
            if (!File.Exists(Path.Combine(given, "manifest.json")))
            {
                throw new InvalidOperationException($"{Variable}={given} holds no manifest.json: the fixture step did not finish; {Install}.");
            }
            Folder = given;
        }
        else
        {
            Folder = CacheFolder();
            if (!File.Exists(Path.Combine(Folder, "manifest.json"))) Build(Folder);
        }
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "manifest.json")));
        Models = [.. manifest.RootElement.GetProperty("models").EnumerateObject().Select(m => m.Name)];
    }

    /// <summary>The folder with the files and <c>manifest.json</c>.</summary>
    public string Folder { get; }

    /// <summary>The model names in the manifest.</summary>
    public IReadOnlyList<string> Models { get; }

    /// <summary>The path of one file, e.g. <c>resnet.opset13.onnx</c>; fails when the script did not write it.</summary>
    public string PathOf(string file)
    {
        var path = Path.Combine(Folder, file);
        Assert.True(File.Exists(path), $"{file} is missing from {Folder} (see manifest.json's notExported)");
        return path;
    }

    /// <summary>The float64 reference of model <paramref name="name"/>.</summary>
    public TorchReference Reference(string name) =>
        JsonSerializer.Deserialize<TorchReference>(File.ReadAllText(PathOf($"{name}.reference.json")), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

    /// <summary>The repository root: the first folder above the test binaries holding <c>LambdaService.sln</c>.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LambdaService.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"LambdaService.sln not found above {AppContext.BaseDirectory}; set {Variable} to the fixture folder.");
    }

    /// <summary>The cache folder <c>.ci/run</c> uses for the current script.</summary>
    public static string CacheFolder()
    {
        var script = Path.Combine(RepositoryRoot(), Script);
        var hash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(script)))[..16];
        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(cache)) cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "lambdaservice", "torch-fixtures", hash);
    }

    /// <summary>
    /// Whether <c>/usr/bin/python3</c> imports torch and torchvision, after installing Debian's python3-torch and
    /// python3-torchvision when it does not and this runs as root with apt-get (as the PostgreSQL and browser tests install
    /// theirs), so that the README's <c>dotnet test</c> works on a fresh machine.
    /// </summary>
    public static (bool Ok, string Output) EnsurePyTorch()
    {
        var check = Run(Python, "-c", "import torch, torchvision");
        if (check.Ok || Environment.UserName != "root" || !File.Exists("/usr/bin/apt-get")) return check;
        Run("/bin/sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision >/dev/null");
        return Run(Python, "-c", "import torch, torchvision");
    }

    private static void Build(string folder)
    {
        var (ok, output) = EnsurePyTorch();
        if (!ok)
        {
            throw new InvalidOperationException($"The real-model tests need PyTorch under {Python} ({output.Trim()}): {Install}.");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
        var temp = $"{folder}.tmp.{Environment.ProcessId}.{Guid.NewGuid():N}";
        try
        {
            var (built, log) = Run(Python, Path.Combine(RepositoryRoot(), Script), temp);
            if (!built) throw new InvalidOperationException($"{Script} failed:\n{log}");
            try
            {
                Directory.Move(temp, folder);
            }
            catch (IOException) when (File.Exists(Path.Combine(folder, "manifest.json")))
            {
                // Another test process built the same fixtures first.
            }
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    private static (bool Ok, string Output) Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode == 0, stdout + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (false, $"{file}: {e.Message}");
        }
    }
}

/// <summary>
/// One model's <c>NAME.reference.json</c> (make_torch_fixtures.py): points, directions, labels, float64 logits and loss
/// derivatives <c>[point][direction][order]</c>, and per replaced fused operator the largest difference its elementary
/// spelling showed from torch's (relative to 1 + max |y|).
/// </summary>
public sealed record TorchReference(
    string Model, int[] SampleShape, int Classes, int MaxOrder, double[][] Points, double[][][] Directions, int[] Labels, double[][] Logits,
    double[][][] Derivatives, Dictionary<string, double> ReplacementsChecked)
{
    /// <summary>Number of points.</summary>
    public int PointCount => Points.Length;

    /// <summary>Directions per point.</summary>
    public int DirectionsPerPoint => Directions[0].Length;

    /// <summary>The points row-major, <c>P × sampleSize</c>.</summary>
    public double[] FlatPoints => [.. Points.SelectMany(p => p)];

    /// <summary>The directions row-major, <c>P × D × sampleSize</c>.</summary>
    public double[] FlatDirections => [.. Directions.SelectMany(p => p.SelectMany(d => d))];
}

/// <summary>The collection sharing one <see cref="TorchFixtures"/> (the script runs at most once per test run).</summary>
[CollectionDefinition(Name)]
public sealed class TorchFixtureCollection : ICollectionFixture<TorchFixtures>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Real PyTorch models";
}
