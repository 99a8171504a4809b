using System.Diagnostics;
using LambdaService.Api.Tests.Service;

namespace LambdaService.Api.Tests.Postgres;

/// <summary>
/// A deployment on one PostgreSQL database: API processes (no job workers) and worker processes, each with its own empty
/// data folder — they share nothing but the database.
/// </summary>
public sealed class Cluster : IDisposable
{
    private readonly List<ServiceProcess> _processes = [];

    public Cluster(string connectionString, Dictionary<string, string>? settings = null)
    {
        ConnectionString = connectionString;
        Settings = new Dictionary<string, string>
        {
            ["Storage__Provider"] = "postgres",
            ["ConnectionStrings__Postgres"] = connectionString,
        };
        foreach (var (k, v) in settings ?? []) Settings[k] = v;
    }

    public string ConnectionString { get; }

    public Dictionary<string, string> Settings { get; }

    /// <summary>An API-only node (<c>Jobs:WorkerCount</c> 0).</summary>
    public ServiceProcess StartApi(string name = "api-1") =>
        Add(new ServiceProcess(With(new() { ["Jobs__NodeName"] = name, ["Jobs__WorkerCount"] = "0" })));

    /// <summary>A worker node (the <c>worker</c> verb) with <paramref name="workers"/> job workers.</summary>
    public ServiceProcess StartWorker(string name, int workers = 1, Dictionary<string, string>? settings = null)
    {
        var all = new Dictionary<string, string>(settings ?? []) { ["Jobs__NodeName"] = name, ["Jobs__WorkerCount"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return Add(new ServiceProcess(With(all), worker: true));
    }

    /// <summary>Kills a node and every sandbox it started with SIGKILL, at once (a node that dies with its jobs).</summary>
    public static void KillWithSandboxes(ServiceProcess node)
    {
        var pids = new List<int> { node.Pid };
        foreach (var p in Process.GetProcesses())
        {
            try
            {
                var cmdline = File.ReadAllText($"/proc/{p.Id}/cmdline");
                if (cmdline.Contains("runner\0--spec", StringComparison.Ordinal) && cmdline.Contains(node.DataRoot, StringComparison.Ordinal)) pids.Add(p.Id);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        Process.Start("kill", ["-9", .. pids.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))])!.WaitForExit();
        node.KillHard();
    }

    private Dictionary<string, string> With(Dictionary<string, string> extra)
    {
        var all = new Dictionary<string, string>(Settings);
        foreach (var (k, v) in extra) all[k] = v;
        return all;
    }

    private ServiceProcess Add(ServiceProcess process)
    {
        _processes.Add(process);
        return process;
    }

    public void Dispose()
    {
        foreach (var p in _processes) p.Dispose();
    }
}
