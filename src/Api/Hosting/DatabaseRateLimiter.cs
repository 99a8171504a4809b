using System.Threading.RateLimiting;
using LambdaService.Api.Storage;

namespace LambdaService.Api.Hosting;

/// <summary>
/// A fixed one-minute window per API key counted in PostgreSQL (table <c>rate_windows</c>), so that every API replica on the
/// database shares one budget: each request adds one hit to its key's current window with one upsert and is refused past
/// <c>Limits:RequestsPerMinute</c>. Windows start on the minute (UTC); those older than two minutes are deleted when a key opens a
/// new one. A database that cannot be reached lets the request through: it then gets its own 503.
/// </summary>
public sealed class DatabaseRateLimiter(MetadataStore store, string partition, int permitsPerMinute, ILogger logger) : RateLimiter
{
    public override TimeSpan? IdleDuration => null;

    public override RateLimiterStatistics? GetStatistics() => null;

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => Acquire(permitCount);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) => new(Acquire(permitCount));

    private RateLimitLease Acquire(int permitCount)
    {
        if (permitCount == 0) return new Lease(true, null);
        var now = DateTime.UtcNow;
        var window = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerMinute, DateTimeKind.Utc);
        int hits;
        try
        {
            hits = store.Write(db =>
            {
                var count = db.ExecuteScalar<int>(
                    "INSERT INTO rate_windows (partition_key, window_start, hits) VALUES (?, ?, ?) "
                    + "ON CONFLICT (partition_key, window_start) DO UPDATE SET hits = rate_windows.hits + EXCLUDED.hits RETURNING hits",
                    partition, window, permitCount);
                if (count == permitCount) db.Execute("DELETE FROM rate_windows WHERE partition_key = ? AND window_start < ?", partition, window.AddMinutes(-2));
                return count;
            });
        }
        catch (Exception e) when (MetadataStore.Unavailable(e))
        {
            logger.LogWarning("Rate limit not counted: the database is unavailable ({Error})", e.Message);
            return new Lease(true, null);
        }
        return hits <= permitsPerMinute ? new Lease(true, null) : new Lease(false, window.AddMinutes(1) - now);
    }

    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = metadataName == MetadataName.RetryAfter.Name ? retryAfter : null;
            return metadata is not null;
        }
    }
}
