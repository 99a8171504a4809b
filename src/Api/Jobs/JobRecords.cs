using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;

namespace LambdaService.Api.Jobs;

/// <summary>Tenant-scoped reads and the cancel of job records, shared by measurements and training runs.</summary>
public static class JobRecords
{
    /// <summary>The caller's job of <paramref name="kind"/> with this id, or null (another tenant's is null too).</summary>
    public static JobRecord? Find(MetadataStore store, string tenant, string id, string kind) =>
        store.Read(db => db.Table<JobRecord>().FirstOrDefault(j => j.Id == id && j.Tenant == tenant && j.Kind == kind));

    /// <summary>A page of the caller's jobs of <paramref name="kind"/>, newest first, optionally of one status.</summary>
    public static (List<JobRecord> Items, int Page, int PageSize, int Total) Page(MetadataStore store, string tenant, string kind, string? status, int page, int pageSize,
        string? sweepId = null)
    {
        (page, pageSize) = Paged<JobRecord>.Clamp(page, pageSize);
        var (items, total) = store.Read(db =>
        {
            var q = db.Table<JobRecord>().Where(j => j.Tenant == tenant && j.Kind == kind);
            if (!string.IsNullOrEmpty(status)) q = q.Where(j => j.Status == status);
            if (!string.IsNullOrEmpty(sweepId)) q = q.Where(j => j.SweepId == sweepId);
            return (q.OrderByDescending(j => j.CreatedAt).Skip((page - 1) * pageSize).Take(pageSize).ToList(), q.Count());
        });
        return (items, page, pageSize, total);
    }

    /// <summary>
    /// Marks a queued or running job canceled (its job watcher then ends the sandbox within half a second). Returns
    /// the record afterwards and whether this call canceled it; null when there is no such job.
    /// </summary>
    public static (JobRecord Job, bool Canceled)? Cancel(MetadataStore store, string tenant, string id, string kind)
    {
        var canceled = store.Write(db => db.Execute(
            "UPDATE jobs SET Status = ?, FinishedAt = ? WHERE Id = ? AND Tenant = ? AND Kind = ? AND Status IN (?, ?)",
            JobStatus.Canceled, DateTime.UtcNow, id, tenant, kind, JobStatus.Queued, JobStatus.Running));
        var job = Find(store, tenant, id, kind);
        return job is null ? null : (job, canceled == 1);
    }

    /// <summary>A time read from SQLite, marked as UTC.</summary>
    public static DateTime Utc(DateTime t) => DateTime.SpecifyKind(t, DateTimeKind.Utc);

    /// <summary>The same, for optional times.</summary>
    public static DateTime? Utc(DateTime? t) => t is { } v ? Utc(v) : null;
}
