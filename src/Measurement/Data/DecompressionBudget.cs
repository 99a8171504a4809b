namespace LambdaService.Measurement.Data;

/// <summary>Counts the bytes decompressed from an npz file against <see cref="DataReadOptions.MaxDecompressedBytes"/>.</summary>
/// <param name="limit">The most bytes that all entries together may decompress to.</param>
internal sealed class DecompressionBudget(long limit)
{
    /// <summary>The most bytes that all entries together may decompress to.</summary>
    public long Limit { get; } = limit;

    /// <summary>Bytes decompressed so far.</summary>
    public long Used { get; private set; }

    /// <summary>Bytes that may still be decompressed.</summary>
    public long Remaining => Limit - Used;

    /// <summary>Records <paramref name="bytes"/> actually decompressed from <paramref name="entry"/>; throws past the limit.</summary>
    public void Consume(int bytes, string entry)
    {
        Used += bytes;
        if (Used > Limit)
        {
            throw new MeasurementInputException("data",
                $"the npz file decompresses to more than the limit of {Limit} bytes (reached in entry {entry}); upload a smaller dataset");
        }
    }

    /// <summary>Rejects an entry whose header declares more data than the budget has left, before any of it is read.</summary>
    public void Reserve(long bytes, NpyHeader header, string entry)
    {
        if (bytes > Remaining)
        {
            throw new MeasurementInputException("data",
                $"entry {entry} declares shape {DataText.Tuple(header.Shape)} of {header.DType.Name} ({bytes} bytes), beyond the limit of " +
                $"{Limit} decompressed bytes for the npz file ({Math.Max(0, Remaining)} left); upload a smaller dataset");
        }
    }
}
