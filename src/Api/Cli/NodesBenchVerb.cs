using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LambdaService.Measurement;
using LambdaService.Measurement.Models;
using Npgsql;

namespace LambdaService.Api.Cli;

/// <summary>
/// <c>bench-nodes</c>: the service as a deployment, measured in one run with real processes on this machine. Submit→result
/// latency (p50, p99) of a small measurement, one at a time, in the embedded mode (one process, SQLite) and in the PostgreSQL
/// mode (an API node and a worker node); then the throughput of many such jobs with one worker node and with two on the same
/// database, and the ratio. Every node has its own empty folder; nodes run one job at a time (<c>Jobs:WorkerCount</c> 1).
/// </summary>
public static class NodesBenchVerb
{
    /// <summary>Latency of one mode.</summary>
    public sealed record LatencyRow(string Mode, int Jobs, double P50Ms, double P99Ms, double MeanMs);

    /// <summary>Throughput with some worker nodes.</summary>
    public sealed record ThroughputRow(int WorkerNodes, int Jobs, double Seconds, double JobsPerSecond);

    /// <summary>The whole benchmark.</summary>
    public sealed record NodesBenchReport(IReadOnlyList<LatencyRow> Latency, IReadOnlyList<ThroughputRow> Throughput, double TwoNodesOverOne, IReadOnlyList<string> Notes);

    private const string Key = "bench-nodes-key";
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Runs the verb.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, CancellationToken cancellationToken)
    {
        var a = new CliArguments(args, ["postgres", "jobs", "latency-jobs"], ["json"]);
        var jobs = a.Int("jobs", 1, 10_000) ?? 200;
        var latencyJobs = a.Int("latency-jobs", 1, 1_000) ?? 20;
        var notes = new List<string>();
        var folder = Path.Combine(Path.GetTempPath(), "lambdaservice-bench-nodes-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        LocalPostgres? local = null;
        string? server = null;
        string? database = null;
        try
        {
            var (model, data) = Files(folder);
            var latency = new List<LatencyRow>();
            using (var embedded = Node.Start(folder, "embedded", worker: false, new() { ["Jobs__WorkerCount"] = "1" }))
            {
                latency.Add(Latency("embedded (SQLite, one process)", embedded, model, data, latencyJobs, cancellationToken));
            }

            if (a.Get("postgres") is { } given)
            {
                server = given;
                notes.Add("PostgreSQL: the server given by --postgres (a database of its own, dropped at the end).");
            }
            else
            {
                local = new LocalPostgres();
                server = local.ConnectionString();
                notes.Add("PostgreSQL: a throwaway local server (fsync off), started for this run.");
            }
            database = CreateDatabase(server);
            var pg = new Dictionary<string, string>
            {
                ["Storage__Provider"] = "postgres",
                ["ConnectionStrings__Postgres"] = new NpgsqlConnectionStringBuilder(server) { Database = database }.ConnectionString,
            };
            var throughput = new List<ThroughputRow>();
            using (var api = Node.Start(folder, "api", worker: false, With(pg, "Jobs__WorkerCount", "0", "Jobs__NodeName", "bench-api")))
            using (var first = Node.Start(folder, "worker-1", worker: true, With(pg, "Jobs__WorkerCount", "1", "Jobs__NodeName", "bench-worker-1")))
            {
                latency.Add(Latency("PostgreSQL (API node + worker node)", api, model, data, latencyJobs, cancellationToken));
                throughput.Add(Throughput(1, api, model, data, jobs, cancellationToken));
                using var second = Node.Start(folder, "worker-2", worker: true, With(pg, "Jobs__WorkerCount", "1", "Jobs__NodeName", "bench-worker-2"));
                throughput.Add(Throughput(2, api, model, data, jobs, cancellationToken));
            }
            var ratio = throughput[1].JobsPerSecond / throughput[0].JobsPerSecond;
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"{Environment.ProcessorCount} cores; each job starts a sandbox process (the runner verb) that loads the model and measures 8 points of a 2-16-16-2 tanh MLP; queue poll 100 ms."));
            var report = new NodesBenchReport(latency, throughput, ratio, notes);
            if (a.Has("json"))
            {
                stdout.WriteLine(CliJson.Serialize(report));
                return 0;
            }
            stdout.WriteLine("Submit → result of one small measurement at a time:");
            stdout.WriteLine($"  {"mode",-40} {"jobs",5} {"p50 ms",9} {"p99 ms",9} {"mean ms",9}");
            foreach (var r in latency) stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {r.Mode,-40} {r.Jobs,5} {r.P50Ms,9:F0} {r.P99Ms,9:F0} {r.MeanMs,9:F0}"));
            stdout.WriteLine();
            stdout.WriteLine("Throughput of small measurements on one PostgreSQL database:");
            stdout.WriteLine($"  {"worker nodes",12} {"jobs",6} {"seconds",9} {"jobs/s",8}");
            foreach (var r in throughput) stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {r.WorkerNodes,12} {r.Jobs,6} {r.Seconds,9:F1} {r.JobsPerSecond,8:F2}"));
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  2 nodes / 1 node: {ratio:F2}×"));
            foreach (var n in notes) stdout.WriteLine("note: " + n);
            return 0;
        }
        finally
        {
            if (server is not null && database is not null)
            {
                try
                {
                    DropDatabase(server, database);
                }
                catch (NpgsqlException)
                {
                }
            }
            local?.Dispose();
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static Dictionary<string, string> With(Dictionary<string, string> settings, params string[] pairs)
    {
        var all = new Dictionary<string, string>(settings);
        for (var i = 0; i < pairs.Length; i += 2) all[pairs[i]] = pairs[i + 1];
        return all;
    }

    /// <summary>A 2-16-16-2 tanh MLP as ONNX and 64 labelled points, written into <paramref name="folder"/>.</summary>
    private static (string Model, string Data) Files(string folder)
    {
        var rng = new Random(1);
        float[,] M(int rows, int cols)
        {
            var m = new float[rows, cols];
            for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) m[i, j] = (float)(rng.NextDouble() * 2 - 1);
            return m;
        }
        float[] V(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var model = Path.Combine(folder, "mlp.onnx");
        OnnxModelBuilder.Save(OnnxModelBuilder.Mlp([M(16, 2), M(16, 16), M(2, 16)], [V(16), V(16), V(2)]), model);
        var csv = new StringBuilder("x1,x2,label\n");
        for (var i = 0; i < 64; i++)
        {
            var (x1, x2) = (rng.NextDouble() * 2 - 1, rng.NextDouble() * 2 - 1);
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{x1:R},{x2:R},{(x1 + x2 > 0 ? 1 : 0)}"));
        }
        var data = Path.Combine(folder, "points.csv");
        File.WriteAllText(data, csv.ToString());
        return (model, data);
    }

    private static LatencyRow Latency(string mode, Node api, string model, string data, int count, CancellationToken cancellationToken)
    {
        using var client = api.Client();
        var (modelId, dataId) = Upload(client, model, data);
        for (var i = 0; i < 2; i++) Wait(client, Submit(client, modelId, dataId, i), cancellationToken);   // warm-up: first sandboxes, JIT
        var times = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var clock = Stopwatch.StartNew();
            Wait(client, Submit(client, modelId, dataId, 100 + i), cancellationToken);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return new LatencyRow(mode, count, Percentile(times, 0.50), Percentile(times, 0.99), times.Average());
    }

    private static ThroughputRow Throughput(int nodes, Node api, string model, string data, int count, CancellationToken cancellationToken)
    {
        using var client = api.Client();
        var (modelId, dataId) = Upload(client, model, data);
        var before = Count(client, "succeeded");
        var clock = Stopwatch.StartNew();
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, i => Submit(client, modelId, dataId, 1000 + i));
        var deadline = DateTime.UtcNow + JobTimeout + TimeSpan.FromSeconds(count * 5);
        while (Count(client, "succeeded") - before < count)
        {
            if (Count(client, "failed") > 0) throw new InvalidOperationException("a benchmark job failed; see the nodes' logs.");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{count} jobs did not finish in time.");
            cancellationToken.ThrowIfCancellationRequested();
            Thread.Sleep(100);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        return new ThroughputRow(nodes, count, seconds, count / seconds);
    }

    private static double Percentile(List<double> sorted, double p)
    {
        // Nearest rank.
        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    private static (string Model, string Data) Upload(HttpClient client, string model, string data) => (UploadOne(client, "v1/models", model), UploadOne(client, "v1/datasets", data));

    private static string UploadOne(HttpClient client, string path, string file)
    {
        using var form = new MultipartFormDataContent();
        var content = new ByteArrayContent(File.ReadAllBytes(file));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(content, "file", Path.GetFileName(file));
        return IdOf(client.PostAsync(path, form).Result, HttpStatusCode.Created);
    }

    private static string Submit(HttpClient client, string model, string data, int seed)
    {
        var body = JsonSerializer.Serialize(new { modelId = model, datasetId = data, maxPoints = 8, directions = 2, seed });
        return IdOf(client.PostAsync("v1/measurements", new StringContent(body, Encoding.UTF8, "application/json")).Result, HttpStatusCode.Accepted);
    }

    private static string IdOf(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = response.Content.ReadAsStringAsync().Result;
        if (response.StatusCode != expected) throw new InvalidOperationException($"{(int)response.StatusCode} from the service: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    private static void Wait(HttpClient client, string id, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + JobTimeout;
        while (true)
        {
            using var doc = JsonDocument.Parse(client.GetStringAsync($"v1/measurements/{id}").Result);
            var status = doc.RootElement.GetProperty("status").GetString();
            if (status == "succeeded") return;
            if (status is "failed" or "canceled") throw new InvalidOperationException($"benchmark job {id} {status}: {doc.RootElement}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"benchmark job {id} did not finish in time.");
            cancellationToken.ThrowIfCancellationRequested();
            Thread.Sleep(20);
        }
    }

    private static int Count(HttpClient client, string status)
    {
        using var doc = JsonDocument.Parse(client.GetStringAsync($"v1/measurements?status={status}&pageSize=1").Result);
        return doc.RootElement.GetProperty("total").GetInt32();
    }

    private static string CreateDatabase(string server)
    {
        var name = "lambda_bench_" + Guid.NewGuid().ToString("N")[..12];
        using var connection = new NpgsqlConnection(server);
        connection.Open();
        using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        command.ExecuteNonQuery();
        return name;
    }

    private static void DropDatabase(string server, string name)
    {
        NpgsqlConnection.ClearAllPools();
        using var connection = new NpgsqlConnection(server);
        connection.Open();
        using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
        command.ExecuteNonQuery();
    }

    /// <summary>One node: this program started as the service or the <c>worker</c> verb, with its own folder, on 127.0.0.1.</summary>
    private sealed class Node : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();

        private Node(Process process, Uri address)
        {
            _process = process;
            Address = address;
        }

        public Uri Address { get; }

        public HttpClient Client()
        {
            var client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(60) };
            client.DefaultRequestHeaders.Add("X-Api-Key", Key);
            return client;
        }

        public static Node Start(string folder, string name, bool worker, Dictionary<string, string> settings)
        {
            var root = Path.Combine(folder, name);
            Directory.CreateDirectory(root);
            int port;
            using (var listener = new TcpListener(IPAddress.Loopback, 0))
            {
                listener.Start();
                port = ((IPEndPoint)listener.LocalEndpoint).Port;
            }
            // This program again: its own apphost, or the dotnet host with this assembly (also when called from a test host).
            var self = Environment.ProcessPath;
            var apphost = self is not null && Path.GetFileNameWithoutExtension(self) == Path.GetFileNameWithoutExtension(typeof(NodesBenchVerb).Assembly.Location);
            var host = apphost ? self! : self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            var info = new ProcessStartInfo(host)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = root,
            };
            if (!apphost) info.ArgumentList.Add(typeof(NodesBenchVerb).Assembly.Location);
            if (worker) info.ArgumentList.Add("worker");
            else
            {
                info.ArgumentList.Add("--urls");
                info.ArgumentList.Add($"http://127.0.0.1:{port}");
            }
            info.Environment["Storage__Root"] = root;
            info.Environment["Auth__ApiKeys__0__Key"] = Key;
            info.Environment["Auth__ApiKeys__0__Tenant"] = "bench";
            info.Environment["Limits__RequestsPerMinute"] = "0";
            info.Environment["Jobs__QueuePollMilliseconds"] = "100";
            info.Environment["Logging__LogLevel__Default"] = "Warning";
            info.Environment["Logging__LogLevel__LambdaService.Api.Jobs.NodeHeartbeat"] = "Information";
            foreach (var (k, v) in settings) info.Environment[k] = v;
            var node = new Node(Process.Start(info)!, new Uri($"http://127.0.0.1:{port}/"));
            node._process.OutputDataReceived += (_, e) => node.Append(e.Data);
            node._process.ErrorDataReceived += (_, e) => node.Append(e.Data);
            node._process.BeginOutputReadLine();
            node._process.BeginErrorReadLine();
            node.WaitReady(worker);
            return node;
        }

        private void WaitReady(bool worker)
        {
            using var probe = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(2) };
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (DateTime.UtcNow < deadline)
            {
                if (_process.HasExited) throw new InvalidOperationException("a benchmark node exited at start:\n" + Log);
                if (worker)
                {
                    if (Log.Contains(" is up as worker", StringComparison.Ordinal)) return;
                }
                else
                {
                    try
                    {
                        if (probe.GetAsync("healthz").Result.StatusCode == HttpStatusCode.OK) return;
                    }
                    catch (AggregateException)
                    {
                    }
                }
                Thread.Sleep(100);
            }
            throw new TimeoutException("a benchmark node did not start within 90 s:\n" + Log);
        }

        private string Log
        {
            get
            {
                lock (_log) return _log.ToString();
            }
        }

        private void Append(string? line)
        {
            if (line is null) return;
            lock (_log) _log.AppendLine(line);
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
            _process.Dispose();
        }
    }
}
