using System.Security.Cryptography;
using System.Text;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace LambdaService.Api.Hosting;

/// <summary>
/// <c>Idempotency-Key</c> support for POSTs: the first request with a key creates the resource and the key is
/// remembered with a hash of the request; a repeat with the same key and the same request returns that
/// resource; the same key with a different request, or on another endpoint, is a 422. Keys are per tenant, not per
/// endpoint, so a key reused for another kind of resource cannot silently create a second resource.
/// </summary>
public sealed class Idempotency(MetadataStore store)
{
    /// <summary>The header.</summary>
    public const string Header = "Idempotency-Key";

    /// <summary>Outcome of a lookup.</summary>
    public enum Lookup
    {
        /// <summary>No key, or a new key: create the resource.</summary>
        New,

        /// <summary>Seen with this request: return <c>ResourceId</c>.</summary>
        Replay,

        /// <summary>Seen with a different request.</summary>
        Mismatch,
    }

    /// <summary>
    /// Removes the key that <see cref="Create"/> remembered for <paramref name="resourceId"/>, inside the transaction that withdraws the
    /// resource again (its request failed after all, e.g. the job could not be enqueued): a key must not point at a resource that does
    /// not exist, and the client's retry with the same key must create it. Resource ids are new for each request, so the one key that
    /// names it is this request's.
    /// </summary>
    public static void Forget(IDb db, string? key, string resourceId)
    {
        if (string.IsNullOrEmpty(key)) return;
        db.Execute("DELETE FROM idempotency WHERE ResourceId = ?", resourceId);
    }

    /// <summary>Hash of the parts that identify a request.</summary>
    public static string HashOf(params string?[] parts) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\u001f", parts.Select(p => p ?? "\u0000")))));

    /// <summary>Looks a key up.</summary>
    public (Lookup Result, string? ResourceId) Find(string tenant, string? key, string resourceType, string requestHash)
    {
        if (string.IsNullOrEmpty(key)) return (Lookup.New, null);
        var record = store.Read(db => db.Find<IdempotencyRecord>(Id(tenant, key)));
        if (record is null) return (Lookup.New, null);
        return (Same(record, resourceType, requestHash) ? Lookup.Replay : Lookup.Mismatch, record.ResourceId);
    }

    /// <summary>
    /// The answer to a POST whose key was seen before, or null for a new request (no key, or a new one): the same key
    /// with a different body is a 422 naming the header; with the same body, the resource it created (<paramref name="find"/>
    /// by id, answered by <paramref name="accepted"/>), or a 404 when that resource is gone.
    /// </summary>
    /// <param name="tenant">The caller's tenant (keys are per tenant and resource type).</param>
    /// <param name="key">The request's <c>Idempotency-Key</c>, if any.</param>
    /// <param name="resourceType">e.g. <c>measurement</c>; also the kind named by the 404.</param>
    /// <param name="requestHash"><see cref="HashOf"/> of the request.</param>
    /// <param name="find">Finds the tenant's resource by id.</param>
    /// <param name="accepted">The response for the resource found.</param>
    public Results<AcceptedAtRoute<TAccepted>, ProblemHttpResult>? Answer<TAccepted, TResource>(string tenant, string? key, string resourceType,
        string requestHash, Func<string, TResource?> find, Func<TResource, AcceptedAtRoute<TAccepted>> accepted)
        where TResource : class
    {
        var (lookup, existing) = Find(tenant, key, resourceType, requestHash);
        return Respond(lookup, existing, resourceType, find, accepted);
    }

    /// <summary>The response for a key seen before (<see cref="Answer"/>), or null for <see cref="Lookup.New"/>.</summary>
    public static Results<AcceptedAtRoute<TAccepted>, ProblemHttpResult>? Respond<TAccepted, TResource>(Lookup lookup, string? existing, string resourceType,
        Func<string, TResource?> find, Func<TResource, AcceptedAtRoute<TAccepted>> accepted)
        where TResource : class
    {
        switch (lookup)
        {
            case Lookup.Mismatch:
                return Problems.Field(StatusCodes.Status422UnprocessableEntity, Header, MismatchDetail);
            case Lookup.Replay:
                return find(existing!) is { } previous ? accepted(previous) : Problems.NotFound(resourceType, existing!);
            default:
                return null;
        }
    }

    /// <summary>The answer to an upload whose key was seen before: a 422 for another upload, else the resource it created (201) or a 404 when it is gone.</summary>
    public static Results<Created<TResponse>, ProblemHttpResult> ReplayUpload<TResponse, TRecord>(Lookup lookup, string id, string resourceType,
        Func<string, TRecord?> find, Func<TRecord, Created<TResponse>> created)
        where TRecord : class
    {
        if (lookup == Lookup.Mismatch)
        {
            return Problems.Field(StatusCodes.Status422UnprocessableEntity, Header, MismatchDetail);
        }
        return find(id) is { } previous ? created(previous) : Problems.NotFound(resourceType, id);
    }

    /// <summary>
    /// Creates a resource and remembers its key in one transaction: <paramref name="insert"/> runs only when this request is the
    /// first with the key (or has none). When another request with the same key got there first — on this process or on another
    /// API replica on the same database, even at the same moment — nothing is inserted and that request's resource id comes back
    /// (<see cref="Lookup.Replay"/>, or <see cref="Lookup.Mismatch"/> when its body differed). The key's row is the lock: a second
    /// transaction inserting the same key waits for the first and then sees it.
    /// </summary>
    public (Lookup Result, string ResourceId) Create(string tenant, string? key, string resourceType, string requestHash, string resourceId, Action<IDb> insert) =>
        store.Write(db =>
        {
            if (!string.IsNullOrEmpty(key))
            {
                var record = new IdempotencyRecord
                {
                    TenantKey = Id(tenant, key), RequestHash = requestHash, ResourceType = resourceType, ResourceId = resourceId, CreatedAt = DateTime.UtcNow,
                };
                if (!db.InsertIfAbsent(record))
                {
                    var winner = db.Find<IdempotencyRecord>(record.TenantKey)!;
                    return (Same(winner, resourceType, requestHash) ? Lookup.Replay : Lookup.Mismatch, winner.ResourceId);
                }
            }
            insert(db);
            return (Lookup.New, resourceId);
        });

    private const string MismatchDetail =
        "this Idempotency-Key was used before with a different request (another body, or another endpoint); use a new key for a new request.";

    private static bool Same(IdempotencyRecord record, string resourceType, string requestHash) =>
        record.ResourceType == resourceType && record.RequestHash == requestHash;

    private static string Id(string tenant, string key) => $"{tenant}/{key}";
}
