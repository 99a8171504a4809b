namespace LambdaService.Api.Tests.Architecture;

/// <summary>The repository's source files, read from the checkout the tests were built from.</summary>
internal static class RepositorySources
{
    /// <summary>The folder holding <c>LambdaService.sln</c>, found by walking up from the test assembly's folder.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>Every C# file under <c>src/</c> (build outputs left out), as paths relative to <see cref="Root"/> with forward slashes.</summary>
    public static IReadOnlyList<string> CSharpFilesUnderSrc() =>
        Directory.EnumerateFiles(Path.Combine(Root, "src"), "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(Root, f).Replace('\\', '/'))
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LambdaService.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no LambdaService.sln above {AppContext.BaseDirectory}");
    }
}
