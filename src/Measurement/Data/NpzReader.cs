using System.IO.Compression;

namespace LambdaService.Measurement.Data;

/// <summary>
/// Reads an <c>.npz</c> file (a zip of <c>.npy</c> arrays, as written by <c>numpy.savez</c>): the features
/// <c>x.npy</c> and, when present, the labels <c>y.npy</c>.
/// </summary>
internal static class NpzReader
{
    private const string XEntry = "x.npy";
    private const string YEntry = "y.npy";

    /// <summary>Reads the arrays from a seekable stream that holds the whole zip from position 0.</summary>
    public static Dataset Read(Stream stream, DataReadOptions options, string sha256)
    {
        ZipDirectoryGuard.Check(stream);
        using var archive = Open(stream);
        var (x, y) = FindArrays(archive);
        var budget = new DecompressionBudget(options.MaxDecompressedBytes);

        var (values, header) = ReadFeatures(x, budget, options.MaxValues);
        var (rows, sampleShape) = ArrayChecks.Split(header.Shape);
        ArrayChecks.CheckFinite(values, values.Length / rows, "x");
        var labels = y is null ? null : ReadLabels(y, budget, rows);
        return new Dataset(values, rows, sampleShape, labels, "npz", sha256);
    }

    private static ZipArchive Open(Stream stream)
    {
        try
        {
            var archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            _ = archive.Entries.Count; // reads the central directory now, inside this try
            return archive;
        }
        catch (Exception e) when (e is not MeasurementInputException and not OutOfMemoryException)
        {
            throw new MeasurementInputException("data",
                $"the npz file is not a readable zip archive ({DataText.Detail(e)}); save it again with numpy.savez", e);
        }
    }

    private static (ZipArchiveEntry X, ZipArchiveEntry? Y) FindArrays(ZipArchive archive)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in archive.Entries)
        {
            var name = entry.FullName;
            if (IsPath(name))
            {
                throw new MeasurementInputException("data",
                    $"the npz file contains the entry '{DataText.Clip(name)}', whose name is a path; save the arrays with numpy.savez so that entries are plain names like x.npy");
            }
            if (!seen.Add(name))
            {
                throw new MeasurementInputException("data",
                    $"the npz file contains the entry '{DataText.Clip(name)}' more than once; save it again with numpy.savez");
            }
            if (entry.IsEncrypted)
            {
                throw new MeasurementInputException("data",
                    $"the npz file's entry '{DataText.Clip(name)}' is encrypted; upload an unencrypted file written by numpy.savez");
            }
        }

        var x = archive.Entries.FirstOrDefault(e => e.FullName == XEntry);
        if (x is null)
        {
            var listed = seen.Count == 0 ? "it is empty" : $"it has {DataText.Names([.. seen])}";
            throw new MeasurementInputException("data",
                $"the npz file has no array x (entry x.npy); {listed}; save the features with numpy.savez(file, x=features, y=labels)");
        }
        return (x, archive.Entries.FirstOrDefault(e => e.FullName == YEntry));
    }

    /// <summary>True for names that are not a plain file name: separators, drive letters, dot names, control characters.</summary>
    private static bool IsPath(string name) =>
        name.Length == 0 || name is "." or ".." || name.Any(c => c is '/' or '\\' or ':' || char.IsControl(c));

    private static (double[] Values, NpyHeader Header) ReadFeatures(ZipArchiveEntry entry, DecompressionBudget budget, long maxValues)
    {
        using var stream = OpenEntry(entry, budget);
        var source = $"entry {XEntry}";
        var header = NpyHeader.Read(stream, source);
        var count = ArrayChecks.FeatureCount(header, source, maxValues);
        CheckDeclaredSize(stream, header, count, source);
        budget.Reserve(NpyData.ByteCount(header, count), header, XEntry);
        var values = NpyData.Read(stream, header, count, source);
        NpyData.EnsureEnd(stream, source);
        return (values, header);
    }

    private static int[] ReadLabels(ZipArchiveEntry entry, DecompressionBudget budget, int rows)
    {
        using var stream = OpenEntry(entry, budget);
        var source = $"entry {YEntry}";
        var header = NpyHeader.Read(stream, source);
        if (header.Shape is not [var length] || length != rows)
        {
            throw new MeasurementInputException("labels",
                $"y has shape {DataText.Tuple(header.Shape)} but must be 1-D with one label per row of x ({rows} rows); save y.ravel() with numpy.savez(file, x=x, y=y)");
        }
        CheckDeclaredSize(stream, header, rows, source);
        budget.Reserve(NpyData.ByteCount(header, rows), header, YEntry);
        var values = NpyData.Read(stream, header, rows, source);
        NpyData.EnsureEnd(stream, source);

        var labels = new int[rows];
        for (var i = 0; i < rows; i++) labels[i] = LabelValues.ToClassIndex(values[i], i);
        return labels;
    }

    /// <summary>
    /// Rejects, before the data is allocated, an entry whose size in the zip's directory differs from what its header
    /// declares: it could only end in a truncation or a failed length check.
    /// </summary>
    private static void CheckDeclaredSize(BudgetedReadStream stream, NpyHeader header, long count, string source)
    {
        var needed = stream.BytesRead + NpyData.ByteCount(header, count);
        if (needed != stream.ExpectedLength)
        {
            throw new MeasurementInputException("data",
                $"{source} is truncated or corrupt: the zip records {stream.ExpectedLength} bytes but its header declares shape " +
                $"{DataText.Tuple(header.Shape)} of {header.DType.Name}, which needs {needed}; save it again with numpy.savez");
        }
    }

    private static BudgetedReadStream OpenEntry(ZipArchiveEntry entry, DecompressionBudget budget)
    {
        Stream inner;
        try
        {
            inner = entry.Open();
        }
        catch (Exception e) when (e is not MeasurementInputException and not OutOfMemoryException)
        {
            throw new MeasurementInputException("data",
                $"entry {entry.FullName} of the npz file cannot be read ({DataText.Detail(e)}); save it again with numpy.savez", e);
        }
        return new BudgetedReadStream(inner, budget, entry.FullName, entry.Length, entry.Crc32);
    }
}
