namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>How <see cref="SandboxProcess"/> starts the child (configuration section <c>Sandbox</c>).</summary>
public sealed class SandboxOptions
{
    /// <summary>
    /// The command that runs this service's executable, split on spaces, e.g. <c>dotnet /app/LambdaService.Api.dll</c>;
    /// the runner's arguments (<c>runner --spec … --out … --parent-pid …</c>) follow it. Null or blank: the executable
    /// of the current process (see <see cref="SandboxProcess.ResolveRunnerCommand"/>).
    /// </summary>
    public string? RunnerCommand { get; set; }

    /// <summary>Native threads of each child (<c>LAMBDASERVICE_THREADS</c> in its environment; 0 leaves the child's default, every core).</summary>
    public int Threads { get; set; }

    /// <summary>Where each job gets a private temporary folder (spec and out file), removed when the job ends.</summary>
    public string WorkDirectory { get; set; } = Path.GetTempPath();
}
