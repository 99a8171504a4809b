namespace LambdaService.Api.Tests.Service;

/// <summary>
/// A fake sandbox runner for <c>Jobs:RunnerCommand</c>: a bash script in a folder of its own. A job's <c>maxPoints</c> is its gate
/// number G. The script announces the load and run phases, then waits until the test creates the file <c>release-G</c> and ends with
/// a user error (exit code 2), so that a job stays running exactly as long as a test needs without using the machine's cores.
/// Gate 91 aborts (SIGABRT) while loading; gate 92 segfaults after loading.
/// </summary>
public sealed class GatedRunner : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "lambdaservice-gates-" + Guid.NewGuid().ToString("N"));

    public GatedRunner()
    {
        Directory.CreateDirectory(_folder);
        var path = Path.Combine(_folder, "gated-runner.sh");
        File.WriteAllText(path, $$"""
            #!/bin/bash
            # Arguments: runner --spec FILE --out FILE --parent-pid PID
            gate=$(grep -o '"maxPoints": *[0-9]*' "$3" | grep -o '[0-9]*$')
            echo '{"phase":"load"}'
            if [ "$gate" = 91 ]; then echo "fake loader: terminate called" >&2; kill -ABRT $$; fi
            echo '{"phase":"run"}'
            if [ "$gate" = 92 ]; then echo "fake kernel: bad access" >&2; kill -SEGV $$; fi
            echo '{"progress":0.5}'
            while [ ! -f "{{_folder}}/release-$gate" ]; do sleep 0.1; done
            echo '{"field":"data","detail":"released by the test"}' > "$5"
            exit 2
            """);
        Command = "bash " + path;
    }

    /// <summary>The value for <c>Jobs:RunnerCommand</c>.</summary>
    public string Command { get; }

    /// <summary>Lets the job with gate <paramref name="gate"/> end.</summary>
    public void Release(int gate) => File.WriteAllText(Path.Combine(_folder, $"release-{gate}"), "");

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
