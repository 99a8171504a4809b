using LambdaService.Measurement.Metrics;

namespace LambdaService.Measurement.Tests.Metrics;

public class ClassificationMetricsTests
{
    [Fact]
    public void Accuracy_ece_and_hardest_twenty_percent_accuracy_match_values_worked_out_by_hand()
    {
        // Five samples, two classes. Confidence (max prob), prediction, label, correct:
        //   0: 0.90 → 0, label 0, correct     bin 13 [0.8667, 0.9333)
        //   1: 0.60 → 1, label 1, correct     bin 9  [0.6, 0.6667)
        //   2: 0.55 → 0, label 1, wrong       bin 8  [0.5333, 0.6)
        //   3: 1.00 → 1, label 1, correct     last bin 14 (a confidence of exactly 1.0)
        //   4: 0.62 → 0, label 1, wrong       bin 9
        // accuracy = 3/5 = 0.6.
        // ECE = 1/5·|1 − 0.9| + 2/5·|1/2 − 0.61| + 1/5·|0 − 0.55| + 1/5·|1 − 1.0|
        //     = 0.02 + 0.044 + 0.11 + 0 = 0.174.
        // Hardest 20%: ceil(0.2·5) = 1 sample, the least confident (0.55, wrong) → 0.
        double[] p = [0.90, 0.10, 0.40, 0.60, 0.55, 0.45, 0.0, 1.0, 0.62, 0.38];
        int[] y = [0, 1, 1, 1, 1];
        var m = ClassificationMetrics.Compute(p, 2, y);
        Assert.Equal(0.6, m.Accuracy, 12);
        Assert.Equal(0.174, m.Ece, 12);
        Assert.Equal(0.0, m.Hard20Accuracy, 12);
    }

    [Fact]
    public void Hardest_twenty_percent_rounds_the_count_up_and_breaks_confidence_ties_by_sample_order()
    {
        // Six samples: ceil(1.2) = 2 hardest. Confidences 0.7, 0.5, 0.5, 0.9, 0.8, 0.5 → the two lowest by
        // (confidence, index) are samples 1 and 2. Sample 1 correct, sample 2 wrong → 0.5.
        double[] p = [0.7, 0.3, 0.5, 0.5, 0.5, 0.5, 0.9, 0.1, 0.8, 0.2, 0.5, 0.5];
        int[] y = [0, 0, 1, 0, 0, 0];
        var m = ClassificationMetrics.Compute(p, 2, y);
        Assert.Equal(0.5, m.Hard20Accuracy, 12);
        // Ties of probability pick the lowest class (0): samples 1, 2, 5 predict 0; correct: 0,1,3,4,5 → 5/6.
        Assert.Equal(5.0 / 6, m.Accuracy, 12);
    }

    [Fact]
    public void Softmax_rows_sum_to_one_and_survive_huge_logits()
    {
        var s = ClassificationMetrics.Softmax([1000, 1000, 0, Math.Log(3)], 2);
        Assert.Equal(0.5, s[0], 12);
        Assert.Equal(0.5, s[1], 12);
        Assert.Equal(0.25, s[2], 12);   // 1 / (1 + 3)
        Assert.Equal(0.75, s[3], 12);
    }
}
