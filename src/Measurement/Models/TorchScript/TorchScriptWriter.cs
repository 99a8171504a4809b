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
/// little-endian float32 bytes), <c>.data/version</c> and <c>byteorder</c>. That is <see cref="TorchScriptLayout.Default"/>;
/// a <see cref="TorchScriptLayout"/> chooses the other variants torch.jit.save writes (folder name, version and the
/// record that holds it, <c>byteorder</c>, <c>.data/serialization_id</c>, <c>extra/</c> files, <c>.debug_pkl</c>
/// records), and a spec may have child modules (each class in <c>code/&lt;qualifier as folders&gt;.py</c>) and tensor
/// constants (<c>constants.pkl</c>, <c>constants/&lt;key&gt;</c>).
/// </para>
/// <para>
/// Each tensor is pickled as <c>torch._utils._rebuild_tensor_v2(storage, 0, size, stride, True, OrderedDict())</c>
/// where the storage is the persistent id <c>('storage', torch.FloatStorage, key, 'cpu', numel)</c>, exactly as
/// torch's own Pickler writes a parameter. Names listed in <c>__parameters__</c> come back as parameters.
/// </para>
/// <para>
/// The version written by default is 10, the file format version current libtorch produces and reads
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


    /// <summary>Names a child module may not take, besides the parameter rules.</summary>
    private static readonly HashSet<string> ReservedAttributeNames = new(StringComparer.Ordinal) { "training", "forward", "self", "_is_full_backward_hook" };

    /// <summary>Writes the TorchScript archive for <paramref name="spec"/> to <paramref name="output"/>, which stays open.</summary>
    /// <exception cref="ArgumentException">
    /// The spec is invalid: a class name that is empty, not a Python identifier, a keyword or a name TorchScript
    /// reserves (Tensor, Module, …); a parameter name that is not a Python identifier, repeats, or is
    /// <c>training</c>, <c>forward</c>, <c>self</c> or a dunder name; a negative size; a data length other than the
    /// product of the shape; a blank forward source or one indented with tabs; a qualifier that is not
    /// <c>__torch__</c>[.identifiers]; constants in a child module; two classes of one qualified name that differ.
    /// </exception>
    public static void Write(Stream output, TorchScriptModuleSpec spec) => Write(output, spec, TorchScriptLayout.Default);

    /// <summary>Writes the archive for <paramref name="spec"/> in <paramref name="layout"/> to <paramref name="output"/>, which stays open.</summary>
    /// <exception cref="ArgumentException">
    /// The spec is invalid (the rules of <see cref="Write(Stream, TorchScriptModuleSpec)"/>), or the layout is: an archive
    /// name that is empty or has characters other than letters, digits, <c>_ - .</c>; a version outside
    /// <see cref="TorchScriptLayout.MinFormatVersion"/> … <see cref="TorchScriptLayout.MaxFormatVersion"/>; no version
    /// record; an extra file name that is not a plain relative path.
    /// </exception>
    public static void Write(Stream output, TorchScriptModuleSpec spec, TorchScriptLayout layout)
    {
        ArgumentNullException.ThrowIfNull(output);
        var archive = Prepare(spec, layout);
        if (output.CanSeek && output.Position == 0 && output.Length == 0)
        {
            WriteArchive(output, archive, layout);
            return;
        }
        // ZipArchive counts offsets from the start of the stream and seeks back to fill in sizes (or, where it
        // cannot seek, writes data descriptors): anywhere but an empty seekable stream, build the archive in
        // memory first so that the bytes are the same wherever they go.
        using var buffer = new MemoryStream();
        WriteArchive(buffer, archive, layout);
        buffer.Position = 0;
        buffer.CopyTo(output);
    }

    /// <summary>Writes the TorchScript archive for <paramref name="spec"/> to the file <paramref name="path"/>, replacing it.</summary>
    /// <exception cref="ArgumentException">The path is empty or the spec is invalid (the rules of <see cref="Write(Stream, TorchScriptModuleSpec)"/>).</exception>
    public static void Write(string path, TorchScriptModuleSpec spec) => Write(path, spec, TorchScriptLayout.Default);

    /// <summary>Writes the archive for <paramref name="spec"/> in <paramref name="layout"/> to the file <paramref name="path"/>, replacing it.</summary>
    /// <exception cref="ArgumentException">The path is empty, or the spec or layout is invalid (the rules of <see cref="Write(Stream, TorchScriptModuleSpec, TorchScriptLayout)"/>).</exception>
    public static void Write(string path, TorchScriptModuleSpec spec, TorchScriptLayout layout)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var archive = Prepare(spec, layout);
        using var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        WriteArchive(file, archive, layout);
    }

    /// <summary>
    /// The spec of a multilayer perceptron <c>x → act(W₀x + b₀) → … → W_last·h + b_last</c> (no activation after the
    /// last layer), class <c>Mlp</c>. In the <see cref="TorchScriptCodeStyle.Flat"/> style (the default) its parameters are
    /// <c>w0, b0, w1, b1, …</c>; in the others each layer is a child <c>fc0, fc1, …</c> of class
    /// <c>__torch__.torch.nn.modules.linear.Linear</c> (parameters <c>weight</c>, <c>bias</c>; a layer of another size
    /// gets a mangled class <c>….linear.___torch_mangle_N.Linear</c>, as torch names it).
    /// </summary>
    /// <param name="weights">Layer weights, <c>weights[i]</c> of shape <c>[out_i, in_i]</c> (the layout of torch.nn.Linear).</param>
    /// <param name="biases">Layer biases, <c>biases[i]</c> of length <c>out_i</c>.</param>
    /// <param name="activation">
    /// <c>tanh</c>, <c>relu</c>, <c>sigmoid</c>, <c>gelu</c> (exact, x·Φ(x)) or <c>softplus</c> (log(1 + eˣ)).
    /// </param>
    /// <param name="style">The code's style: the writer's own, or as torch.jit.trace / torch.jit.script print it.</param>
    /// <param name="inputOffset">
    /// When given, the network takes <c>x − inputOffset</c> (one value per input), with the offset a tensor constant
    /// <c>CONSTANTS.c0</c> in <c>constants.pkl</c>, as tracing <c>x - self.mean</c> with a plain tensor attribute records it.
    /// </param>
    /// <exception cref="ArgumentException">
    /// No layers, different numbers of weights and biases, shapes that do not chain, an unknown activation, or an
    /// offset whose length is not the number of inputs.
    /// </exception>
    public static TorchScriptModuleSpec Mlp(IReadOnlyList<float[,]> weights, IReadOnlyList<float[]> biases, string activation = "tanh",
        TorchScriptCodeStyle style = TorchScriptCodeStyle.Flat, float[]? inputOffset = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        if (activation is null || !ActivationCalls.TryGetValue(activation, out var call))
            throw new ArgumentException(
                $"Unknown activation '{activation}'; expected one of {string.Join(", ", ActivationCalls.Keys)}.", nameof(activation));
        if (!Enum.IsDefined(style)) throw new ArgumentException($"Unknown code style {style}.", nameof(style));
        if (weights.Count == 0) throw new ArgumentException("A multilayer perceptron needs at least one layer.", nameof(weights));
        if (weights.Count != biases.Count)
            throw new ArgumentException($"{weights.Count} weight matrices but {biases.Count} bias vectors.", nameof(biases));

        var layers = new List<(int Rows, int Cols, float[] Weight, float[] Bias)>(weights.Count);
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
            layers.Add((rows, cols, data, (float[])b.Clone()));
        }
        var inputs = layers[0].Cols;
        if (inputOffset is not null && inputOffset.Length != inputs)
            throw new ArgumentException($"The input offset has {inputOffset.Length} values but the network takes {inputs} inputs.", nameof(inputOffset));
        IReadOnlyList<TorchScriptParameter> constants = inputOffset is null ? [] : [new TorchScriptParameter("c0", [inputs], (float[])inputOffset.Clone())];

        if (style == TorchScriptCodeStyle.Flat)
        {
            var parameters = new List<TorchScriptParameter>(2 * layers.Count);
            var code = new StringBuilder();
            if (inputOffset is not null) code.Append("x0 = torch.sub(x, CONSTANTS.c0)\n");
            for (var i = 0; i < layers.Count; i++)
            {
                parameters.Add(new TorchScriptParameter($"w{i}", [layers[i].Rows, layers[i].Cols], layers[i].Weight));
                parameters.Add(new TorchScriptParameter($"b{i}", [layers[i].Rows], layers[i].Bias));
                var input = i > 0 ? "h" : inputOffset is null ? "x" : "x0";
                var linear = $"torch.linear({input}, self.w{i}, self.b{i})";
                code.Append(i == layers.Count - 1 ? $"return {linear}" : $"h = {call}({linear})\n");
            }
            return new TorchScriptModuleSpec("Mlp", parameters, code.ToString()) { Constants = constants };
        }

        // One Linear class per distinct (in, out): torch gives a module type per set of constant values and mangles
        // the names of all but the first.
        const string linearQualifier = "__torch__.torch.nn.modules.linear";
        var qualifiers = new Dictionary<(int, int), string>();
        var children = new List<TorchScriptSubmodule>(layers.Count);
        var scripted = style == TorchScriptCodeStyle.Scripted;
        var argument = scripted ? "input" : "argument_1";
        var linearBody = scripted
            ? $"weight = self.weight\nbias = self.bias\nreturn torch.linear({argument}, weight, bias)"
            : $"bias = self.bias\nweight = self.weight\nreturn torch.linear({argument}, weight, bias)";
        for (var i = 0; i < layers.Count; i++)
        {
            var (rows, cols, weight, bias) = layers[i];
            if (!qualifiers.TryGetValue((cols, rows), out var qualifier))
            {
                qualifier = qualifiers.Count == 0 ? linearQualifier : $"{linearQualifier}.___torch_mangle_{qualifiers.Count - 1}";
                qualifiers[(cols, rows)] = qualifier;
            }
            var linear = new TorchScriptModuleSpec("Linear",
                [new TorchScriptParameter("weight", [rows, cols], weight), new TorchScriptParameter("bias", [rows], bias)], linearBody)
            {
                Qualifier = qualifier,
                ForwardArgument = argument,
                FinalInts = [new("in_features", cols), new("out_features", rows)],
                FullBackwardHookAttribute = true,
            };
            children.Add(new TorchScriptSubmodule($"fc{i}", linear));
        }

        var root = new StringBuilder();
        var last = layers.Count - 1;
        var value = "x";
        var temp = 0;
        if (style == TorchScriptCodeStyle.Traced)
            for (var i = last; i >= 0; i--) root.Append($"fc{i} = self.fc{i}\n");
        if (inputOffset is not null)
        {
            root.Append($"_{temp} = torch.sub(x, CONSTANTS.c0)\n");
            value = $"_{temp++}";
        }
        for (var i = 0; i <= last; i++)
        {
            var layer = style switch
            {
                TorchScriptCodeStyle.Traced => $"(fc{i}).forward({value}, )",
                TorchScriptCodeStyle.TracedInlined => $"torch.linear({value}, self.fc{i}.weight, self.fc{i}.bias)",
                _ => $"(self.fc{i}).forward({value}, )",
            };
            if (i == last)
            {
                root.Append($"return {layer}");
            }
            else
            {
                root.Append($"_{temp} = {call}({layer})\n");
                value = $"_{temp++}";
            }
        }
        return new TorchScriptModuleSpec("Mlp", [], root.ToString())
        {
            Submodules = children,
            Constants = constants,
            FullBackwardHookAttribute = true,
        };
    }

    /// <summary>A checked module: its spec, forward lines (common indentation removed) and children.</summary>
    private sealed record CheckedModule(TorchScriptModuleSpec Spec, List<string> ForwardLines, List<(string Name, CheckedModule Module)> Children)
    {
        public string QualifiedName => Spec.Qualifier + "." + Spec.ClassName;
    }

    /// <summary>A checked archive: the module tree and each code file's path and source, root's file first.</summary>
    private sealed record CheckedArchive(CheckedModule Root, List<(string Path, string Source)> CodeFiles);

    private static CheckedArchive Prepare(TorchScriptModuleSpec spec, TorchScriptLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ValidateLayout(layout);
        var root = Validate(spec, isRoot: true);

        // Every class once, grouped by qualifier into files in order of first appearance; one qualified name, one definition.
        var classes = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new List<(string Qualifier, StringBuilder Source)>();
        void Collect(CheckedModule m)
        {
            var source = ClassSource(m);
            if (classes.TryGetValue(m.QualifiedName, out var existing))
            {
                if (existing != source)
                    throw new ArgumentException(
                        $"Two modules of class {m.QualifiedName} have different definitions; give one of them another qualifier or class name.", nameof(spec));
            }
            else
            {
                classes[m.QualifiedName] = source;
                var file = files.FindIndex(f => f.Qualifier == m.Spec.Qualifier);
                if (file < 0) files.Add((m.Spec.Qualifier, new StringBuilder(source)));
                else files[file].Source.Append(source);
            }
            foreach (var (_, child) in m.Children) Collect(child);
        }
        Collect(root);
        return new CheckedArchive(root, files.Select(f => ("code/" + f.Qualifier.Replace('.', '/') + ".py", f.Source.ToString())).ToList());
    }

    private static void ValidateLayout(TorchScriptLayout layout)
    {
        if (string.IsNullOrEmpty(layout.ArchiveName) || !layout.ArchiveName.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')
            || layout.ArchiveName is "." or "..")
            throw new ArgumentException($"Archive name '{layout.ArchiveName}' is not a plain folder name (letters, digits, _ - .).", nameof(layout));
        if (layout.FormatVersion is < TorchScriptLayout.MinFormatVersion or > TorchScriptLayout.MaxFormatVersion)
            throw new ArgumentException(
                $"File format version {layout.FormatVersion} is outside {TorchScriptLayout.MinFormatVersion}…{TorchScriptLayout.MaxFormatVersion}, the versions libtorch reads.", nameof(layout));
        var records = layout.EffectiveVersionRecords;
        if ((records & (TorchScriptVersionRecords.Version | TorchScriptVersionRecords.DataVersion)) == 0 || (records & ~(TorchScriptVersionRecords.Version | TorchScriptVersionRecords.DataVersion)) != 0)
            throw new ArgumentException($"Version records {records}: name version, .data/version or both.", nameof(layout));
        foreach (var (name, content) in layout.ExtraFiles ?? new Dictionary<string, byte[]>())
        {
            if (string.IsNullOrEmpty(name) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '/')
                || name.Split('/').Any(segment => segment is "" or "." or ".."))
                throw new ArgumentException($"Extra file name '{name}' is not a plain relative path.", nameof(layout));
            if (content is null) throw new ArgumentException($"Extra file '{name}' has no content.", nameof(layout));
        }
    }

    /// <summary>
    /// Checks a spec (and its children) and returns it with its forward body split into lines, common indentation
    /// removed. Rules: the class name is a Python identifier and not a keyword or a name the TorchScript importer
    /// reserves (Tensor, Module, …); the qualifier is <c>__torch__</c> followed by dotted identifiers; parameter,
    /// child and constant names are distinct Python identifiers, not keywords, not <c>training</c>/<c>forward</c>/<c>self</c>
    /// and not dunder names; shapes have no negative sizes and the data length equals the product of the shape;
    /// constants only at the root; the forward body is not blank and indents with spaces.
    /// </summary>
    private static CheckedModule Validate(TorchScriptModuleSpec spec, bool isRoot)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.IsNullOrEmpty(spec.ClassName)) throw new ArgumentException("The class name is empty.", nameof(spec));
        if (!IsIdentifier(spec.ClassName) || PythonKeywords.Contains(spec.ClassName) || ReservedClassNames.Contains(spec.ClassName))
            throw new ArgumentException($"Class name '{spec.ClassName}' is not a usable Python identifier.", nameof(spec));
        if (spec.Qualifier is null || spec.Qualifier.Split('.') is not ["__torch__", ..] parts
            || parts.Skip(1).Any(part => !IsIdentifier(part) || PythonKeywords.Contains(part)))
            throw new ArgumentException($"Qualifier '{spec.Qualifier}' is not __torch__ followed by dotted Python identifiers.", nameof(spec));
        if (spec.ForwardArgument is null || !IsIdentifier(spec.ForwardArgument) || PythonKeywords.Contains(spec.ForwardArgument) || spec.ForwardArgument == "self")
            throw new ArgumentException($"Forward argument '{spec.ForwardArgument}' is not a usable Python identifier.", nameof(spec));
        if (spec.Parameters is null) throw new ArgumentException("The parameter list is null.", nameof(spec));
        if (spec.Submodules is null || spec.Constants is null || spec.FinalInts is null)
            throw new ArgumentException("The child, constant or class constant list is null.", nameof(spec));
        if (!isRoot && spec.Constants.Count > 0)
            throw new ArgumentException($"Child module {spec.ClassName} has tensor constants; the archive's constants belong to the root module.", nameof(spec));

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < spec.Parameters.Count; i++)
        {
            var p = spec.Parameters[i] ?? throw new ArgumentException($"Parameter {i} is null.", nameof(spec));
            CheckAttributeName(p.Name, "Parameter", seen, spec);
            CheckTensor(p, "Parameter", spec);
        }
        for (var i = 0; i < spec.Constants.Count; i++)
            CheckTensor(spec.Constants[i] ?? throw new ArgumentException($"Constant {i} is null.", nameof(spec)), "Constant", spec);
        foreach (var (name, _) in spec.FinalInts) CheckAttributeName(name, "Class constant", seen, spec);
        var children = new List<(string, CheckedModule)>(spec.Submodules.Count);
        foreach (var child in spec.Submodules)
        {
            if (child?.Module is null) throw new ArgumentException("A child module is null.", nameof(spec));
            CheckAttributeName(child.Name, "Child module", seen, spec);
            children.Add((child.Name, Validate(child.Module, isRoot: false)));
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
        return new CheckedModule(spec, lines.Select(l => l.Length == 0 ? l : l[indent..]).ToList(), children);
    }

    private static void CheckAttributeName(string name, string what, HashSet<string> seen, TorchScriptModuleSpec spec)
    {
        if (string.IsNullOrEmpty(name) || !IsIdentifier(name) || PythonKeywords.Contains(name))
            throw new ArgumentException($"{what} name '{name}' is not a Python identifier.", nameof(spec));
        if (ReservedAttributeNames.Contains(name) || name.StartsWith("__", StringComparison.Ordinal))
            throw new ArgumentException($"{what} name '{name}' is reserved by TorchScript modules.", nameof(spec));
        if (!seen.Add(name)) throw new ArgumentException($"{what} name '{name}' appears twice in {spec.ClassName}.", nameof(spec));
    }

    private static void CheckTensor(TorchScriptParameter p, string what, TorchScriptModuleSpec spec)
    {
        if (p.Shape is null) throw new ArgumentException($"{what} '{p.Name}' has no shape.", nameof(spec));
        if (p.Data is null) throw new ArgumentException($"{what} '{p.Name}' has no data.", nameof(spec));
        if (p.Shape.Any(size => size < 0))
            throw new ArgumentException($"{what} '{p.Name}' has a negative size in shape [{string.Join(", ", p.Shape)}].", nameof(spec));
        long numel = p.Shape.Contains(0) ? 0 : 1;
        foreach (var size in p.Shape)
        {
            if (numel == 0) break;
            if (numel > int.MaxValue / size) { numel = -1; break; } // more values than an array holds: never a match
            numel *= size;
        }
        if (numel != p.Data.Length)
            throw new ArgumentException(
                $"{what} '{p.Name}' has shape [{string.Join(", ", p.Shape)}] ({(numel < 0 ? "too many" : numel.ToString(CultureInfo.InvariantCulture))} values) but {p.Data.Length} values of data.", nameof(spec));
    }

    private static bool IsIdentifier(string name) =>
        name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static void WriteArchive(Stream output, CheckedArchive archive, TorchScriptLayout layout)
    {
        var written = new List<(string Name, byte[] Content)>();
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        void Add(string name, byte[] content)
        {
            AddEntry(zip, layout.ArchiveName, name, content);
            written.Add((name, content));
        }

        // torch.jit.save writes the extra files first.
        foreach (var (name, content) in (layout.ExtraFiles ?? new Dictionary<string, byte[]>()).OrderBy(e => e.Key, StringComparer.Ordinal))
            Add("extra/" + name, content);
        var tensors = new List<float[]>();
        Add("data.pkl", DataPickle(archive.Root, tensors));
        foreach (var (path, source) in archive.CodeFiles)
        {
            Add(path, Encoding.UTF8.GetBytes(source));
            if (layout.IncludeDebugInfo) Add(path + ".debug_pkl", DebugPickle(path, source));
        }
        var constants = archive.Root.Spec.Constants;
        Add("constants.pkl", ConstantsPickle(constants));
        for (var i = 0; i < constants.Count; i++) Add("constants/" + StorageKey(i), LittleEndianBytes(constants[i].Data));
        for (var i = 0; i < tensors.Count; i++) Add("data/" + StorageKey(i), LittleEndianBytes(tensors[i]));
        var version = Encoding.ASCII.GetBytes(layout.FormatVersion.ToString(CultureInfo.InvariantCulture) + "\n");
        var records = layout.EffectiveVersionRecords;
        if (records.HasFlag(TorchScriptVersionRecords.Version)) Add("version", version);
        if (records.HasFlag(TorchScriptVersionRecords.DataVersion)) Add(".data/version", version);
        if (layout.IncludeByteOrder) Add("byteorder", Encoding.ASCII.GetBytes("little"));
        if (layout.IncludeSerializationId) Add(".data/serialization_id", SerializationId(written));
    }

    private static void AddEntry(ZipArchive zip, string folder, string name, ReadOnlySpan<byte> content)
    {
        // Stored, as torch.jit.save writes its records.
        var entry = zip.CreateEntry(folder + "/" + name, CompressionLevel.NoCompression);
        entry.LastWriteTime = EntryTime;
        using var stream = entry.Open();
        stream.Write(content);
    }

    private static string StorageKey(int index) => index.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The module object: <c>Qualifier.ClassName.__new__()</c> with its state set by BUILD from a dict of its
    /// parameters, <c>training</c>, <c>_is_full_backward_hook</c> (where the class has it) and its children, depth first;
    /// the parameters' data are appended to <paramref name="tensors"/>, whose indices are their storage keys.
    /// </summary>
    private static byte[] DataPickle(CheckedModule root, List<float[]> tensors)
    {
        var p = new PickleWriter();
        PickleModule(p, root, tensors);
        return p.Finish();
    }

    private static void PickleModule(PickleWriter p, CheckedModule module, List<float[]> tensors)
    {
        var spec = module.Spec;
        p.GlobalRef(spec.Qualifier, spec.ClassName);
        p.EmptyTuple();
        p.NewObj();
        p.EmptyDict();
        p.MarkOp();
        foreach (var parameter in spec.Parameters)
        {
            p.String(parameter.Name);
            PickleTensor(p, parameter, StorageKey(tensors.Count), requiresGrad: true);
            tensors.Add(parameter.Data);
        }
        p.String("training");
        p.Bool(false);
        if (spec.FullBackwardHookAttribute)
        {
            p.String("_is_full_backward_hook");
            p.None();
        }
        foreach (var (name, child) in module.Children)
        {
            p.String(name);
            PickleModule(p, child, tensors);
        }
        p.SetItemsFromMark();
        p.Build();
    }

    /// <summary><c>torch._utils._rebuild_tensor_v2(storage, 0, size, stride, requires_grad, OrderedDict())</c>, contiguous.</summary>
    private static void PickleTensor(PickleWriter p, TorchScriptParameter parameter, string key, bool requiresGrad)
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
        p.Bool(requiresGrad); // True for an nn.Parameter
        p.GlobalRef("collections", "OrderedDict"); // backward hooks: OrderedDict()
        p.EmptyTuple();
        p.Reduce();
        p.TupleFromMark();
        p.Reduce();
    }

    /// <summary>The constants table: a tuple of tensors (storage keys 0, 1, … under <c>constants/</c>); the empty tuple when there are none.</summary>
    private static byte[] ConstantsPickle(IReadOnlyList<TorchScriptParameter> constants)
    {
        var p = new PickleWriter();
        if (constants.Count == 0)
        {
            p.EmptyTuple();
        }
        else
        {
            p.MarkOp();
            for (var i = 0; i < constants.Count; i++) PickleTensor(p, constants[i], StorageKey(i), requiresGrad: false);
            p.TupleFromMark();
        }
        return p.Finish();
    }

    /// <summary>
    /// Source ranges of a code file in the format torch's SourceRangePickler writes without a string table (which
    /// libtorch still reads): a tuple of rows <c>(byte offset, ((text, filename, first line), start, end), tag)</c>.
    /// One row maps the whole file to itself, as there is no Python source behind it.
    /// </summary>
    private static byte[] DebugPickle(string path, string source)
    {
        var p = new PickleWriter();
        p.MarkOp();
        p.MarkOp();
        p.Int(0);
        p.MarkOp();
        p.MarkOp();
        p.String(source);
        p.String(path);
        p.Int(1);
        p.TupleFromMark();
        p.Int(0);
        p.Int(Encoding.UTF8.GetByteCount(source));
        p.TupleFromMark();
        p.Int(-1);
        p.TupleFromMark();
        p.TupleFromMark();
        return p.Finish();
    }

    /// <summary>
    /// Forty digits, as torch's <c>.data/serialization_id</c>: here two 64-bit halves of the SHA-256 of the records'
    /// names and contents, so that the id is the same for the same archive.
    /// </summary>
    private static byte[] SerializationId(List<(string Name, byte[] Content)> records)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var (name, content) in records)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(name + "\n"));
            sha.AppendData(content);
        }
        var hash = sha.GetHashAndReset();
        var id = BinaryPrimitives.ReadUInt64LittleEndian(hash).ToString("D20", CultureInfo.InvariantCulture)
            + BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(8)).ToString("D20", CultureInfo.InvariantCulture);
        return Encoding.ASCII.GetBytes(id);
    }

    /// <summary>The class as TorchScript prints it (torch/csrc/jit/serialization/python_print.cpp).</summary>
    private static string ClassSource(CheckedModule module)
    {
        var spec = module.Spec;
        var s = new StringBuilder();
        s.Append("class ").Append(spec.ClassName).Append("(Module):\n");
        s.Append("  __parameters__ = [");
        foreach (var p in spec.Parameters) s.Append('"').Append(p.Name).Append("\", ");
        s.Append("]\n");
        s.Append("  __buffers__ = []\n");
        foreach (var p in spec.Parameters) s.Append("  ").Append(p.Name).Append(" : Tensor\n");
        s.Append("  training : bool\n");
        if (spec.FullBackwardHookAttribute) s.Append("  _is_full_backward_hook : Optional[bool]\n");
        foreach (var (name, child) in module.Children) s.Append("  ").Append(name).Append(" : ").Append(child.QualifiedName).Append('\n');
        foreach (var (name, value) in spec.FinalInts)
            s.Append("  ").Append(name).Append(" : Final[int] = ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        s.Append("  def forward(self: ").Append(module.QualifiedName).Append(",\n");
        s.Append("    ").Append(spec.ForwardArgument).Append(": Tensor) -> Tensor:\n");
        foreach (var line in module.ForwardLines)
            s.Append(line.Length == 0 ? "" : "    " + line).Append('\n');
        return s.ToString();
    }

    private static byte[] LittleEndianBytes(float[] data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
            return bytes;
        }
        for (var i = 0; i < data.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), data[i]);
        return bytes;
    }
}
