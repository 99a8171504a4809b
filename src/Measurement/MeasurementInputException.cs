namespace LambdaService.Measurement;

/// <summary>
/// A problem with what the user supplied (a model file, a data file, an option), as opposed to a fault
/// of the service. <see cref="Field"/> names the input at fault so that callers can report it
/// (the CLI prints it on one line and exits with code 2; the HTTP API turns it into problem details,
/// titled <see cref="Title"/> where one is given).
/// </summary>
public sealed class MeasurementInputException(string field, string message, Exception? inner = null, string? title = null)
    : Exception(message, inner)
{
    /// <summary>The option or input that is at fault, e.g. <c>model</c>, <c>data</c>, <c>orders</c>.</summary>
    public string Field { get; } = field;

    /// <summary>A short title for this kind of problem (e.g. <c>Derivatives unreliable</c>), or null for the caller's generic one.</summary>
    public string? Title { get; } = title;
}
