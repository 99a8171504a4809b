using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using SQLite;

namespace LambdaService.Api.Tests;

/// <summary>
/// The embedded artifact store and records in a temporary folder: an upload whose record cannot be stored leaves no file, unless
/// the content belongs to another record too.
/// </summary>
public sealed class ArtifactStoreWithdrawTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "lambdaservice-withdraw-" + Guid.NewGuid().ToString("N"));
    private readonly MetadataStore _metadata;
    private readonly ArtifactStore _artifacts;

    public ArtifactStoreWithdrawTests()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new StorageOptions { Root = _root });
        _metadata = new MetadataStore(options);
        _artifacts = new ArtifactStore(options, _metadata, NullLogger<ArtifactStore>.Instance);
    }

    [Fact]
    public async Task Content_committed_for_a_record_whose_insert_fails_is_deleted_again_and_the_failure_goes_on()
    {
        _metadata.Write(db => db.Insert(Model("mdl_taken", new string('0', 64))));
        var staged = await Stage([1, 2, 3]);

        // A real failed insert: the id is taken (a full database fails the same call with SQLITE_FULL).
        var failure = await Assert.ThrowsAsync<SQLiteException>(() => _artifacts.CommitAndRecordAsync(staged, "mdl_taken",
            () => Insert(Model("mdl_taken", staged.Sha256)), CancellationToken.None));
        Assert.Equal(SQLite3.Result.Constraint, failure.Result);
        Assert.Empty(Files("artifacts"));
        Assert.Empty(Files("tmp"));
    }

    [Fact]
    public async Task Content_another_record_already_uses_stays_when_a_second_upload_of_it_fails_to_record()
    {
        var first = await Stage([4, 5, 6]);
        await _artifacts.CommitAndRecordAsync(first, "mdl_first", () => Insert(Model("mdl_first", first.Sha256)), CancellationToken.None);
        var file = Assert.Single(Files("artifacts"));

        var second = await Stage([4, 5, 6]);
        await Assert.ThrowsAsync<SQLiteException>(() => _artifacts.CommitAndRecordAsync(second, "mdl_first",
            () => Insert(Model("mdl_first", second.Sha256)), CancellationToken.None));
        Assert.Equal(file, Assert.Single(Files("artifacts")));
        Assert.Empty(Files("tmp"));
    }

    /// <summary>Inserts the record as the upload endpoints do: in one transaction; returns its id.</summary>
    private string Insert(ModelRecord record)
    {
        _metadata.Write(db => db.Insert(record));
        return record.Id;
    }

    private Task<ArtifactStore.Stored> Stage(byte[] content) => _artifacts.StageAsync(new MemoryStream(content), long.MaxValue, CancellationToken.None);

    private static ModelRecord Model(string id, string sha256) =>
        new() { Id = id, Tenant = "t", Name = "m", Format = "onnx", Sha256 = sha256, SizeBytes = 3, CreatedAt = DateTime.UtcNow };

    private string[] Files(string folder)
    {
        var path = Path.Combine(_root, folder);
        return Directory.Exists(path) ? Directory.GetFiles(path, "*", SearchOption.AllDirectories) : [];
    }

    public void Dispose()
    {
        _metadata.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
