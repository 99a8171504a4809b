using System.Globalization;
using LambdaService.Measurement.Validation;

namespace LambdaService.Api.Cli;

/// <summary><c>validate</c>: the estimator on functions with known answers (paper §5.1).</summary>
public static class ValidateVerb
{
    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, ["max-order"], ["json"]);
        var maxOrder = a.Int("max-order", 8, 120) ?? 60;
        var cases = ValidationSuite.Run(maxOrder, cancellationToken);
        if (a.Has("json"))
        {
            stdout.WriteLine(CliJson.Serialize(cases));
            return 0;
        }
        var c = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Format(c, "{0,-42} {1,-26} {2,12} {3,12} {4,10} {5,12} {6,10}", "case", "quantity", "true", "estimate", "rel.error", "corrected", "rel.error"));
        foreach (var v in cases)
        {
            stdout.WriteLine(string.Format(c, "{0,-42} {1,-26} {2,12:G6} {3,12:G6} {4,10:P2} {5,12} {6,10}",
                v.Name, v.Quantity, v.TrueValue, v.Estimate, v.RelativeError,
                v.CorrectedEstimate is { } ce ? ce.ToString("G6", c) : "-",
                v.CorrectedRelativeError is { } cre ? cre.ToString("P2", c) : "-"));
        }
        return 0;
    }
}
