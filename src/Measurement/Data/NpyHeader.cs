using System.Buffers.Binary;
using System.Text;

namespace LambdaService.Measurement.Data;

/// <summary>
/// The header of a NumPy <c>.npy</c> array (format versions 1.0, 2.0 and 3.0): magic, version, header length and
/// a Python dict literal with exactly the keys <c>descr</c>, <c>fortran_order</c> and <c>shape</c>.
/// </summary>
/// <param name="DType">Element type.</param>
/// <param name="FortranOrder">True when the data is stored column-major.</param>
/// <param name="Shape">Dimensions, each non-negative.</param>
internal sealed record NpyHeader(NpyDType DType, bool FortranOrder, long[] Shape)
{
    /// <summary>Largest header dict accepted, in bytes (NumPy itself refuses more than 10,000 by default).</summary>
    public const int MaxHeaderLength = 100_000;

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads the header from the start of <paramref name="stream"/>, leaving it at the first data byte.</summary>
    /// <param name="stream">The array's bytes.</param>
    /// <param name="source">Where the array comes from, for messages (e.g. <c>the .npy file</c>, <c>entry x.npy</c>).</param>
    /// <exception cref="MeasurementInputException">The header is missing, truncated, malformed or names an unreadable dtype.</exception>
    public static NpyHeader Read(Stream stream, string source)
    {
        Span<byte> prefix = stackalloc byte[12];
        var read = DataStreams.ReadAtMost(stream, prefix[..8]);
        if (read < 6 || !prefix[..6].SequenceEqual(Magic))
        {
            throw new MeasurementInputException("data",
                $"{source} is not a NumPy array (it does not start with \\x93NUMPY); save arrays with numpy.save or numpy.savez");
        }
        if (read < 8) throw Truncated(source);

        var (major, minor) = (prefix[6], prefix[7]);
        int lengthBytes = (major, minor) switch
        {
            (1, 0) => 2,
            (2, 0) or (3, 0) => 4,
            _ => throw new MeasurementInputException("data",
                $"{source} uses NumPy format version {major}.{minor}, which is not supported; re-save it with numpy.save (versions 1.0 to 3.0 are read)"),
        };
        if (DataStreams.ReadAtMost(stream, prefix.Slice(8, lengthBytes)) < lengthBytes) throw Truncated(source);
        long headerLength = lengthBytes == 2
            ? BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..])
            : BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        if (headerLength > MaxHeaderLength)
        {
            throw new MeasurementInputException("data",
                $"{source} declares a header of {headerLength} bytes, more than the {MaxHeaderLength} allowed; re-save the array with numpy.save");
        }

        var headerBytes = new byte[headerLength];
        if (DataStreams.ReadAtMost(stream, headerBytes) < headerLength) throw Truncated(source);
        string text;
        try
        {
            text = major == 3 ? StrictUtf8.GetString(headerBytes) : Encoding.Latin1.GetString(headerBytes);
        }
        catch (DecoderFallbackException)
        {
            throw Malformed(source, "the header is not valid UTF-8");
        }
        return Interpret(text, source);
    }

    private static NpyHeader Interpret(string text, string source)
    {
        object? literal;
        try
        {
            literal = PythonLiteral.Parse(text);
        }
        catch (PythonLiteralException e)
        {
            throw Malformed(source, e.Message);
        }
        if (literal is not Dictionary<string, object?> dict) throw Malformed(source, "the header is not a dictionary");
        foreach (var key in dict.Keys)
        {
            if (key is not ("descr" or "fortran_order" or "shape")) throw Malformed(source, $"unexpected key '{DataText.Clip(key)}'");
        }
        if (!dict.TryGetValue("descr", out var descr)) throw Malformed(source, "the key 'descr' is missing");
        if (!dict.TryGetValue("fortran_order", out var fortran)) throw Malformed(source, "the key 'fortran_order' is missing");
        if (!dict.TryGetValue("shape", out var shape)) throw Malformed(source, "the key 'shape' is missing");

        var dtype = descr switch
        {
            string s => NpyDType.Parse(s, source),
            PythonSequence => throw new MeasurementInputException("data",
                $"{source} has a structured/record dtype (named fields); structured/record dtypes are not accepted; save a plain numeric array"),
            _ => throw Malformed(source, "'descr' is not a string"),
        };
        if (fortran is not bool fortranOrder) throw Malformed(source, "'fortran_order' is not True or False");
        if (shape is not PythonSequence { Items: var dims }) throw Malformed(source, "'shape' is not a tuple");

        var parsed = new long[dims.Count];
        for (var i = 0; i < dims.Count; i++)
        {
            if (dims[i] is not long d || d < 0) throw Malformed(source, "'shape' holds something other than non-negative integers");
            parsed[i] = d;
        }
        return new NpyHeader(dtype, fortranOrder, parsed);
    }

    private static MeasurementInputException Truncated(string source) =>
        new("data", $"{source} is truncated inside its header; upload the complete file");

    private static MeasurementInputException Malformed(string source, string detail) =>
        new("data", $"{source} has a malformed header ({detail}); re-save the array with numpy.save");
}
