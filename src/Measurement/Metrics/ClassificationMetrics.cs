namespace LambdaService.Measurement.Metrics;

/// <summary>Accuracy and calibration of a classifier on labelled data.</summary>
/// <param name="Accuracy">Fraction of samples whose most probable class is the label.</param>
/// <param name="Ece">Expected calibration error (top-label, 15 equal-width bins).</param>
/// <param name="Hard20Accuracy">Accuracy on the 20% of samples with the lowest confidence.</param>
public sealed record ClassificationMetrics(double Accuracy, double Ece, double Hard20Accuracy)
{
    /// <summary>Number of equal-width confidence bins of the ECE.</summary>
    public const int Bins = 15;

    /// <summary>
    /// Computes the metrics from probabilities <paramref name="probabilities"/> (<c>N × C</c>, rows summing to 1)
    /// and labels. Confidence = the largest probability, prediction = its class (the lowest index on ties).
    /// ECE = Σ_b (|B_b| / N)·|acc(B_b) − conf(B_b)| over bins <c>[b/15, (b+1)/15)</c>, a confidence of exactly
    /// 1.0 falling into the last bin. Hardest 20%: the <c>ceil(0.2·N)</c> samples of lowest confidence (ties
    /// broken by sample order).
    /// </summary>
    public static ClassificationMetrics Compute(ReadOnlySpan<double> probabilities, int classes, ReadOnlySpan<int> labels)
    {
        var n = labels.Length;
        if (n == 0) throw new ArgumentException("No samples.", nameof(labels));
        if (classes < 2 || probabilities.Length != n * classes) throw new ArgumentException($"Expected {n}×{classes} probabilities.", nameof(probabilities));
        var confidence = new double[n];
        var correct = new bool[n];
        for (var i = 0; i < n; i++)
        {
            var row = probabilities.Slice(i * classes, classes);
            var best = 0;
            for (var c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            confidence[i] = row[best];
            correct[i] = best == labels[i];
        }
        var accuracy = correct.Count(c => c) / (double)n;

        var binCount = new int[Bins];
        var binCorrect = new double[Bins];
        var binConfidence = new double[Bins];
        for (var i = 0; i < n; i++)
        {
            var b = Math.Min((int)Math.Floor(confidence[i] * Bins), Bins - 1);
            binCount[b]++;
            binConfidence[b] += confidence[i];
            if (correct[i]) binCorrect[b]++;
        }
        double ece = 0;
        for (var b = 0; b < Bins; b++)
        {
            if (binCount[b] == 0) continue;
            ece += binCount[b] / (double)n * Math.Abs(binCorrect[b] / binCount[b] - binConfidence[b] / binCount[b]);
        }

        var hard = (int)Math.Ceiling(0.2 * n);
        var order = Enumerable.Range(0, n).OrderBy(i => confidence[i]).ThenBy(i => i).Take(hard).ToArray();
        var hardAccuracy = order.Count(i => correct[i]) / (double)hard;
        return new ClassificationMetrics(accuracy, ece, hardAccuracy);
    }

    /// <summary>Softmax of each row of logits (<c>N × C</c>), computed stably.</summary>
    public static double[] Softmax(ReadOnlySpan<double> logits, int classes)
    {
        var result = new double[logits.Length];
        for (var i = 0; i < logits.Length / classes; i++)
        {
            var row = logits.Slice(i * classes, classes);
            var max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            for (var c = 0; c < classes; c++) sum += result[i * classes + c] = Math.Exp(row[c] - max);
            for (var c = 0; c < classes; c++) result[i * classes + c] /= sum;
        }
        return result;
    }
}
