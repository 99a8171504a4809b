using System.IO.Compression;

namespace LambdaService.Measurement.Tests.Data;

/// <summary>Builds .npz files (zips of .npy entries) with System.IO.Compression, plus a few deliberate corruptions.</summary>
internal static class NpzBytes
{
    /// <summary>A zip with the given entries, in order, deflated.</summary>
    public static byte[] Zip(params (string Name, byte[] Content)[] entries) => Zip(CompressionLevel.Optimal, entries);

    /// <summary>A zip with the given entries, in order, at the given compression level.</summary>
    public static byte[] Zip(CompressionLevel level, params (string Name, byte[] Content)[] entries)
    {
        using var memory = new MemoryStream();
        using (var archive = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
            {
                using var stream = archive.CreateEntry(name, level).Open();
                stream.Write(content);
            }
        }
        return memory.ToArray();
    }

    /// <summary>
    /// A zip with one entry <paramref name="name"/> holding <paramref name="prefix"/> followed by
    /// <paramref name="zeros"/> zero bytes, written in chunks so that the test never holds them all.
    /// </summary>
    public static byte[] ZipWithZeros(string name, byte[] prefix, long zeros)
    {
        using var memory = new MemoryStream();
        using (var archive = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var stream = archive.CreateEntry(name, CompressionLevel.Optimal).Open();
            stream.Write(prefix);
            var chunk = new byte[1 << 20];
            for (var left = zeros; left > 0; left -= chunk.Length) stream.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
        }
        return memory.ToArray();
    }

    /// <summary>Sets the "encrypted" bit (bit 0 of the general-purpose flags) in every local and central header.</summary>
    public static byte[] MarkEncrypted(byte[] zip) => PatchHeaders(zip, localOffset: 6, centralOffset: 8, value: 1, orBits: true, xorBits: false);

    /// <summary>Sets the compression method of every entry (e.g. 12 = bzip2, which .NET cannot read).</summary>
    public static byte[] SetCompressionMethod(byte[] zip, ushort method) =>
        PatchHeaders(zip, localOffset: 8, centralOffset: 10, value: method, orBits: false, xorBits: false);

    /// <summary>Flips one bit of the data of every entry's recorded CRC-32 (local header offset 14, central header offset 16).</summary>
    public static byte[] CorruptCrc(byte[] zip) => PatchHeaders(zip, localOffset: 14, centralOffset: 16, value: 1, orBits: false, xorBits: true);

    /// <summary>Sets the low 16 bits of every entry's recorded uncompressed size (local header offset 22, central header offset 24).</summary>
    public static byte[] SetRecordedSize(byte[] zip, ushort size) =>
        PatchHeaders(zip, localOffset: 22, centralOffset: 24, value: size, orBits: false, xorBits: false);

    private static byte[] PatchHeaders(byte[] zip, int localOffset, int centralOffset, ushort value, bool orBits, bool xorBits)
    {
        var patched = (byte[])zip.Clone();
        for (var i = 0; i + 4 <= patched.Length; i++)
        {
            int? at = (patched[i], patched[i + 1], patched[i + 2], patched[i + 3]) switch
            {
                ((byte)'P', (byte)'K', 3, 4) => i + localOffset,
                ((byte)'P', (byte)'K', 1, 2) => i + centralOffset,
                _ => null,
            };
            if (at is not { } offset) continue;
            var current = (ushort)(patched[offset] | patched[offset + 1] << 8);
            var next = orBits ? (ushort)(current | value) : xorBits ? (ushort)(current ^ value) : value;
            patched[offset] = (byte)next;
            patched[offset + 1] = (byte)(next >> 8);
        }
        return patched;
    }
}
