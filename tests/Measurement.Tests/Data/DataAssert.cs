using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

/// <summary>Reads test bytes through the public API and checks how reading fails.</summary>
internal static class DataAssert
{
    /// <summary>Reads <paramref name="bytes"/> as a file called <paramref name="fileName"/>.</summary>
    public static Dataset Read(byte[] bytes, string fileName, DataReadOptions? options = null) =>
        DatasetReader.Read(new MemoryStream(bytes, writable: false), fileName, options ?? new DataReadOptions());

    /// <summary>
    /// Asserts that reading fails with a <see cref="MeasurementInputException"/> for <paramref name="field"/> whose
    /// one-line message contains every one of <paramref name="fragments"/>; returns the exception.
    /// </summary>
    public static MeasurementInputException Rejects(byte[] bytes, string fileName, string field, params string[] fragments) =>
        Rejects(bytes, fileName, new DataReadOptions(), field, fragments);

    /// <summary>As <see cref="Rejects(byte[], string, string, string[])"/>, with options.</summary>
    public static MeasurementInputException Rejects(byte[] bytes, string fileName, DataReadOptions options, string field, params string[] fragments) =>
        Message(() => Read(bytes, fileName, options), field, fragments);

    /// <summary>Asserts that <paramref name="action"/> throws a one-line <see cref="MeasurementInputException"/> as described.</summary>
    public static MeasurementInputException Message(Action action, string field, params string[] fragments)
    {
        var ex = Assert.Throws<MeasurementInputException>(action);
        Assert.Equal(field, ex.Field);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\r', ex.Message);
        foreach (var fragment in fragments) Assert.Contains(fragment, ex.Message);
        return ex;
    }
}
