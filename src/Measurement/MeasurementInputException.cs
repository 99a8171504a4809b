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

    /// <summary>
    /// Runs one step of loading <paramref name="what"/> (a model, a data file) and turns a failure of the file's content into
    /// this exception, naming <paramref name="field"/> and the cause in one line: the runtimes throw their own types for a
    /// file they refuse (ONNX Runtime's <c>OnnxRuntimeException</c>, libtorch's <c>ExternalException</c>, <see cref="ArgumentException"/>
    /// for an initializer whose dimensions do not match its data, <see cref="InvalidDataException"/>, …), and the same file fails
    /// the same way every time. Faults of the machine rather than the file pass unchanged: cancellation, memory, I/O, a missing
    /// native library.
    /// </summary>
    /// <param name="field">The input at fault, e.g. <c>model</c>.</param>
    /// <param name="what">What is loaded, for the message and the title, e.g. "the model".</param>
    /// <param name="load">The step.</param>
    public static T Loading<T>(string field, string what, Func<T> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        try
        {
            return load();
        }
        catch (Exception e) when (IsContentFailure(e))
        {
            var line = FirstLine(e.Message);
            var title = char.ToUpperInvariant(what[0]) + what[1..] + " could not be loaded";
            throw new MeasurementInputException(field, $"{what} could not be loaded: {e.GetType().Name}: {line}", e, title);
        }
    }

    /// <summary>The first line of a (native) error message, trimmed and clipped at 500 characters, for a one-line error.</summary>
    public static string FirstLine(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length <= 500 ? line : line[..500] + "…";
    }

    private static bool IsContentFailure(Exception e) => e is not (MeasurementInputException or OperationCanceledException or OutOfMemoryException
        or InsufficientExecutionStackException or IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException
        or BadImageFormatException or TypeInitializationException)
        || e is InvalidDataException or EndOfStreamException;
}
