using System.Globalization;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Taylor;

namespace LambdaService.Measurement.Tests.Estimation;

/// <summary>
/// The three patterns that used to fall back to finite differences, measured end to end from files (an ONNX file and
/// a CSV with labels, <see cref="CurvatureRate.Measure"/>) with each engine. Taylor and autograd run the imported graph
/// in float64; finite differences run ONNX Runtime (float64 where it has kernels) along each line. The independent
/// computations must agree on every v_n to 1e-6 relative.
/// </summary>
public sealed class ExportedModelMeasurementTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lambda-exported-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Patterns() =>
    [
        "layer norm mlp, LayerNormalization, opset 17",
        "layer norm mlp, decomposed, opset 13",
        "padded cnn with average pooling, opset 11",
        "attention block, opset 13",
    ];

    [Theory]
    [MemberData(nameof(Patterns))]
    public void Taylor_autograd_and_finite_differences_agree_on_every_vn_to_1e_6(string pattern)
    {
        var (model, sample) = ExportedGraphs.All[pattern]();
        var modelPath = Path.Combine(_dir, "model.onnx");
        OnnxModelBuilder.Save(model, modelPath);
        var dataPath = WriteCsv(sample.Aggregate(1, (a, b) => a * b), rows: 16, seed: 3);
        MeasurementResult Run(EngineChoice engine) => CurvatureRate.Measure(modelPath, dataPath,
            new MeasurementOptions { Engine = engine, MaxPoints = 8, Directions = 2, BootstrapResamples = 0 }, null, null, default);

        var taylor = Run(EngineChoice.Taylor);
        var autograd = Run(EngineChoice.Autograd);
        var fd = Run(EngineChoice.FiniteDifference);
        var auto = Run(EngineChoice.Auto);
        Assert.Equal(("taylor", "autograd", "finite-difference", "taylor"), (taylor.Engine, autograd.Engine, fd.Engine, auto.Engine));
        Assert.Equal("float64", fd.Precision);
        for (var n = 0; n < taylor.Orders.Count; n++)
        {
            var reference = taylor.Orders[n].Norm;
            Assert.True(reference > 0, $"{pattern}: v_{n + 1} is 0");
            foreach (var (name, other) in new[] { ("autograd", autograd), ("finite-difference", fd) })
            {
                var rel = Math.Abs(other.Orders[n].Norm - reference) / reference;
                Assert.True(rel <= 1e-6, $"{pattern}: v_{n + 1} from {name} {other.Orders[n].Norm:R} vs taylor {reference:R} (relative {rel:E2})");
            }
        }
        Assert.Equal(taylor.Lambda, fd.Lambda, 1e-6);
    }

    private string WriteCsv(int features, int rows, int seed)
    {
        var rng = new Random(seed);
        var path = Path.Combine(_dir, "data.csv");
        using var w = new StreamWriter(path);
        w.WriteLine(string.Join(",", Enumerable.Range(0, features).Select(i => $"f{i}").Append("label")));
        for (var r = 0; r < rows; r++)
        {
            var values = Enumerable.Range(0, features).Select(_ => (rng.NextDouble() * 3 - 1.5).ToString("R", CultureInfo.InvariantCulture));
            w.WriteLine(string.Join(",", values.Append((r % 3).ToString(CultureInfo.InvariantCulture))));
        }
        return path;
    }
}
