using System.Buffers.Binary;
using System.Text;

namespace LambdaService.Measurement.Models;

/// <summary>
/// The subset of Python pickle protocol 2 that libtorch's TorchScript unpickler
/// (torch/csrc/jit/serialization/unpickler.cpp) reads: no memo, strings as BINUNICODE, integers in the
/// narrowest of BININT1/BININT2/BININT/LONG1 (the choice torch's own Pickler makes).
/// </summary>
internal sealed class PickleWriter
{
    private const byte Proto = 0x80, Stop = (byte)'.', Mark = (byte)'(', Global = (byte)'c', EmptyTupleOp = (byte)')';
    private const byte TupleOp = (byte)'t', EmptyDictOp = (byte)'}', SetItems = (byte)'u', BuildOp = (byte)'b';
    private const byte NewObjOp = 0x81, ReduceOp = (byte)'R', BinPersIdOp = (byte)'Q', NewTrue = 0x88, NewFalse = 0x89, NoneOp = (byte)'N';
    private const byte BinUnicode = (byte)'X', BinInt1 = (byte)'K', BinInt2 = (byte)'M', BinInt = (byte)'J', Long1 = 0x8a;

    private readonly MemoryStream _buffer = new();

    /// <summary>Starts the program: PROTO 2.</summary>
    public PickleWriter()
    {
        _buffer.WriteByte(Proto);
        _buffer.WriteByte(2);
    }

    /// <summary>Ends the program with STOP and returns its bytes.</summary>
    public byte[] Finish()
    {
        _buffer.WriteByte(Stop);
        return _buffer.ToArray();
    }

    public void MarkOp() => _buffer.WriteByte(Mark);
    public void TupleFromMark() => _buffer.WriteByte(TupleOp);
    public void EmptyTuple() => _buffer.WriteByte(EmptyTupleOp);
    public void EmptyDict() => _buffer.WriteByte(EmptyDictOp);
    public void SetItemsFromMark() => _buffer.WriteByte(SetItems);
    public void NewObj() => _buffer.WriteByte(NewObjOp);
    public void Build() => _buffer.WriteByte(BuildOp);
    public void Reduce() => _buffer.WriteByte(ReduceOp);
    public void BinPersId() => _buffer.WriteByte(BinPersIdOp);
    public void Bool(bool value) => _buffer.WriteByte(value ? NewTrue : NewFalse);
    public void None() => _buffer.WriteByte(NoneOp);

    /// <summary>GLOBAL: pushes <c>module.name</c> (both ASCII, newline-terminated in the stream).</summary>
    public void GlobalRef(string module, string name)
    {
        _buffer.WriteByte(Global);
        var bytes = Encoding.ASCII.GetBytes(module + "\n" + name + "\n");
        _buffer.Write(bytes, 0, bytes.Length);
    }

    /// <summary>BINUNICODE: a UTF-8 string with a 4-byte little-endian length.</summary>
    public void String(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        _buffer.WriteByte(BinUnicode);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)bytes.Length);
        _buffer.Write(length);
        _buffer.Write(bytes, 0, bytes.Length);
    }

    /// <summary>An integer, in the narrowest opcode that holds it.</summary>
    public void Int(long value)
    {
        Span<byte> bytes = stackalloc byte[8];
        if (value is >= 0 and <= byte.MaxValue)
        {
            _buffer.WriteByte(BinInt1);
            _buffer.WriteByte((byte)value);
        }
        else if (value is >= 0 and <= ushort.MaxValue)
        {
            _buffer.WriteByte(BinInt2);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)value);
            _buffer.Write(bytes[..2]);
        }
        else if (value is >= int.MinValue and <= int.MaxValue)
        {
            _buffer.WriteByte(BinInt);
            BinaryPrimitives.WriteInt32LittleEndian(bytes, (int)value);
            _buffer.Write(bytes[..4]);
        }
        else
        {
            _buffer.WriteByte(Long1);
            _buffer.WriteByte(8);
            BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
            _buffer.Write(bytes);
        }
    }

    /// <summary>A tuple of integers: MARK, the integers, TUPLE.</summary>
    public void IntTuple(IEnumerable<long> values)
    {
        MarkOp();
        foreach (var v in values) Int(v);
        TupleFromMark();
    }
}
