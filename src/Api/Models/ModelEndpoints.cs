using System.ComponentModel;
using System.Security.Claims;
using System.Text.Json;
using LambdaService.Api.Auth;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using LambdaService.Measurement;
using LambdaService.Measurement.Models;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Models;

/// <summary>An uploaded model.</summary>
public sealed record ModelResponse(
    [property: Description("Model id.")] string Id,
    [property: Description("Name given at upload (default: the file name).")] string Name,
    [property: Description("onnx or torchscript.")] string Format,
    [property: Description("SHA-256 of the file.")] string Sha256,
    long SizeBytes,
    [property: Description("Inputs: name, shape (−1 = not fixed), element type. TorchScript files do not declare shapes.")] IReadOnlyList<TensorInfo> Inputs,
    [property: Description("Outputs as declared by the file.")] IReadOnlyList<TensorInfo> Outputs,
    DateTime CreatedAt);

/// <summary><c>/v1/models</c>: upload, list, read and delete models.</summary>
public static class ModelEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Maps the endpoints.</summary>
    public static IEndpointRouteBuilder MapModels(this IEndpointRouteBuilder app, LimitsOptions limits)
    {
        var group = app.MapGroup("/v1/models").WithTags("Models").RequireAuthorization();
        group.MapPost("/", Upload).WithName("UploadModel").WithSummary("Upload an ONNX or TorchScript model (multipart field 'file', optional 'name').")
            .DisableAntiforgery().WithFormOptions(multipartBodyLengthLimit: limits.MaxModelBytes + (1 << 20))
            .WithMetadata(new RequestSizeLimitAttribute(limits.MaxModelBytes + (1 << 20)));
        group.MapGet("/", List).WithName("ListModels").WithSummary("List your models, newest first.");
        group.MapGet("/{id}", Get).WithName("GetModel").WithSummary("A model's signature and hash.");
        group.MapDelete("/{id}", Delete).WithName("DeleteModel").WithSummary("Delete a model (measurements that used it keep their results).");
        return app;
    }

    /// <summary>POST /v1/models.</summary>
    public static async Task<Results<Created<ModelResponse>, ProblemHttpResult>> Upload(
        IFormFile file, [FromForm] string? name, [FromHeader(Name = Idempotency.Header)] string? idempotencyKey,
        ClaimsPrincipal user, ArtifactStore artifacts, MetadataStore store, Idempotency idempotency, StorageSpace space, IOptions<LimitsOptions> limits,
        CancellationToken cancellationToken)
    {
        if (RequestLimits.CheckName(name, "name") is { } longName) return longName;
        var tenant = user.Tenant();
        space.EnsureRoom();
        ArtifactStore.Stored staged;
        await using (var stream = file.OpenReadStream())
        {
            staged = await artifacts.StageAsync(stream, limits.Value.MaxModelBytes, cancellationToken);
        }
        var displayName = DisplayNames.Clean(name) ?? DisplayNames.Clean(file.FileName) ?? "model";
        var hash = Idempotency.HashOf(staged.Sha256, displayName);
        var (lookup, existing) = idempotency.Find(tenant, idempotencyKey, "model", hash);
        if (lookup != Idempotency.Lookup.New)
        {
            ArtifactStore.Discard(staged);
            return Replay(lookup, existing, tenant, store);
        }
        ModelFile model;
        try
        {
            model = ModelFile.Open(staged.Path);
        }
        catch (MeasurementInputException e)
        {
            ArtifactStore.Discard(staged);
            return Problems.Field(StatusCodes.Status422UnprocessableEntity, "file", e.Message.Replace(staged.Path, displayName, StringComparison.Ordinal));
        }
        var record = new ModelRecord
        {
            Id = Ids.New("mdl"),
            Tenant = tenant,
            Name = displayName,
            Format = model.Format == ModelFormat.Onnx ? "onnx" : "torchscript",
            Sha256 = staged.Sha256,
            SizeBytes = staged.SizeBytes,
            InputsJson = JsonSerializer.Serialize(model.Inputs, Json),
            OutputsJson = JsonSerializer.Serialize(model.Outputs, Json),
            CreatedAt = DateTime.UtcNow,
        };
        var (created, id) = await artifacts.CommitAndRecordAsync(staged, record.Id,
            () => idempotency.Create(tenant, idempotencyKey, "model", hash, record.Id, db => db.Insert(record)), cancellationToken);
        if (created == Idempotency.Lookup.New) ServiceMetrics.UploadAccepted("model", staged.SizeBytes);
        return created == Idempotency.Lookup.New ? TypedResults.Created($"/v1/models/{record.Id}", ModelRecords.ToResponse(record)) : Replay(created, id, tenant, store);
    }

    private static Results<Created<ModelResponse>, ProblemHttpResult> Replay(Idempotency.Lookup lookup, string? id, string tenant, MetadataStore store) =>
        Idempotency.ReplayUpload(lookup, id!, "model", existing => ModelRecords.Find(store, tenant, existing), r => TypedResults.Created($"/v1/models/{r.Id}", ModelRecords.ToResponse(r)));

    /// <summary>GET /v1/models.</summary>
    public static Ok<Paged<ModelResponse>> List(ClaimsPrincipal user, MetadataStore store, int page = 1, int pageSize = 20)
    {
        var tenant = user.Tenant();
        (page, pageSize) = Paged<ModelResponse>.Clamp(page, pageSize);
        var (items, total) = store.Read(db => (
            db.Query<ModelRecord>("SELECT * FROM models WHERE Tenant = ? ORDER BY CreatedAt DESC, Id DESC LIMIT ? OFFSET ?", tenant, pageSize, (page - 1) * pageSize),
            db.ExecuteScalar<int>("SELECT COUNT(*) FROM models WHERE Tenant = ?", tenant)));
        return TypedResults.Ok(new Paged<ModelResponse>(items.Select(ModelRecords.ToResponse).ToList(), page, pageSize, total));
    }

    /// <summary>GET /v1/models/{id}.</summary>
    public static Results<Ok<ModelResponse>, ProblemHttpResult> Get(string id, ClaimsPrincipal user, MetadataStore store)
    {
        var record = ModelRecords.Find(store, user.Tenant(), id);
        return record is null ? Problems.NotFound("model", id) : TypedResults.Ok(ModelRecords.ToResponse(record));
    }

    /// <summary>DELETE /v1/models/{id}.</summary>
    public static Results<NoContent, ProblemHttpResult> Delete(string id, ClaimsPrincipal user, MetadataStore store, ArtifactStore artifacts)
    {
        var tenant = user.Tenant();
        var record = ModelRecords.Find(store, tenant, id);
        if (record is null) return Problems.NotFound("model", id);
        var unused = store.Write(db =>
        {
            db.Delete<ModelRecord>(record.Id);
            return MetadataStore.ArtifactUnused(db, record.Sha256, record.Id);
        });
        if (unused) artifacts.DeleteIfExists(record.Sha256);
        return TypedResults.NoContent();
    }
}
