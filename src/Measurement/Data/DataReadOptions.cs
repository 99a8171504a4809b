namespace LambdaService.Measurement.Data;

/// <summary>Options and limits for reading data files.</summary>
public sealed record DataReadOptions
{
    /// <summary>Name of the label column in a CSV file (default <c>label</c>). Absent column: no labels.</summary>
    public string LabelColumn { get; init; } = "label";

    /// <summary>Largest number of bytes a file may decompress to (npz entries together). Default 1 GiB.</summary>
    public long MaxDecompressedBytes { get; init; } = 1L << 30;

    /// <summary>Largest number of values (rows × features) accepted. Default 100 million.</summary>
    public long MaxValues { get; init; } = 100_000_000;
}
