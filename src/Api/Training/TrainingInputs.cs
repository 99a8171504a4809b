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
        // The library names the input at fault "data" or "testData"; the request names them dataField and testField.
        var asTrainData = new FieldNames(("data", dataField));
        var asTestData = new FieldNames(("data", testField));
        var asPair = new FieldNames(("data", dataField), ("testData", testField));

        var train = asTrainData.Run(() => DatasetReader.Read(dataPath, dataOptions));
        if (train.Labels is null)
        {
            throw new MeasurementInputException(dataField, "the training data has no labels; training needs labels (npz array y, or a label column in CSV).");
        }
        var seed = request.Data.Seed ?? request.Seed;
        if (testPath is null) return asTrainData.Run(() => TrainingData.FromDataset(train, request.Data.TestFraction, request.Data.LabelNoise, seed));
        var test = asTestData.Run(() => DatasetReader.Read(testPath, testOptions));
        return asPair.Run(() => TrainingData.FromDatasets(train, test, request.Data.LabelNoise, seed));
    }

    /// <summary>How the fields a step's <see cref="MeasurementInputException"/> names (the library's words) are named in the request.</summary>
    private sealed class FieldNames(params (string Library, string Request)[] names)
    {
        /// <summary>Runs <paramref name="step"/>; its input error naming a library field is thrown again naming the request's (same message, the original as the inner exception).</summary>
        public T Run<T>(Func<T> step)
        {
            try
            {
                return step();
            }
            catch (MeasurementInputException e) when (names.Any(n => n.Library == e.Field))
            {
                throw new MeasurementInputException(names.First(n => n.Library == e.Field).Request, e.Message, e);
            }
        }
    }
}
