namespace LambdaService.Measurement.Data;

/// <summary>The file formats that <see cref="DatasetReader"/> understands.</summary>
public enum DataFormat
{
    /// <summary>A zip of <c>.npy</c> arrays, as written by <c>numpy.savez</c>.</summary>
    Npz,

    /// <summary>A single NumPy array, as written by <c>numpy.save</c>.</summary>
    Npy,

    /// <summary>Delimited text with a header row.</summary>
    Csv,
}

/// <summary>Tells the format of a data file from its first bytes, with its extension as a hint.</summary>
internal static class DataFormatDetector
{
    private static ReadOnlySpan<byte> NpyMagic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>
    /// Content decides: a zip signature means npz, the NumPy magic means npy, anything else is CSV text, except that a
    /// file named <c>.npz</c> or <c>.npy</c> whose content is neither is rejected rather than read as text.
    /// </summary>
    public static DataFormat Detect(ReadOnlySpan<byte> prefix, string fileName)
    {
        if (IsZip(prefix)) return DataFormat.Npz;
        if (prefix.StartsWith(NpyMagic)) return DataFormat.Npy;

        var extension = Path.GetExtension(fileName).ToLowerInvariant();
        if (prefix.Length >= 2 && prefix[0] == 0x1f && prefix[1] == 0x8b)
        {
            throw new MeasurementInputException("data",
                "the data file is gzip-compressed; upload an uncompressed CSV, a .npy or a .npz file");
        }
        if (extension == ".npz")
        {
            throw new MeasurementInputException("data",
                $"'{DataText.Clip(fileName)}' is named .npz but is not a zip archive; save it with numpy.savez or numpy.savez_compressed");
        }
        if (extension == ".npy")
        {
            throw new MeasurementInputException("data",
                $"'{DataText.Clip(fileName)}' is named .npy but does not start with the NumPy magic \\x93NUMPY; save it with numpy.save");
        }
        return DataFormat.Csv;
    }

    private static bool IsZip(ReadOnlySpan<byte> prefix) =>
        prefix.Length >= 4 && prefix[0] == (byte)'P' && prefix[1] == (byte)'K'
        && ((prefix[2] == 3 && prefix[3] == 4) || (prefix[2] == 5 && prefix[3] == 6) || (prefix[2] == 7 && prefix[3] == 8));
}
