using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using LambdaService.Training;
using LambdaService.Training.Datasets;

namespace LambdaService.Api.Training;

/// <summary>The training data a request names, read the same way by the <c>train</c> verb and the sandbox runner.</summary>
public static class TrainingInputs
{
    /// <summary>
    /// The data for <paramref name="request"/>: null for the built-in kinds (two-moons, mnist: <see cref="TrainingRun"/>
    /// makes those), else the labelled file at <paramref name="dataPath"/>, split by <c>data.testFraction</c> or tested on
    /// <paramref name="testPath"/>; label noise on the training part with the data seed.
    /// </summary>
    /// <exception cref="MeasurementInputException">A file without labels or of the wrong shape (field <paramref name="dataField"/> or <paramref name="testField"/>).</exception>
    public static TrainingData? Load(TrainingRequest request, string? dataPath, DataReadOptions dataOptions, string? testPath, DataReadOptions testOptions,
        string dataField = "dataset", string testField = "test-data")
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Data.Kind is "two-moons" or "mnist") return null;
        if (string.IsNullOrEmpty(dataPath)) throw new MeasurementInputException(dataField, "training on uploaded data needs a data file.");
        var train = Rename(() => DatasetReader.Read(dataPath, dataOptions), "data", dataField);
        if (train.Labels is null)
        {
            throw new MeasurementInputException(dataField, "the training data has no labels; training needs labels (npz array y, or a label column in CSV).");
        }
        var seed = request.Data.Seed ?? request.Seed;
        if (testPath is null) return Rename(() => TrainingData.FromDataset(train, request.Data.TestFraction, request.Data.LabelNoise, seed), "data", dataField);
        var test = Rename(() => DatasetReader.Read(testPath, testOptions), "data", testField);
        return Rename(() => Rename(() => TrainingData.FromDatasets(train, test, request.Data.LabelNoise, seed), "testData", testField), "data", dataField);
    }

    private static T Rename<T>(Func<T> action, string from, string to)
    {
        try
        {
            return action();
        }
        catch (MeasurementInputException e) when (e.Field == from)
        {
            throw new MeasurementInputException(to, e.Message, e);
        }
    }
}
