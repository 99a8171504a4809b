using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class DataShapingTests
{
    private static Dataset Data(int[] sampleShape, int[]? labels = null)
    {
        var size = sampleShape.Aggregate(1, (a, b) => a * b);
        return new Dataset(new double[2 * size], 2, sampleShape, labels, "npy", "");
    }

    [Fact]
    public void Flat_csv_features_are_reshaped_to_a_static_image_input()
    {
        Assert.Equal([1, 28, 28], DataShaping.ConformSampleShape(Data([784]), [-1, 1, 28, 28]));
    }

    [Fact]
    public void A_static_input_with_a_zero_batch_dimension_is_matched_by_size()
    {
        Assert.Equal([3, 32, 32], DataShaping.ConformSampleShape(Data([3072]), [0, 3, 32, 32]));
    }

    [Fact]
    public void A_static_input_of_another_size_is_rejected_with_a_reshape_hint()
    {
        DataAssert.Message(() => DataShaping.ConformSampleShape(Data([780]), [-1, 1, 28, 28]), "data",
            "the model expects [1, 28, 28] per sample but the data has [780] (780 values per sample)", "reshape the data to [N, 1, 28, 28]");
    }

    [Fact]
    public void Dynamic_dimensions_take_the_data_shape_when_the_static_ones_agree()
    {
        Assert.Equal([3, 40, 50], DataShaping.ConformSampleShape(Data([3, 40, 50]), [-1, 3, -1, -1]));
    }

    [Fact]
    public void Dynamic_dimensions_with_a_different_rank_are_rejected()
    {
        DataAssert.Message(() => DataShaping.ConformSampleShape(Data([784]), [-1, 1, -1, -1]), "data",
            "expects [1, ?, ?] per sample but the data has [784]", "reshape");
    }

    [Fact]
    public void Dynamic_dimensions_with_a_disagreeing_static_one_are_rejected()
    {
        DataAssert.Message(() => DataShaping.ConformSampleShape(Data([1, 28, 28]), [-1, 3, -1, -1]), "data",
            "expects [3, ?, ?] per sample but the data has [1, 28, 28]");
    }

    [Fact]
    public void A_model_taking_one_scalar_per_sample_accepts_one_value_per_sample()
    {
        Assert.Empty(DataShaping.ConformSampleShape(Data([1]), [-1]));
    }

    [Fact]
    public void A_model_input_without_a_batch_dimension_is_a_model_error()
    {
        DataAssert.Message(() => DataShaping.ConformSampleShape(Data([1]), []), "model", "batch");
    }

    [Fact]
    public void Labels_within_the_classes_pass()
    {
        DataShaping.CheckLabels(Data([2], [0, 9]), 10);
        DataShaping.CheckLabels(Data([2]), 10);
    }

    [Fact]
    public void A_label_beyond_the_classes_is_rejected_naming_it_and_its_row()
    {
        var labels = new int[13];
        labels[5] = 12;
        var data = new Dataset(new double[13], 13, [1], labels, "csv", "");

        DataAssert.Message(() => DataShaping.CheckLabels(data, 10), "labels",
            "label 12 at row 5 is outside 0..9 for a model with 10 classes", "at least 13 classes");
    }

    [Fact]
    public void A_negative_label_is_rejected()
    {
        DataAssert.Message(() => DataShaping.CheckLabels(Data([1], [0, -1]), 3), "labels", "label -1 at row 1 is outside 0..2");
    }
}
