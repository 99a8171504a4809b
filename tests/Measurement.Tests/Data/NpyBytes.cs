using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace LambdaService.Measurement.Tests.Data;

/// <summary>Builds .npy files by hand, following the NumPy format specification.</summary>
internal static class NpyBytes
{
    /// <summary>An array with the given dtype string, shape and raw data bytes.</summary>
    public static byte[] Array(string descr, long[] shape, byte[] data, bool fortranOrder = false, int major = 1) =>
        WithHeader(Dict(descr, shape, fortranOrder), data, major);

    /// <summary>A float64 array holding <paramref name="values"/> in row-major order.</summary>
    public static byte[] Float64(long[] shape, params double[] values) => Array("<f8", shape, Float64Data(values));

    /// <summary>The header dict NumPy writes, e.g. <c>{'descr': '&lt;f8', 'fortran_order': False, 'shape': (2, 3), }</c>.</summary>
    public static string Dict(string descr, long[] shape, bool fortranOrder = false) =>
        $"{{'descr': '{descr}', 'fortran_order': {(fortranOrder ? "True" : "False")}, 'shape': {Tuple(shape)}, }}";

    /// <summary>
    /// Magic <c>\x93NUMPY</c>, version <paramref name="major"/>.0, a little-endian header length (2 bytes for 1.0,
    /// 4 bytes for 2.0 and 3.0), then the dict padded with spaces and ended by a newline so that the preamble is a
    /// multiple of 64 bytes, then the data.
    /// </summary>
    public static byte[] WithHeader(string dict, byte[] data, int major = 1)
    {
        var lengthBytes = major == 1 ? 2 : 4;
        var text = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetBytes(dict);
        var unpadded = 6 + 2 + lengthBytes + text.Length + 1;
        var headerLength = text.Length + (64 - unpadded % 64) % 64 + 1;

        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.Add((byte)major);
        bytes.Add(0);
        var length = new byte[lengthBytes];
        if (lengthBytes == 2) BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)headerLength);
        else BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)headerLength);
        bytes.AddRange(length);
        bytes.AddRange(text);
        bytes.AddRange(Enumerable.Repeat((byte)' ', headerLength - text.Length - 1));
        bytes.Add((byte)'\n');
        bytes.AddRange(data);
        return [.. bytes];
    }

    /// <summary>A Python tuple: <c>()</c>, <c>(3,)</c>, <c>(2, 3)</c>.</summary>
    public static string Tuple(long[] shape) => shape.Length switch
    {
        0 => "()",
        1 => $"({shape[0]},)",
        _ => "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")",
    };

    /// <summary>Little-endian float64 bytes.</summary>
    public static byte[] Float64Data(params double[] values)
    {
        var data = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8 * i), values[i]);
        return data;
    }

    /// <summary>Little-endian float32 bytes.</summary>
    public static byte[] Float32Data(params float[] values)
    {
        var data = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), values[i]);
        return data;
    }

    /// <summary>Little-endian int64 bytes.</summary>
    public static byte[] Int64Data(params long[] values)
    {
        var data = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(8 * i), values[i]);
        return data;
    }
}
