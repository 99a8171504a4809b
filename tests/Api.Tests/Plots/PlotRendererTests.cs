using System.Buffers.Binary;
using System.Text;
using System.Xml.Linq;
using LambdaService.Api.Plots;
using SkiaSharp;

namespace LambdaService.Api.Tests.Plots;

public class PlotRendererTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>The eight bytes every PNG file starts with (PNG specification, §5.2).</summary>
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static TheoryData<string, PlotFormat> EveryPlotInEveryFormat()
    {
        var data = new TheoryData<string, PlotFormat>();
        foreach (var plot in new[] { "fit", "history", "scale", "error", "trajectories" })
            foreach (var format in new[] { PlotFormat.Svg, PlotFormat.Png })
                data.Add(plot, format);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryPlotInEveryFormat))]
    public void Every_plot_renders_in_both_formats_at_the_default_size(string plot, PlotFormat format)
    {
        var (bytes, title) = Render(plot, format, null);
        if (format == PlotFormat.Svg)
        {
            var svg = ParseSvg(bytes);
            Assert.Equal("800", svg.Attribute("width")?.Value);
            Assert.Equal("500", svg.Attribute("height")?.Value);
            Assert.Contains(Texts(svg), t => t.Contains(title, StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal((800, 500), PngSize(bytes));
            using var bitmap = SKBitmap.Decode(bytes);
            Assert.NotNull(bitmap);
            Assert.Equal(800, bitmap.Width);
            Assert.Equal(500, bitmap.Height);
        }
    }

    [Theory]
    [InlineData("fit")]
    [InlineData("history")]
    [InlineData("scale")]
    [InlineData("error")]
    public void A_png_has_the_requested_size_in_its_header_and_when_decoded(string plot)
    {
        var (bytes, _) = Render(plot, PlotFormat.Png, (640, 360));
        Assert.Equal((640, 360), PngSize(bytes));
        using var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        Assert.Equal((640, 360), (bitmap.Width, bitmap.Height));
        // Not blank: a rendered plot has more than a handful of distinct colours (axes, text, series, background).
        var colours = new HashSet<uint>();
        for (var y = 0; y < bitmap.Height; y += 3)
            for (var x = 0; x < bitmap.Width; x += 3)
                colours.Add((uint)bitmap.GetPixel(x, y));
        Assert.True(colours.Count > 10, $"only {colours.Count} colours");
    }

    [Fact]
    public void The_fit_plot_shows_lambda_its_interval_r2_and_marks_orders_left_out_of_the_fit()
    {
        // Order 5 has v_5 = 0 (log −∞): not in the fit and not drawn; order 1 is left out of the fit but drawn.
        var data = new FitPlotData([1, 2, 3, 4, 5], [0.4, -1.2, 1.3, 3.8, double.NegativeInfinity], [false, true, true, true, false],
            2.5333, -6.3, [2.2779, 2.6616], 0.9691, "tanh MLP");
        var texts = Texts(ParseSvg(PlotRenderer.MeasurementFit(data, PlotFormat.Svg)));
        Assert.Contains("tanh MLP — λ = 2.533 [2.278, 2.662], R² = 0.969", texts);
        Assert.Contains("log v_n (not in the fit)", texts);
        Assert.Contains("95% confidence band of the slope", texts);
    }

    [Fact]
    public void A_fit_without_a_bootstrap_interval_renders_without_a_band()
    {
        // LambdaMeasurement.Ci95 is [NaN, NaN] when no bootstrap ran.
        var data = Fit() with { Ci95 = [double.NaN, double.NaN] };
        var texts = Texts(ParseSvg(PlotRenderer.MeasurementFit(data, PlotFormat.Svg)));
        Assert.DoesNotContain(texts, t => t.StartsWith("95%", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.Contains("λ = 1.5, R² = 0.990", StringComparison.Ordinal));
    }

    [Fact]
    public void The_history_plot_labels_lambda_on_the_right_axis_and_the_optional_train_loss()
    {
        var texts = Texts(ParseSvg(PlotRenderer.RunHistory(History(), PlotFormat.Svg)));
        Assert.Contains("λ (right axis)", texts);
        Assert.Contains("curvature rate λ", texts);
        Assert.Contains("training loss", texts);
        Assert.Contains("test error", texts);
        Assert.DoesNotContain(texts, t => t.Contains("(left)", StringComparison.Ordinal));
        var withoutLoss = Texts(ParseSvg(PlotRenderer.RunHistory(History() with { TrainLosses = null, Lambdas = new double?[6] }, PlotFormat.Svg)));
        Assert.DoesNotContain("training loss", withoutLoss);
        Assert.DoesNotContain("λ (right axis)", withoutLoss);
        Assert.DoesNotContain("curvature rate λ", withoutLoss);
    }

    [Fact]
    public void A_crr_target_history_shades_its_band_and_draws_the_monitor_lambda_on_the_right_axis()
    {
        var data = History() with { MonitorLambdas = [0.9, 1.3, 1.6, 1.4, null, 1.35], Band = [1.2, 1.5] };
        var texts = Texts(ParseSvg(PlotRenderer.RunHistory(data, PlotFormat.Svg)));
        Assert.Contains("target band of λ [1.2, 1.5]", texts);
        Assert.Contains("λ on the monitor samples (right axis)", texts);
        Assert.Contains("curvature rate λ", texts);
        Assert.Contains("one entry per epoch", Throws(() => PlotRenderer.RunHistory(History() with { MonitorLambdas = [1.0] }, PlotFormat.Svg)));
        Assert.Contains("finite low ≤ high", Throws(() => PlotRenderer.RunHistory(History() with { Band = [1.5, 1.2] }, PlotFormat.Svg)));
    }

    public static TheoryData<string, int> EveryPlotAtNarrowAndWideSizes()
    {
        var data = new TheoryData<string, int>();
        foreach (var plot in new[] { "fit", "history", "scale", "error", "trajectories" })
            foreach (var width in new[] { 320, 480, 800 })
                data.Add(plot, width);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryPlotAtNarrowAndWideSizes))]
    public void No_text_is_clipped_even_with_a_long_title_on_a_narrow_canvas(string plot, int width)
    {
        // Clipped text runs into the canvas edge: ScottPlot draws nothing else there (white figure, no border), so any pixel in
        // the outermost 3 px that is not the background is cut-off ink. The title is the run id plus a measured λ, as the
        // service writes it, long enough to need 2–3 lines at 320 px.
        const string title = "Measurement msr_0123456789abcdef0123456789abcdef on model mdl_0123456789abcdef";
        var bytes = Render(plot, PlotFormat.Png, (width, 400), title).Bytes;
        using var bitmap = SKBitmap.Decode(bytes);
        var background = bitmap.GetPixel(bitmap.Width / 2, 0);
        var ink = new List<(int X, int Y)>();
        for (var y = 0; y < bitmap.Height; y++)
            for (var x = 0; x < bitmap.Width; x++)
                if ((x < 3 || y < 3 || x >= bitmap.Width - 3 || y >= bitmap.Height - 3) && bitmap.GetPixel(x, y) != background)
                    ink.Add((x, y));
        Assert.True(ink.Count == 0, $"{ink.Count} pixels of ink on the canvas edge, e.g. at {string.Join(", ", ink.Take(5))}");

        // The whole title is there (in lines that fit, shrunk or wrapped, not cut with an ellipsis).
        var texts = Texts(ParseSvg(Render(plot, PlotFormat.Svg, (width, 400), title).Bytes));
        foreach (var word in title.Split(' ')) Assert.Contains(texts, t => t.Contains(word, StringComparison.Ordinal));
        Assert.DoesNotContain(texts, t => t.Contains('…'));
    }

    [Fact]
    public void A_narrow_confidence_band_is_still_visible()
    {
        // λ = 1.5 with the interval [1.49, 1.51]: at n = 1 and 4 the band is 0.03 wide in log v_n, about 2 px at 800×500.
        // Against the same plot without a band, at least 1,000 pixels must change clearly (a channel by 60 or more of 255):
        // the dashed edges (two lines across the plot) and the fill between them.
        var narrow = Fit() with { Ci95 = [1.49, 1.51] };
        using var with = SKBitmap.Decode(PlotRenderer.MeasurementFit(narrow, PlotFormat.Png));
        using var without = SKBitmap.Decode(PlotRenderer.MeasurementFit(narrow with { Ci95 = null }, PlotFormat.Png));
        var changed = 0;
        for (var y = 0; y < with.Height; y++)
            for (var x = 0; x < with.Width; x++)
            {
                SKColor a = with.GetPixel(x, y), b = without.GetPixel(x, y);
                if (Math.Max(Math.Abs(a.Red - b.Red), Math.Max(Math.Abs(a.Green - b.Green), Math.Abs(a.Blue - b.Blue))) >= 60) changed++;
            }
        Assert.True(changed >= 1000, $"only {changed} pixels show the band");
    }

    [Fact]
    public void Scales_spanning_more_than_ten_times_get_a_log_axis_with_zero_one_decade_below()
    {
        // Grid 0, 0.001, 0.003, 0.01, 0.03: positive scales span 30×, so the axis is logarithmic and 0 is placed
        // at log10(0.001) − 1; its tick is labelled 0 and every grid scale is a tick.
        var texts = Texts(ParseSvg(PlotRenderer.SweepScaleCurve(Scale(), PlotFormat.Svg)));
        Assert.Contains(texts, t => t.StartsWith("CRR scale (log scale; 0 drawn one decade below", StringComparison.Ordinal));
        foreach (var tick in new[] { "0", "0.001", "0.003", "0.01", "0.03" }) Assert.Contains(tick, texts);
        Assert.Contains("label noise 0", texts);
        Assert.Contains("label noise 0.3", texts);
    }

    [Fact]
    public void Scales_spanning_at_most_ten_times_keep_a_linear_axis()
    {
        var data = new ScaleCurveData([new ScaleSeries("all", [new(0.002, 1.0, [0.9, 1.1]), new(0.004, 0.8, null), new(0.008, 0.7, [0.6, 0.8])])], "linear");
        var texts = Texts(ParseSvg(PlotRenderer.SweepScaleCurve(data, PlotFormat.Svg)));
        Assert.Contains("CRR scale", texts);
        Assert.DoesNotContain(texts, t => t.Contains("log scale", StringComparison.Ordinal));
    }

    [Fact]
    public void The_error_plot_reports_r_p_n_and_the_regression_line()
    {
        var texts = Texts(ParseSvg(PlotRenderer.SweepErrorVsLambda(Error(), PlotFormat.Svg)));
        Assert.Contains("CRR sweep — r = 0.620, p = 0.0012, n = 8", texts);
        Assert.Contains("OLS: error = 0.05 + 0.04·λ", texts);
        Assert.Contains("runs (n = 8)", texts);
    }

    [Fact]
    public void A_negative_slope_is_written_with_a_minus_sign_in_the_line_formula()
    {
        // Intercept 0.75, λ = −0.37: "0.75 − 0.37·n", not "0.75 + -0.37·n".
        var data = Fit() with { Lambda = -0.37, Intercept = 0.75, Ci95 = [-0.45, -0.3] };
        Assert.Contains("fit: 0.75 − 0.37·n", Texts(ParseSvg(PlotRenderer.MeasurementFit(data, PlotFormat.Svg))));
        Assert.Contains("OLS: error = 0.2 − 0.05·λ", Texts(ParseSvg(PlotRenderer.SweepErrorVsLambda(Error() with { Intercept = 0.2, Slope = -0.05 }, PlotFormat.Svg))));
    }

    [Fact]
    public void Rendering_is_deterministic_and_safe_in_parallel()
    {
        var first = PlotRenderer.SweepScaleCurve(Scale(), PlotFormat.Png);
        var results = new byte[4][];
        Parallel.For(0, 4, i => results[i] = PlotRenderer.SweepScaleCurve(Scale(), PlotFormat.Png));
        foreach (var r in results) Assert.Equal(first, r);
    }

    [Fact]
    public void The_content_types_are_those_of_svg_and_png()
    {
        Assert.Equal("image/svg+xml", PlotRenderer.ContentType(PlotFormat.Svg));
        Assert.Equal("image/png", PlotRenderer.ContentType(PlotFormat.Png));
    }

    [Fact]
    public void Empty_inputs_are_rejected_with_a_clear_message()
    {
        Assert.Contains("at least one order", Throws(() => PlotRenderer.MeasurementFit(new FitPlotData([], [], [], 1, 0, null, 1, "t"), PlotFormat.Svg)));
        Assert.Contains("at least one epoch", Throws(() => PlotRenderer.RunHistory(new RunHistoryData([], [], [], null, "t"), PlotFormat.Png)));
        Assert.Contains("at least one series", Throws(() => PlotRenderer.SweepScaleCurve(new ScaleCurveData([], "t"), PlotFormat.Svg)));
        Assert.Contains("has no points", Throws(() => PlotRenderer.SweepScaleCurve(new ScaleCurveData([new ScaleSeries("a", [])], "t"), PlotFormat.Svg)));
        Assert.Contains("at least one run", Throws(() => PlotRenderer.SweepErrorVsLambda(new ErrorLambdaData([], [], 0, 0, 0, 1, "t"), PlotFormat.Png)));
    }

    [Fact]
    public void Invalid_inputs_are_rejected_with_a_clear_message()
    {
        Assert.Contains("same length", Throws(() => PlotRenderer.MeasurementFit(Fit() with { LogNorms = [1.0] }, PlotFormat.Svg)));
        Assert.Contains("No order is used", Throws(() => PlotRenderer.MeasurementFit(Fit() with { UsedInFit = [false, false, false, false] }, PlotFormat.Svg)));
        Assert.Contains("used in the fit but its log-norm", Throws(() => PlotRenderer.MeasurementFit(Fit() with { LogNorms = [1, double.NegativeInfinity, 3, 4] }, PlotFormat.Svg)));
        Assert.Contains("finite low ≤ high", Throws(() => PlotRenderer.MeasurementFit(Fit() with { Ci95 = [2.0, 1.0] }, PlotFormat.Svg)));
        Assert.Contains("two, [low, high]", Throws(() => PlotRenderer.MeasurementFit(Fit() with { Ci95 = [1.0] }, PlotFormat.Svg)));
        Assert.Contains("Lambda is NaN", Throws(() => PlotRenderer.MeasurementFit(Fit() with { Lambda = double.NaN }, PlotFormat.Svg)));
        Assert.Contains("strictly increasing", Throws(() => PlotRenderer.RunHistory(History() with { Epochs = [1, 2, 2, 3, 4, 5] }, PlotFormat.Svg)));
        Assert.Contains("same length", Throws(() => PlotRenderer.RunHistory(History() with { TrainLosses = [1.0] }, PlotFormat.Svg)));
        Assert.Contains("TestErrors[1] is NaN", Throws(() => PlotRenderer.RunHistory(History() with { TestErrors = [0.3, double.NaN, 0.2, 0.2, 0.1, 0.1] }, PlotFormat.Svg)));
        Assert.Contains("finite number ≥ 0", Throws(() => PlotRenderer.SweepScaleCurve(new ScaleCurveData([new ScaleSeries("a", [new(-1, 1, null)])], "t"), PlotFormat.Svg)));
        Assert.Contains("does not contain the mean", Throws(() => PlotRenderer.SweepScaleCurve(new ScaleCurveData([new ScaleSeries("a", [new(0.1, 1, [1.5, 2])])], "t"), PlotFormat.Svg)));
        Assert.Contains("same length", Throws(() => PlotRenderer.SweepErrorVsLambda(Error() with { TestErrors = [0.1] }, PlotFormat.Svg)));
        Assert.Contains("a correlation lies in", Throws(() => PlotRenderer.SweepErrorVsLambda(Error() with { R = 1.5 }, PlotFormat.Svg)));
        Assert.Contains("a p-value lies in", Throws(() => PlotRenderer.SweepErrorVsLambda(Error() with { PValue = 0 }, PlotFormat.Svg)));
        Assert.Contains("width must be between", Throws(() => PlotRenderer.MeasurementFit(Fit(), PlotFormat.Png, width: 10)));
        Assert.Contains("height must be between", Throws(() => PlotRenderer.RunHistory(History(), PlotFormat.Png, height: 100_000)));
        Assert.Contains("svg or png", Throws(() => PlotRenderer.SweepErrorVsLambda(Error(), (PlotFormat)7)));
    }

    private static FitPlotData Fit() => new([1, 2, 3, 4], [1.0, 2.4, 4.1, 5.5], [true, true, true, true], 1.5, -0.5, [1.3, 1.7], 0.99, "fit title");

    private static RunHistoryData History() => new([1, 2, 3, 4, 5, 6], [0.3, 0.25, 0.2, 0.18, 0.15, 0.14], [null, 1.4, null, 1.1, null, 0.9],
        [0.69, 0.5, 0.42, 0.38, 0.35, 0.33], "history title");

    private static ScaleCurveData Scale() => new(
    [
        new ScaleSeries("label noise 0", [new(0, 1.2, [1.1, 1.3]), new(0.001, 1.0, [0.92, 1.08]), new(0.003, 0.8, [0.7, 0.9]), new(0.01, 0.6, [0.5, 0.7]), new(0.03, 0.4, [0.35, 0.45])]),
        new ScaleSeries("label noise 0.3", [new(0.03, 0.5, null), new(0, 1.4, [1.2, 1.6]), new(0.001, 1.1, [1.0, 1.2]), new(0.003, 0.9, [0.8, 1.0]), new(0.01, 0.7, [0.6, 0.8])]),
    ], "scale title");

    private static TrajectoryData Trajectories() => new(
    [
        new TrajectorySeries("baseline", [1, 2, 3, 4], [1.0, 1.5, 1.9, 2.3], [[0.9, 1.1], [1.3, 1.7], [1.7, 2.1], [2.0, 2.6]]),
        new TrajectorySeries("crr-target", [1, 2, 3, 4], [1.0, 1.3, 1.4, 1.35], [[0.9, 1.1], null, [1.3, 1.5], [1.3, 1.4]]),
    ], "trajectories title", [1.2, 1.5]);

    [Fact]
    public void A_target_band_is_shaded_across_the_whole_width_of_the_plot_at_its_lambda_range()
    {
        // A band of λ is a range of the y axis: the pixels it changes must stretch over most of the plot's width, in a strip of
        // rows, not over a few columns at x = 1.2–1.5 (a span of the x axis).
        (int Columns, int Rows) Extent(byte[] with, byte[] without)
        {
            using var a = SKBitmap.Decode(with);
            using var b = SKBitmap.Decode(without);
            var columns = new HashSet<int>();
            var rows = new HashSet<int>();
            for (var y = 0; y < a.Height; y++) for (var x = 0; x < a.Width; x++) if (a.GetPixel(x, y) != b.GetPixel(x, y)) { columns.Add(x); rows.Add(y); }
            return (columns.Count, rows.Count);
        }
        var trajectories = Extent(PlotRenderer.Trajectories(Trajectories(), PlotFormat.Png), PlotRenderer.Trajectories(Trajectories() with { Band = null }, PlotFormat.Png));
        Assert.True(trajectories.Columns > 400, $"the band covers {trajectories.Columns} columns of 800");
        var history = History() with { MonitorLambdas = [0.9, 1.3, 1.6, 1.4, null, 1.35] };
        var runs = Extent(PlotRenderer.RunHistory(history with { Band = [1.2, 1.5] }, PlotFormat.Png), PlotRenderer.RunHistory(history, PlotFormat.Png));
        Assert.True(runs.Columns > 400, $"the band covers {runs.Columns} columns of 800");
    }

    [Fact]
    public void Trajectories_shade_each_interval_and_the_band_and_refuse_bad_series()
    {
        var texts = Texts(ParseSvg(PlotRenderer.Trajectories(Trajectories(), PlotFormat.Svg)));
        Assert.Contains("target band [1.2, 1.5]", texts);
        Assert.Contains("baseline", texts);
        Assert.Contains("crr-target", texts);
        Assert.Contains("epoch", texts);
        // The intervals are drawn: without them fewer pixels are coloured.
        using var with = SKBitmap.Decode(PlotRenderer.Trajectories(Trajectories(), PlotFormat.Png));
        var bare = Trajectories() with { Series = [.. Trajectories().Series.Select(s => s with { Ci95 = null })] };
        using var without = SKBitmap.Decode(PlotRenderer.Trajectories(bare, PlotFormat.Png));
        var changed = 0;
        for (var y = 0; y < with.Height; y++) for (var x = 0; x < with.Width; x++) if (with.GetPixel(x, y) != without.GetPixel(x, y)) changed++;
        Assert.True(changed > 1000, $"{changed} pixels differ");
        Assert.Contains("at least one series", Throws(() => PlotRenderer.Trajectories(new TrajectoryData([], "t"), PlotFormat.Svg)));
        Assert.Contains("differ in length", Throws(() => PlotRenderer.Trajectories(new TrajectoryData([new TrajectorySeries("a", [1, 2], [1.0], null)], "t"), PlotFormat.Svg)));
        Assert.Contains("epochs must increase", Throws(() => PlotRenderer.Trajectories(new TrajectoryData([new TrajectorySeries("a", [2, 1], [1.0, 1.0], null)], "t"), PlotFormat.Svg)));
        Assert.Contains("does not contain the mean", Throws(() => PlotRenderer.Trajectories(new TrajectoryData([new TrajectorySeries("a", [1], [1.0], [[1.5, 2.0]])], "t"), PlotFormat.Svg)));
    }

    private static ErrorLambdaData Error() => new([0.3, 0.5, 0.8, 1.0, 1.1, 1.3, 1.6, 2.0], [0.06, 0.08, 0.07, 0.1, 0.09, 0.1, 0.12, 0.13], 0.04, 0.05, 0.62, 0.0012, "CRR sweep");

    private static (byte[] Bytes, string Title) Render(string plot, PlotFormat format, (int W, int H)? size, string? title = null)
    {
        var (w, h) = size ?? (PlotRenderer.DefaultWidth, PlotRenderer.DefaultHeight);
        return plot switch
        {
            "fit" => (PlotRenderer.MeasurementFit(Fit() with { Title = title ?? "fit title" }, format, w, h), title ?? "fit title"),
            "history" => (PlotRenderer.RunHistory(History() with { Title = title ?? "history title" }, format, w, h), title ?? "history title"),
            "scale" => (PlotRenderer.SweepScaleCurve(Scale() with { Title = title ?? "scale title" }, format, w, h), title ?? "scale title"),
            "error" => (PlotRenderer.SweepErrorVsLambda(Error() with { Title = title ?? "CRR sweep" }, format, w, h), title ?? "CRR sweep"),
            "trajectories" => (PlotRenderer.Trajectories(Trajectories() with { Title = title ?? "trajectories title" }, format, w, h), title ?? "trajectories title"),
            _ => throw new ArgumentException(plot),
        };
    }

    private static string Throws(Action action) => Assert.ThrowsAny<ArgumentException>(action).Message;

    /// <summary>Parses the bytes as XML (strictly: UTF-8, well-formed) and checks the root is an SVG element.</summary>
    private static XElement ParseSvg(byte[] bytes)
    {
        Assert.False(bytes.AsSpan().StartsWith(new byte[] { 0xEF, 0xBB, 0xBF }), "no byte-order mark");
        var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        var root = XDocument.Parse(text).Root;
        Assert.NotNull(root);
        Assert.Equal(Svg + "svg", root.Name);
        return root;
    }

    private static List<string> Texts(XElement svg) => svg.Descendants(Svg + "text").Select(t => t.Value.Trim()).ToList();

    /// <summary>
    /// Width and height from the IHDR chunk, read by hand (PNG specification §5.3, §11.2.2): after the 8-byte signature
    /// comes the first chunk, length 13 (big-endian), type "IHDR", then width and height as big-endian 32-bit integers;
    /// the chunk's CRC-32 over type and data is checked too.
    /// </summary>
    private static (int Width, int Height) PngSize(byte[] png)
    {
        Assert.True(png.Length > 33, "too short for a PNG");
        Assert.Equal(PngSignature, png[..8]);
        Assert.Equal(13u, BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(8, 4)));
        Assert.Equal("IHDR", Encoding.ASCII.GetString(png, 12, 4));
        var crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(29, 4));
        Assert.Equal(Crc32(png.AsSpan(12, 17)), crc);
        return ((int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(16, 4)), (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(20, 4)));
    }

    /// <summary>CRC-32 as PNG defines it (ISO 3309, reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF).</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return crc ^ 0xFFFFFFFFu;
    }
}
