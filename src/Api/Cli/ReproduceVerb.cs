using LambdaService.Api.Reproduction;
using LambdaService.Measurement;

namespace LambdaService.Api.Cli;

/// <summary>
/// <c>reproduce two-moons|mnist|lambda-band|feature-maps [--scale small|paper] [--out DIR]</c>: the paper's protocol run end to end, written as a Markdown
/// report with tables (ours beside the paper's) and plots.
/// </summary>
public static class ReproduceVerb
{
    /// <summary>Runs the verb; progress goes to <paramref name="stderr"/>, the report's path to <paramref name="stdout"/>.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        if (args.Count == 0 || args[0].StartsWith('-'))
        {
            throw new MeasurementInputException("experiment", "name the experiment: reproduce two-moons|mnist|lambda-band|feature-maps [--scale small|paper] [--out DIR].");
        }
        var experiment = args[0];
        var a = new CliArguments(args.Skip(1).ToArray(), ["scale", "out"], []);
        var scale = a.Get("scale") ?? "small";
        if (scale is not ("small" or "paper")) throw new MeasurementInputException("scale", $"--scale '{scale}' is not known; use small or paper.");
        var output = Path.GetFullPath(a.Get("out") ?? Path.Combine("docs", "reproduction", experiment));
        var path = experiment switch
        {
            "two-moons" => TwoMoonsReproduction.Run(scale == "paper" ? TwoMoonsScale.Paper : TwoMoonsScale.Small, scale, output, stderr, cancellationToken),
            "mnist" => MnistReproduction.Run(scale == "paper" ? MnistScale.Paper : MnistScale.Small, scale, output, stderr, cancellationToken),
            "lambda-band" => LambdaBandReproduction.Run(scale == "paper" ? LambdaBandScale.Paper : LambdaBandScale.Small, scale, output, stderr, cancellationToken),
            "feature-maps" => FeatureMapReproduction.Run(scale == "paper" ? FeatureMapScale.Paper : FeatureMapScale.Small, scale, output, stderr, cancellationToken),
            _ => throw new MeasurementInputException("experiment", $"experiment '{experiment}' is not known; use two-moons, mnist, lambda-band or feature-maps."),
        };
        stdout.WriteLine(path);
        return 0;
    }
}
