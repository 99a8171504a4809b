using System.Buffers;

namespace LambdaService.Measurement.Data;

/// <summary>Reads the data section of a <c>.npy</c> array into row-major doubles.</summary>
internal static class NpyData
{
    private const int ChunkBytes = 1 << 16;

    /// <summary>Bytes of data that <paramref name="header"/> declares for <paramref name="count"/> elements.</summary>
    public static long ByteCount(NpyHeader header, long count) => count * header.DType.Size;

    /// <summary>
    /// Reads <paramref name="count"/> elements (the product of the header's shape, already checked against the limits)
    /// and returns them row-major, transposing Fortran-ordered data.
    /// </summary>
    /// <exception cref="MeasurementInputException">The stream ends before the data does.</exception>
    public static double[] Read(Stream stream, NpyHeader header, long count, string source)
    {
        var size = header.DType.Size;
        var values = new double[count];
        var perChunk = ChunkBytes / size;
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        var fortran = header.FortranOrder && header.Shape.Length > 1 ? new FortranIndex(header.Shape) : null;
        var scratch = fortran is null ? null : new double[perChunk];
        try
        {
            long done = 0;
            while (done < count)
            {
                var n = (int)Math.Min(perChunk, count - done);
                var bytes = buffer.AsSpan(0, n * size);
                var got = DataStreams.ReadAtMost(stream, bytes);
                if (got < bytes.Length) throw Truncated(header, count, source, done * size + got);
                if (fortran is null)
                {
                    NpyConvert.ToDouble(bytes, values.AsSpan((int)done, n), header.DType);
                }
                else
                {
                    NpyConvert.ToDouble(bytes, scratch.AsSpan(0, n), header.DType);
                    for (var i = 0; i < n; i++) values[fortran.Next()] = scratch![i];
                }
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return values;
    }

    /// <summary>Rejects data that continues after the array (such as several arrays saved into one file).</summary>
    public static void EnsureEnd(Stream stream, string source)
    {
        Span<byte> probe = stackalloc byte[1];
        if (stream.Read(probe) > 0)
        {
            throw new MeasurementInputException("data",
                $"{source} has bytes after the end of its array (several arrays saved into one file?); save one array per .npy file, or use numpy.savez");
        }
    }

    /// <summary>The message for data that ends after <paramref name="received"/> of the declared bytes.</summary>
    public static MeasurementInputException Truncated(NpyHeader header, long count, string source, long received) => new("data",
        $"{source} is truncated: its header declares shape {DataText.Tuple(header.Shape)} of {header.DType.Name} " +
        $"({ByteCount(header, count)} bytes of data) but only {received} bytes follow; upload the complete file");

    /// <summary>Walks an array in Fortran (column-major) order and yields each element's row-major index.</summary>
    private sealed class FortranIndex
    {
        private readonly long[] _shape;
        private readonly long[] _rowStride;
        private readonly long[] _index;
        private long _offset;

        public FortranIndex(long[] shape)
        {
            _shape = shape;
            _index = new long[shape.Length];
            _rowStride = new long[shape.Length];
            long stride = 1;
            for (var d = shape.Length - 1; d >= 0; d--)
            {
                _rowStride[d] = stride;
                stride *= shape[d];
            }
        }

        /// <summary>Row-major index of the current element; then advances, the first axis fastest.</summary>
        public long Next()
        {
            var current = _offset;
            for (var d = 0; d < _shape.Length; d++)
            {
                _index[d]++;
                _offset += _rowStride[d];
                if (_index[d] < _shape[d]) break;
                _offset -= _rowStride[d] * _shape[d];
                _index[d] = 0;
            }
            return current;
        }
    }
}
