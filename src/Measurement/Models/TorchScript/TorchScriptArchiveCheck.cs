using System.IO.Compression;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Checks a TorchScript archive's records against what libtorch will read from them, before libtorch sees the file.
/// libtorch's reader (caffe2/serialize/inline_container.cc) finds records by a case-insensitive search of the zip's
/// directory and trusts the pickles: a storage record shorter than its persistent id declares, or a tensor reaching past
/// its storage, is read past its end; a GLOBAL it cannot resolve can end the process. So: entry names are unique
/// (ignoring case), and <c>data.pkl</c>, <c>constants.pkl</c> and the code's <c>.debug_pkl</c> records are read by
/// <see cref="PickleScanner"/> (which runs nothing) and what they declare is checked against the records.
/// </summary>
internal static class TorchScriptArchiveCheck
{
    /// <summary>Largest pickle record read (torch's own are kilobytes, a few megabytes for thousands of tensors).</summary>
    public const int MaxPickleBytes = 16 << 20;

    /// <summary>
    /// Reads every entry of <paramref name="zip"/> (which verifies the CRCs) and checks it; see the type's summary.
    /// A storage <c>('storage', torch.&lt;Kind&gt;Storage, key, location, numel)</c> of <c>&lt;root&gt;/data.pkl</c> must have
    /// the record <c>&lt;root&gt;/data/&lt;key&gt;</c> (<c>constants/</c> for <c>constants.pkl</c>) of at least
    /// numel × element size bytes when numel &gt; 0; a tensor of sizes nᵢ, strides sᵢ and offset o over it, all
    /// non-negative, must end within it: <c>o + Σᵢ (nᵢ − 1)·sᵢ + 1 ≤ numel</c> when every nᵢ &gt; 0 (an empty tensor reads nothing).
    /// </summary>
    /// <exception cref="MeasurementInputException">Field <c>model</c>: what is wrong and what to do.</exception>
    public static void Check(string name, ZipArchive zip, string root)
    {
        var sizes = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        var pickles = new List<(string Entry, string? TensorFolder, byte[] Bytes)>();
        long total = 0;
        var buffer = new byte[1 << 16];
        foreach (var e in zip.Entries)
        {
            var entry = e.FullName;
            if (entry.Contains("..", StringComparison.Ordinal) || entry.StartsWith('/') || entry.Contains('\\'))
            {
                throw new MeasurementInputException("model", $"TorchScript archive '{name}' has an entry with a path outside the archive ('{entry}'); refusing it.");
            }
            if (sizes.ContainsKey(entry))
            {
                throw new MeasurementInputException("model",
                    $"TorchScript archive '{name}' contains the entry '{entry}' more than once (names compared ignoring case, as libtorch's reader finds them); save the model again with torch.jit.save.");
            }
            // Compared ignoring case, as libtorch finds them: its lookups of <root>/constants.pkl or a code file's
            // .debug_pkl would find ARCHIVE/Constants.PKL too.
            var tensorFolder = Is(entry, root + "/data.pkl") ? "data" : Is(entry, root + "/constants.pkl") ? "constants" : null;
            var isPickle = tensorFolder is not null
                || entry.StartsWith(root + "/code/", StringComparison.OrdinalIgnoreCase) && entry.EndsWith(".debug_pkl", StringComparison.OrdinalIgnoreCase);
            if (isPickle && e.Length > MaxPickleBytes)
            {
                throw new MeasurementInputException("model", $"TorchScript archive '{name}' has a pickle record '{entry}' of {e.Length} bytes; at most {MaxPickleBytes >> 20} MiB are accepted.");
            }
            using var content = isPickle ? new MemoryStream() : null;
            long length = 0;
            using (var s = e.Open())
            {
                int read;
                while ((read = s.Read(buffer)) > 0)
                {
                    length += read;
                    total += read;
                    if (total > ModelFile.MaxArchiveBytes)
                    {
                        throw new MeasurementInputException("model", $"TorchScript archive '{name}' decompresses to more than {ModelFile.MaxArchiveBytes >> 30} GiB; refusing it.");
                    }
                    if (content is not null)
                    {
                        if (length > MaxPickleBytes)
                        {
                            throw new MeasurementInputException("model", $"TorchScript archive '{name}' has a pickle record '{entry}' of more than {MaxPickleBytes >> 20} MiB; refusing it.");
                        }
                        content.Write(buffer, 0, read);
                    }
                }
            }
            sizes.Add(entry, length);
            if (content is not null) pickles.Add((entry, tensorFolder, content.ToArray()));
        }

        foreach (var (entry, folder, bytes) in pickles)
        {
            PickleScan scan;
            try
            {
                scan = PickleScanner.Scan(bytes);
            }
            catch (InvalidDataException ex)
            {
                throw new MeasurementInputException("model", $"TorchScript archive '{name}' cannot be used: '{entry}' {ex.Message}.", ex);
            }
            if (folder is null)
            {
                if (scan.Storages.Count > 0)
                {
                    throw new MeasurementInputException("model",
                        $"TorchScript archive '{name}' cannot be used: the debug record '{entry}' names tensor storages, which torch.jit.save never writes there; save the model again with torch.jit.save.");
                }
                continue;
            }
            foreach (var storage in scan.Storages) CheckStorage(name, entry, $"{root}/{folder}/{storage.Key}", storage, sizes);
            foreach (var tensor in scan.Tensors) CheckTensor(name, entry, $"{root}/{folder}/{tensor.Storage.Key}", tensor);
        }
    }

    private static bool Is(string entry, string name) => string.Equals(entry, name, StringComparison.OrdinalIgnoreCase);

    private static void CheckStorage(string name, string pickle, string record, PickledStorage storage, Dictionary<string, long> sizes)
    {
        if (storage.Numel == 0) return; // libtorch reads no record for an empty storage
        if (!sizes.TryGetValue(record, out var size))
        {
            throw new MeasurementInputException("model",
                $"TorchScript archive '{name}' is damaged: '{pickle}' names the storage '{record}', which the archive does not contain; save the model again with torch.jit.save.");
        }
        var overflow = storage.Numel > long.MaxValue / storage.ElementSize;
        if (overflow || storage.Numel * storage.ElementSize > size)
        {
            var needed = overflow ? "more than the archive can hold" : (storage.Numel * storage.ElementSize).ToString(System.Globalization.CultureInfo.InvariantCulture);
            throw new MeasurementInputException("model",
                $"TorchScript archive '{name}' is damaged: storage '{record}' holds {size} bytes but '{pickle}' declares {storage.Numel} elements of {storage.StorageClass} there, "
                + $"which need {needed}; save the model again with torch.jit.save.");
        }
    }

    private static void CheckTensor(string name, string pickle, string record, PickledTensor tensor)
    {
        string Shape() => $"size [{string.Join(", ", tensor.Size)}], stride [{string.Join(", ", tensor.Stride)}] and offset {tensor.Offset}";
        if (tensor.Offset < 0 || tensor.Size.Any(n => n < 0) || tensor.Stride.Any(s => s < 0))
        {
            throw new MeasurementInputException("model",
                $"TorchScript archive '{name}' is damaged: '{pickle}' has a tensor over '{record}' with {Shape()}, which must not be negative; save the model again with torch.jit.save.");
        }
        if (Array.IndexOf(tensor.Size, 0L) >= 0) return;
        long end;
        try
        {
            end = checked(tensor.Offset + 1);
            for (var i = 0; i < tensor.Size.Length; i++) end = checked(end + (tensor.Size[i] - 1) * tensor.Stride[i]);
        }
        catch (OverflowException)
        {
            end = long.MaxValue;
        }
        if (end > tensor.Storage.Numel)
        {
            throw new MeasurementInputException("model",
                $"TorchScript archive '{name}' is damaged: '{pickle}' has a tensor with {Shape()} that reaches element {end} of storage '{record}', "
                + $"which holds {tensor.Storage.Numel}; save the model again with torch.jit.save.");
        }
    }
}
