using System.Diagnostics;

namespace LambdaService.Api.Tests.GeneratedClient;

/// <summary>Runs the external tools of the contract tests (dotnet tools, npm, the Redocly CLI) and finds the repository.</summary>
internal static class ExternalTool
{
    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/> in <paramref name="directory"/> (null: the current one); fails the test after <paramref name="minutes"/>.</summary>
    public static (int Code, string Stdout, string Stderr) Run(string file, string? directory, int minutes, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (directory is not null) start.WorkingDirectory = directory;
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["REDOCLY_TELEMETRY"] = "off";
        start.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(minutes)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish in {minutes} minutes");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The folder holding LambdaService.sln above the test's output.</summary>
    public static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "LambdaService.sln"))) return d.FullName;
        }
        throw new InvalidOperationException("LambdaService.sln not found above the test's folder.");
    }
}
