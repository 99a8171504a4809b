namespace LambdaService.Measurement.Data;

/// <summary>
/// Reads a user's data file (<c>.npz</c>, <c>.npy</c> or CSV) into a <see cref="Dataset"/>. The content is untrusted:
/// every problem with it is reported as a <see cref="MeasurementInputException"/> (field <c>data</c>,
/// <c>labelColumn</c> or <c>labels</c>) whose one-line message says what to do, and the limits in
/// <see cref="DataReadOptions"/> bound the memory used.
/// </summary>
public static class DatasetReader
{
    /// <summary>Reads the data file at <paramref name="path"/>. See <see cref="Read(Stream, string, DataReadOptions)"/>.</summary>
    /// <param name="path">The file to read.</param>
    /// <param name="options">Label column and limits.</param>
    /// <exception cref="MeasurementInputException">The file is missing or its content cannot be used.</exception>
    public static Dataset Read(string path, DataReadOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new MeasurementInputException("data",
                $"the data file '{DataText.Clip(Path.GetFileName(path))}' does not exist; upload it again", e);
        }
        using (stream)
        {
            return Read(stream, Path.GetFileName(path), options);
        }
    }

    /// <summary>
    /// Reads a data file from <paramref name="stream"/>, from its current position to its end. The format is told by
    /// content: a zip signature (<c>PK\x03\x04</c>) means npz, the NumPy magic (<c>\x93NUMPY</c>) means npy, anything
    /// else is CSV text; <paramref name="fileName"/>'s extension is a hint, so that a <c>.npz</c> or <c>.npy</c> file
    /// with other content is rejected rather than read as text. A stream that cannot seek is first copied into memory,
    /// at most <see cref="DataReadOptions.MaxDecompressedBytes"/> bytes of it.
    /// </summary>
    /// <param name="stream">The file's bytes; it is not closed.</param>
    /// <param name="fileName">The name the user gave the file (only its extension is used).</param>
    /// <param name="options">Label column and limits.</param>
    /// <returns>The samples, with <see cref="Dataset.Sha256"/> the hash of the bytes read.</returns>
    /// <exception cref="MeasurementInputException">The content cannot be used; the message says why and what to do.</exception>
    public static Dataset Read(Stream stream, string fileName, DataReadOptions options)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxValues);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxDecompressedBytes);
        if (!stream.CanRead) throw new ArgumentException("The stream cannot be read.", nameof(stream));
        fileName ??= "";

        MemoryStream? buffered = null;
        try
        {
            var source = stream;
            if (!source.CanSeek) source = buffered = DataStreams.BufferAtMost(stream, options.MaxDecompressedBytes);
            var start = source.Position;
            var sha256 = DataStreams.Sha256Hex(source);
            if (source.Length == start)
            {
                throw new MeasurementInputException("data",
                    "the data file is empty; upload a CSV with a header row, a .npy or a .npz file");
            }
            source.Position = start;
            Span<byte> prefix = stackalloc byte[8];
            var format = DataFormatDetector.Detect(prefix[..DataStreams.ReadAtMost(source, prefix)], fileName);
            source.Position = start;

            switch (format)
            {
                case DataFormat.Npz:
                    if (start != 0) source = buffered = DataStreams.BufferAtMost(source, options.MaxDecompressedBytes);
                    return NpzReader.Read(source, options, sha256);
                case DataFormat.Npy:
                    return NpyFileReader.Read(source, options, sha256);
                default:
                    return CsvDataReader.Read(source, options, sha256);
            }
        }
        finally
        {
            buffered?.Dispose();
        }
    }
}
