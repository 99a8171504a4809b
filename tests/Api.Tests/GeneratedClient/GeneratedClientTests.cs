using System.Reflection;
using System.Runtime.Loader;
using LambdaService.Api.Tests.Service;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LambdaService.Api.Tests.GeneratedClient;

/// <summary>
/// A C# client generated at test time from the document the real service serves (<c>/openapi/v1.json</c>) with Kiota
/// (the repository's local tool, <c>.config/dotnet-tools.json</c>), compiled with Roslyn together with
/// <c>Flow/ClientFlow.cs</c>, and run against the service: the client is never written or edited by hand.
/// </summary>
public class GeneratedClientTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    [Fact]
    public async Task A_client_generated_from_the_served_document_runs_a_whole_flow_with_typed_results_and_typed_problems()
    {
        var dir = Directory.CreateTempSubdirectory("lambda-client-").FullName;
        try
        {
            using var anonymous = new HttpClient { BaseAddress = fixture.Service.BaseAddress };
            var document = await anonymous.GetStringAsync("openapi/v1.json");
            var documentPath = Path.Combine(dir, "openapi.json");
            await File.WriteAllTextAsync(documentPath, document);

            var output = Path.Combine(dir, "client");
            Generate(documentPath, output);
            var sources = Directory.GetFiles(output, "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText).Append(FlowSource()).ToList();
            Assert.True(sources.Count > 50, $"kiota wrote {sources.Count - 1} files");
            var assembly = Compile(sources);

            var run = assembly.GetType("LambdaService.Tests.GeneratedFlow.ClientFlow")!.GetMethod("RunAsync")!;
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
            await (Task)run.Invoke(null, [fixture.Service.BaseAddress.ToString(), ServiceProcess.KeyA, fixture.Files.Onnx, fixture.Files.Csv, cts.Token])!;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Runs <c>dotnet tool restore</c> and <c>dotnet kiota generate</c> in the repository (the tool comes from NuGet on first use).</summary>
    private static void Generate(string documentPath, string output)
    {
        var root = ExternalTool.RepositoryRoot();
        Run(root, "tool", "restore");
        Run(root, "kiota", "generate", "--language", "CSharp", "--openapi", documentPath, "--output", output, "--class-name", "LambdaClient",
            "--namespace-name", "LambdaService.Generated", "--exclude-backward-compatible", "--clean-output", "--log-level", "Warning");
    }

    private static void Run(string directory, params string[] args)
    {
        var (code, stdout, stderr) = ExternalTool.Run("dotnet", directory, 4, args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} exited with {code}:\n{stdout}\n{stderr}");
    }

    private static string FlowSource()
    {
        using var stream = typeof(GeneratedClientTests).Assembly.GetManifestResourceStream("GeneratedClient.Flow.ClientFlow.cs")
            ?? throw new InvalidOperationException("The embedded flow script is missing.");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>Compiles the sources against the framework and the test's own dependencies (Kiota, xunit's Assert).</summary>
    private static Assembly Compile(IReadOnlyList<string> sources)
    {
        string[] symbols = ["NET", "NET10_0", "NET10_0_OR_GREATER", "NET8_0_OR_GREATER", "NET5_0_OR_GREATER", "NETCOREAPP", "NETCOREAPP3_1_OR_GREATER", "NETSTANDARD2_1_OR_GREATER"];
        var parse = new CSharpParseOptions(LanguageVersion.Latest, preprocessorSymbols: symbols);
        var trees = sources.Select(s => CSharpSyntaxTree.ParseText(s, parse)).ToList();
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var local = Directory.GetFiles(AppContext.BaseDirectory, "*.dll").Where(IsManaged);
        var references = platform.Concat(local).DistinctBy(Path.GetFileName).Select(p => MetadataReference.CreateFromFile(p)).ToList();
        var compilation = CSharpCompilation.Create("LambdaService.GeneratedClient", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        var errors = emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(20).Select(d => d.ToString()).ToList();
        Assert.True(emitted.Success, "the generated client and the flow do not compile:\n" + string.Join("\n", errors));
        image.Position = 0;
        return AssemblyLoadContext.Default.LoadFromStream(image);
    }

    private static bool IsManaged(string path)
    {
        try
        {
            AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }
}
