using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace LambdaService.Measurement.Models;

/// <summary>
/// The aten operators whose higher derivatives libtorch's nested autograd gets wrong or cannot give, and the piecewise
/// ones, as found in a TorchScript archive's code (<c>&lt;root&gt;/code/**/*.py</c>). The first two lists are what
/// tests/Measurement.Tests/TorchScriptOperatorDerivativeTests.cs measures in libtorch 2.10 (float64, 4th directional
/// derivatives against the same function spelled out in elementary operations); the test asserts these lists, so it
/// fails when libtorch changes.
/// </summary>
public static partial class TorchScriptOperators
{
    /// <summary>
    /// Fused kernels whose first and second derivatives are exact under nested autograd but whose 3rd and 4th derivatives
    /// are off, by percents to several times their size (their double-backward formulas are not differentiated exactly
    /// again). group_norm, batch_norm in evaluation mode, softmax, log_softmax, gelu (both forms), silu, mish, softplus,
    /// elu, selu, celu, hardswish and the elementary functions were measured exact to order 4.
    /// </summary>
    public static IReadOnlyList<string> InexactAboveSecondOrder { get; } = ["layer_norm", "instance_norm"];

    /// <summary>
    /// Operators whose backward has no derivative in libtorch (<c>derivative for aten::hardsigmoid_backward is not
    /// implemented</c>): a second derivative fails, and through TorchSharp 0.107's bridge (no try/catch around
    /// <c>THSAutograd_grad</c>) the failure aborts the process instead of raising. Established with libtorch 2.10 by running
    /// each operator from TorchScript code under nested autograd to order 4 in a throwaway test process of its own:
    /// hardsigmoid ended it ("terminate called after throwing an instance of 'c10::Error' … derivative for
    /// aten::hardsigmoid_backward is not implemented"); hardswish, mish, silu, celu, gelu (tanh form) and log_sigmoid
    /// ran through. The in-process test (tests/Measurement.Tests/TorchScriptOperatorDerivativeTests.cs) keeps this list
    /// out for that reason.
    /// </summary>
    public static IReadOnlyList<string> WithoutSecondDerivative { get; } = ["hardsigmoid"];

    /// <summary>
    /// Piecewise operators with affine (or constant) pieces: where they are a model's only nonlinearities its logits have
    /// zero derivatives of order ≥ 2 almost everywhere.
    /// </summary>
    public static IReadOnlyList<string> PiecewiseLinear { get; } =
    [
        "relu", "relu6", "leaky_relu", "rrelu", "prelu", "hardtanh", "hardsigmoid", "threshold", "abs", "clamp", "clamp_min", "clamp_max", "clip",
        "floor", "ceil", "round", "trunc", "sign", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
        "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "max", "min", "maximum", "minimum", "amax", "amin",
    ];

    /// <summary>Every piecewise operator: <see cref="PiecewiseLinear"/> and those with smooth non-affine pieces.</summary>
    public static IReadOnlyList<string> Piecewise { get; } = [.. PiecewiseLinear, "hardswish", "elu", "selu", "celu"];

    private static readonly HashSet<string> Known = [.. InexactAboveSecondOrder, .. WithoutSecondDerivative, .. Piecewise];

    /// <summary>
    /// The operators of the lists above that the archive's code calls, each once, in order of first appearance: calls
    /// written <c>torch.X(</c>, <c>torch.nn.functional.X(</c>, <c>torch._C._nn.X(</c>, <c>tensor.X(</c>, their in-place
    /// forms <c>X_(</c>, and <c>aten::X</c>. Definitions (<c>def X(</c>) are not calls.
    /// </summary>
    public static IReadOnlyList<string> Find(ModelFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Format != ModelFormat.TorchScript) return [];
        using var stream = new MemoryStream(file.Bytes, writable: false);
        return Find(stream);
    }

    /// <summary>
    /// <see cref="Find(ModelFile)"/> on a TorchScript archive already checked by <see cref="ModelFile"/> (a stored upload),
    /// read from <paramref name="archive"/> without loading the rest of it. A code file larger than <see cref="MaxCodeBytes"/>
    /// raises <see cref="MeasurementInputException"/> on <c>model</c>.
    /// </summary>
    public static IReadOnlyList<string> Find(Stream archive)
    {
        ArgumentNullException.ThrowIfNull(archive);
        using var zip = new ZipArchive(archive, ZipArchiveMode.Read, leaveOpen: true);
        var found = new List<string>();
        foreach (var entry in zip.Entries)
        {
            var slash = entry.FullName.IndexOf('/');
            if (slash <= 0 || !entry.FullName.AsSpan(slash).StartsWith("/code/") || !entry.FullName.EndsWith(".py", StringComparison.Ordinal)) continue;
            using var reader = new StreamReader(entry.Open(), Encoding.UTF8);
            var code = new StringBuilder();
            var buffer = new char[1 << 16];
            int read;
            while ((read = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                code.Append(buffer, 0, read);
                if (code.Length > MaxCodeBytes)
                {
                    throw new MeasurementInputException("model", $"the TorchScript code file '{entry.FullName}' is larger than {MaxCodeBytes >> 20} MiB; such models are not supported.");
                }
            }
            found.AddRange(FindInCode(code.ToString()));
        }
        return [.. found.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Largest TorchScript code file read (characters), far above any network's code.</summary>
    public const int MaxCodeBytes = 64 << 20;

    /// <summary>The listed operators that TorchScript <paramref name="code"/> calls (the rules of <see cref="Find(ModelFile)"/>).</summary>
    public static IReadOnlyList<string> FindInCode(string code)
    {
        ArgumentNullException.ThrowIfNull(code);
        var found = new List<string>();
        foreach (Match m in Call().Matches(code))
        {
            var name = m.Groups["name"].Value;
            if (!Known.Contains(name) && name.EndsWith('_') && Known.Contains(name[..^1])) name = name[..^1];
            if (Known.Contains(name) && !found.Contains(name)) found.Add(name);
        }
        return found;
    }

    /// <summary>
    /// Refuses nested autograd up to <paramref name="maxOrder"/> on a TorchScript model calling <paramref name="operators"/>
    /// (from <see cref="Find(ModelFile)"/>): <see cref="WithoutSecondDerivative"/> from order 2, <see cref="InexactAboveSecondOrder"/> from
    /// order 3. Raises <see cref="MeasurementInputException"/> on <c>engine</c>.
    /// </summary>
    public static void RefuseAutograd(IReadOnlyList<string> operators, int maxOrder)
    {
        ArgumentNullException.ThrowIfNull(operators);
        var inexact = maxOrder >= 3 ? operators.Where(InexactAboveSecondOrder.Contains).ToList() : [];
        var missing = maxOrder >= 2 ? operators.Where(WithoutSecondDerivative.Contains).ToList() : [];
        if (inexact.Count == 0 && missing.Count == 0) return;
        var reasons = inexact.Select(op => $"torch.{op} (libtorch's fused kernel gives wrong 3rd/4th derivatives under nested autograd, off by percents or more)")
            .Concat(missing.Select(op => $"torch.{op} (no higher derivative in libtorch)"));
        throw new MeasurementInputException("engine",
            $"the autograd engine cannot differentiate this TorchScript model exactly to order {maxOrder}: it uses {string.Join(" and ", reasons)}; "
            + "export the model to ONNX (torch.onnx.export), whose importer spells them out, and measure that"
            + (missing.Count == 0 ? ", or measure orders up to 2 only (max order 2), which are exact." : "."),
            null, "The autograd engine cannot differentiate this model");
    }

    [GeneratedRegex(@"(?<![\w])aten::(?<name>[A-Za-z_]\w*)|\.(?<name>[A-Za-z_]\w*)\s*\(", RegexOptions.CultureInvariant)]
    private static partial Regex Call();
}
