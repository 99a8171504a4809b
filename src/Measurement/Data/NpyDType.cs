namespace LambdaService.Measurement.Data;

/// <summary>The numeric kinds of NumPy dtype that can be read.</summary>
internal enum NpyKind
{
    /// <summary>IEEE floating point (<c>f2</c>, <c>f4</c>, <c>f8</c>).</summary>
    Float,

    /// <summary>Two's-complement integers (<c>i1</c> to <c>i8</c>).</summary>
    SignedInteger,

    /// <summary>Unsigned integers (<c>u1</c> to <c>u8</c>).</summary>
    UnsignedInteger,

    /// <summary>Booleans, one byte each (<c>b1</c>).</summary>
    Boolean,
}

/// <summary>A readable NumPy dtype: kind, item size in bytes and byte order.</summary>
/// <param name="Kind">Numeric kind.</param>
/// <param name="Size">Bytes per element.</param>
/// <param name="BigEndian">True for <c>&gt;</c> (big-endian) multi-byte data.</param>
internal sealed record NpyDType(NpyKind Kind, int Size, bool BigEndian)
{
    /// <summary>The NumPy name of the dtype, e.g. <c>float32</c>.</summary>
    public string Name => Kind switch
    {
        NpyKind.Float => $"float{Size * 8}",
        NpyKind.SignedInteger => $"int{Size * 8}",
        NpyKind.UnsignedInteger => $"uint{Size * 8}",
        _ => "bool",
    };

    /// <summary>
    /// Reads a dtype string such as <c>&lt;f4</c> or <c>|u1</c>, rejecting with a <see cref="MeasurementInputException"/>
    /// anything that is not a plain number: objects, strings, complex numbers, datetimes, records and unusual sizes.
    /// </summary>
    /// <param name="descr">The header's <c>descr</c> value.</param>
    /// <param name="source">Where the array comes from, for messages (e.g. <c>entry x.npy</c>).</param>
    public static NpyDType Parse(string descr, string source)
    {
        var shown = DataText.Clip(descr);
        var body = descr.Length > 0 && descr[0] is '<' or '>' or '|' or '=' ? descr[1..] : descr;
        var bigEndian = descr.StartsWith('>');
        if (body.Length == 0) throw Unsupported(source, shown);

        var reject = body[0] switch
        {
            'O' => $"{source} is an object array (dtype '{shown}'); pickled/object arrays are not accepted; save a numeric array, e.g. x.astype(numpy.float32)",
            'U' or 'S' or 'a' => $"{source} holds strings (dtype '{shown}'); string arrays are not accepted; save a numeric array",
            'c' => $"{source} holds complex numbers (dtype '{shown}'); complex arrays are not accepted; save the real values as float32 or float64",
            'M' or 'm' => $"{source} holds datetimes or timedeltas (dtype '{shown}'); datetime arrays are not accepted; convert them to numbers first",
            'V' => $"{source} has a structured/record dtype ('{shown}'); structured/record dtypes are not accepted; save a plain numeric array",
            _ => null,
        };
        if (reject is not null) throw new MeasurementInputException("data", reject);

        NpyKind? kind = body[0] switch
        {
            'f' => NpyKind.Float,
            'i' => NpyKind.SignedInteger,
            'u' => NpyKind.UnsignedInteger,
            'b' => NpyKind.Boolean,
            _ => null,
        };
        var size = body[1..] switch
        {
            "1" => 1,
            "2" => 2,
            "4" => 4,
            "8" => 8,
            _ => 0,
        };
        var valid = kind switch
        {
            NpyKind.Float => size >= 2,
            NpyKind.SignedInteger or NpyKind.UnsignedInteger => size >= 1,
            NpyKind.Boolean => size == 1,
            _ => false,
        };
        if (!valid || kind is null) throw Unsupported(source, shown);
        return new NpyDType(kind.Value, size, bigEndian && size > 1);
    }

    private static MeasurementInputException Unsupported(string source, string shown) => new("data",
        $"{source} has dtype '{shown}', which is not supported; save float16/32/64, int8-64, uint8-64 or bool values");
}
