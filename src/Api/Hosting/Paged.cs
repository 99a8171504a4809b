namespace LambdaService.Api.Hosting;

/// <summary>A page of a list, newest first.</summary>
public sealed record Paged<T>(IReadOnlyList<T> Items, int Page, int PageSize, int Total)
{
    /// <summary>Clamps query values: page ≥ 1, 1 ≤ pageSize ≤ 100.</summary>
    public static (int Page, int PageSize) Clamp(int page, int pageSize) => (Math.Max(1, page), Math.Clamp(pageSize, 1, 100));
}
