using System.Text.Json;
using System.Text.Json.Serialization;
using LambdaService.Api.Hosting;
using LambdaService.Api.Jobs;
using LambdaService.Api.Storage;

namespace LambdaService.Api.Tests.Service;

/// <summary>The job state machine of <see cref="JobStore"/> on an embedded (SQLite) store, and the words of <see cref="JobStatus"/>.</summary>
public sealed class JobStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "lambdaservice-jobstore-" + Guid.NewGuid().ToString("N"));
    private readonly MetadataStore _store;

    public JobStoreTests() => _store = new MetadataStore(Microsoft.Extensions.Options.Options.Create(new StorageOptions { Root = _root }));

    public void Dispose()
    {
        _store.Dispose();
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static JobStore.ClaimRules Rules(int maxAttempts = 3, int maxRunning = 4) =>
        new(DateTime.UtcNow.AddSeconds(-30), maxAttempts, maxRunning, "node-a");

    private JobRecord Added(string id = "msr_1", string tenant = "t")
    {
        var job = new JobRecord { Id = id, Tenant = tenant, Kind = JobRecord.MeasureKind, Status = "running", CreatedAt = DateTime.UtcNow };
        _store.Write(db => JobStore.Add(db, job));
        return job;
    }

    private JobRecord Read(string id) => _store.Read(db => db.Find<JobRecord>(id))!;

    private List<JobAttemptRecord> Attempts(string id) =>
        _store.Read(db => db.Query<JobAttemptRecord>("SELECT * FROM job_attempts WHERE JobId = ? ORDER BY Attempt", id));

    [Fact]
    public void Job_states_are_written_as_todays_words_by_the_services_enum_converter()
    {
        var json = new JsonSerializerOptions { Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) } };
        string[] today = ["queued", "running", "succeeded", "failed", "canceled"];
        Assert.Equal(today, Enum.GetValues<JobStatus>().Select(s => JsonSerializer.Serialize(s, json).Trim('"')));
        Assert.Equal(today, Enum.GetValues<JobStatus>().Select(s => s.Word()));
        Assert.Equal(today, JobStatuses.Words);
        Assert.All(Enum.GetValues<JobStatus>(), s => Assert.Equal(s, JobStatuses.Parse(s.Word())));
        Assert.False(JobStatuses.TryParse("Queued", out _));
        Assert.Equal([JobStatus.Succeeded, JobStatus.Failed, JobStatus.Canceled], Enum.GetValues<JobStatus>().Where(s => s.IsFinal()));
    }

    [Fact]
    public void A_new_job_is_stored_queued_and_a_claim_starts_its_first_attempt()
    {
        Added();
        Assert.Equal(JobStatus.Queued, Read("msr_1").State);

        var claim = JobStore.Claim(_store, "msr_1", Rules());

        Assert.NotNull(claim?.Token);
        var job = Read("msr_1");
        Assert.Equal((JobStatus.Running, 1, 1, "node-a", claim!.Token), (job.State, job.Attempts, job.Starts, job.Node, job.RunToken));
        var attempt = Assert.Single(Attempts("msr_1"));
        Assert.Equal((1, "node-a", (string?)null), (attempt.Attempt, attempt.Node, attempt.Outcome));
    }

    [Fact]
    public void A_result_is_stored_once_and_only_under_the_claims_token()
    {
        Added();
        var claim = JobStore.Claim(_store, "msr_1", Rules())!;

        Assert.False(JobStore.Succeed(_store, claim.Job, "another-token", "{}"));
        Assert.True(JobStore.Succeed(_store, claim.Job, claim.Token!, "{\"lambda\":1}"));
        Assert.False(JobStore.Fail(_store, claim.Job, claim.Token!, "{}"));

        var job = Read("msr_1");
        Assert.Equal((JobStatus.Succeeded, "{\"lambda\":1}", 1.0, (string?)null), (job.State, job.ResultJson, job.Progress, job.RunToken));
        Assert.Equal("succeeded", Assert.Single(Attempts("msr_1")).Outcome);
        Assert.Null(JobStore.Claim(_store, "msr_1", Rules()));
    }

    [Fact]
    public void An_interrupted_attempt_goes_back_on_the_queue_without_counting_and_a_crashed_one_counts()
    {
        Added();
        var first = JobStore.Claim(_store, "msr_1", Rules())!;
        Assert.True(JobStore.RequeueInterrupted(_store, first.Job, first.Token!));
        Assert.Equal((JobStatus.Queued, 0), (Read("msr_1").State, Read("msr_1").Attempts));

        var second = JobStore.Claim(_store, "msr_1", Rules())!;
        Assert.True(JobStore.RequeueCrashed(_store, second.Job, second.Token!, "{\"detail\":\"boom\"}"));
        var job = Read("msr_1");
        Assert.Equal((JobStatus.Queued, 1, 2, "{\"detail\":\"boom\"}"), (job.State, job.Attempts, job.Starts, job.ErrorJson));
        Assert.Equal(["interrupted", "crashed"], Attempts("msr_1").Select(a => a.Outcome));
    }

    [Fact]
    public void A_job_started_max_attempts_times_fails_at_its_next_claim()
    {
        Added();
        var claim = JobStore.Claim(_store, "msr_1", Rules(maxAttempts: 1))!;
        JobStore.RequeueCrashed(_store, claim.Job, claim.Token!, "{\"status\":500,\"detail\":\"killed\"}");

        Assert.Null(JobStore.Claim(_store, "msr_1", Rules(maxAttempts: 1)));

        var job = Read("msr_1");
        Assert.Equal(JobStatus.Failed, job.State);
        Assert.Contains("started 1 times without finishing", job.ErrorJson);
        Assert.Contains("Last error: killed", job.ErrorJson);
    }

    [Fact]
    public void A_claim_over_the_tenants_running_cap_leaves_the_job_queued_and_deferred_until_it_is_taken()
    {
        Added("msr_1");
        Added("msr_2");
        Assert.NotNull(JobStore.Claim(_store, "msr_1", Rules(maxRunning: 1))?.Token);

        var waiting = JobStore.Claim(_store, "msr_2", Rules(maxRunning: 1));

        Assert.Equal((null, 1), (waiting?.Token, waiting?.Running));
        Assert.Equal(JobStatus.Queued, Read("msr_2").State);
        Assert.NotNull(Read("msr_2").DeferredAt);
        Assert.Equal("msr_2", JobStore.TakeDeferred(_store, "t")?.Id);
        Assert.Null(JobStore.TakeDeferred(_store, "t"));
    }

    [Fact]
    public void A_cancel_ends_a_queued_or_running_job_once_and_the_heartbeat_sees_it()
    {
        Added();
        var claim = JobStore.Claim(_store, "msr_1", Rules())!;
        Assert.Equal(JobStatus.Running, JobStore.Heartbeat(_store, "msr_1", claim.Token!, 0.5, null));

        Assert.True(JobStore.Cancel(_store, "t", "msr_1", JobRecord.MeasureKind));
        Assert.False(JobStore.Cancel(_store, "t", "msr_1", JobRecord.MeasureKind));

        Assert.Equal(JobStatus.Canceled, JobStore.Heartbeat(_store, "msr_1", claim.Token!, 0.9, null));
        Assert.Equal(0.5, Read("msr_1").Progress);
        JobStore.EndCanceled(_store, claim.Job);
        Assert.Equal("canceled", Assert.Single(Attempts("msr_1")).Outcome);
    }

    [Fact]
    public void A_lost_running_job_is_handed_back_by_one_recovering_node_only()
    {
        Added();
        var claim = JobStore.Claim(_store, "msr_1", Rules())!;
        var later = DateTime.UtcNow.AddSeconds(1);

        Assert.True(JobStore.RequeueLost(_store, claim.Job, later));
        Assert.False(JobStore.RequeueLost(_store, claim.Job, later));
        Assert.Equal(JobStatus.Queued, Read("msr_1").State);
        Assert.Equal("lost", Assert.Single(Attempts("msr_1")).Outcome);
        Assert.True(JobStore.TakeOrphan(_store, "msr_1", later));
        Assert.False(JobStore.TakeOrphan(_store, "msr_1", DateTime.UtcNow.AddMinutes(-1)));
    }

    [Fact]
    public void A_withdrawn_job_leaves_no_record_and_no_attempt()
    {
        Added();
        JobStore.Claim(_store, "msr_1", Rules());

        _store.Write(db => JobStore.Withdraw(db, "msr_1"));

        Assert.Null(_store.Read(db => db.Find<JobRecord>("msr_1")));
        Assert.Empty(Attempts("msr_1"));
    }
}
