using LambdaService.Api.Storage;

namespace LambdaService.Api.Datasets;

/// <summary>Tenant-scoped reads of dataset records, shared by the endpoints that take a dataset.</summary>
public static class DatasetRecords
{
    /// <summary>The caller's dataset with this id, or null (another tenant's is null too).</summary>
    public static DatasetRecord? Find(MetadataStore store, string tenant, string id) =>
        store.Read(db => db.Query<DatasetRecord>("SELECT * FROM datasets WHERE Id = ? AND Tenant = ?", id, tenant).FirstOrDefault());
}
