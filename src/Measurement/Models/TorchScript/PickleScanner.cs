using System.Buffers.Binary;
using System.Text;

namespace LambdaService.Measurement.Models;

/// <summary>
/// A storage a TorchScript pickle names by its persistent id <c>('storage', torch.&lt;Kind&gt;Storage, key, location, numel)</c>:
/// libtorch reads the record <c>&lt;folder&gt;/&lt;key&gt;</c> (when <see cref="Numel"/> &gt; 0) and takes it to hold
/// <see cref="Numel"/> × <see cref="ElementSize"/> bytes without comparing that with the record's size.
/// </summary>
/// <param name="StorageClass">The storage class, e.g. <c>torch.FloatStorage</c>.</param>
/// <param name="ElementSize">Bytes per element of <paramref name="StorageClass"/>.</param>
/// <param name="Key">The record's name inside the tensor folder (<c>data/</c> or <c>constants/</c>).</param>
/// <param name="Numel">Elements the persistent id declares.</param>
internal sealed record PickledStorage(string StorageClass, int ElementSize, string Key, long Numel);

/// <summary>A tensor <c>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])</c>.</summary>
internal sealed record PickledTensor(PickledStorage Storage, long Offset, long[] Size, long[] Stride);

/// <summary>What a TorchScript pickle holds that the archive must back: the storages it names and the tensors over them.</summary>
internal sealed record PickleScan(IReadOnlyList<PickledStorage> Storages, IReadOnlyList<PickledTensor> Tensors);

/// <summary>
/// Reads a pickle the way libtorch's TorchScript unpickler does (torch/csrc/jit/serialization/unpickler.cpp: protocol 2
/// only, the opcodes <see cref="PickleWriter"/> and torch's own Pickler write, LONG1 of 8 bytes only) but only simulates
/// its stack: nothing named in the pickle is imported or called. It refuses any opcode libtorch does not read and any
/// GLOBAL that <c>torch.jit.save</c> does not write (the allowlist: <c>__torch__.*</c> classes of the archive's own
/// code, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch.&lt;Kind&gt;Storage</c>, <c>collections.OrderedDict</c>,
/// <c>torch.jit._pickle</c>'s list builders and <c>restore_type_tag</c>, <c>torch.device</c>, <c>builtins.complex</c>),
/// and collects every storage persistent id and every tensor so that the archive's records can be checked against them.
/// Problems raise <see cref="InvalidDataException"/> with a message that completes "&lt;entry&gt; …" and says what to do.
/// </summary>
internal sealed class PickleScanner
{
    /// <summary>Bytes per element of each storage class libtorch's unpickler maps to a dtype (quantized ones are refused).</summary>
    private static readonly Dictionary<string, int> StorageElementSizes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = 4, ["DoubleStorage"] = 8, ["HalfStorage"] = 2, ["BFloat16Storage"] = 2,
        ["LongStorage"] = 8, ["IntStorage"] = 4, ["ShortStorage"] = 2, ["CharStorage"] = 1, ["ByteStorage"] = 1,
        ["BoolStorage"] = 1, ["ComplexHalfStorage"] = 4, ["ComplexFloatStorage"] = 8, ["ComplexDoubleStorage"] = 16,
        ["UInt16Storage"] = 2, ["UInt32Storage"] = 4, ["UInt64Storage"] = 8,
        ["Float8_e5m2Storage"] = 1, ["Float8_e4m3fnStorage"] = 1, ["Float8_e5m2fnuzStorage"] = 1, ["Float8_e4m3fnuzStorage"] = 1,
    };

    private static readonly HashSet<string> Callables = new(StringComparer.Ordinal)
    {
        "torch._utils._rebuild_tensor_v2", "collections.OrderedDict", "torch.device", "builtins.complex",
        "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.restore_type_tag",
    };

    private const string RebuildTensor = "torch._utils._rebuild_tensor_v2";

    /// <summary>Most dimensions a tensor may have (torch's modules use a handful; the bound keeps the checks linear in the pickle's size).</summary>
    public const int MaxDimensions = 64;

    /// <summary>Longest module or name a GLOBAL may spell (torch's qualified class names are far shorter).</summary>
    private const int MaxGlobalLength = 1024;

    private readonly byte[] _pickle;
    private readonly List<object> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<uint, object> _memo = [];
    private readonly List<PickledStorage> _storages = [];
    private readonly List<PickledTensor> _tensors = [];
    private int _at;

    private PickleScanner(byte[] pickle) => _pickle = pickle;

    private sealed record Global(string Module, string Name)
    {
        public string Qualified => Module + "." + Name;
    }

    /// <summary>A tuple; its items as integers are kept once worked out, as torch shares size tuples through the memo.</summary>
    private sealed class Tuple(object[] items)
    {
        public object[] Items { get; } = items;

        public long[]? Integers { get; set; }
    }

    /// <summary>
    /// A list, dict, object or other value whose contents the checks do not need. Lists and dicts are shared instances
    /// (as is the empty tuple, and the small integers are boxed once): the scan allocates little even for a pickle of
    /// nothing but EMPTY_LIST opcodes.
    /// </summary>
    private sealed class Opaque(string kind)
    {
        public static readonly Opaque List = new("list"), Dict = new("dict");

        public string Kind { get; } = kind;
    }

    private static readonly Tuple EmptyTuple = new([]);

    private static readonly object[] SmallIntegers = [.. Enumerable.Range(0, 256).Select(i => (object)(long)i)];

    private sealed class NoneValue
    {
        public static readonly NoneValue Instance = new();
    }

    /// <summary>Scans one pickle; see the type's summary.</summary>
    /// <exception cref="InvalidDataException">The pickle is malformed, uses what libtorch does not read, or names a global torch.jit.save never writes.</exception>
    public static PickleScan Scan(byte[] pickle)
    {
        var scanner = new PickleScanner(pickle);
        scanner.Run();
        return new PickleScan(scanner._storages, scanner._tensors);
    }

    private void Run()
    {
        if (_pickle.Length < 2 || _pickle[0] != 0x80) throw Malformed("does not start with the PROTO opcode");
        if (_pickle[1] != 2) throw Malformed($"is pickle protocol {_pickle[1]}; libtorch reads protocol 2 only");
        _at = 2;
        while (true)
        {
            var at = _at;
            var op = ReadByte();
            switch (op)
            {
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Malformed($"ends with {_stack.Count} values on the stack instead of 1");
                    return;
                case (byte)'(': _marks.Add(_stack.Count); break; // MARK
                case (byte)')': Push(EmptyTuple); break; // EMPTY_TUPLE
                case (byte)']': Push(Opaque.List); break; // EMPTY_LIST
                case (byte)'}': Push(Opaque.Dict); break; // EMPTY_DICT
                case (byte)'N': Push(NoneValue.Instance); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'K': Push(SmallIntegers[ReadByte()]); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break; // BININT2
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break; // BININT
                case 0x8a: // LONG1
                    if (ReadByte() != 8) throw Malformed($"has a LONG1 integer at byte {at} that is not 8 bytes long; libtorch reads only those");
                    Push(BinaryPrimitives.ReadInt64LittleEndian(Read(8)));
                    break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break; // BINFLOAT
                case (byte)'X': // BINUNICODE
                    var length = BinaryPrimitives.ReadUInt32LittleEndian(Read(4));
                    if (length > (uint)(_pickle.Length - _at)) throw Truncated();
                    Push(Encoding.UTF8.GetString(Read((int)length)));
                    break;
                case (byte)'t': Push(new Tuple(PopToMark())); break; // TUPLE
                case 0x85: Push(new Tuple(PopItems(1))); break; // TUPLE1
                case 0x86: Push(new Tuple(PopItems(2))); break; // TUPLE2
                case 0x87: Push(new Tuple(PopItems(3))); break; // TUPLE3
                case (byte)'l': PopToMark(); Push(Opaque.List); break; // LIST
                case (byte)'d': // DICT
                    if (PopToMark().Length % 2 != 0) throw Malformed($"has a DICT at byte {at} with a key but no value");
                    Push(Opaque.Dict);
                    break;
                case (byte)'e': AddToContainer("list", at); break; // APPENDS
                case (byte)'u': AddToContainer("dict", at); break; // SETITEMS
                case (byte)'s': // SETITEM
                    PopItems(2);
                    ExpectContainer(_stack.Count > 0 ? Peek() : null, "dict", at);
                    break;
                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Read(4))); break; // LONG_BINPUT
                case (byte)'h': Recall(ReadByte(), at); break; // BINGET
                case (byte)'j': Recall(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)), at); break; // LONG_BINGET
                case (byte)'c': Push(ReadGlobal(at)); break; // GLOBAL
                case 0x81: Pop(); break; // NEWOBJ: libtorch drops the argument tuple and keeps the class for BUILD
                case (byte)'b': // BUILD: libtorch treats it as REDUCE
                case (byte)'R': Reduce(at); break; // REDUCE
                case (byte)'Q': Push(PersistentId(Pop(), at)); break; // BINPERSID
                default:
                    throw Malformed($"has opcode 0x{op:x2} at byte {at}, which libtorch's TorchScript reader does not read");
            }
        }
    }

    private Global ReadGlobal(int at)
    {
        var module = ReadLine(at);
        var name = ReadLine(at);
        var global = new Global(module, name);
        var qualified = global.Qualified;
        if (IsOwnClass(module, name) || Callables.Contains(qualified) || StorageClass(global) is not null) return global;
        if (qualified == "torch._utils._rebuild_qtensor" || module == "torch" && (name.StartsWith("QInt", StringComparison.Ordinal) || name.StartsWith("QUInt", StringComparison.Ordinal)))
            throw new InvalidDataException($"holds a quantized tensor ({Clip(qualified)}); quantized models are not supported: save the float model with torch.jit.save");
        if (qualified == "torch._utils._rebuild_sparse_tensor")
            throw new InvalidDataException("holds a sparse tensor (torch._utils._rebuild_sparse_tensor); sparse tensors are not supported: make the tensor dense (tensor.to_dense()) and save the model again with torch.jit.save");
        throw new InvalidDataException(
            $"names the Python global '{Clip(qualified)}', which torch.jit.save never writes; the file was refused without running anything in it. Save the model with torch.jit.save (a scripted or traced module)");
    }

    /// <summary>A class of the archive's own code: module <c>__torch__</c> or <c>__torch__.…</c>, Python identifiers throughout.</summary>
    private static bool IsOwnClass(string module, string name) =>
        (module == "__torch__" || module.StartsWith("__torch__.", StringComparison.Ordinal))
        && module.Split('.').All(IsIdentifier) && IsIdentifier(name);

    private static bool IsIdentifier(string s) =>
        s.Length > 0 && !char.IsAsciiDigit(s[0]) && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static string? StorageClass(object value) =>
        value is Global { Module: "torch" } g && StorageElementSizes.ContainsKey(g.Name) ? g.Qualified : null;

    private void Reduce(int at)
    {
        var args = Pop();
        if (Pop() is not Global callable || StorageClass(callable) is not null)
            throw Malformed($"has a REDUCE or BUILD at byte {at} whose callable is not a class or function torch.jit.save writes");
        switch (callable.Qualified)
        {
            case RebuildTensor:
                Push(Tensor(args, at));
                break;
            case "collections.OrderedDict":
                Push(NoneValue.Instance); // libtorch replaces the backward hooks by None
                break;
            case "torch.jit._pickle.restore_type_tag":
                // (value, type name) -> value, with its element types restored
                Push(args is Tuple { Items: [var value, string] } ? value : throw Malformed($"has a restore_type_tag at byte {at} whose arguments are not (value, type name)"));
                break;
            case var builder when builder.StartsWith("torch.jit._pickle.build_", StringComparison.Ordinal):
                Push(Opaque.List); // build_intlist((list,)) and the like: the list, typed
                break;
            default:
                Push(new Opaque(callable.Qualified));
                break;
        }
    }

    /// <summary>
    /// <c>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])</c>, where
    /// storage is a persistent id and size and stride are tuples of integers of one length.
    /// </summary>
    private PickledTensor Tensor(object args, int at)
    {
        if (args is not Tuple { Items: [PickledStorage storage, long offset, Tuple size, Tuple stride, bool, _, ..] items } || items.Length > 7)
            throw Malformed($"has a tensor at byte {at} whose arguments are not (storage, offset, size, stride, requires_grad, hooks) as torch.jit.save writes them");
        if (size.Items.Length > MaxDimensions)
            throw Malformed($"has a tensor at byte {at} with {size.Items.Length} dimensions; at most {MaxDimensions} are accepted");
        var sizes = Integers(size, at);
        var strides = Integers(stride, at);
        if (sizes.Length != strides.Length)
            throw Malformed($"has a tensor at byte {at} with {sizes.Length} sizes but {strides.Length} strides");
        var tensor = new PickledTensor(storage, offset, sizes, strides);
        _tensors.Add(tensor);
        return tensor;
    }

    private static long[] Integers(Tuple tuple, int at)
    {
        if (tuple.Integers is { } known) return known;
        var values = new long[tuple.Items.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = tuple.Items[i] as long? ?? throw Malformed($"has a tensor at byte {at} whose size or stride holds something other than integers");
        }
        return tuple.Integers = values;
    }

    /// <summary>The storage a persistent id names: exactly <c>('storage', torch.&lt;Kind&gt;Storage, key, location, numel)</c>.</summary>
    private PickledStorage PersistentId(object value, int at)
    {
        if (value is not Tuple { Items: ["storage", Global kind, string key, string, long numel] } || StorageClass(kind) is not { } storageClass)
            throw Malformed($"has a persistent id at byte {at} that is not ('storage', torch.<Kind>Storage, key, location, numel)");
        if (numel < 0) throw Malformed($"declares storage '{Clip(key)}' with {numel} elements");
        if (key.Length == 0 || key is "." or ".." || key.Any(c => c is '/' or '\\' || char.IsControl(c)))
            throw Malformed($"names storage '{Clip(key)}', which is not a plain record name");
        var storage = new PickledStorage(storageClass, StorageElementSizes[kind.Name], key, numel);
        _storages.Add(storage);
        return storage;
    }

    private void AddToContainer(string kind, int at)
    {
        var items = PopToMark();
        if (kind == "dict" && items.Length % 2 != 0) throw Malformed($"has a SETITEMS at byte {at} with a key but no value");
        ExpectContainer(_stack.Count > 0 ? Peek() : null, kind, at);
    }

    private void ExpectContainer(object? target, string kind, int at)
    {
        if (target is not Opaque o || o.Kind != kind)
            throw Malformed($"adds items at byte {at} to something that is not a {kind}");
    }

    private void Memoize(uint id)
    {
        if (_stack.Count == 0) throw Malformed("memoizes a value on an empty stack");
        _memo[id] = Peek();
    }

    private void Recall(uint id, int at)
    {
        if (!_memo.TryGetValue(id, out var value)) throw Malformed($"recalls memo {id} at byte {at}, which was never stored");
        Push(value);
    }

    private string ReadLine(int at)
    {
        var end = Array.IndexOf(_pickle, (byte)'\n', _at, Math.Min(MaxGlobalLength, _pickle.Length - _at));
        if (end < 0) throw Malformed($"has a GLOBAL at byte {at} without a newline-terminated name");
        var text = Encoding.UTF8.GetString(_pickle, _at, end - _at);
        _at = end + 1;
        return text;
    }

    private void Push(object value) => _stack.Add(value);

    private object Peek() => _stack[^1];

    private object Pop()
    {
        if (_stack.Count == 0 || _marks.Count > 0 && _marks[^1] == _stack.Count) throw Malformed($"pops an empty stack at byte {_at - 1}");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object[] PopItems(int count)
    {
        var items = new object[count];
        for (var i = count - 1; i >= 0; i--) items[i] = Pop();
        return items;
    }

    private object[] PopToMark()
    {
        if (_marks.Count == 0) throw Malformed($"has no MARK for the opcode at byte {_at - 1}");
        var start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start).ToArray();
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private byte ReadByte()
    {
        if (_at >= _pickle.Length) throw Truncated();
        return _pickle[_at++];
    }

    private ReadOnlySpan<byte> Read(int count)
    {
        if (count > _pickle.Length - _at) throw Truncated();
        var span = _pickle.AsSpan(_at, count);
        _at += count;
        return span;
    }

    private static InvalidDataException Truncated() => Malformed("is truncated (it ends before its STOP opcode)");

    private static InvalidDataException Malformed(string detail) => new(detail + "; save the model again with torch.jit.save");

    private static string Clip(string text) =>
        text.Length <= 120 ? text : text[..120] + "…";
}
