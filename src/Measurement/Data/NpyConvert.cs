using System.Buffers.Binary;

namespace LambdaService.Measurement.Data;

/// <summary>Converts raw NumPy elements to doubles.</summary>
internal static class NpyConvert
{
    /// <summary>Converts <c>destination.Length</c> elements of <paramref name="type"/> from <paramref name="source"/>.</summary>
    public static void ToDouble(ReadOnlySpan<byte> source, Span<double> destination, NpyDType type)
    {
        var big = type.BigEndian;
        switch (type.Kind, type.Size)
        {
            case (NpyKind.Float, 2):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(2 * i, 2);
                    destination[i] = (double)(big ? BinaryPrimitives.ReadHalfBigEndian(s) : BinaryPrimitives.ReadHalfLittleEndian(s));
                }
                break;
            case (NpyKind.Float, 4):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(4 * i, 4);
                    destination[i] = big ? BinaryPrimitives.ReadSingleBigEndian(s) : BinaryPrimitives.ReadSingleLittleEndian(s);
                }
                break;
            case (NpyKind.Float, 8):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(8 * i, 8);
                    destination[i] = big ? BinaryPrimitives.ReadDoubleBigEndian(s) : BinaryPrimitives.ReadDoubleLittleEndian(s);
                }
                break;
            case (NpyKind.SignedInteger, 1):
                for (var i = 0; i < destination.Length; i++) destination[i] = (sbyte)source[i];
                break;
            case (NpyKind.SignedInteger, 2):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(2 * i, 2);
                    destination[i] = big ? BinaryPrimitives.ReadInt16BigEndian(s) : BinaryPrimitives.ReadInt16LittleEndian(s);
                }
                break;
            case (NpyKind.SignedInteger, 4):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(4 * i, 4);
                    destination[i] = big ? BinaryPrimitives.ReadInt32BigEndian(s) : BinaryPrimitives.ReadInt32LittleEndian(s);
                }
                break;
            case (NpyKind.SignedInteger, 8):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(8 * i, 8);
                    destination[i] = big ? BinaryPrimitives.ReadInt64BigEndian(s) : BinaryPrimitives.ReadInt64LittleEndian(s);
                }
                break;
            case (NpyKind.UnsignedInteger, 1):
                for (var i = 0; i < destination.Length; i++) destination[i] = source[i];
                break;
            case (NpyKind.UnsignedInteger, 2):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(2 * i, 2);
                    destination[i] = big ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
                }
                break;
            case (NpyKind.UnsignedInteger, 4):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(4 * i, 4);
                    destination[i] = big ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
                }
                break;
            case (NpyKind.UnsignedInteger, 8):
                for (var i = 0; i < destination.Length; i++)
                {
                    var s = source.Slice(8 * i, 8);
                    destination[i] = big ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s);
                }
                break;
            case (NpyKind.Boolean, 1):
                for (var i = 0; i < destination.Length; i++) destination[i] = source[i] != 0 ? 1.0 : 0.0;
                break;
            default:
                throw new InvalidOperationException($"No conversion for dtype {type.Name}.");
        }
    }
}
