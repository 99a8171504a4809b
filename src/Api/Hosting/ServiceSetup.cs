using System.Threading.RateLimiting;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.Storage.SQLite;
using LambdaService.Api.Auth;
using LambdaService.Api.Jobs;
using LambdaService.Api.Jobs.Sandbox;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Hosting;

/// <summary>The service's building blocks, each one <c>Add*</c> call.</summary>
public static class ServiceSetup
{
    /// <summary>Options bound from their sections, defaults in code.</summary>
    public static IServiceCollection AddLambdaOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<StorageOptions>(configuration.GetSection("Storage"));
        services.PostConfigure<StorageOptions>(o =>
        {
            o.PostgresConnectionString ??= configuration.GetConnectionString("Postgres");
            o.Validate();
        });
        services.Configure<JobsOptions>(configuration.GetSection("Jobs"));
        services.Configure<LimitsOptions>(configuration.GetSection("Limits"));
        services.Configure<AuthOptions>(configuration.GetSection("Auth"));
        services.Configure<OpenApiDocumentOptions>(configuration.GetSection("OpenApi"));
        services.Configure<MetricsOptions>(configuration.GetSection("Metrics"));
        services.AddOptions<MeasurementDefaultsOptions>().Bind(configuration.GetSection("Measurement"))
            .PostConfigure<IOptions<JobsOptions>>((o, jobs) => o.Validate(jobs.Value)).ValidateOnStart();
        return services;
    }

    /// <summary>Metadata store, artifact store and idempotency records: under <c>Storage:Root</c>, or in PostgreSQL (<c>Storage:Provider</c>).</summary>
    public static IServiceCollection AddLambdaStorage(this IServiceCollection services)
    {
        services.AddSingleton<MetadataStore>();
        services.AddSingleton<ArtifactStore>();
        services.AddSingleton<StorageSpace>();
        services.AddSingleton<Idempotency>();
        return services;
    }

    /// <summary>
    /// Hangfire on SQLite in the data folder (or on PostgreSQL, schema <c>hangfire</c>), the sandbox, the job, job recovery and
    /// this node's heartbeat. With <paramref name="runServer"/> this process also executes jobs (<c>Jobs:WorkerCount</c> workers on
    /// <c>Jobs:Queues</c>); the caller passes false for an API-only node (<c>Jobs:WorkerCount</c> 0).
    /// </summary>
    public static IServiceCollection AddLambdaJobs(this IServiceCollection services, bool runServer, string role)
    {
        services.AddHangfire((provider, config) =>
        {
            var storage = provider.GetRequiredService<IOptions<StorageOptions>>().Value;
            var jobs = provider.GetRequiredService<IOptions<JobsOptions>>().Value;
            Directory.CreateDirectory(storage.FullRoot);
            config.SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                .UseRecommendedSerializerSettings();
            if (storage.IsPostgres)
            {
                config.UsePostgreSqlStorage(o => o.UseNpgsqlConnection(storage.PostgresConnectionString), new PostgreSqlStorageOptions
                {
                    QueuePollInterval = TimeSpan.FromMilliseconds(jobs.QueuePollMilliseconds),
                    SchemaName = "hangfire",
                    PrepareSchemaIfNecessary = true,
                });
            }
            else
            {
                config.UseSQLiteStorage(Path.Combine(storage.FullRoot, "jobs.db"), new SQLiteStorageOptions
                {
                    QueuePollInterval = TimeSpan.FromMilliseconds(jobs.QueuePollMilliseconds),
                });
            }
        });
        services.AddSingleton(provider =>
        {
            var jobs = provider.GetRequiredService<IOptions<JobsOptions>>().Value;
            var storage = provider.GetRequiredService<IOptions<StorageOptions>>().Value;
            var work = Path.Combine(storage.FullRoot, "sandbox");
            Directory.CreateDirectory(work);
            return new SandboxOptions { RunnerCommand = jobs.RunnerCommand, WorkDirectory = work, Threads = jobs.EffectiveThreadsPerJob };
        });
        services.AddSingleton<SandboxProcess>();
        services.AddSingleton<JobQueue>();
        services.AddTransient<SandboxJob>();
        if (runServer)
        {
            services.AddHangfireServer((provider, server) =>
            {
                var jobs = provider.GetRequiredService<IOptions<JobsOptions>>().Value;
                server.WorkerCount = Math.Max(1, jobs.WorkerCount);
                server.Queues = jobs.EffectiveQueues;
                server.ServerName = $"{jobs.NodeName}:{Environment.ProcessId}";
                server.SchedulePollingInterval = TimeSpan.FromSeconds(5);
            });
        }
        // Recovery runs on every node: it only re-enqueues, and its conditional updates let one node win.
        services.AddHostedService<JobRecovery>();
        services.AddSingleton(new NodeRole(role, runServer));
        services.AddHostedService<NodeHeartbeat>();
        return services;
    }

    /// <summary>API-key authentication (header <c>X-Api-Key</c>) and the authorization every <c>/v1</c> route requires.</summary>
    public static IServiceCollection AddLambdaAuth(this IServiceCollection services)
    {
        services.AddSingleton<ApiKeyRegistry>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorization();
        return services;
    }

    /// <summary>Problem details for every error, JSON in camelCase with enums as words.</summary>
    public static IServiceCollection AddLambdaProblemDetails(this IServiceCollection services)
    {
        services.AddProblemDetails();
        services.AddExceptionHandler<CallerErrorHandler>();
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter(System.Text.Json.JsonNamingPolicy.KebabCaseLower));
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
            // A misspelt field ("direction" for "directions") is a 400 naming it, not a run with defaults.
            o.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow;
        });
        return services;
    }

    /// <summary>
    /// Fixed-window rate limit per API key (<c>Limits:RequestsPerMinute</c>); over it, 429 problem details with Retry-After. In
    /// memory in the embedded mode; counted in the database in PostgreSQL mode, so that API replicas share it (<see cref="DatabaseRateLimiter"/>).
    /// </summary>
    public static IServiceCollection AddLambdaRateLimiting(this IServiceCollection services, LimitsOptions limits)
    {
        services.AddRateLimiter(options =>
        {
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                var key = context.Request.Headers[ApiKeyAuthenticationHandler.Header].ToString();
                if (limits.RequestsPerMinute <= 0 || string.IsNullOrEmpty(key)) return RateLimitPartition.GetNoLimiter("anonymous");
                var partition = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)));
                var store = context.RequestServices.GetRequiredService<MetadataStore>();
                if (store.Postgres is not null)
                {
                    // Shared by every API replica on the database.
                    var logger = context.RequestServices.GetRequiredService<ILogger<DatabaseRateLimiter>>();
                    return RateLimitPartition.Get(partition, p => new DatabaseRateLimiter(store, p, limits.RequestsPerMinute, logger));
                }
                return RateLimitPartition.GetFixedWindowLimiter(partition,
                    _ => new FixedWindowRateLimiterOptions { PermitLimit = limits.RequestsPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
            });
            options.OnRejected = async (context, cancellationToken) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 60;
                context.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await Problems.WriteAsync(context.HttpContext, StatusCodes.Status429TooManyRequests, ApiKeyAuthenticationHandler.Header,
                    $"this API key made more than {limits.RequestsPerMinute} requests in a minute; wait and retry after the Retry-After seconds.");
            };
        });
        return services;
    }

    /// <summary>
    /// <c>X-Content-Type-Options: nosniff</c> on every response, so that a browser never reads an upload's bytes, a plot or a
    /// problem as another type than the one declared.
    /// </summary>
    public static WebApplication UseLambdaSecurityHeaders(this WebApplication app)
    {
        app.Use((context, next) =>
        {
            // At the start of the response, so that an error page (whose handler clears the headers) carries it too.
            context.Response.OnStarting(() =>
            {
                context.Response.Headers.XContentTypeOptions = "nosniff";
                return Task.CompletedTask;
            });
            return next(context);
        });
        return app;
    }

    /// <summary>
    /// The Hangfire dashboard at <c>/hangfire</c>, read-only, for operators only (<see cref="DashboardGate"/>: a key of
    /// <c>Auth:AdminKeys</c> in the header or a login cookie; a tenant key is 403; off, 404, when no operator key is configured).
    /// </summary>
    public static WebApplication MapLambdaDashboard(this WebApplication app)
    {
        app.UseWhen(context => context.Request.Path.StartsWithSegments(DashboardGate.Path), branch => branch.UseMiddleware<DashboardGate>());
        app.UseHangfireDashboard(DashboardGate.Path, new DashboardOptions
        {
            IsReadOnlyFunc = _ => true,
            Authorization = [new AdminDashboardFilter()],
            AppPath = "/swagger",
            DisplayStorageConnectionString = false,
        });
        return app;
    }
}
