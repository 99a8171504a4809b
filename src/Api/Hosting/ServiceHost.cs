using LambdaService.Api.Datasets;
using LambdaService.Api.Health;
using LambdaService.Api.Measurements;
using LambdaService.Api.Training;
using LambdaService.Api.Models;
using LambdaService.Api.Sweeps;

namespace LambdaService.Api.Hosting;

/// <summary>The two long-running modes: the HTTP service (with an in-process job server) and a job worker only.</summary>
public static class ServiceHost
{
    /// <summary>Builds the HTTP service.</summary>
    public static WebApplication BuildService(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var limits = builder.Configuration.GetSection("Limits").Get<LimitsOptions>() ?? new LimitsOptions();
        // Multipart uploads larger than 64 KiB are buffered in ASP.NET's temp folder: keep that inside the store.
        var storage = builder.Configuration.GetSection("Storage").Get<StorageOptions>() ?? new StorageOptions();
        var uploadTemp = Path.Combine(storage.FullRoot, "tmp");
        Directory.CreateDirectory(uploadTemp);
        Environment.SetEnvironmentVariable("ASPNETCORE_TEMP", uploadTemp);
        var runsJobs = RunsJobs(builder.Configuration);
        builder.Services.AddLambdaOptions(builder.Configuration)
            .AddLambdaStorage()
            .AddLambdaJobs(runServer: runsJobs, role: runsJobs ? "api+worker" : "api")
            .AddLambdaAuth()
            .AddLambdaProblemDetails()
            .AddLambdaRateLimiting(limits)
            .AddLambdaOpenApi();

        var app = builder.Build();
        app.UseLambdaSecurityHeaders();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseLambdaHttpMetrics();
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();
        app.UseJsonBodyLimit();
        app.MapLambdaOpenApi();
        app.MapLambdaDashboard();
        app.MapHealth();
        app.MapLambdaMetrics();
        app.MapNodes();
        app.MapModels(limits);
        app.MapDatasets(limits);
        app.MapMeasurements();
        app.MapTrainingRuns();
        app.MapSweeps();
        app.Services.GetRequiredService<Auth.ApiKeyRegistry>();   // creates and logs a first key when none is configured
        return app;
    }

    /// <summary>Builds a worker: a Hangfire server only (no HTTP API), for nodes on the same PostgreSQL database (or the same storage folder).</summary>
    public static IHost BuildWorker(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddLambdaOptions(builder.Configuration)
            .AddLambdaStorage()
            .AddLambdaJobs(runServer: true, role: "worker")
            .AddLambdaWorkerMetrics(builder.Configuration);
        return builder.Build();
    }

    /// <summary>Whether this process executes jobs: <c>Jobs:RunServer</c> (default true) and <c>Jobs:WorkerCount</c> above 0.</summary>
    private static bool RunsJobs(IConfiguration configuration) =>
        configuration.GetValue("Jobs:RunServer", true) && configuration.GetValue("Jobs:WorkerCount", new JobsOptions().WorkerCount) > 0;
}
