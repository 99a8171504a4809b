using System.ComponentModel;
using System.Security.Claims;
using System.Text.Json;
using LambdaService.Api.Auth;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using LambdaService.Measurement;
using LambdaService.Measurement.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Datasets;

/// <summary>An uploaded dataset.</summary>
public sealed record DatasetResponse(
    string Id,
    string Name,
    [property: Description("npz, npy or csv.")] string Format,
    string Sha256,
    long SizeBytes,
    [property: Description("Number of samples.")] int Rows,
    [property: Description("Shape of one sample.")] int[] Shape,
    bool HasLabels,
    [property: Description("Classes implied by the labels (largest label + 1); 0 without labels.")] int Classes,
    DateTime CreatedAt);

/// <summary><c>/v1/datasets</c>: upload, list, read and delete datasets.</summary>
public static class DatasetEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapDatasets(this IEndpointRouteBuilder app, LimitsOptions limits)
    {
        var group = app.MapGroup("/v1/datasets").WithTags("Datasets").RequireAuthorization();
        group.MapPost("/", Upload).WithName("UploadDataset").WithSummary("Upload data: .npz (x, optional y), .npy or CSV (multipart field 'file', optional 'labelColumn').")
            .DisableAntiforgery().WithFormOptions(multipartBodyLengthLimit: limits.MaxDatasetBytes + (1 << 20))
            .WithMetadata(new RequestSizeLimitAttribute(limits.MaxDatasetBytes + (1 << 20)));
        group.MapGet("/", List).WithName("ListDatasets").WithSummary("List your datasets, newest first.");
        group.MapGet("/{id}", Get).WithName("GetDataset").WithSummary("A dataset's shape and labels.");
        group.MapDelete("/{id}", Delete).WithName("DeleteDataset").WithSummary("Delete a dataset.");
        return app;
    }

    /// <summary>POST /v1/datasets.</summary>
    public static async Task<Results<Created<DatasetResponse>, ProblemHttpResult>> Upload(
        IFormFile file, [FromForm] string? labelColumn, [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user, ArtifactStore artifacts, MetadataStore store, Idempotency idempotency, StorageSpace space, IOptions<LimitsOptions> limits,
        CancellationToken cancellationToken)
    {
        if (RequestLimits.CheckName(labelColumn, "labelColumn") is { } longName) return longName;
        var tenant = user.Tenant();
        space.EnsureRoom();
        ArtifactStore.Stored staged;
        await using (var stream = file.OpenReadStream())
        {
            staged = await artifacts.StageAsync(stream, limits.Value.MaxDatasetBytes, cancellationToken);
        }
        var name = DisplayNames.Clean(file.FileName) ?? "data";
        var hash = Idempotency.HashOf(staged.Sha256, name, labelColumn);
        var (lookup, existing) = idempotency.Find(tenant, idempotencyKey, "dataset", hash);
        if (lookup != Idempotency.Lookup.New)
        {
            ArtifactStore.Discard(staged);
            return Replay(lookup, existing, tenant, store);
        }
        Dataset data;
        try
        {
            await using var content = File.OpenRead(staged.Path);
            data = DatasetReader.Read(content, name, new DataReadOptions
            {
                LabelColumn = string.IsNullOrWhiteSpace(labelColumn) ? "label" : labelColumn,
                MaxDecompressedBytes = limits.Value.MaxDecompressedBytes,
            });
        }
        catch (MeasurementInputException e)
        {
            ArtifactStore.Discard(staged);
            var field = e.Field == "labelColumn" ? "labelColumn" : "file";
            return Problems.Field(StatusCodes.Status422UnprocessableEntity, field, e.Message);
        }
        var record = new DatasetRecord
        {
            Id = Ids.New("ds"),
            Tenant = tenant,
            Name = name,
            Format = data.Format,
            Sha256 = staged.Sha256,
            SizeBytes = staged.SizeBytes,
            Rows = data.Rows,
            ShapeJson = JsonSerializer.Serialize(data.SampleShape, Json),
            HasLabels = data.Labels is not null,
            Classes = data.LabelClasses,
            LabelColumn = string.IsNullOrWhiteSpace(labelColumn) ? null : labelColumn,
            CreatedAt = DateTime.UtcNow,
        };
        var (created, id) = await artifacts.CommitAndRecordAsync(staged, record.Id,
            () => idempotency.Create(tenant, idempotencyKey, "dataset", hash, record.Id, db => db.Insert(record)), cancellationToken);
        if (created == Idempotency.Lookup.New) ServiceMetrics.UploadAccepted("dataset", staged.SizeBytes);
        return created == Idempotency.Lookup.New ? TypedResults.Created($"/v1/datasets/{record.Id}", ToResponse(record)) : Replay(created, id, tenant, store);
    }

    private static Results<Created<DatasetResponse>, ProblemHttpResult> Replay(Idempotency.Lookup lookup, string? id, string tenant, MetadataStore store) =>
        Idempotency.ReplayUpload(lookup, id!, "dataset", existing => DatasetRecords.Find(store, tenant, existing), r => TypedResults.Created($"/v1/datasets/{r.Id}", ToResponse(r)));

    /// <summary>GET /v1/datasets.</summary>
    public static Ok<Paged<DatasetResponse>> List(ClaimsPrincipal user, MetadataStore store, int page = 1, int pageSize = 20)
    {
        var tenant = user.Tenant();
        (page, pageSize) = Paged<DatasetResponse>.Clamp(page, pageSize);
        var (items, total) = store.Read(db => (
            db.Query<DatasetRecord>("SELECT * FROM datasets WHERE Tenant = ? ORDER BY CreatedAt DESC, Id DESC LIMIT ? OFFSET ?", tenant, pageSize, (page - 1) * pageSize),
            db.ExecuteScalar<int>("SELECT COUNT(*) FROM datasets WHERE Tenant = ?", tenant)));
        return TypedResults.Ok(new Paged<DatasetResponse>(items.Select(ToResponse).ToList(), page, pageSize, total));
    }

    /// <summary>GET /v1/datasets/{id}.</summary>
    public static Results<Ok<DatasetResponse>, ProblemHttpResult> Get(string id, ClaimsPrincipal user, MetadataStore store)
    {
        var record = DatasetRecords.Find(store, user.Tenant(), id);
        return record is null ? Problems.NotFound("dataset", id) : TypedResults.Ok(ToResponse(record));
    }

    /// <summary>DELETE /v1/datasets/{id}.</summary>
    public static Results<NoContent, ProblemHttpResult> Delete(string id, ClaimsPrincipal user, MetadataStore store, ArtifactStore artifacts)
    {
        var record = DatasetRecords.Find(store, user.Tenant(), id);
        if (record is null) return Problems.NotFound("dataset", id);
        var unused = store.Write(db =>
        {
            db.Delete<DatasetRecord>(record.Id);
            return MetadataStore.ArtifactUnused(db, record.Sha256, record.Id);
        });
        if (unused) artifacts.DeleteIfExists(record.Sha256);
        return TypedResults.NoContent();
    }

    private static DatasetResponse ToResponse(DatasetRecord r) => new(
        r.Id, r.Name, r.Format, r.Sha256, r.SizeBytes, r.Rows, JsonSerializer.Deserialize<int[]>(r.ShapeJson, Json)!, r.HasLabels, r.Classes,
        DateTime.SpecifyKind(r.CreatedAt, DateTimeKind.Utc));
}
