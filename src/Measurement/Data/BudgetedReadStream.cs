namespace LambdaService.Measurement.Data;

/// <summary>
/// A read-only view of a decompressing zip entry stream that counts every byte against a
/// <see cref="DecompressionBudget"/>, never asks the decompressor for more than one byte past the budget, checks the
/// entry's length and CRC-32 from the zip's directory when the data ends, and turns the decompressor's failures into
/// <see cref="MeasurementInputException"/>.
/// </summary>
/// <param name="inner">The entry's decompressing stream.</param>
/// <param name="budget">The decompressed bytes left for the whole file.</param>
/// <param name="entry">The entry's name, for messages.</param>
/// <param name="expectedLength">The uncompressed length that the zip's directory records.</param>
/// <param name="expectedCrc">The CRC-32 that the zip's directory records.</param>
internal sealed class BudgetedReadStream(Stream inner, DecompressionBudget budget, string entry, long expectedLength, uint expectedCrc)
    : Stream
{
    private readonly Crc32 _crc = new();
    private long _read;

    /// <summary>Bytes decompressed from the entry so far.</summary>
    public long BytesRead => _read;

    /// <summary>The uncompressed length that the zip's directory records for the entry.</summary>
    public long ExpectedLength => expectedLength;

    /// <inheritdoc />
    public override bool CanRead => true;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        var allowed = (int)Math.Min(buffer.Length, budget.Remaining + 1);
        int read;
        try
        {
            read = inner.Read(buffer[..allowed]);
        }
        catch (Exception e) when (e is not MeasurementInputException and not OutOfMemoryException)
        {
            throw new MeasurementInputException("data",
                $"entry {entry} of the npz file cannot be decompressed ({DataText.Detail(e)}); the file may be corrupt, save it again with numpy.savez",
                e);
        }
        budget.Consume(read, entry);
        _crc.Append(buffer[..read]);
        _read += read;
        if (read == 0 && (_read != expectedLength || _crc.Value != expectedCrc))
        {
            throw new MeasurementInputException("data",
                $"entry {entry} of the npz file fails its length or CRC-32 check; the file is corrupt, upload it again");
        }
        return read;
    }

    /// <inheritdoc />
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                inner.Dispose();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Closing a read-only entry stream frees buffers only; its data was checked while reading.
            }
        }
        base.Dispose(disposing);
    }
}
