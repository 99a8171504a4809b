using System.Text.Json;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Mvc;

namespace LambdaService.Api.Jobs;

/// <summary>
/// The one owner of the jobs table's writes and of the attempt log (<c>job_attempts</c>): every state transition of a job —
/// queued → running → succeeded | failed | canceled, back to queued after a crashed, lost or interrupted attempt — is a named
/// method here, in the SQL both database kinds accept (<see cref="IDb"/>). A running job's writes are conditioned on the run token its
/// claim drew, so an attempt that lost the job (canceled, taken over) writes nothing. Methods that take an <see cref="IDb"/> run inside
/// the caller's transaction; those that take the <see cref="MetadataStore"/> open their own. Reads stay with their callers
/// (<see cref="JobRecords"/>).
/// </summary>
public static class JobStore
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>What ended an attempt, in the attempt log: a final state's word, or one of these.</summary>
    private const string Crashed = "crashed", Lost = "lost", Interrupted = "interrupted";

    /// <summary>What a claim got: the job with this attempt's run token, or the job without a token when it has to wait for its tenant's turn.</summary>
    public sealed record Claimed(JobRecord Job, string? Token, int Running);

    /// <summary>The limits a claim applies (<see cref="Hosting.JobsOptions"/>).</summary>
    /// <param name="Stale">A running job whose heartbeat is older belongs to no live attempt.</param>
    /// <param name="MaxAttempts">A job started this often without finishing fails instead.</param>
    /// <param name="MaxRunningPerTenant">More running jobs of the tenant make the claim wait.</param>
    /// <param name="Node">This node's name, recorded on the job and its attempt.</param>
    public sealed record ClaimRules(DateTime Stale, int MaxAttempts, int MaxRunningPerTenant, string Node);

    /// <summary>Adds a new job, queued (inside the transaction that also stores its request's sweep or <c>Idempotency-Key</c>).</summary>
    public static void Add(IDb db, JobRecord job)
    {
        job.Status = JobStatus.Queued.Word();
        db.Insert(job);
    }

    /// <summary>Removes a job and its attempts again (a request whose job could not be enqueued; <see cref="JobQueue.EnqueueNew"/>).</summary>
    public static void Withdraw(IDb db, string jobId)
    {
        db.Execute("DELETE FROM job_attempts WHERE JobId = ?", jobId);
        db.Delete<JobRecord>(jobId);
    }

    /// <summary>Remembers the Hangfire job that will deliver the job, and when it was handed over.</summary>
    public static void MarkEnqueued(MetadataStore store, string jobId, string hangfireJobId) =>
        store.Write(db => db.Execute("UPDATE jobs SET HangfireJobId = ?, EnqueuedAt = ? WHERE Id = ?", hangfireJobId, DateTime.UtcNow, jobId));

    /// <summary>Marks the caller's queued or running job of <paramref name="kind"/> canceled; returns whether this call canceled it.</summary>
    public static bool Cancel(MetadataStore store, string tenant, string id, string kind) =>
        store.Write(db => db.Execute(
            "UPDATE jobs SET Status = ?, FinishedAt = ? WHERE Id = ? AND Tenant = ? AND Kind = ? AND Status IN (?, ?)",
            Word(JobStatus.Canceled), DateTime.UtcNow, id, tenant, kind, Word(JobStatus.Queued), Word(JobStatus.Running))) == 1;

    /// <summary>Marks every queued or running run of the caller's sweep canceled; returns how many.</summary>
    public static int CancelSweep(MetadataStore store, string tenant, string sweepId) =>
        store.Write(db => db.Execute(
            "UPDATE jobs SET Status = ?, FinishedAt = ? WHERE SweepId = ? AND Tenant = ? AND Status IN (?, ?)",
            Word(JobStatus.Canceled), DateTime.UtcNow, sweepId, tenant, Word(JobStatus.Queued), Word(JobStatus.Running)));

    /// <summary>
    /// Claims the job for a new attempt: running, with a fresh run token, attempts + 1, one more entry in the attempt log. Returns null
    /// when there is nothing to run (no such job, final, running elsewhere with a live heartbeat, or failed now for too many attempts),
    /// and the job without a token when its tenant has <see cref="ClaimRules.MaxRunningPerTenant"/> jobs running: then it stays queued,
    /// marked deferred (a stale attempt of a dead node is handed back first).
    /// </summary>
    public static Claimed? Claim(MetadataStore store, string jobId, ClaimRules rules) => store.Write(db =>
    {
        var job = db.Find<JobRecord>(jobId);
        if (job is null || job.State.IsFinal()) return null;
        if (job.State == JobStatus.Running && job.HeartbeatAt > rules.Stale) return null;   // someone else runs it
        // Jobs:MaxRunningPerTenant over all nodes: the tenant's running jobs with a live heartbeat, counted in this transaction (on PostgreSQL
        // under a per-tenant lock, so that two nodes claiming at once cannot both pass).
        if (store.Postgres is not null) db.Execute("SELECT pg_advisory_xact_lock(hashtext(?))", "lambdaservice-tenant-jobs:" + job.Tenant);
        var running = db.ExecuteScalar<int>("SELECT COUNT(*) FROM jobs WHERE Tenant = ? AND Status = ? AND Id <> ? AND HeartbeatAt > ?",
            job.Tenant, Word(JobStatus.Running), job.Id, rules.Stale);
        if (running >= rules.MaxRunningPerTenant)
        {
            if (job.State == JobStatus.Running)
            {
                // A stale attempt of a dead node: hand it back to the queue (as recovery would) before it waits its turn.
                db.Execute("UPDATE jobs SET Status = ?, RunToken = NULL WHERE Id = ?", Word(JobStatus.Queued), job.Id);
                EndAttempt(db, job, Lost, job.HeartbeatAt);
            }
            db.Execute("UPDATE jobs SET DeferredAt = ? WHERE Id = ?", DateTime.UtcNow, job.Id);
            return new Claimed(job, null, running);
        }
        if (job.Attempts >= rules.MaxAttempts)
        {
            job.Status = Word(JobStatus.Failed);
            job.FinishedAt = DateTime.UtcNow;
            job.ErrorJson = Problem(500, "Too many attempts",
                $"the job was started {job.Attempts} times without finishing (its sandbox crashed or its node died mid-run); it is not retried again."
                + (job.ErrorJson is null ? "" : " Last error: " + JsonSerializer.Deserialize<ProblemDetails>(job.ErrorJson, Json)?.Detail), null);
            db.Update(job);
            return null;
        }
        var token = Guid.NewGuid().ToString("N");
        var now = DateTime.UtcNow;
        job.Status = Word(JobStatus.Running);
        job.Starts = AttemptNumber(job) + 1;
        job.Attempts++;
        job.DeferredAt = null;
        job.RunToken = token;
        job.StartedAt ??= now;
        job.HeartbeatAt = now;
        job.Node = rules.Node;
        db.Update(job);
        db.InsertIfAbsent(new JobAttemptRecord { Id = AttemptId(job.Id, job.Starts), JobId = job.Id, Attempt = job.Starts, Node = job.Node, StartedAt = now });
        return new Claimed(job, token, running);
    });

    /// <summary>
    /// The running attempt's heartbeat with its progress (and the latest progress detail, when there is one); returns the job's
    /// state afterwards (null when the record is gone), so that the attempt sees a cancel.
    /// </summary>
    public static JobStatus? Heartbeat(MetadataStore store, string jobId, string token, double progress, string? detailJson)
    {
        var status = store.Write(db =>
        {
            db.Execute("UPDATE jobs SET HeartbeatAt = ?, Progress = ?, ProgressDetailJson = COALESCE(?, ProgressDetailJson) WHERE Id = ? AND RunToken = ? AND Status = ?",
                DateTime.UtcNow, progress, detailJson, jobId, token, Word(JobStatus.Running));
            return db.ExecuteScalar<string>("SELECT Status FROM jobs WHERE Id = ?", jobId);
        });
        return JobStatuses.TryParse(status, out var state) ? state : null;
    }

    /// <summary>Stores a measurement's result (progress 1); returns whether this attempt still owned the job.</summary>
    public static bool Succeed(MetadataStore store, JobRecord job, string token, string resultJson) => Finish(store, job, token, JobStatus.Succeeded, resultJson, null);

    /// <summary>Stores a job's failure (<paramref name="errorJson"/> a problem-details JSON, progress 0); returns whether this attempt still owned the job.</summary>
    public static bool Fail(MetadataStore store, JobRecord job, string token, string errorJson) => Finish(store, job, token, JobStatus.Failed, null, errorJson);

    /// <summary>
    /// Stores a training run's result with its registered exports (inside the transaction that registers them as models); returns
    /// whether this attempt still owned the job (when not, the caller registers nothing).
    /// </summary>
    public static bool SucceedTraining(IDb db, JobRecord job, string token, string resultJson, string? lastDetailJson, DateTime finishedAt,
        (string ModelId, string Sha256) onnx, (string ModelId, string Sha256) torchScript)
    {
        var updated = db.Execute(
            "UPDATE jobs SET Status = ?, ResultJson = ?, ErrorJson = NULL, Progress = 1.0, ProgressDetailJson = COALESCE(?, ProgressDetailJson), FinishedAt = ?, RunToken = NULL, "
            + "OnnxModelId = ?, OnnxSha256 = ?, TorchScriptModelId = ?, TorchScriptSha256 = ? WHERE Id = ? AND RunToken = ? AND Status = ?",
            Word(JobStatus.Succeeded), resultJson, lastDetailJson, finishedAt, onnx.ModelId, onnx.Sha256, torchScript.ModelId, torchScript.Sha256,
            job.Id, token, Word(JobStatus.Running));
        if (updated != 1) return false;
        EndAttempt(db, job, Word(JobStatus.Succeeded));
        return true;
    }

    /// <summary>Records in the attempt log that the owner's cancel ended the attempt (the job is canceled already).</summary>
    public static void EndCanceled(MetadataStore store, JobRecord job) => store.Write(db => EndAttempt(db, job, Word(JobStatus.Canceled)));

    /// <summary>
    /// Puts a job whose sandbox crashed back on its queue (the attempt counts), keeping the crash as its last error; returns
    /// whether this attempt still owned the job.
    /// </summary>
    public static bool RequeueCrashed(MetadataStore store, JobRecord job, string token, string errorJson) => store.Write(db =>
    {
        var n = db.Execute(
            "UPDATE jobs SET Status = ?, RunToken = NULL, ErrorJson = ? WHERE Id = ? AND RunToken = ? AND Status = ?",
            Word(JobStatus.Queued), errorJson, job.Id, token, Word(JobStatus.Running));
        EndAttempt(db, job, Crashed);
        return n;
    }) == 1;

    /// <summary>
    /// Puts a job a graceful shutdown interrupted back on its queue; the attempt does not count toward <c>Jobs:MaxAttempts</c>.
    /// Returns whether this attempt still owned the job.
    /// </summary>
    public static bool RequeueInterrupted(MetadataStore store, JobRecord job, string token) => store.Write(db =>
    {
        var n = db.Execute("UPDATE jobs SET Status = ?, RunToken = NULL, Attempts = Attempts - 1 WHERE Id = ? AND RunToken = ? AND Status = ?",
            Word(JobStatus.Queued), job.Id, token, Word(JobStatus.Running));
        if (n == 1) EndAttempt(db, job, Interrupted);
        return n;
    }) == 1;

    /// <summary>
    /// Hands a running job whose heartbeat is older than <paramref name="stale"/> back to its queue (its attempt lost); returns whether
    /// this call did (of several nodes recovering at once, one does).
    /// </summary>
    public static bool RequeueLost(MetadataStore store, JobRecord job, DateTime stale) => store.Write(db =>
    {
        var n = db.Execute(
            "UPDATE jobs SET Status = ?, RunToken = NULL WHERE Id = ? AND Status = ? AND (HeartbeatAt IS NULL OR HeartbeatAt < ?)",
            Word(JobStatus.Queued), job.Id, Word(JobStatus.Running), stale);
        if (n == 1) EndAttempt(db, job, Lost, job.HeartbeatAt);
        return n;
    }) == 1;

    /// <summary>
    /// Takes a queued job that no queue has held since <paramref name="stale"/> for enqueuing again (moves its hand-over time forward);
    /// returns whether this call took it (of several nodes recovering at once, one does).
    /// </summary>
    public static bool TakeOrphan(MetadataStore store, string jobId, DateTime stale) =>
        store.Write(db => db.Execute(
            "UPDATE jobs SET EnqueuedAt = ? WHERE Id = ? AND Status = ? AND (EnqueuedAt IS NULL OR EnqueuedAt < ?)",
            DateTime.UtcNow, jobId, Word(JobStatus.Queued), stale)) == 1;

    /// <summary>Takes the tenant's oldest queued job that waits for its turn (clears its deferral), or null when none waits.</summary>
    public static JobRecord? TakeDeferred(MetadataStore store, string tenant) => store.Write(db =>
    {
        var waiting = db.Query<JobRecord>("SELECT * FROM jobs WHERE Tenant = ? AND Status = ? AND DeferredAt IS NOT NULL ORDER BY CreatedAt, Id LIMIT 1",
            tenant, Word(JobStatus.Queued)).FirstOrDefault();
        return waiting is not null && db.Execute("UPDATE jobs SET DeferredAt = NULL WHERE Id = ? AND DeferredAt IS NOT NULL", waiting.Id) == 1 ? waiting : null;
    });

    /// <summary>The number of the job's latest attempt: <see cref="JobRecord.Starts"/>, or <see cref="JobRecord.Attempts"/> on a record from before that column.</summary>
    internal static int AttemptNumber(JobRecord job) => Math.Max(job.Starts, job.Attempts);

    /// <summary>A problem-details JSON, as stored in <see cref="JobRecord.ErrorJson"/>, with the <c>field</c> extension when there is one.</summary>
    internal static string Problem(int status, string title, string detail, string? field)
    {
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail };
        if (field is not null) problem.Extensions["field"] = field;
        return JsonSerializer.Serialize(problem, Json);
    }

    private static bool Finish(MetadataStore store, JobRecord job, string token, JobStatus status, string? resultJson, string? errorJson) => store.Write(db =>
    {
        var n = db.Execute(
            "UPDATE jobs SET Status = ?, ResultJson = ?, ErrorJson = ?, Progress = ?, FinishedAt = ?, RunToken = NULL WHERE Id = ? AND RunToken = ? AND Status = ?",
            Word(status), resultJson, errorJson, status == JobStatus.Succeeded ? 1.0 : 0.0, DateTime.UtcNow, job.Id, token, Word(JobStatus.Running));
        if (n == 1) EndAttempt(db, job, Word(status));
        return n;
    }) == 1;

    /// <summary>The key of attempt <paramref name="attempt"/> at a job.</summary>
    private static string AttemptId(string jobId, int attempt) => $"{jobId}/{attempt}";

    /// <summary>Records how the job's latest attempt (<see cref="AttemptNumber"/>) ended (once; a later outcome does not overwrite an earlier one).</summary>
    private static void EndAttempt(IDb db, JobRecord job, string outcome, DateTime? at = null) =>
        db.Execute("UPDATE job_attempts SET FinishedAt = ?, Outcome = ? WHERE Id = ? AND Outcome IS NULL", at ?? DateTime.UtcNow, outcome, AttemptId(job.Id, AttemptNumber(job)));

    private static string Word(JobStatus status) => status.Word();
}
