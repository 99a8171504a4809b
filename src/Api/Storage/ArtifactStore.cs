using System.Security.Cryptography;
using LambdaService.Api.Hosting;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Storage;

/// <summary>
/// Content-addressed files under <c>{Storage:Root}/artifacts/ab/abcdef…</c> (lower-case SHA-256). Uploads
/// stream to a temporary file in the same folder tree while hashed, then move into place; identical
/// uploads share one file. Nothing outside the root is ever written.
/// </summary>
public sealed class ArtifactStore(IOptions<StorageOptions> options)
{
    private readonly string _root = Path.Combine(options.Value.FullRoot, "artifacts");
    private readonly string _tmp = Path.Combine(options.Value.FullRoot, "tmp");

    /// <summary>A stored file: its hash, size and path.</summary>
    public sealed record Stored(string Sha256, long SizeBytes, string Path);

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

    /// <summary>Moves a staged file into the store (or drops it when the content is already there).</summary>
    public Stored Commit(Stored staged)
    {
        var target = PathOf(staged.Sha256);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (File.Exists(target))
        {
            File.Delete(staged.Path);
        }
        else
        {
            File.Move(staged.Path, target, overwrite: true);
        }
        return staged with { Path = target };
    }

    /// <summary>Stages the file at <paramref name="path"/> (a file this service wrote, e.g. a training run's export) and commits it.</summary>
    public async Task<Stored> AddFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        return Commit(await StageAsync(source, long.MaxValue, cancellationToken));
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

    /// <summary>The path of the content with this hash (which must be 64 hex digits).</summary>
    public string PathOf(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower)) throw new ArgumentException("Not a SHA-256 hex digest.", nameof(sha256));
        return Path.Combine(_root, sha256[..2], sha256);
    }

    /// <summary>Deletes content no record refers to any more.</summary>
    public void DeleteIfExists(string sha256)
    {
        var path = PathOf(sha256);
        if (File.Exists(path)) File.Delete(path);
    }
}

/// <summary>An upload longer than its configured limit (HTTP 413).</summary>
public sealed class PayloadTooLargeException(long limit) : Exception($"The upload is larger than the limit of {limit} bytes.")
{
    /// <summary>The limit in bytes.</summary>
    public long Limit { get; } = limit;
}
