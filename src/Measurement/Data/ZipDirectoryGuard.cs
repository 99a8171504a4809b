using System.Buffers.Binary;

namespace LambdaService.Measurement.Data;

/// <summary>
/// Looks at a zip's end-of-central-directory record before <see cref="System.IO.Compression.ZipArchive"/> reads the
/// directory, so that a file listing millions of entries cannot make it allocate them all.
/// </summary>
internal static class ZipDirectoryGuard
{
    /// <summary>Most entries an npz may list (it needs two: <c>x.npy</c> and <c>y.npy</c>).</summary>
    public const long MaxEntries = 1000;

    /// <summary>Most bytes the central directory may occupy.</summary>
    public const long MaxDirectoryBytes = 1 << 20;

    private const int EndRecordSize = 22;
    private const uint EndSignature = 0x06054b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const uint Zip64EndSignature = 0x06064b50;

    /// <summary>Checks the directory's declared size and entry count; leaves the stream's position where it was.</summary>
    /// <param name="stream">The whole zip file, seekable, starting at position 0.</param>
    public static void Check(Stream stream)
    {
        var start = stream.Position;
        try
        {
            var tailLength = (int)Math.Min(stream.Length, EndRecordSize + ushort.MaxValue);
            var tail = new byte[tailLength];
            stream.Position = stream.Length - tailLength;
            var read = DataStreams.ReadAtMost(stream, tail);
            var at = FindEndRecord(tail.AsSpan(0, read));
            if (at < 0) throw Unreadable("no end of central directory; truncated?");
            var end = tail.AsSpan(at);
            long entries = BinaryPrimitives.ReadUInt16LittleEndian(end[10..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(end[12..]);
            if (entries == ushort.MaxValue || size == uint.MaxValue)
            {
                (entries, size) = ReadZip64(stream, stream.Length - tailLength + at, entries, size);
            }
            if (entries > MaxEntries || size > MaxDirectoryBytes)
            {
                throw new MeasurementInputException("data",
                    $"the npz file lists {entries} entries in a {size}-byte directory, more than the {MaxEntries} entries allowed; save only x (and y) with numpy.savez");
            }
        }
        finally
        {
            stream.Position = start;
        }
    }

    private static int FindEndRecord(ReadOnlySpan<byte> tail)
    {
        for (var i = tail.Length - EndRecordSize; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[i..]) == EndSignature) return i;
        }
        return -1;
    }

    private static (long Entries, long Size) ReadZip64(Stream stream, long endRecordAt, long entries, long size)
    {
        const int locatorSize = 20;
        const int zip64EndSize = 56;
        if (endRecordAt < locatorSize) return (entries, size);
        Span<byte> locator = stackalloc byte[locatorSize];
        stream.Position = endRecordAt - locatorSize;
        if (DataStreams.ReadAtMost(stream, locator) < locatorSize
            || BinaryPrimitives.ReadUInt32LittleEndian(locator) != Zip64LocatorSignature)
        {
            return (entries, size);
        }
        var zip64EndAt = BinaryPrimitives.ReadUInt64LittleEndian(locator[8..]);
        if (stream.Length < zip64EndSize || zip64EndAt > (ulong)(stream.Length - zip64EndSize)) throw Unreadable("broken zip64 directory");
        Span<byte> record = stackalloc byte[zip64EndSize];
        stream.Position = (long)zip64EndAt;
        if (DataStreams.ReadAtMost(stream, record) < zip64EndSize
            || BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64EndSignature)
        {
            throw Unreadable("broken zip64 directory");
        }
        var entries64 = BinaryPrimitives.ReadUInt64LittleEndian(record[32..]);
        var size64 = BinaryPrimitives.ReadUInt64LittleEndian(record[40..]);
        return ((long)Math.Min(entries64, long.MaxValue), (long)Math.Min(size64, long.MaxValue));
    }

    private static MeasurementInputException Unreadable(string detail) =>
        new("data", $"the npz file is not a readable zip archive ({detail}); save it again with numpy.savez");
}
