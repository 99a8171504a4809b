using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Metrics;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests.Estimation;

public class ClassifierEstimationTests
{
    private const int Rows = 60;

    private static (OnnxRunner Runner, ReferenceMlp Mlp, double[] X, int[] Labels) Classifier()
    {
        var mlp = new ReferenceMlp([2, 12, 3], seed: 21, weightScale: 2);
        var runner = OnnxRunner.Create(TestData.Onnx(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases)), [2]);
        var x = TestData.Uniform(Rows * 2, seed: 22, low: -2, high: 2);
        var labels = Enumerable.Range(0, Rows).Select(i => (i * 7) % 3).ToArray();
        return (runner, mlp, x, labels);
    }

    private static MeasurementResult Run(MeasurementOptions options, int[]? labels = null)
    {
        var (runner, _, x, l) = Classifier();
        using (runner)
        {
            return CurvatureRate.Estimate(runner, TestData.Make(x, Rows, [2], labels ?? l), options, null, default);
        }
    }

    [Fact]
    public void Metrics_in_the_result_equal_metrics_computed_from_the_reference_network()
    {
        var (runner, mlp, x, labels) = Classifier();
        using (runner)
        {
            var result = CurvatureRate.Estimate(runner, TestData.Make(x, Rows, [2], labels), new MeasurementOptions { BootstrapResamples = 0 }, null, default);
            var logits = new List<double>();
            for (var i = 0; i < Rows; i++) logits.AddRange(mlp.Logits(x[(2 * i)..(2 * i + 2)], [0, 0], 0).Select(j => j.C[0]));
            var expected = ClassificationMetrics.Compute(ClassificationMetrics.Softmax(logits.ToArray(), 3), 3, labels);
            Assert.Equal(expected.Accuracy, result.Accuracy!.Value, 12);
            Assert.Equal(expected.Ece, result.Ece!.Value, 9);
            Assert.Equal(expected.Hard20Accuracy, result.Hard20Accuracy!.Value, 12);
            Assert.Equal("true", result.Config.Labels);
        }
    }

    [Fact]
    public void The_bootstrap_interval_brackets_lambda_and_the_fit_reports_every_order()
    {
        var result = Run(new MeasurementOptions { Seed = 4 });
        Assert.InRange(result.Lambda, result.Ci95[0], result.Ci95[1]);
        Assert.Equal([1, 2, 3, 4], result.Orders.Select(o => o.N));
        Assert.All(result.Orders, o => Assert.True(o.UsedInFit));
        Assert.Equal(Rows, result.PointsUsed);
        Assert.Equal(Rows, result.PerPointSlopes.Count);
        Assert.True(result.PerPointSlopes.P05 <= result.PerPointSlopes.P50 && result.PerPointSlopes.P50 <= result.PerPointSlopes.P95);
        // λ is the least-squares slope of the reported (n, log v_n): recompute it from them.
        var refit = Numerics.LinearFit.Fit(result.Orders.Select(o => (double)o.N).ToArray(), result.Orders.Select(o => o.LogNorm).ToArray());
        Assert.Equal(refit.Slope, result.Lambda, 12);
        Assert.Equal(refit.Intercept, result.Intercept, 12);
    }

    [Fact]
    public void The_same_seed_gives_the_same_result_and_another_seed_other_directions()
    {
        var a = Run(new MeasurementOptions { Seed = 9, MaxPoints = 20 });
        var b = Run(new MeasurementOptions { Seed = 9, MaxPoints = 20 });
        var c = Run(new MeasurementOptions { Seed = 10, MaxPoints = 20 });
        Assert.Equal(a.Lambda, b.Lambda);
        Assert.Equal(a.Ci95, b.Ci95);
        Assert.NotEqual(a.Lambda, c.Lambda);
        Assert.Equal(20, a.PointsUsed);
        Assert.Equal(Rows, a.PointsEligible);
    }

    [Fact]
    public void Boundary_points_are_those_whose_top_probability_is_inside_the_band()
    {
        var (runner, mlp, x, labels) = Classifier();
        using (runner)
        {
            var inBand = 0;
            for (var i = 0; i < Rows; i++)
            {
                var z = mlp.Logits(x[(2 * i)..(2 * i + 2)], [0, 0], 0).Select(j => j.C[0]).ToArray();
                var top = ClassificationMetrics.Softmax(z, 3).Max();
                if (top is >= 0.4 and <= 0.8) inBand++;
            }
            Assert.True(inBand > 0, "the fixture should have some boundary points");
            var result = CurvatureRate.Estimate(runner, TestData.Make(x, Rows, [2], labels),
                new MeasurementOptions { Points = PointSelection.Boundary, Band = (0.4, 0.8) }, null, default);
            Assert.Equal(inBand, result.PointsEligible);
            Assert.Equal("boundary", result.Config.Points);
        }
    }

    [Fact]
    public void An_empty_band_is_refused_with_advice()
    {
        var ex = Assert.Throws<MeasurementInputException>(() => Run(new MeasurementOptions { Points = PointSelection.Boundary, Band = (0.0, 0.01) }));
        Assert.Equal("band", ex.Field);
        Assert.Contains("widen the band", ex.Message);
    }

    [Fact]
    public void Pair_points_keep_only_samples_labelled_with_a_class_of_the_pair()
    {
        var (runner, _, x, labels) = Classifier();
        using (runner)
        {
            var result = CurvatureRate.Estimate(runner, TestData.Make(x, Rows, [2], labels),
                new MeasurementOptions { Points = PointSelection.Pairs, Pairs = [(0, 2)] }, null, default);
            Assert.Equal(labels.Count(l => l is 0 or 2), result.PointsEligible);
            Assert.Equal(["0-2"], result.Config.Pairs);
        }
    }

    [Fact]
    public void Without_labels_the_loss_uses_predicted_labels_and_says_so()
    {
        var (runner, _, x, _) = Classifier();
        using (runner)
        {
            var result = CurvatureRate.Estimate(runner, TestData.Make(x, Rows, [2]), new MeasurementOptions(), null, default);
            Assert.Equal("predicted", result.Config.Labels);
            Assert.Contains(result.Warnings, w => w.Contains("predicted labels"));
            Assert.Null(result.Accuracy);
        }
    }

    [Fact]
    public void True_labels_requested_on_unlabelled_data_are_refused()
    {
        var (runner, _, x, _) = Classifier();
        using (runner)
        {
            var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Estimate(runner, TestData.Make(x, Rows, [2]),
                new MeasurementOptions { Labels = LabelSource.True }, null, default));
            Assert.Equal("labels", ex.Field);
        }
    }

    [Fact]
    public void A_logit_class_the_model_does_not_have_is_refused()
    {
        var ex = Assert.Throws<MeasurementInputException>(() => Run(new MeasurementOptions { Target = "logit", Class = 3 }));
        Assert.Equal("class", ex.Field);
        Assert.Contains("3 classes", ex.Message);
    }

    [Theory]
    [InlineData(0, 4, "orders")]
    [InlineData(3, 3, "orders")]
    [InlineData(1, 40, "orders")]
    public void Order_ranges_that_cannot_be_fitted_are_refused(int min, int max, string field)
    {
        var ex = Assert.Throws<MeasurementInputException>(() => Run(new MeasurementOptions { MinOrder = min, MaxOrder = max }));
        Assert.Equal(field, ex.Field);
    }

    [Fact]
    public void The_logit_of_a_relu_network_has_no_curvature_and_the_fit_says_why()
    {
        // A ReLU network is piecewise linear: its logits have zero derivatives of order ≥ 2 almost everywhere.
        var (onnx, mlp, x, labels) = Classifier();
        onnx.Dispose();
        using var module = new FixedTanhMlp(mlp.Weights, mlp.Biases, relu: true);
        using var runner = TorchModelRunner.FromModule(module, [2]);
        var data = TestData.Make(x, Rows, [2], labels);
        var ex = Assert.Throws<MeasurementInputException>(() => CurvatureRate.Estimate(runner, data, new MeasurementOptions { Target = "logit" }, null, default));
        Assert.Equal("orders", ex.Field);
        Assert.Contains("piecewise", ex.Message);

        // The loss still curves through the softmax head: orders 2..4 are non-zero and the fit goes through.
        var loss = CurvatureRate.Estimate(runner, data, new MeasurementOptions(), null, default);
        Assert.All(loss.Orders, o => Assert.True(o.UsedInFit));
    }
}
