using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using LambdaService.Training.Datasets;

namespace LambdaService.Training.Tests;

public class TwoMoonsTests
{
    [Fact]
    public void Without_noise_the_points_lie_on_the_two_half_circles_of_make_moons()
    {
        var (x, y) = TwoMoons.Points(10, 0, seed: 1);
        for (var i = 0; i < 10; i++)
        {
            // Outer: (cos θ, sin θ), θ = π·i/4; inner: (1 − cos θ, 1 − sin θ − 0.5), θ = π·(i−5)/4 (numpy.linspace(0, π, 5)).
            var theta = Math.PI * (i % 5) / 4;
            var (ex, ey) = i < 5 ? (Math.Cos(theta), Math.Sin(theta)) : (1 - Math.Cos(theta), 1 - Math.Sin(theta) - 0.5);
            Assert.Equal(ex, x[2 * i], 6);
            Assert.Equal(ey, x[2 * i + 1], 6);
            Assert.Equal(i < 5 ? 0 : 1, y[i]);
        }
    }

    [Fact]
    public void The_noise_has_the_requested_standard_deviation()
    {
        var (clean, _) = TwoMoons.Points(4000, 0, seed: 2);
        var (noisy, _) = TwoMoons.Points(4000, 0.2, seed: 2);
        var residual = noisy.Zip(clean, (a, b) => (double)a - b).ToArray();
        var sd = Math.Sqrt(residual.Select(r => r * r).Average());
        // 8000 draws: the sample sd of N(0, 0.2²) has a standard error of 0.2/√16000 ≈ 0.0016.
        Assert.InRange(sd, 0.2 - 0.008, 0.2 + 0.008);
        Assert.InRange(residual.Average(), -0.01, 0.01);
    }

    [Fact]
    public void Test_labels_stay_clean_and_the_train_label_noise_has_the_requested_fraction()
    {
        var noisy = TwoMoons.Generate(2000, 0.2, 0.3, 0.3, seed: 7);
        var clean = TwoMoons.Generate(2000, 0.2, 0, 0.3, seed: 7);
        // Same seed, other noise fraction: the same points and split (separate random streams).
        Assert.Equal(clean.TrainX, noisy.TrainX);
        Assert.Equal(clean.TestX, noisy.TestX);
        Assert.Equal(clean.TestY, noisy.TestY);
        Assert.Equal(clean.TrainY, noisy.CleanTrainY);
        Assert.Equal(600, noisy.TestCount);
        Assert.Equal(1400, noisy.TrainCount);
        var flipped = noisy.TrainY.Where((label, i) => label != clean.TrainY[i]).Count();
        Assert.Equal(flipped, noisy.NoisyTrainLabels);
        // Binomial(1400, 0.3): standard deviation √(1400·0.3·0.7)/1400 ≈ 0.012; ±0.05 is four of them.
        Assert.InRange(flipped / 1400.0, 0.25, 0.35);

        // The test labels are those of the geometry: label = which moon the point was generated on.
        var (points, labels) = TwoMoons.Points(2000, 0.2, seed: 7);
        var byPoint = Enumerable.Range(0, 2000).ToDictionary(i => (points[2 * i], points[2 * i + 1]), i => labels[i]);
        for (var i = 0; i < noisy.TestCount; i++) Assert.Equal(byPoint[(noisy.TestX[2 * i], noisy.TestX[2 * i + 1])], noisy.TestY[i]);
    }

    [Fact]
    public void The_same_seed_gives_the_same_data_and_another_seed_other_data()
    {
        var a = TwoMoons.Generate(300, 0.1, 0.2, 0.25, seed: 11);
        var b = TwoMoons.Generate(300, 0.1, 0.2, 0.25, seed: 11);
        var c = TwoMoons.Generate(300, 0.1, 0.2, 0.25, seed: 12);
        Assert.Equal(a.TrainX, b.TrainX);
        Assert.Equal(a.TrainY, b.TrainY);
        Assert.Equal(a.TestX, b.TestX);
        Assert.NotEqual(a.TrainX, c.TrainX);
    }
}

public class TrainingDataTests
{
    private static Dataset Labelled(int rows, int classes, int features = 3) =>
        new(Enumerable.Range(0, rows * features).Select(i => (double)i).ToArray(), rows, [features],
            Enumerable.Range(0, rows).Select(i => i % classes).ToArray(), "npz", "abc");

    [Fact]
    public void An_uploaded_data_set_is_split_by_the_seed_keeping_each_sample_with_its_label()
    {
        var data = TrainingData.FromDataset(Labelled(50, 5), testFraction: 0.2, labelNoise: 0, seed: 3);
        Assert.Equal(10, data.TestCount);
        Assert.Equal(40, data.TrainCount);
        Assert.Equal(5, data.Classes);
        // Sample r holds values 3r, 3r+1, 3r+2 and label r mod 5.
        foreach (var (x, y, count) in new[] { (data.TrainX, data.TrainY, data.TrainCount), (data.TestX, data.TestY, data.TestCount) })
        {
            for (var i = 0; i < count; i++)
            {
                var row = (int)x[3 * i] / 3;
                Assert.Equal(row % 5, y[i]);
                Assert.Equal(3 * row + 2, x[3 * i + 2]);
            }
        }
        var rows = data.TrainX.Where((_, i) => i % 3 == 0).Concat(data.TestX.Where((_, i) => i % 3 == 0)).Select(v => (int)v / 3).Order();
        Assert.Equal(Enumerable.Range(0, 50), rows);
        Assert.Equal(data.TestX, TrainingData.FromDataset(Labelled(50, 5), 0.2, 0, 3).TestX);
    }

    [Fact]
    public void Label_noise_replaces_a_label_by_a_different_class_drawn_uniformly()
    {
        var data = TrainingData.FromDataset(Labelled(5000, 4, features: 1), testFraction: 0.1, labelNoise: 1, seed: 1);
        Assert.All(data.TrainY.Zip(data.CleanTrainY), pair => Assert.NotEqual(pair.First, pair.Second));
        // Each of the three other classes with probability 1/3: counts of 4500/3 = 1500 ± 3·√(4500·(1/3)(2/3)) ≈ ±95.
        var counts = data.TrainY.Zip(data.CleanTrainY).GroupBy(p => (p.Second - p.First + 4) % 4).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 1400, 1600));
        Assert.Equal(data.TestY, TrainingData.FromDataset(Labelled(5000, 4, features: 1), 0.1, 0, 1).TestY);
    }

    [Fact]
    public void A_second_data_set_serves_as_the_test_set()
    {
        var data = TrainingData.FromDatasets(Labelled(20, 2), Labelled(8, 3), labelNoise: 0, seed: 0);
        Assert.Equal(20, data.TrainCount);
        Assert.Equal(8, data.TestCount);
        Assert.Equal(3, data.Classes);
        Assert.Equal("testData", Assert.Throws<MeasurementInputException>(() => TrainingData.FromDatasets(Labelled(20, 2), Labelled(8, 2, features: 4), 0, 0)).Field);
    }

    [Fact]
    public void Data_without_labels_and_impossible_fractions_are_refused_with_the_field_named()
    {
        var unlabelled = Labelled(10, 2) with { Labels = null };
        Assert.Equal("data", Assert.Throws<MeasurementInputException>(() => TrainingData.FromDataset(unlabelled, 0.2, 0, 0)).Field);
        Assert.Equal("data.testFraction", Assert.Throws<MeasurementInputException>(() => TrainingData.FromDataset(Labelled(10, 2), 1.0, 0, 0)).Field);
        Assert.Equal("data.testFraction", Assert.Throws<MeasurementInputException>(() => TrainingData.FromDataset(Labelled(2, 2), 0.9, 0, 0)).Field);
        Assert.Equal("data.labelNoise", Assert.Throws<MeasurementInputException>(() => TrainingData.FromDataset(Labelled(10, 2), 0.2, 1.5, 0)).Field);
    }
}
