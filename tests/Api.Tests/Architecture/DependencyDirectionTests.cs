using System.Reflection;
using System.Xml.Linq;

namespace LambdaService.Api.Tests.Architecture;

/// <summary>
/// Dependencies point one way: the Measurement and Training libraries know nothing of HTTP, Hangfire or the service
/// (README, Architecture). Checked on the compiled assemblies (what their metadata references) and on their project files
/// (what a build would let them use).
/// </summary>
public class DependencyDirectionTests
{
    private static readonly string[] Forbidden = ["Microsoft.AspNetCore", "Hangfire", "LambdaService.Api"];

    private static readonly Assembly Measurement = typeof(LambdaService.Measurement.MeasurementInputException).Assembly;
    private static readonly Assembly Training = typeof(LambdaService.Training.CrrSettings).Assembly;

    /// <summary>The assemblies <paramref name="assembly"/> references that belong to ASP.NET Core, Hangfire or the service.</summary>
    private static List<string> ForbiddenReferences(Assembly assembly) =>
        assembly.GetReferencedAssemblies().Select(a => a.Name ?? "")
            .Where(name => Forbidden.Any(f => name == f || name.StartsWith(f + ".", StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal).ToList();

    /// <summary>What a project file brings in that belongs to ASP.NET Core, Hangfire or the service: the web SDK, framework, package and project references.</summary>
    private static List<string> ForbiddenProjectEntries(string project)
    {
        var document = XDocument.Load(Path.Combine(RepositorySources.Root, project));
        var entries = new List<string>();
        if (document.Root?.Attribute("Sdk")?.Value is { } sdk && sdk.Contains("Web", StringComparison.OrdinalIgnoreCase)) entries.Add("Sdk " + sdk);
        foreach (var item in document.Descendants().Where(e => e.Name.LocalName is "FrameworkReference" or "PackageReference" or "ProjectReference"))
        {
            var include = item.Attribute("Include")?.Value ?? "";
            var name = Path.GetFileNameWithoutExtension(include.Replace('\\', '/'));
            if (name.StartsWith("Microsoft.AspNetCore", StringComparison.OrdinalIgnoreCase) || name.StartsWith("Hangfire", StringComparison.OrdinalIgnoreCase)
                || (item.Name.LocalName == "ProjectReference" && name == "Api"))
            {
                entries.Add($"{item.Name.LocalName} {include}");
            }
        }
        return entries;
    }

    [Fact]
    public void The_Measurement_assembly_references_neither_ASP_NET_Core_nor_Hangfire_nor_the_service() => Assert.Empty(ForbiddenReferences(Measurement));

    [Fact]
    public void The_Training_assembly_references_neither_ASP_NET_Core_nor_Hangfire_nor_the_service() => Assert.Empty(ForbiddenReferences(Training));

    [Theory]
    [InlineData("src/Measurement/Measurement.csproj")]
    [InlineData("src/Training/Training.csproj")]
    public void The_library_projects_bring_in_neither_ASP_NET_Core_nor_Hangfire_nor_the_service(string project) => Assert.Empty(ForbiddenProjectEntries(project));

    [Fact]
    public void The_checks_see_the_service_itself_depend_on_ASP_NET_Core_and_Hangfire()
    {
        var references = ForbiddenReferences(typeof(LambdaService.Api.Jobs.JobStore).Assembly);
        Assert.Contains(references, r => r.StartsWith("Microsoft.AspNetCore.", StringComparison.Ordinal));
        Assert.Contains(references, r => r.StartsWith("Hangfire", StringComparison.Ordinal));
        Assert.Contains(ForbiddenProjectEntries("src/Api/Api.csproj"), e => e.StartsWith("PackageReference Hangfire", StringComparison.Ordinal));
        Assert.Contains(ForbiddenProjectEntries("tests/Api.Tests/Api.Tests.csproj"), e => e.StartsWith("ProjectReference", StringComparison.Ordinal));
    }
}
