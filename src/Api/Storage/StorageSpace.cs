using LambdaService.Api.Hosting;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Storage;

/// <summary>
/// Room on the file system under <c>Storage:Root</c>: the free space against the floor <c>Storage:MinFreeMb</c> (a <c>statvfs</c>,
/// cheap enough for every upload and submission) and, for <c>/readyz</c>, whether a small file can be written there at all
/// (README: Storage, <c>/readyz</c>).
/// </summary>
public sealed class StorageSpace(IOptions<StorageOptions> options, ILogger<StorageSpace> logger)
{
    private const long Mib = 1L << 20;

    /// <summary>Bytes written by the readiness probe: one page, so that a file system with no free block refuses it.</summary>
    private const int ProbeBytes = 4096;

    private readonly string _root = options.Value.FullRoot;
    private readonly long _floorBytes = options.Value.MinFreeMb * Mib;

    /// <summary>Bytes this process may still write under the root, or null when the file system does not say.</summary>
    public long? FreeBytes()
    {
        try
        {
            return new DriveInfo(_root).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            logger.LogWarning(e, "Free space under {Root} is not known", _root);
            return null;
        }
    }

    /// <summary>Refuses a write before it starts when the free space is under the floor.</summary>
    /// <exception cref="InsufficientStorageException">Less than <c>Storage:MinFreeMb</c> is free.</exception>
    /// <remarks>The refusal is logged where it becomes the request's 507 (<see cref="Hosting.CallerErrorHandler"/>).</remarks>
    public void EnsureRoom()
    {
        if (Shortfall() is not { } shortfall) return;
        throw new InsufficientStorageException($"the service's storage is almost full: {shortfall}. Nothing was stored; retry once space has been freed.");
    }

    /// <summary>Why the root cannot take writes now (below the floor, full, read-only, missing), or null when it can.</summary>
    public string? NotReady()
    {
        if (Shortfall() is { } shortfall) return shortfall;
        var probe = Path.Combine(_root, $".ready-{Guid.NewGuid():N}");
        try
        {
            using (var file = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
                file.Write(new byte[ProbeBytes]);
                file.Flush();
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kind = StorageErrors.Classify(e) switch
            {
                StorageFailure.Full => "full (no space left on the disk or quota)",
                StorageFailure.ReadOnly => "read-only",
                _ => "not writable",
            };
            logger.LogWarning(e, "The data folder {Root} is {Kind}", _root, kind);
            return $"the data folder (Storage:Root) is {kind}";
        }
        finally
        {
            TryDelete(probe);
        }
    }

    /// <summary>What is missing under the floor, or null when there is enough (or no floor, or the size is not known).</summary>
    private string? Shortfall()
    {
        if (_floorBytes <= 0 || FreeBytes() is not { } free || free >= _floorBytes) return null;
        return $"{free / Mib} MiB free in the data folder (Storage:Root), below the floor of {_floorBytes / Mib} MiB (Storage:MinFreeMb)";
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Could not delete the readiness probe {Path}", path);
        }
    }
}
