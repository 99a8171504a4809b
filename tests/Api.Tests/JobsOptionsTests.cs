using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Tests;

/// <summary>The Jobs section's defaults and the settings derived from them.</summary>
public class JobsOptionsTests
{
    private static JobsOptions Bind(IDictionary<string, string?> settings)
    {
        var options = new JobsOptions();
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Jobs").Bind(options);
        return options;
    }

    [Fact]
    public void Measurements_get_15_minutes_and_training_runs_an_hour_by_default()
    {
        var options = new JobsOptions();
        Assert.Equal(TimeSpan.FromMinutes(15), options.TimeLimitOf(JobRecord.MeasureKind));
        Assert.Equal(TimeSpan.FromHours(1), options.TimeLimitOf(JobRecord.TrainKind));
    }

    [Fact]
    public void Jobs_TimeLimitSeconds_still_sets_the_measurements_limit_and_leaves_training_its_own()
    {
        var options = Bind(new Dictionary<string, string?> { ["Jobs:TimeLimitSeconds"] = "60", ["Jobs:TrainingTimeLimitSeconds"] = "7200" });
        Assert.Equal(TimeSpan.FromSeconds(60), options.TimeLimitOf(JobRecord.MeasureKind));
        Assert.Equal(TimeSpan.FromSeconds(7200), options.TimeLimitOf(JobRecord.TrainKind));
    }

    [Theory]
    [InlineData(2, 0, 1)]
    [InlineData(1, 0, 1)]
    [InlineData(5, 0, 2)]
    [InlineData(8, 0, 4)]
    [InlineData(0, 0, 1)]
    [InlineData(2, 3, 3)]
    public void The_running_cap_per_tenant_defaults_to_half_the_workers_and_at_least_one(int workers, int configured, int expected)
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Jobs:WorkerCount"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Jobs:MaxRunningPerTenant"] = configured.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        Assert.Equal(expected, options.EffectiveMaxRunningPerTenant);
    }
}

/// <summary>How many native threads a sandboxed job gets (<c>Jobs:ThreadsPerJob</c>) and that the job really runs with them.</summary>
public class ThreadsPerJobTests
{
    [Fact]
    public void A_job_gets_the_cores_divided_by_the_workers_by_default_and_the_configured_count_otherwise()
    {
        var cores = Environment.ProcessorCount;
        Assert.Equal(Math.Max(1, cores / 2), new JobsOptions { WorkerCount = 2 }.EffectiveThreadsPerJob);
        Assert.Equal(cores, new JobsOptions { WorkerCount = 1 }.EffectiveThreadsPerJob);
        Assert.Equal(1, new JobsOptions { WorkerCount = cores + 1 }.EffectiveThreadsPerJob);
        Assert.Equal(3, new JobsOptions { WorkerCount = 2, ThreadsPerJob = 3 }.EffectiveThreadsPerJob);
    }

    [Theory]
    [InlineData("3", 3)]
    [InlineData("1", 1)]
    [InlineData("0", -1)]
    [InlineData("-2", -1)]
    [InlineData("many", -1)]
    [InlineData(null, -1)]
    public void The_process_takes_its_thread_count_from_the_environment_or_uses_every_core(string? setting, int expected)
    {
        Assert.Equal(expected > 0 ? expected : Environment.ProcessorCount, LambdaService.Measurement.Models.TorchRuntime.ThreadsFrom(setting));
    }

    [Fact]
    public async Task A_measurement_job_runs_with_jobs_threads_per_job_and_says_so_in_its_config()
    {
        using var files = new Service.TestFiles();
        using var service = new Service.ServiceProcess(new Dictionary<string, string> { ["Jobs__ThreadsPerJob"] = "3" });
        using var client = service.Client();
        var model = await Service.ApiClient.UploadId(client, "v1/models", files.Onnx);
        var dataset = await Service.ApiClient.UploadId(client, "v1/datasets", files.Csv);
        var id = await Service.ApiClient.SubmitId(client, new { modelId = model, datasetId = dataset, maxPoints = 4 });
        var job = await Service.ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.Equal("succeeded", job["status"]!.GetValue<string>());
        Assert.Equal(3, job["result"]!["config"]!["threads"]!.GetValue<int>());
    }
}

/// <summary>The Measurement section: the service's default memory budget of a pass.</summary>
public class MeasurementDefaultsOptionsTests
{
    private static MeasurementDefaultsOptions Resolve(IDictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var provider = new ServiceCollection().AddLambdaOptions(configuration).BuildServiceProvider();
        return provider.GetRequiredService<IOptions<MeasurementDefaultsOptions>>().Value;
    }

    [Fact]
    public void The_default_budget_is_an_eighth_of_the_jobs_memory_limit_so_1024_MiB_at_the_defaults()
    {
        Assert.Equal(1024, new MeasurementDefaultsOptions().EffectiveMemoryBudgetMb(new JobsOptions()));   // 8192 / 8
        Assert.Equal(256, new MeasurementDefaultsOptions().EffectiveMemoryBudgetMb(new JobsOptions { MemoryLimitMb = 2048 }));   // 2048 / 8
        var bound = Resolve(new Dictionary<string, string?> { ["Measurement:MemoryBudgetMb"] = "300", ["Jobs:MemoryLimitMb"] = "2048" });
        Assert.Equal(300, bound.EffectiveMemoryBudgetMb(new JobsOptions { MemoryLimitMb = 2048 }));
    }

    [Theory]
    [InlineData("4096", "Measurement:MemoryBudgetMb (4096 MiB) must be below Jobs:MemoryLimitMb (4096 MiB)")]
    [InlineData("-1", "Measurement:MemoryBudgetMb must be a positive number of MiB")]
    public void A_default_budget_that_does_not_fit_the_jobs_memory_limit_stops_the_service_at_start(string budget, string message)
    {
        var e = Assert.Throws<InvalidOperationException>(() => Resolve(new Dictionary<string, string?> { ["Measurement:MemoryBudgetMb"] = budget, ["Jobs:MemoryLimitMb"] = "4096" }));
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }
}
