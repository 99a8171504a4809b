using LambdaService.Api.Contracts;
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
            throw new MeasurementInputException("experiment", $"name the experiment: reproduce {ClosedSet.Bar<ReproductionExperiment>()} [--scale {ClosedSet.Bar<ReproductionScale>()}] [--out DIR].");
        }
        var experiment = args[0];
        var a = new CliArguments(args.Skip(1).ToArray(), ["scale", "out"], []);
        var scale = a.Get("scale") ?? ClosedSet.Word(ReproductionScale.Small);
        if (!ClosedSet.TryParse<ReproductionScale>(scale, out var size))
        {
            throw new MeasurementInputException("scale", $"--scale '{scale}' is not known; use {ClosedSet.Or(ClosedSet.Words<ReproductionScale>())}.");
        }
        var paper = size == ReproductionScale.Paper;
        var output = Path.GetFullPath(a.Get("out") ?? Path.Combine("docs", "reproduction", experiment));
        if (!ClosedSet.TryParse<ReproductionExperiment>(experiment, out var which))
        {
            throw new MeasurementInputException("experiment", $"experiment '{experiment}' is not known; use {ClosedSet.Or(ClosedSet.Words<ReproductionExperiment>())}.");
        }
        var path = which switch
        {
            ReproductionExperiment.TwoMoons => TwoMoonsReproduction.Run(paper ? TwoMoonsScale.Paper : TwoMoonsScale.Small, scale, output, stderr, cancellationToken),
            ReproductionExperiment.Mnist => MnistReproduction.Run(paper ? MnistScale.Paper : MnistScale.Small, scale, output, stderr, cancellationToken),
            ReproductionExperiment.LambdaBand => LambdaBandReproduction.Run(paper ? LambdaBandScale.Paper : LambdaBandScale.Small, scale, output, stderr, cancellationToken),
            _ => FeatureMapReproduction.Run(paper ? FeatureMapScale.Paper : FeatureMapScale.Small, scale, output, stderr, cancellationToken),
        };
        stdout.WriteLine(path);
        return 0;
    }
}

/// <summary>The experiments of <c>reproduce</c>.</summary>
public enum ReproductionExperiment
{
    /// <summary>Two Moons (paper §5.2).</summary>
    TwoMoons,

    /// <summary>MNIST (paper §5.3–5.6).</summary>
    Mnist,

    /// <summary>λ-targeting CRR.</summary>
    LambdaBand,

    /// <summary>Class-filtered CRR at the input and at a feature map (paper §7).</summary>
    FeatureMaps,
}

/// <summary>The sizes of <c>reproduce</c>: <c>small</c> (default, minutes) or <c>paper</c> (the paper's sizes).</summary>
public enum ReproductionScale
{
    /// <summary>Reduced sizes.</summary>
    Small,

    /// <summary>The paper's sizes.</summary>
    Paper,
}
