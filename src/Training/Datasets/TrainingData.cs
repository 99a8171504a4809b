using LambdaService.Measurement;
using LambdaService.Measurement.Data;

namespace LambdaService.Training.Datasets;

/// <summary>
/// Labelled training and test samples in memory: features row-major in float32 (<c>count × product(SampleShape)</c>),
/// integer labels 0..Classes−1. Label noise, when asked for, has been applied to the training labels only;
/// <see cref="CleanTrainY"/> keeps the labels before it.
/// </summary>
/// <param name="TrainX">Training features, <c>TrainCount × SampleSize</c>.</param>
/// <param name="TrainY">Training labels as used for training (possibly noisy).</param>
/// <param name="TestX">Test features, <c>TestCount × SampleSize</c>.</param>
/// <param name="TestY">Test labels (never noised here).</param>
/// <param name="SampleShape">Shape of one sample, e.g. <c>[2]</c> or <c>[1, 28, 28]</c>.</param>
/// <param name="Classes">Number of classes C ≥ 2.</param>
/// <param name="Source">Where the data came from: <c>two-moons</c>, a data set's SHA-256, …</param>
public sealed record TrainingData(float[] TrainX, int[] TrainY, float[] TestX, int[] TestY, int[] SampleShape, int Classes, string Source)
{
    /// <summary>Training labels before label noise (equal to <see cref="TrainY"/> when there was none).</summary>
    public int[] CleanTrainY { get; init; } = TrainY;

    /// <summary>The label-noise probability that was applied to the training labels.</summary>
    public double LabelNoise { get; init; }

    /// <summary>Values per sample.</summary>
    public int SampleSize => SampleShape.Aggregate(1, (a, b) => a * b);

    /// <summary>Number of training samples.</summary>
    public int TrainCount => TrainY.Length;

    /// <summary>Number of test samples.</summary>
    public int TestCount => TestY.Length;

    /// <summary>How many training labels differ from the clean ones.</summary>
    public int NoisyTrainLabels => TrainY.Where((y, i) => y != CleanTrainY[i]).Count();

    /// <summary>
    /// Splits one uploaded data set: a Fisher–Yates permutation from stream <c>Seeds.Stream(seed, 2)</c>, its first
    /// <c>max(1, round(testFraction·N))</c> samples the test set and the rest the training set; then label noise
    /// on the training set as in <see cref="WithTrainLabelNoise"/>. Classes = largest label + 1 (at least 2).
    /// </summary>
    /// <exception cref="MeasurementInputException">No labels, fewer than 2 samples or classes, or settings out of range.</exception>
    public static TrainingData FromDataset(Dataset data, double testFraction, double labelNoise, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        var labels = RequireLabels(data, "data");
        var classes = Math.Max(2, data.LabelClasses);
        var x = data.X.Select(v => (float)v).ToArray();
        return Split(x, labels, data.SampleShape, classes, testFraction, seed, $"dataset:{data.Sha256}").WithTrainLabelNoise(labelNoise, seed);
    }

    /// <summary>
    /// Uses <paramref name="train"/> for training and <paramref name="test"/> for testing (same sample size);
    /// label noise on the training labels only. Classes = the larger of the two largest labels + 1.
    /// </summary>
    /// <exception cref="MeasurementInputException">No labels, different sample sizes, or settings out of range.</exception>
    public static TrainingData FromDatasets(Dataset train, Dataset test, double labelNoise, int seed)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        var trainY = RequireLabels(train, "data");
        var testY = RequireLabels(test, "testData");
        if (train.SampleSize != test.SampleSize)
        {
            throw new MeasurementInputException("testData",
                $"test samples have {test.SampleSize} values but training samples have {train.SampleSize}; both data sets must hold samples of the same shape.");
        }
        var classes = Math.Max(2, Math.Max(train.LabelClasses, test.LabelClasses));
        var data = new TrainingData(train.X.Select(v => (float)v).ToArray(), trainY, test.X.Select(v => (float)v).ToArray(), testY,
            train.SampleShape, classes, $"dataset:{train.Sha256}+test:{test.Sha256}");
        return data.WithTrainLabelNoise(labelNoise, seed);
    }

    /// <summary>
    /// Splits arrays (row-major <paramref name="x"/>, labels <paramref name="y"/>) into train and test sets:
    /// a Fisher–Yates permutation from <c>Seeds.Stream(seed, 2)</c>; the first <c>max(1, round(testFraction·N))</c>
    /// samples of it are the test set, the rest the training set, each in permutation order. No label noise.
    /// </summary>
    public static TrainingData Split(float[] x, int[] y, int[] sampleShape, int classes, double testFraction, int seed, string source)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (!(testFraction > 0 && testFraction < 1))
        {
            throw new MeasurementInputException("data.testFraction", $"testFraction must lie strictly between 0 and 1 (got {testFraction}); e.g. 0.3.");
        }
        var n = y.Length;
        var size = sampleShape.Aggregate(1, (a, b) => a * b);
        if (x.Length != (long)n * size) throw new ArgumentException($"Expected {n}×{size} values, got {x.Length}.", nameof(x));
        var testCount = Math.Max(1, (int)Math.Round(testFraction * n, MidpointRounding.AwayFromZero));
        if (n < 2 || testCount >= n)
        {
            throw new MeasurementInputException("data.testFraction",
                $"{n} samples with testFraction {testFraction} leave no training samples; use more samples or a smaller fraction.");
        }
        var order = Seeds.Permutation(Seeds.Stream(seed, 2), n);
        float[] Rows(ReadOnlySpan<int> rows)
        {
            var result = new float[rows.Length * size];
            for (var i = 0; i < rows.Length; i++) Array.Copy(x, (long)rows[i] * size, result, (long)i * size, size);
            return result;
        }
        var test = order.AsSpan(0, testCount);
        var train = order.AsSpan(testCount);
        return new TrainingData(Rows(train), train.ToArray().Select(i => y[i]).ToArray(), Rows(test), test.ToArray().Select(i => y[i]).ToArray(),
            [.. sampleShape], classes, source);
    }

    /// <summary>
    /// Label noise on the training set: for each training label in order, one uniform draw u from
    /// <c>Seeds.Stream(seed, 3)</c>; when <c>u &lt; p</c> the label is replaced by a class drawn uniformly from the
    /// C − 1 other classes (a second draw from the same stream). The test labels are untouched. Applies to the
    /// clean labels, so calling it again replaces earlier noise.
    /// </summary>
    public TrainingData WithTrainLabelNoise(double p, int seed)
    {
        if (!(p >= 0 && p <= 1))
        {
            throw new MeasurementInputException("data.labelNoise", $"labelNoise is a probability between 0 and 1 (got {p}); e.g. 0.3 for 30% of the training labels.");
        }
        var clean = CleanTrainY;
        var noisy = (int[])clean.Clone();
        if (p > 0)
        {
            var rng = Seeds.Stream(seed, 3);
            for (var i = 0; i < noisy.Length; i++)
            {
                if (rng.NextDouble() >= p) continue;
                var other = rng.Next(Classes - 1);
                noisy[i] = other >= clean[i] ? other + 1 : other;
            }
        }
        return this with { TrainY = noisy, CleanTrainY = clean, LabelNoise = p };
    }

    private static int[] RequireLabels(Dataset data, string field)
    {
        if (data.Labels is null || data.Labels.Length != data.Rows)
        {
            throw new MeasurementInputException(field, "training needs a label per sample (npz array y or a label column); this data set has none.");
        }
        if (data.Rows < 2) throw new MeasurementInputException(field, $"the data set has {data.Rows} sample(s); training needs at least 2.");
        if (data.Labels.Any(l => l < 0)) throw new MeasurementInputException(field, "labels must be non-negative class indices 0..C−1.");
        return data.Labels;
    }
}
