using System.Net;

namespace LambdaService.Api.Tests.Service;

/// <summary>
/// <c>/metrics</c> of a real service read as Prometheus would: the text format parsed line by line, and each number checked
/// against what the test did (uploads of known sizes, jobs with known outcomes).
/// </summary>
public sealed class MetricsTests : IClassFixture<TestFilesFixture>
{
    private readonly TestFiles _files;

    public MetricsTests(TestFilesFixture files) => _files = files.Files;

    [Fact]
    public async Task Metrics_count_jobs_by_kind_queue_and_status_with_durations_crashes_and_upload_bytes()
    {
        // This node's workers take the cpu queue only, so that a gpu job stays queued.
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Jobs__Queues__0"] = "cpu" });
        using var client = service.Client();
        var files = _files;

        var before = await PrometheusText.Scrape(service.BaseAddress);
        Assert.Equal(0, PrometheusText.Value(before, "lambdaservice_upload_bytes_total", ("kind", "model")));
        Assert.Equal(0, PrometheusText.Value(before, "lambdaservice_jobs", ("kind", "measure"), ("queue", "cpu"), ("status", "succeeded")));
        Assert.Equal(1, PrometheusText.Value(before, "lambdaservice_database_up"));

        var good = await ApiClient.UploadId(client, "v1/models", files.Onnx);
        var broken = await ApiClient.UploadId(client, "v1/models", files.Aborting);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", files.Csv);
        // The same file again under an Idempotency-Key replay is not a second upload.
        Assert.Equal(HttpStatusCode.Created, (await ApiClient.Upload(client, "v1/datasets", files.Csv, idempotencyKey: "metrics-1")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await ApiClient.Upload(client, "v1/datasets", files.Csv, idempotencyKey: "metrics-1")).StatusCode);

        var ok = await ApiClient.SubmitId(client, new { modelId = good, datasetId = dataset, maxPoints = 8 });
        var crash = await ApiClient.SubmitId(client, new { modelId = broken, datasetId = dataset, target = "logit" });
        Assert.Equal("succeeded", (await ApiClient.WaitFor(client, ok, TimeSpan.FromMinutes(1)))["status"]!.GetValue<string>());
        Assert.Equal("failed", (await ApiClient.WaitFor(client, crash, TimeSpan.FromMinutes(1)))["status"]!.GetValue<string>());
        // A queued job on the gpu queue, which this service's workers do not take.
        var waiting = await ApiClient.SubmitId(client, new { modelId = good, datasetId = dataset, queue = "gpu" });

        var after = await PrometheusText.Scrape(service.BaseAddress);
        // Upload bytes: the files' sizes on disk (two models, two datasets; the replay adds nothing).
        Assert.Equal(new FileInfo(files.Onnx).Length + new FileInfo(files.Aborting).Length,
            PrometheusText.Value(after, "lambdaservice_upload_bytes_total", ("kind", "model")));
        Assert.Equal(2 * new FileInfo(files.Csv).Length, PrometheusText.Value(after, "lambdaservice_upload_bytes_total", ("kind", "dataset")));
        Assert.Equal(2, PrometheusText.Value(after, "lambdaservice_uploads_total", ("kind", "dataset")));

        // Jobs as the database has them.
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_jobs", ("kind", "measure"), ("queue", "cpu"), ("status", "succeeded")));
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_jobs", ("kind", "measure"), ("queue", "cpu"), ("status", "failed")));
        Assert.Equal(0, PrometheusText.Value(after, "lambdaservice_jobs", ("kind", "measure"), ("queue", "cpu"), ("status", "running")));
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_jobs", ("kind", "measure"), ("queue", "gpu"), ("status", "queued")));
        Assert.Equal(0, PrometheusText.Value(after, "lambdaservice_jobs", ("kind", "train"), ("queue", "cpu"), ("status", "succeeded")));

        // The crashing model aborts its sandbox while loading: one crash, not retried (the same file would abort every attempt).
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_sandbox_crashes_total", ("kind", "measure"), ("queue", "cpu")));
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_job_duration_seconds_count", ("kind", "measure"), ("queue", "cpu"), ("outcome", "crashed")));
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_job_duration_seconds_count", ("kind", "measure"), ("queue", "cpu"), ("outcome", "succeeded")));
        var seconds = PrometheusText.Value(after, "lambdaservice_job_duration_seconds_sum", ("kind", "measure"), ("queue", "cpu"), ("outcome", "succeeded"));
        Assert.InRange(seconds, 0.01, 60);
        // Buckets are cumulative and end in +Inf = count.
        Assert.Equal(1, PrometheusText.Value(after, "lambdaservice_job_duration_seconds_bucket", ("kind", "measure"), ("queue", "cpu"), ("outcome", "succeeded"), ("le", "+Inf")));

        // Request metrics per endpoint and the process's own.
        Assert.Contains(after, s => s.Name == "http_requests_received_total" && (s.Labels.GetValueOrDefault("endpoint")?.EndsWith("v1/measurements/{id}", StringComparison.Ordinal) ?? false));
        Assert.Contains(after, s => s.Name == "process_cpu_seconds_total");
        Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"v1/measurements/{waiting}")).StatusCode);
    }

    [Fact]
    public async Task Metrics_can_be_switched_off()
    {
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Metrics__Enabled"] = "false" });
        using var anonymous = new HttpClient { BaseAddress = service.BaseAddress };
        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync("metrics")).StatusCode);
    }
}
