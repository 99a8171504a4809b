using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// The real service: the built LambdaService.Api.dll started as a child process on a free port of
/// 127.0.0.1 (Kestrel), with its data folder in a temporary directory. Two tenants' keys are configured.
/// Can be stopped (SIGTERM) or killed (SIGKILL) and started again on the same data folder.
/// </summary>
public sealed class ServiceProcess : IDisposable
{
    public const string KeyA = "test-key-tenant-a";
    public const string KeyB = "test-key-tenant-b";

    private readonly Dictionary<string, string> _settings;
    private readonly StringBuilder _log = new();
    private Process? _process;

    private readonly bool _worker;

    /// <param name="settings">Environment variables (configuration) on top of the defaults.</param>
    /// <param name="dataRoot">The data folder (default: a new temporary one).</param>
    /// <param name="withKeys">Whether the two tenants' keys are configured.</param>
    /// <param name="worker">Start the <c>worker</c> verb (no HTTP): ready once it logs that its node is up.</param>
    public ServiceProcess(IDictionary<string, string>? settings = null, string? dataRoot = null, bool withKeys = true, bool worker = false)
    {
        _worker = worker;
        DataRoot = dataRoot ?? Path.Combine(Path.GetTempPath(), "lambdaservice-e2e-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(DataRoot);
        _settings = new Dictionary<string, string>
        {
            ["Storage__Root"] = DataRoot,
            ["Auth__ApiKeys__0__Key"] = KeyA,
            ["Auth__ApiKeys__0__Tenant"] = "tenant-a",
            ["Auth__ApiKeys__1__Key"] = KeyB,
            ["Auth__ApiKeys__1__Tenant"] = "tenant-b",
            ["Jobs__StaleAfterSeconds"] = "3",
            ["Jobs__QueuePollMilliseconds"] = "200",
            ["Jobs__WorkerCount"] = "2",
            ["Logging__LogLevel__Default"] = "Information",
        };
        if (!withKeys)
        {
            foreach (var k in _settings.Keys.Where(k => k.StartsWith("Auth__", StringComparison.Ordinal)).ToList()) _settings.Remove(k);
        }
        foreach (var (k, v) in settings ?? new Dictionary<string, string>()) _settings[k] = v;
        Start();
    }

    public string DataRoot { get; }

    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");

    public int Pid => _process?.Id ?? 0;

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public HttpClient Client(string? key = KeyA)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null) client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    public void Start()
    {
        var port = FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = DataRoot,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "LambdaService.Api.dll"));
        if (_worker)
        {
            info.ArgumentList.Add("worker");
        }
        else
        {
            info.ArgumentList.Add("--urls");
            info.ArgumentList.Add($"http://127.0.0.1:{port}");
        }
        foreach (var (k, v) in _settings) info.Environment[k] = v;
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        using var probe = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (_worker && DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException("the worker exited at start:\n" + Log);
            if (Log.Contains(" is up as worker", StringComparison.Ordinal)) return;
            Thread.Sleep(100);
        }
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException("the service exited at start:\n" + Log);
            try
            {
                if (probe.GetAsync("healthz").Result.StatusCode == HttpStatusCode.OK) return;
            }
            catch (AggregateException)
            {
            }
            Thread.Sleep(200);
        }
        throw new TimeoutException((_worker ? "the worker did not report its node up" : "the service did not answer /healthz") + " within 60 s:\n" + Log);
    }

    /// <summary>Stops the service gracefully with SIGTERM (its shutdown code runs) and waits until it has exited.</summary>
    public void Stop()
    {
        if (_process is { HasExited: false })
        {
            Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            if (!_process.WaitForExit(60_000)) throw new TimeoutException("the service did not exit within 60 s of SIGTERM:\n" + Log);
            _process.WaitForExit();
        }
    }

    /// <summary>Kills the service with SIGKILL (no shutdown code runs).</summary>
    public void KillHard()
    {
        if (_process is { HasExited: false })
        {
            Process.Start("kill", ["-9", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            _process.WaitForExit(10_000);
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process?.Dispose();
        try
        {
            Directory.Delete(DataRoot, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
