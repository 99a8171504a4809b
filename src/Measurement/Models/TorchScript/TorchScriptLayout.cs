namespace LambdaService.Measurement.Models;

/// <summary>Which records of a TorchScript archive hold its file format version.</summary>
[Flags]
public enum TorchScriptVersionRecords
{
    /// <summary><c>&lt;archive&gt;/version</c>: what torch.jit.save writes for versions below 6 (and PyTorch 1.x always did).</summary>
    Version = 1,

    /// <summary><c>&lt;archive&gt;/.data/version</c>: what torch.jit.save writes for versions 6 and above.</summary>
    DataVersion = 2,
}

/// <summary>
/// How <see cref="TorchScriptWriter"/> lays out an archive: the variants that <c>torch.jit.save</c> of PyTorch 1.13 … 2.x
/// writes. <see cref="Default"/> is the layout the writer has always produced (folder <c>archive</c>, version 10 in
/// <c>.data/version</c>, a <c>byteorder</c> record, nothing else), so exports and content hashes stay the same.
/// </summary>
/// <remarks>
/// libtorch's reader (caffe2/serialize/inline_container.cc) takes the archive's folder from the first entry, reads the
/// version from <c>.data/version</c> when present and from <c>version</c> otherwise, and accepts versions
/// <c>kMinSupportedFileFormatVersion</c> … <c>kMaxSupportedFileFormatVersion</c>, 1 … 10 in libtorch 2.10; the writer
/// refuses other versions. <c>byteorder</c> and <c>.data/serialization_id</c> came with PyTorch 2.x and are optional to
/// the reader; <c>extra/&lt;name&gt;</c> entries are <c>torch.jit.save</c>'s <c>_extra_files</c>; <c>.debug_pkl</c>
/// records map code back to source lines and are read only to word error messages.
/// </remarks>
public sealed record TorchScriptLayout
{
    /// <summary>Lowest file format version libtorch 2.10 reads (<c>kMinSupportedFileFormatVersion</c>).</summary>
    public const int MinFormatVersion = 1;

    /// <summary>Highest file format version libtorch 2.10 reads (<c>kMaxSupportedFileFormatVersion</c>).</summary>
    public const int MaxFormatVersion = 10;

    /// <summary>The writer's own layout (see the type's summary).</summary>
    public static TorchScriptLayout Default { get; } = new();

    /// <summary>
    /// The single top folder of every entry. torch.jit.save names it after the file's stem (<c>model.pt</c> →
    /// <c>model</c>) and <c>archive</c> when it writes to a buffer. Letters, digits, <c>_</c>, <c>-</c> and <c>.</c>.
    /// </summary>
    public string ArchiveName { get; init; } = "archive";

    /// <summary>
    /// The file format version, <see cref="MinFormatVersion"/> … <see cref="MaxFormatVersion"/>. torch.jit.save writes the
    /// lowest version the code's operators need, at least 3. The version chooses operator semantics: below 4, for
    /// example, <c>torch.div</c> of integer tensors truncates (libtorch applies its upgraders); the operators of
    /// <see cref="TorchScriptWriter.Mlp"/> mean the same under every version.
    /// </summary>
    public int FormatVersion { get; init; } = 10;

    /// <summary>
    /// Where the version goes; null (the default) does as torch.jit.save: <c>.data/version</c> from version 6 on,
    /// <c>version</c> below. The reader prefers <c>.data/version</c> when both are there.
    /// </summary>
    public TorchScriptVersionRecords? VersionRecords { get; init; }

    /// <summary>Whether to write the <c>byteorder</c> record (<c>little</c>), as PyTorch 2.x does.</summary>
    public bool IncludeByteOrder { get; init; } = true;

    /// <summary>Whether to write <c>.data/serialization_id</c> (40 digits derived from the records), as PyTorch 2.1+ does.</summary>
    public bool IncludeSerializationId { get; init; }

    /// <summary>Whether to write a <c>code/….py.debug_pkl</c> record beside each code file, as torch.jit.save does.</summary>
    public bool IncludeDebugInfo { get; init; }

    /// <summary>
    /// torch.jit.save's <c>_extra_files</c>: each is written to <c>extra/&lt;name&gt;</c>. Names are relative paths of
    /// letters, digits, <c>_ - .</c> and <c>/</c>, with no empty, <c>.</c> or <c>..</c> segment.
    /// </summary>
    public IReadOnlyDictionary<string, byte[]>? ExtraFiles { get; init; }

    /// <summary>The record(s) that hold the version under this layout.</summary>
    public TorchScriptVersionRecords EffectiveVersionRecords =>
        VersionRecords ?? (FormatVersion >= 6 ? TorchScriptVersionRecords.DataVersion : TorchScriptVersionRecords.Version);
}
