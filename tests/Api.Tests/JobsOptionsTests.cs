using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Configuration;

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
