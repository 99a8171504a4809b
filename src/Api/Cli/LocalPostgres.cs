using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace LambdaService.Api.Cli;

/// <summary>
/// A real, throwaway PostgreSQL server: Debian's <c>postgresql</c> binaries, a cluster made by <c>initdb</c> in a temporary
/// folder, listening on a free port of 127.0.0.1 only, trust authentication, stopped and deleted at the end. As root (CI)
/// the cluster is made and run by the <c>postgres</c> user (PostgreSQL refuses to run as root). It can be stopped and started
/// again on the same port and data, for tests of a database restart. Used by <c>bench-nodes</c> when it is given no server, and by
/// the tests.
/// </summary>
public sealed class LocalPostgres : IDisposable
{
    private readonly string _bin;
    private readonly bool _asPostgresUser;

    public LocalPostgres()
    {
        _bin = FindBinaries();
        Port = FreePort();
        Folder = Path.Combine(Path.GetTempPath(), "lambdaservice-pg-" + Guid.NewGuid().ToString("N"));
        Data = Path.Combine(Folder, "data");
        Directory.CreateDirectory(Folder);
        _asPostgresUser = Environment.UserName == "root";
        if (_asPostgresUser) Run("chown", "postgres:postgres", Folder);
        Pg("initdb", "-D", Data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions");
        Start();
    }

    /// <summary>The port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The folder of the cluster (its data folder and log are inside).</summary>
    public string Folder { get; }

    private string Data { get; }

    /// <summary>A connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Timeout=5;Command Timeout=30;Pooling=true";

    /// <summary>A new empty database (one per test, so tests do not see each other's rows); returns its connection string.</summary>
    public string NewDatabase()
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        using var connection = new NpgsqlConnection(ConnectionString());
        connection.Open();
        using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        command.ExecuteNonQuery();
        return ConnectionString(name);
    }

    /// <summary>Starts the server and waits until it accepts connections.</summary>
    public void Start() =>
        Pg("pg_ctl", "-D", Data, "-l", Path.Combine(Folder, "server.log"), "-w", "-t", "60", "-o",
            $"-p {Port} -k {Folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "start");

    /// <summary>Stops the server (fast shutdown: clients are disconnected).</summary>
    public void Stop() => Pg("pg_ctl", "-D", Data, "-m", "fast", "-w", "-t", "60", "stop");

    public void Dispose()
    {
        try
        {
            Pg("pg_ctl", "-D", Data, "-m", "immediate", "-w", "-t", "30", "stop");
        }
        catch (InvalidOperationException)
        {
        }
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Pg(string tool, params string[] args)
    {
        var path = Path.Combine(_bin, tool);
        if (_asPostgresUser) Run("runuser", ["-u", "postgres", "--", path, .. args]);
        else Run(path, args);
    }

    private static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = "/" };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000)) process.Kill(entireProcessTree: true);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {process.ExitCode}:\n{output.Result}\n{error.Result}");
        }
    }

    private static readonly Lock InstallGate = new();

    /// <summary>
    /// The server's binaries: <c>LAMBDASERVICE_PG_BIN</c>, else the newest <c>/usr/lib/postgresql/N/bin</c>. When there is none and
    /// this process is root on a machine with <c>apt-get</c>, Debian's <c>postgresql</c> package is installed first (once), so that
    /// the README's test command works on a fresh machine.
    /// </summary>
    private static string FindBinaries()
    {
        if (Environment.GetEnvironmentVariable("LAMBDASERVICE_PG_BIN") is { Length: > 0 } bin) return bin;
        lock (InstallGate)
        {
            if (Installed() is { } found) return found;
            if (Environment.UserName == "root" && File.Exists("/usr/bin/apt-get"))
            {
                Run("/bin/sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql");
            }
            return Installed() ?? throw new InvalidOperationException(
                "PostgreSQL's server binaries were not found under /usr/lib/postgresql: install Debian's postgresql package (.ci/run does), or set LAMBDASERVICE_PG_BIN.");
        }
    }

    private static string? Installed()
    {
        var versions = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Where(d => File.Exists(Path.Combine(d, "bin", "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0).ToList()
            : [];
        return versions.Count > 0 ? Path.Combine(versions[0], "bin") : null;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

