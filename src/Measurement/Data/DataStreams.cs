using System.Security.Cryptography;

namespace LambdaService.Measurement.Data;

/// <summary>Stream helpers shared by the data readers.</summary>
internal static class DataStreams
{
    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; returns the bytes read.</summary>
    public static int ReadAtMost(Stream stream, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = stream.Read(buffer[total..]);
            if (read == 0) break;
            total += read;
        }
        return total;
    }

    /// <summary>Lower-case hex SHA-256 of the stream's bytes from its current position to its end.</summary>
    public static string Sha256Hex(Stream stream) => Convert.ToHexStringLower(SHA256.HashData(stream));

    /// <summary>
    /// Copies the rest of <paramref name="stream"/> into memory, refusing (with a <see cref="MeasurementInputException"/>)
    /// to hold more than <paramref name="limit"/> bytes.
    /// </summary>
    public static MemoryStream BufferAtMost(Stream stream, long limit)
    {
        limit = Math.Min(limit, Array.MaxLength);
        var memory = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (memory.Length + read > limit)
            {
                memory.Dispose();
                throw new MeasurementInputException("data",
                    $"the data file is larger than the limit of {limit} bytes; upload a smaller file");
            }
            memory.Write(chunk, 0, read);
        }
        memory.Position = 0;
        return memory;
    }
}
