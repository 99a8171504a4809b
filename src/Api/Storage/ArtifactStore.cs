using System.Data;
using System.Security.Cryptography;
using LambdaService.Api.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace LambdaService.Api.Storage;

/// <summary>
/// Content-addressed files (lower-case SHA-256). Embedded mode: they live under <c>{Storage:Root}/artifacts/ab/abcdef…</c>.
/// PostgreSQL mode: the content lives in the database (table <c>artifact_chunks</c>, 1 MiB <c>bytea</c> chunks, and
/// <c>artifact_blobs</c> once every chunk is in, in one transaction), streamed in both directions, never a whole file in
/// memory; the same folder is then this node's cache, and a cached file is hashed again before it is handed out, so a
/// sandbox never sees content that differs from its name. Uploads stream to a temporary file in the same folder tree while
/// hashed, then move into place; identical uploads share one file. Nothing outside the root is ever written.
/// </summary>
public sealed class ArtifactStore(IOptions<StorageOptions> options, MetadataStore metadata, ILogger<ArtifactStore> logger)
{
    /// <summary>Size of one stored chunk in PostgreSQL mode.</summary>
    public const int ChunkBytes = 1 << 20;

    private readonly string _root = Path.Combine(options.Value.FullRoot, "artifacts");
    private readonly string _tmp = Path.Combine(options.Value.FullRoot, "tmp");
    private NpgsqlDataSource? Remote
    {
        get
        {
            metadata.EnsureSchema();
            return metadata.Postgres;
        }
    }

    /// <summary>A stored file: its hash, size and path; <paramref name="Added"/> once committed when this commit brought the content into the store.</summary>
    public sealed record Stored(string Sha256, long SizeBytes, string Path, bool Added = false);

    /// <summary>Copies <paramref name="source"/> into a temporary file, at most <paramref name="maxBytes"/> bytes, hashing as it goes.</summary>
    /// <exception cref="PayloadTooLargeException">The stream is longer than the limit.</exception>
    public async Task<Stored> StageAsync(Stream source, long maxBytes, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_tmp);
        var path = Path.Combine(_tmp, Guid.NewGuid().ToString("N"));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        try
        {
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    total += read;
                    if (total > maxBytes) throw new PayloadTooLargeException(maxBytes);
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
            }
            return new Stored(Convert.ToHexStringLower(hash.GetHashAndReset()), total, path);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>
    /// Moves a staged file into the store (or drops it when the content is already there); in PostgreSQL mode the content
    /// is also written to the database unless it is there already.
    /// </summary>
    /// <remarks>The staged file is gone afterwards, also when the commit fails (e.g. no space for the content's folder).</remarks>
    public async Task<Stored> CommitAsync(Stored staged, CancellationToken cancellationToken)
    {
        var target = LocalPath(staged.Sha256);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var added = Remote is { } remote && await UploadAsync(remote, staged, cancellationToken);
            if (File.Exists(target))
            {
                File.Delete(staged.Path);
            }
            else
            {
                File.Move(staged.Path, target, overwrite: true);
                added |= Remote is null;
            }
            return staged with { Path = target, Added = added };
        }
        catch
        {
            File.Delete(staged.Path);
            throw;
        }
    }

    /// <summary>
    /// Commits a staged upload and records it with <paramref name="record"/> (the record's insert). When the insert fails — the
    /// database full, read-only or away — content this commit added is deleted again unless a record of another upload uses it,
    /// so that a failed upload leaves no file in the store (nor content in the database); the exception goes on.
    /// </summary>
    public async Task<T> CommitAndRecordAsync<T>(Stored staged, string recordId, Func<T> record, CancellationToken cancellationToken)
    {
        var stored = await CommitAsync(staged, cancellationToken);
        try
        {
            return record();
        }
        catch (Exception e)
        {
            if (stored.Added) Withdraw(stored, recordId, e);
            throw;
        }
    }

    private void Withdraw(Stored stored, string recordId, Exception cause)
    {
        try
        {
            if (metadata.Read(db => MetadataStore.ArtifactUnused(db, stored.Sha256, recordId)))
            {
                DeleteIfExists(stored.Sha256);
                logger.LogWarning(cause, "Artifact {Sha256} was removed again: its record could not be stored", stored.Sha256);
            }
        }
        catch (Exception e)
        {
            logger.LogError(e, "Artifact {Sha256} could not be removed after its record failed to store ({Cause}); it stays unreferenced", stored.Sha256, cause.Message);
        }
    }

    /// <summary>Stages the file at <paramref name="path"/> (a file this service wrote, e.g. a training run's export) and commits it.</summary>
    public async Task<Stored> AddFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        return await CommitAsync(await StageAsync(source, long.MaxValue, cancellationToken), cancellationToken);
    }

    /// <summary>A new empty folder under the store's temporary folder, for files a job writes before they are committed.</summary>
    public string NewScratchDirectory(string prefix)
    {
        var path = Path.Combine(_tmp, prefix + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Discards a staged file.</summary>
    public static void Discard(Stored staged) => File.Delete(staged.Path);

    /// <summary>
    /// A local path holding the content with this hash. Embedded mode: the stored file. PostgreSQL mode: this node's cached
    /// copy, hashed again first (a copy that does not match is replaced), or downloaded from the database into the cache
    /// and checked against its name before it is used. Content deleted from the database is missing here too, whatever
    /// this node still caches (the cached copy is removed).
    /// </summary>
    /// <exception cref="ArtifactMissingException">The database has no such content.</exception>
    public string Fetch(string sha256)
    {
        var path = LocalPath(sha256);
        if (Remote is not { } remote) return path;
        using var connection = remote.OpenConnection();
        int chunks;
        using (var blob = new NpgsqlCommand("SELECT chunks FROM artifact_blobs WHERE sha256 = $1", connection) { Parameters = { new() { Value = sha256 } } })
        {
            if (blob.ExecuteScalar() is not int n)
            {
                // Deleted (by any node): this node's copy goes too.
                if (File.Exists(path)) File.Delete(path);
                throw new ArtifactMissingException(sha256);
            }
            chunks = n;
        }
        if (File.Exists(path))
        {
            if (HashOfFile(path) == sha256) return path;
            logger.LogWarning("Cached artifact {Sha256} does not match its hash; downloading it again", sha256);
            File.Delete(path);
        }
        Download(connection, sha256, chunks, path);
        return path;
    }

    /// <summary>Deletes content no record refers to any more (the database's copy and this node's file).</summary>
    public void DeleteIfExists(string sha256)
    {
        var path = LocalPath(sha256);
        if (Remote is { } remote)
        {
            using var connection = remote.OpenConnection();
            using var transaction = connection.BeginTransaction();
            foreach (var sql in new[] { "DELETE FROM artifact_blobs WHERE sha256 = $1", "DELETE FROM artifact_chunks WHERE sha256 = $1" })
            {
                using var command = new NpgsqlCommand(sql, connection, transaction) { Parameters = { new() { Value = sha256 } } };
                command.ExecuteNonQuery();
            }
            transaction.Commit();
        }
        if (File.Exists(path)) File.Delete(path);
    }

    /// <summary>The path of the content with this hash in this node's folder (which must be 64 hex digits).</summary>
    private string LocalPath(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower)) throw new ArgumentException("Not a SHA-256 hex digest.", nameof(sha256));
        return Path.Combine(_root, sha256[..2], sha256);
    }

    /// <summary>Writes the staged content to the database; returns false when it was there already.</summary>
    private static async Task<bool> UploadAsync(NpgsqlDataSource remote, Stored staged, CancellationToken cancellationToken)
    {
        await using var connection = await remote.OpenConnectionAsync(cancellationToken);
        await using (var exists = new NpgsqlCommand("SELECT 1 FROM artifact_blobs WHERE sha256 = $1", connection) { Parameters = { new() { Value = staged.Sha256 } } })
        {
            if (await exists.ExecuteScalarAsync(cancellationToken) is not null) return false;
        }
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var file = new FileStream(staged.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        var buffer = new byte[ChunkBytes];
        var seq = 0;
        while (true)
        {
            var filled = 0;
            int read;
            while (filled < buffer.Length && (read = await file.ReadAsync(buffer.AsMemory(filled), cancellationToken)) > 0) filled += read;
            if (filled == 0 && seq > 0) break;
            await using (var insert = new NpgsqlCommand("INSERT INTO artifact_chunks (sha256, seq, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", connection, transaction))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = staged.Sha256 });
                insert.Parameters.Add(new NpgsqlParameter { Value = seq });
                insert.Parameters.Add(new NpgsqlParameter<ArraySegment<byte>> { NpgsqlDbType = NpgsqlDbType.Bytea, TypedValue = new ArraySegment<byte>(buffer, 0, filled) });
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            seq++;
            if (filled < buffer.Length) break;
        }
        await using (var blob = new NpgsqlCommand("INSERT INTO artifact_blobs (sha256, size_bytes, chunks) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", connection, transaction))
        {
            blob.Parameters.Add(new NpgsqlParameter { Value = staged.Sha256 });
            blob.Parameters.Add(new NpgsqlParameter { Value = staged.SizeBytes });
            blob.Parameters.Add(new NpgsqlParameter { Value = seq });
            await blob.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private void Download(NpgsqlConnection connection, string sha256, int chunks, string target)
    {
        Directory.CreateDirectory(_tmp);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temp = Path.Combine(_tmp, "fetch-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var seen = 0;
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var select = new NpgsqlCommand("SELECT data FROM artifact_chunks WHERE sha256 = $1 ORDER BY seq", connection) { Parameters = { new() { Value = sha256 } } })
            using (var reader = select.ExecuteReader(CommandBehavior.SequentialAccess))
            {
                var buffer = new byte[1 << 16];
                while (reader.Read())
                {
                    seen++;
                    using var data = reader.GetStream(0);
                    int read;
                    while ((read = data.Read(buffer)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        file.Write(buffer, 0, read);
                    }
                }
            }
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (seen != chunks || actual != sha256)
            {
                throw new InvalidDataException($"the stored content {sha256} reads back as {seen} of {chunks} chunks with hash {actual}; it is damaged.");
            }
            File.Move(temp, target, overwrite: true);
            logger.LogInformation("Fetched artifact {Sha256} from the database into this node's cache", sha256);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static string HashOfFile(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}

/// <summary>An upload longer than its configured limit (HTTP 413).</summary>
public sealed class PayloadTooLargeException(long limit) : Exception($"The upload is larger than the limit of {limit} bytes.")
{
    /// <summary>The limit in bytes.</summary>
    public long Limit { get; } = limit;
}

/// <summary>Content a record names is not in the store (deleted meanwhile, or never committed).</summary>
public sealed class ArtifactMissingException(string sha256) : Exception($"The stored content {sha256} is missing.")
{
    /// <summary>The content's hash.</summary>
    public string Sha256 { get; } = sha256;
}
