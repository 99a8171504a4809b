namespace LambdaService.Measurement.Data;

/// <summary>Reads a plain <c>.npy</c> file: a single array, the features <c>x</c>, without labels.</summary>
internal static class NpyFileReader
{
    private const string Source = "the .npy file";

    /// <summary>Reads the array from a seekable stream positioned at its first byte.</summary>
    public static Dataset Read(Stream stream, DataReadOptions options, string sha256)
    {
        var header = NpyHeader.Read(stream, Source);
        var count = ArrayChecks.FeatureCount(header, Source, options.MaxValues);
        var expected = NpyData.ByteCount(header, count);
        var available = stream.Length - stream.Position;
        if (available < expected) throw NpyData.Truncated(header, count, Source, available);
        if (available > expected)
        {
            throw new MeasurementInputException("data",
                $"{Source} has {available - expected} bytes after the end of its array (several arrays saved into one file?); save one array per .npy file, or use numpy.savez");
        }

        var values = NpyData.Read(stream, header, count, Source);
        var (rows, sampleShape) = ArrayChecks.Split(header.Shape);
        ArrayChecks.CheckFinite(values, (int)(count / rows), "x");
        return new Dataset(values, rows, sampleShape, null, "npy", sha256);
    }
}
