namespace LambdaService.Api.Tests.Service;

/// <summary>One service process and the test files, shared by a test class.</summary>
public sealed class ServiceFixture : IDisposable
{
    public ServiceFixture()
    {
        Files = new TestFiles();
        Service = new ServiceProcess(new Dictionary<string, string> { ["Limits__MaxModelBytes"] = "400000" });
    }

    public TestFiles Files { get; }

    public ServiceProcess Service { get; }

    public void Dispose()
    {
        Service.Dispose();
        Files.Dispose();
    }
}
