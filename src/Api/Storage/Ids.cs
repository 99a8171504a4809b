namespace LambdaService.Api.Storage;

/// <summary>Ids of stored records: a kind prefix (<c>mdl</c>, <c>dst</c>, <c>msr</c>, <c>trn</c>, <c>swp</c>) and a random GUID.</summary>
public static class Ids
{
    /// <summary>A new id <c>{prefix}_{32 hex digits}</c>.</summary>
    public static string New(string prefix) => $"{prefix}_{Guid.NewGuid():N}";
}
