using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Writes TorchScript archives (the files <c>torch.jit.save</c> writes and <c>torch.jit.load</c> reads) for modules
/// with float32 parameters and one method <c>forward(self, x: Tensor) -&gt; Tensor</c>, without Python.
/// </summary>
/// <remarks>
/// <para>
/// Layout, as libtorch's reader (caffe2/serialize/inline_container.cc, torch/csrc/jit/serialization/import.cpp)
/// expects it: a zip whose entries all sit under one folder, <c>archive/</c>:
/// <c>data.pkl</c> (pickle protocol 2 of the module object: <c>GLOBAL __torch__.ClassName</c>, <c>EMPTY_TUPLE</c>,
/// <c>NEWOBJ</c>, then <c>BUILD</c> from a dict holding every attribute), <c>code/__torch__.py</c> (the class in
/// TorchScript source), <c>constants.pkl</c> (an empty tuple), <c>data/&lt;key&gt;</c> (each parameter's raw
/// little-endian float32 bytes), <c>.data/version</c> and <c>byteorder</c>.
/// </para>
/// <para>
/// Each tensor is pickled as <c>torch._utils._rebuild_tensor_v2(storage, 0, size, stride, True, OrderedDict())</c>
/// where the storage is the persistent id <c>('storage', torch.FloatStorage, key, 'cpu', numel)</c>, exactly as
/// torch's own Pickler writes a parameter. Names listed in <c>__parameters__</c> come back as parameters.
/// </para>
/// <para>
/// The version written is 10, the file format version current libtorch produces and reads
/// (<c>kProducedFileFormatVersion</c>): it declares that the code uses today's operator semantics, so the loader
/// applies no operator upgraders (torch.jit.save writes the lowest version the code needs, at least 3; with 3 a
/// loader would, for example, run <c>torch.div</c> on integer tensors with its old truncating meaning: checked with
/// libtorch 2.10, 7 div 2 gives 3 under version 3 and 3.5 under version 10). libtorch 2.10 reads versions 1 to 10.
/// Versions 6 and above live in <c>.data/version</c>.
/// </para>
/// <para>
/// The archive is deterministic: the same spec gives the same bytes (fixed entry times, fixed order), so it can
/// be stored content-addressed. The forward code is not checked here; libtorch compiles it when it loads the file.
/// Through TorchSharp 0.107 a compile error there (an unknown operator, a syntax error) is not caught by the native
/// bridge and ends the process, so load archives with unchecked forward code only in a sandbox process.
/// </para>
/// </remarks>
public static class TorchScriptWriter
{
    /// <summary>Name of the single top folder of the archive.</summary>
    private const string ArchiveFolder = "archive";

    /// <summary>File format version written to <c>.data/version</c> (see remarks).</summary>
    private const int FileFormatVersion = 10;

    /// <summary>Entry time for every entry, so the bytes depend on the spec only.</summary>
    private static readonly DateTimeOffset EntryTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly Dictionary<string, string> ActivationCalls = new(StringComparer.Ordinal)
    {
        ["tanh"] = "torch.tanh",
        ["relu"] = "torch.relu",
        ["sigmoid"] = "torch.sigmoid",
        ["gelu"] = "torch.gelu",        // exact form, approximate='none': x·Φ(x)
        ["softplus"] = "torch.softplus", // beta = 1, threshold = 20: log(1 + eˣ)
    };

    private static readonly HashSet<string> PythonKeywords = new(StringComparer.Ordinal)
    {
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
        "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
        "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    };

    /// <summary>Names the generated source or the TorchScript importer gives a meaning of their own.</summary>
    private static readonly HashSet<string> ReservedClassNames = new(StringComparer.Ordinal)
    {
        "Tensor", "Module", "Optional", "List", "Dict", "Tuple", "Union", "Any", "Future", "NamedTuple", "Enum",
        "Interface", "ModuleInterface", "bool", "int", "float", "str", "complex", "torch", "ops", "CONSTANTS",
    };

    /// <summary>Attribute names a parameter may not take: the module's own attribute and method.</summary>
    private static readonly HashSet<string> ReservedParameterNames = new(StringComparer.Ordinal) { "training", "forward", "self" };

    /// <summary>Writes the TorchScript archive for <paramref name="spec"/> to <paramref name="output"/>, which stays open.</summary>
    /// <exception cref="ArgumentException">
    /// The spec is invalid: a class name that is empty, not a Python identifier, a keyword or a name TorchScript
    /// reserves (Tensor, Module, …); a parameter name that is not a Python identifier, repeats, or is
    /// <c>training</c>, <c>forward</c>, <c>self</c> or a dunder name; a negative size; a data length other than the
    /// product of the shape; a blank forward source or one indented with tabs.
    /// </exception>
    public static void Write(Stream output, TorchScriptModuleSpec spec)
    {
        ArgumentNullException.ThrowIfNull(output);
        var forward = Validate(spec);
        if (output.CanSeek && output.Position == 0 && output.Length == 0)
        {
            WriteArchive(output, spec, forward);
            return;
        }
        // ZipArchive counts offsets from the start of the stream and seeks back to fill in sizes (or, where it
        // cannot seek, writes data descriptors): anywhere but an empty seekable stream, build the archive in
        // memory first so that the bytes are the same wherever they go.
        using var buffer = new MemoryStream();
        WriteArchive(buffer, spec, forward);
        buffer.Position = 0;
        buffer.CopyTo(output);
    }

    /// <summary>Writes the TorchScript archive for <paramref name="spec"/> to the file <paramref name="path"/>, replacing it.</summary>
    /// <exception cref="ArgumentException">The path is empty or the spec is invalid (the rules of <see cref="Write(Stream, TorchScriptModuleSpec)"/>).</exception>
    public static void Write(string path, TorchScriptModuleSpec spec)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var forward = Validate(spec);
        using var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        WriteArchive(file, spec, forward);
    }

    /// <summary>
    /// The spec of a multilayer perceptron <c>x → act(W₀x + b₀) → … → W_last·h + b_last</c> (no activation after the
    /// last layer), class <c>Mlp</c>, parameters <c>w0, b0, w1, b1, …</c>.
    /// </summary>
    /// <param name="weights">Layer weights, <c>weights[i]</c> of shape <c>[out_i, in_i]</c> (the layout of torch.nn.Linear).</param>
    /// <param name="biases">Layer biases, <c>biases[i]</c> of length <c>out_i</c>.</param>
    /// <param name="activation">
    /// <c>tanh</c>, <c>relu</c>, <c>sigmoid</c>, <c>gelu</c> (exact, x·Φ(x)) or <c>softplus</c> (log(1 + eˣ)).
    /// </param>
    /// <exception cref="ArgumentException">
    /// No layers, different numbers of weights and biases, shapes that do not chain, or an unknown activation.
    /// </exception>
    public static TorchScriptModuleSpec Mlp(IReadOnlyList<float[,]> weights, IReadOnlyList<float[]> biases, string activation = "tanh")
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        if (activation is null || !ActivationCalls.TryGetValue(activation, out var call))
            throw new ArgumentException(
                $"Unknown activation '{activation}'; expected one of {string.Join(", ", ActivationCalls.Keys)}.", nameof(activation));
        if (weights.Count == 0) throw new ArgumentException("A multilayer perceptron needs at least one layer.", nameof(weights));
        if (weights.Count != biases.Count)
            throw new ArgumentException($"{weights.Count} weight matrices but {biases.Count} bias vectors.", nameof(biases));

        var parameters = new List<TorchScriptParameter>(2 * weights.Count);
        var code = new StringBuilder();
        for (var i = 0; i < weights.Count; i++)
        {
            var w = weights[i] ?? throw new ArgumentException($"Weight matrix {i} is null.", nameof(weights));
            var b = biases[i] ?? throw new ArgumentException($"Bias vector {i} is null.", nameof(biases));
            int rows = w.GetLength(0), cols = w.GetLength(1);
            if (rows == 0 || cols == 0) throw new ArgumentException($"Weight matrix {i} is empty ({rows}×{cols}).", nameof(weights));
            if (i > 0 && cols != weights[i - 1].GetLength(0))
                throw new ArgumentException(
                    $"Weight matrix {i} takes {cols} inputs but layer {i - 1} has {weights[i - 1].GetLength(0)} outputs.", nameof(weights));
            if (b.Length != rows)
                throw new ArgumentException($"Bias vector {i} has {b.Length} values but layer {i} has {rows} outputs.", nameof(biases));

            var data = new float[rows * cols];
            for (var r = 0; r < rows; r++)
                for (var c = 0; c < cols; c++)
                    data[r * cols + c] = w[r, c];
            parameters.Add(new TorchScriptParameter($"w{i}", [rows, cols], data));
            parameters.Add(new TorchScriptParameter($"b{i}", [rows], (float[])b.Clone()));

            var input = i == 0 ? "x" : "h";
            var linear = $"torch.linear({input}, self.w{i}, self.b{i})";
            code.Append(i == weights.Count - 1 ? $"return {linear}" : $"h = {call}({linear})\n");
        }
        return new TorchScriptModuleSpec("Mlp", parameters, code.ToString());
    }

    /// <summary>
    /// Checks a spec and returns its forward body split into lines, common indentation removed. Rules: the class name
    /// is a Python identifier and not a keyword or a name the TorchScript importer reserves (Tensor, Module, …);
    /// parameter names are distinct Python identifiers, not keywords, not <c>training</c>/<c>forward</c>/<c>self</c>
    /// and not dunder names; shapes have no negative sizes and the data length equals the product of the shape;
    /// the forward body is not blank and indents with spaces.
    /// </summary>
    private static List<string> Validate(TorchScriptModuleSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.IsNullOrEmpty(spec.ClassName)) throw new ArgumentException("The class name is empty.", nameof(spec));
        if (!IsIdentifier(spec.ClassName) || PythonKeywords.Contains(spec.ClassName) || ReservedClassNames.Contains(spec.ClassName))
            throw new ArgumentException($"Class name '{spec.ClassName}' is not a usable Python identifier.", nameof(spec));
        if (spec.Parameters is null) throw new ArgumentException("The parameter list is null.", nameof(spec));

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < spec.Parameters.Count; i++)
        {
            var p = spec.Parameters[i] ?? throw new ArgumentException($"Parameter {i} is null.", nameof(spec));
            if (string.IsNullOrEmpty(p.Name) || !IsIdentifier(p.Name) || PythonKeywords.Contains(p.Name))
                throw new ArgumentException($"Parameter name '{p.Name}' is not a Python identifier.", nameof(spec));
            if (ReservedParameterNames.Contains(p.Name) || p.Name.StartsWith("__", StringComparison.Ordinal))
                throw new ArgumentException($"Parameter name '{p.Name}' is reserved by TorchScript modules.", nameof(spec));
            if (!seen.Add(p.Name)) throw new ArgumentException($"Parameter name '{p.Name}' appears twice.", nameof(spec));
            if (p.Shape is null) throw new ArgumentException($"Parameter '{p.Name}' has no shape.", nameof(spec));
            if (p.Data is null) throw new ArgumentException($"Parameter '{p.Name}' has no data.", nameof(spec));
            if (p.Shape.Any(size => size < 0))
                throw new ArgumentException($"Parameter '{p.Name}' has a negative size in shape [{string.Join(", ", p.Shape)}].", nameof(spec));
            long numel = p.Shape.Contains(0) ? 0 : 1;
            foreach (var size in p.Shape)
            {
                if (numel == 0) break;
                if (numel > int.MaxValue / size) { numel = -1; break; } // more values than an array holds: never a match
                numel *= size;
            }
            if (numel != p.Data.Length)
                throw new ArgumentException(
                    $"Parameter '{p.Name}' has shape [{string.Join(", ", p.Shape)}] ({(numel < 0 ? "too many" : numel.ToString(CultureInfo.InvariantCulture))} values) but {p.Data.Length} values of data.", nameof(spec));
        }

        if (string.IsNullOrWhiteSpace(spec.ForwardSource)) throw new ArgumentException("The forward source is empty.", nameof(spec));
        var lines = spec.ForwardSource.ReplaceLineEndings("\n").Split('\n').Select(l => l.TrimEnd()).ToList();
        var indent = int.MaxValue;
        foreach (var line in lines)
        {
            if (line.Length == 0) continue;
            var lead = line.Length - line.TrimStart().Length;
            if (line[..lead].Contains('\t')) throw new ArgumentException("Indent the forward source with spaces, not tabs.", nameof(spec));
            indent = Math.Min(indent, lead);
        }
        return lines.Select(l => l.Length == 0 ? l : l[indent..]).ToList();
    }

    private static bool IsIdentifier(string name) =>
        name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static void WriteArchive(Stream output, TorchScriptModuleSpec spec, List<string> forwardLines)
    {
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        AddEntry(zip, "data.pkl", DataPickle(spec));
        AddEntry(zip, "code/__torch__.py", Encoding.UTF8.GetBytes(ClassSource(spec, forwardLines)));
        AddEntry(zip, "constants.pkl", EmptyTuplePickle());
        for (var i = 0; i < spec.Parameters.Count; i++)
            AddEntry(zip, "data/" + StorageKey(i), LittleEndianBytes(spec.Parameters[i].Data));
        AddEntry(zip, ".data/version", Encoding.ASCII.GetBytes(FileFormatVersion.ToString(CultureInfo.InvariantCulture) + "\n"));
        AddEntry(zip, "byteorder", Encoding.ASCII.GetBytes("little"));
    }

    private static void AddEntry(ZipArchive zip, string name, ReadOnlySpan<byte> content)
    {
        // Stored, as torch.jit.save writes its records.
        var entry = zip.CreateEntry(ArchiveFolder + "/" + name, CompressionLevel.NoCompression);
        entry.LastWriteTime = EntryTime;
        using var stream = entry.Open();
        stream.Write(content);
    }

    private static string StorageKey(int index) => index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The module object: <c>__torch__.ClassName.__new__()</c> with its state set by BUILD from a dict.</summary>
    private static byte[] DataPickle(TorchScriptModuleSpec spec)
    {
        var p = new PickleWriter();
        p.GlobalRef("__torch__", spec.ClassName);
        p.EmptyTuple();
        p.NewObj();
        p.EmptyDict();
        p.MarkOp();
        for (var i = 0; i < spec.Parameters.Count; i++)
        {
            var parameter = spec.Parameters[i];
            p.String(parameter.Name);
            PickleTensor(p, parameter, StorageKey(i));
        }
        p.String("training");
        p.Bool(false);
        p.SetItemsFromMark();
        p.Build();
        return p.Finish();
    }

    /// <summary><c>torch._utils._rebuild_tensor_v2(storage, 0, size, stride, True, OrderedDict())</c>, contiguous.</summary>
    private static void PickleTensor(PickleWriter p, TorchScriptParameter parameter, string key)
    {
        var shape = parameter.Shape;
        var stride = new long[shape.Length];
        long step = 1;
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            stride[d] = step;
            step *= Math.Max(shape[d], 1);
        }

        p.GlobalRef("torch._utils", "_rebuild_tensor_v2");
        p.MarkOp();
        // Persistent id of the storage: ('storage', torch.FloatStorage, key, 'cpu', numel).
        p.MarkOp();
        p.String("storage");
        p.GlobalRef("torch", "FloatStorage");
        p.String(key);
        p.String("cpu");
        p.Int(parameter.Data.Length);
        p.TupleFromMark();
        p.BinPersId();
        p.Int(0); // storage offset
        p.IntTuple(shape);
        p.IntTuple(stride);
        p.Bool(true); // requires_grad, as for an nn.Parameter
        p.GlobalRef("collections", "OrderedDict"); // backward hooks: OrderedDict()
        p.EmptyTuple();
        p.Reduce();
        p.TupleFromMark();
        p.Reduce();
    }

    private static byte[] EmptyTuplePickle()
    {
        var p = new PickleWriter();
        p.EmptyTuple();
        return p.Finish();
    }

    /// <summary>The class as TorchScript prints it (torch/csrc/jit/serialization/python_print.cpp).</summary>
    private static string ClassSource(TorchScriptModuleSpec spec, List<string> forwardLines)
    {
        var s = new StringBuilder();
        s.Append("class ").Append(spec.ClassName).Append("(Module):\n");
        s.Append("  __parameters__ = [");
        foreach (var p in spec.Parameters) s.Append('"').Append(p.Name).Append("\", ");
        s.Append("]\n");
        s.Append("  __buffers__ = []\n");
        foreach (var p in spec.Parameters) s.Append("  ").Append(p.Name).Append(" : Tensor\n");
        s.Append("  training : bool\n");
        s.Append("  def forward(self: __torch__.").Append(spec.ClassName).Append(",\n");
        s.Append("    x: Tensor) -> Tensor:\n");
        foreach (var line in forwardLines)
            s.Append(line.Length == 0 ? "" : "    " + line).Append('\n');
        return s.ToString();
    }

    private static ReadOnlySpan<byte> LittleEndianBytes(float[] data)
    {
        if (BitConverter.IsLittleEndian) return MemoryMarshal.AsBytes(data.AsSpan());
        var bytes = new byte[data.Length * sizeof(float)];
        for (var i = 0; i < data.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), data[i]);
        return bytes;
    }
}
