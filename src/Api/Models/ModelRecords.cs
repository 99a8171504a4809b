using System.Text.Json;
using LambdaService.Api.Storage;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Models;

/// <summary>Tenant-scoped reads of model records and their response shape, shared by the endpoints that take a model.</summary>
public static class ModelRecords
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The caller's model with this id, or null (another tenant's is null too).</summary>
    public static ModelRecord? Find(MetadataStore store, string tenant, string id) =>
        store.Read(db => db.Query<ModelRecord>("SELECT * FROM models WHERE Id = ? AND Tenant = ?", id, tenant).FirstOrDefault());

    /// <summary>The record as the API shows it (its inputs and outputs read from their stored JSON, times as UTC).</summary>
    public static ModelResponse ToResponse(ModelRecord r) => new(
        r.Id, r.Name, r.Format, r.Sha256, r.SizeBytes,
        JsonSerializer.Deserialize<List<TensorInfo>>(r.InputsJson, Json)!,
        JsonSerializer.Deserialize<List<TensorInfo>>(r.OutputsJson, Json)!,
        DateTime.SpecifyKind(r.CreatedAt, DateTimeKind.Utc));
}
