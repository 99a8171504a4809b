using System.Globalization;
using System.Text;
using LambdaService.Api.Cli;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Tests.Cli;

/// <summary>A temporary folder with a small ONNX classifier and a labelled CSV file (and a ReLU CNN with images), removed afterwards.</summary>
public sealed class CliFixture : IDisposable
{
    public CliFixture()
    {
        Folder = Path.Combine(Path.GetTempPath(), "lambdaservice-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        var rng = new Random(3);
        float R() => (float)(rng.NextDouble() * 2 - 1);
        var w1 = new float[8, 2];
        var w2 = new float[2, 8];
        for (var i = 0; i < 8; i++)
        {
            w1[i, 0] = 2 * R();
            w1[i, 1] = 2 * R();
            w2[0, i] = R();
            w2[1, i] = R();
        }
        Weights = [w1, w2];
        Biases = [Enumerable.Range(0, 8).Select(_ => R()).ToArray(), [0.1f, -0.1f]];
        OnnxModelBuilder.Save(OnnxModelBuilder.Mlp(Weights, Biases), OnnxPath);
        var csv = new StringBuilder("f1,f2,label\n");
        for (var i = 0; i < 40; i++)
        {
            var x1 = rng.NextDouble() * 3 - 1.5;
            var x2 = rng.NextDouble() * 3 - 1.5;
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{x1:R},{x2:R},{(x1 + x2 > 0 ? 1 : 0)}"));
        }
        File.WriteAllText(CsvPath, csv.ToString());
        (ReluCnnPath, ImagesCsvPath) = ReluCnnFiles.Write(Folder);
    }

    public string Folder { get; }

    public float[][,] Weights { get; }

    public float[][] Biases { get; }

    public string OnnxPath => Path.Combine(Folder, "mlp.onnx");

    public string CsvPath => Path.Combine(Folder, "points.csv");

    /// <summary>A ReLU CNN (<see cref="ReluCnnFiles"/>) and its 8×8 images with labels.</summary>
    public string ReluCnnPath { get; }

    public string ImagesCsvPath { get; }

    public (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = CliApp.Run(args, stdout, stderr, CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
