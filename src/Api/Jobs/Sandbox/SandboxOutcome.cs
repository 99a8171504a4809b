using System.Globalization;
using System.Text.RegularExpressions;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>How a sandboxed job ended. A closed set: one of the nested records.</summary>
public abstract partial record SandboxOutcome
{
    private SandboxOutcome()
    {
    }

    /// <summary>One or a few sentences for a job's error (or "succeeded"), with the cause and the child's last stderr lines.</summary>
    public abstract string Describe();

    /// <summary>The runner finished (exit code 0) and wrote its result.</summary>
    /// <param name="ResultJson">The out file's content: the measurement result serialised with <see cref="RunnerProtocol.Json"/>.</param>
    public sealed record Succeeded(string ResultJson) : SandboxOutcome
    {
        /// <inheritdoc />
        public override string Describe() => "succeeded";
    }

    /// <summary>The runner found a problem with the user's model, data or options (exit code 2).</summary>
    /// <param name="Error">The field at fault and what to do.</param>
    public sealed record UserError(RunnerUserError Error) : SandboxOutcome
    {
        /// <inheritdoc />
        public override string Describe() => $"{Error.Field}: {Error.Detail}";
    }

    /// <summary>
    /// The child ended without a usable answer: killed by a signal (a libtorch abort, a segfault, the kernel's
    /// out-of-memory killer, an operator's kill), an internal error (exit code 1), or an exit code without the out file it implies.
    /// The service's own kills (time limit, memory limit, cancel) are other outcomes, so a SIGKILL here came from outside.
    /// </summary>
    /// <param name="ExitCode">The exit status as .NET reports it; on Unix a death by signal N reads 128 + N.</param>
    /// <param name="Signal">The signal's name (<c>SIGABRT</c>, <c>SIGSEGV</c>, <c>SIGKILL</c>, …) for exit codes 129–159 on Unix, else null.</param>
    /// <param name="StderrTail">The last lines the child wrote on standard error.</param>
    /// <param name="Phase">The last phase the runner announced (<see cref="RunnerPhase.Load"/> or <see cref="RunnerPhase.Run"/>), or null when it announced none.</param>
    public sealed partial record Crashed(int ExitCode, string? Signal, string StderrTail, string? Phase = null) : SandboxOutcome
    {
        /// <summary>
        /// Signals a process raises against itself when its own code fails (an abort, a bad memory access, an illegal
        /// instruction, a floating-point trap); SIGKILL, SIGTERM and the like come from outside and say nothing about the input.
        /// </summary>
        private static readonly string[] SelfInflicted = ["SIGABRT", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP", "SIGSYS"];

        /// <summary>
        /// Whether the child died of a self-inflicted signal while it was still loading the model and data: the same input
        /// would kill the next attempt the same way, so the job fails at once as an input error instead of being retried.
        /// </summary>
        public bool WhileLoading => Phase == RunnerPhase.Load && Signal is not null && SelfInflicted.Contains(Signal, StringComparer.Ordinal);

        /// <summary>The error detail of a <see cref="WhileLoading"/> crash: what could not be loaded, the signal and the stderr tail.</summary>
        /// <param name="what">What the runner was loading, e.g. "the model" or "the training data".</param>
        public string DescribeLoadFailure(string what) =>
            WithTail(string.Create(CultureInfo.InvariantCulture,
                $"{what} could not be loaded: the sandbox died of {Signal} (exit code {ExitCode}) while loading it; the same file would fail the same way again, so the job is not retried. Check that it was saved by a supported exporter (torch.jit.save, torch.onnx.export) and loads there"), StderrTail);

        /// <summary>
        /// The operator (<c>aten::X</c>) of libtorch's "derivative … is not implemented" when the child died with it on standard error, else
        /// null. Nested autograd asks for a derivative libtorch lacks, and TorchSharp's bridge lets the error end the process
        /// (src/Measurement/Models/TorchScriptOperators.cs); the same model and orders stop every attempt the same way.
        /// </summary>
        public string? MissingDerivative => Signal is not null && SelfInflicted.Contains(Signal, StringComparer.Ordinal)
            && MissingDerivativePattern().Match(StderrTail) is { Success: true } m ? "aten::" + m.Groups[1].Value : null;

        /// <summary>
        /// The one-line error detail of a <see cref="MissingDerivative"/> crash: the operator, that the job is not retried, and what to do
        /// (no stderr tail: libtorch's lines say nothing more to a user).
        /// </summary>
        /// <param name="field">The request's engine field (<c>engine</c> or <c>crr.engine</c>).</param>
        public string DescribeMissingDerivative(string field) =>
            $"libtorch has no derivative of {MissingDerivative}, which nested autograd needs for the higher orders of this model; the sandbox stopped ({Signal}) and the job "
            + $"is not retried, since it would stop the same way. Export the model to ONNX (the taylor engine imports the graph's operators) or set {field} to finite-difference.";

        /// <summary>libtorch's two spellings: <c>derivative for aten::X is not implemented</c> and <c>the derivative for 'X' is not implemented.</c></summary>
        [GeneratedRegex(@"derivative for (?:aten::)?'?([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)'? is not implemented")]
        private static partial Regex MissingDerivativePattern();

        /// <inheritdoc />
        public override string Describe()
        {
            var cause = Signal switch
            {
                null => string.Create(CultureInfo.InvariantCulture, $"the sandbox process failed with exit code {ExitCode}"),
                "SIGKILL" => string.Create(CultureInfo.InvariantCulture, $"the sandbox process was killed by SIGKILL (exit code {ExitCode}; the out-of-memory killer, an operator, or the memory limit)"),
                _ => string.Create(CultureInfo.InvariantCulture, $"the sandbox process died of {Signal} (exit code {ExitCode})"),
            };
            return WithTail(cause, StderrTail);
        }
    }

    /// <summary>The child ran past the time limit and was killed.</summary>
    /// <param name="Limit">The time limit.</param>
    /// <param name="StderrTail">The last lines the child wrote on standard error.</param>
    public sealed record TimedOut(TimeSpan Limit, string StderrTail) : SandboxOutcome
    {
        /// <inheritdoc />
        public override string Describe() =>
            WithTail(string.Create(CultureInfo.InvariantCulture, $"the job ran past its time limit of {Limit.TotalSeconds:0.###} s and was stopped"), StderrTail);
    }

    /// <summary>The child's resident memory passed the memory limit and it was killed.</summary>
    /// <param name="PeakBytes">The largest resident set size seen (bytes).</param>
    /// <param name="LimitBytes">The memory limit (bytes).</param>
    /// <param name="StderrTail">The last lines the child wrote on standard error.</param>
    public sealed record MemoryExceeded(long PeakBytes, long LimitBytes, string StderrTail) : SandboxOutcome
    {
        /// <inheritdoc />
        public override string Describe() =>
            WithTail(string.Create(CultureInfo.InvariantCulture,
                $"the job used {PeakBytes / 1048576.0:0.#} MiB of memory, more than its limit of {LimitBytes / 1048576.0:0.#} MiB, and was stopped"), StderrTail);
    }

    /// <summary>The job was canceled; the child was killed.</summary>
    public sealed record Canceled : SandboxOutcome
    {
        /// <inheritdoc />
        public override string Describe() => "the job was canceled";
    }

    private static string WithTail(string cause, string tail) =>
        string.IsNullOrWhiteSpace(tail) ? cause + "." : cause + "; last lines of its stderr:\n" + tail;
}
