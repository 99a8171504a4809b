using System.Globalization;
using System.Text;
using LambdaService.Api.Plots;
using LambdaService.Training.Sweeps;

namespace LambdaService.Api.Reproduction;

/// <summary>A Markdown report being written: text, tables, and plots saved as PNG beside it.</summary>
public sealed class ReportWriter(string directory)
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private readonly StringBuilder _text = new();

    /// <summary>The report's folder.</summary>
    public string Directory { get; } = directory;

    /// <summary>Appends a line (or paragraph) of Markdown.</summary>
    public void Line(string text = "") => _text.AppendLine(text);

    /// <summary>Appends a Markdown table.</summary>
    public void Table(string[] header, IEnumerable<string[]> rows)
    {
        _text.AppendLine("| " + string.Join(" | ", header) + " |");
        _text.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var row in rows) _text.AppendLine("| " + string.Join(" | ", row) + " |");
        _text.AppendLine();
    }

    /// <summary>Saves <paramref name="png"/> as <c>{name}.png</c> and links it.</summary>
    public void Plot(string name, string caption, byte[] png)
    {
        File.WriteAllBytes(Path.Combine(Directory, name + ".png"), png);
        _text.AppendLine($"![{caption}]({name}.png)");
        _text.AppendLine();
        _text.AppendLine($"*{caption}*");
        _text.AppendLine();
    }

    /// <summary>Writes <c>report.md</c>; returns its path.</summary>
    public string Save()
    {
        var path = Path.Combine(Directory, "report.md");
        File.WriteAllText(path, _text.ToString(), new UTF8Encoding(false));
        return path;
    }

    /// <summary><c>mean [lo, hi]</c> with <paramref name="digits"/> decimals (the interval only when there is one).</summary>
    public static string MeanCi(Summary? s, int digits = 3) => s is null
        ? "n/a"
        : s.Ci95 is [var lo, var hi]
            ? string.Create(C, $"{s.Mean.ToString("F" + digits, C)} [{lo.ToString("F" + digits, C)}, {hi.ToString("F" + digits, C)}]")
            : s.Mean.ToString("F" + digits, C);

    /// <summary><c>mean ± sd</c>.</summary>
    public static string MeanSd(Summary? s, int digits = 3) => s is null
        ? "n/a"
        : s.StandardDeviation is { } sd ? $"{s.Mean.ToString("F" + digits, C)} ± {sd.ToString("F" + digits, C)}" : s.Mean.ToString("F" + digits, C);

    /// <summary>A number with <paramref name="digits"/> decimals.</summary>
    public static string N(double value, int digits = 3) => value.ToString("F" + digits, C);

    /// <summary>Summary of the finite values (null when there is none).</summary>
    public static Summary? Summarize(IEnumerable<double> values)
    {
        var list = values.Where(double.IsFinite).ToList();
        return list.Count == 0 ? null : SweepStatistics.Summarize(list);
    }

    /// <summary>Pearson correlation with permutation p and bootstrap slope interval, or null when it cannot be computed.</summary>
    public static Correlation? Correlate(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        var pairs = x.Zip(y).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToList();
        if (pairs.Count < 3) return null;
        try
        {
            return SweepStatistics.Correlate(pairs.Select(p => p.First).ToList(), pairs.Select(p => p.Second).ToList(), 9_999, 2_000, 0);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary><c>r = …, p = …</c> for a correlation.</summary>
    public static string Describe(Correlation? c) => c is null
        ? "n/a (too few runs or no variation)"
        : string.Create(C, $"r = {c.R:F3}, permutation p = {c.PValue:G3} (n = {c.Count})");

    /// <summary>Renders a plot as PNG.</summary>
    public static byte[] Png(Func<PlotFormat, byte[]> render) => render(PlotFormat.Png);
}
