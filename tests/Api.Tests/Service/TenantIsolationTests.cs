using System.Net;

namespace LambdaService.Api.Tests.Service;

public class TenantIsolationTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    [Fact]
    public async Task Another_tenant_sees_none_of_a_tenants_models_datasets_or_measurements()
    {
        using var a = fixture.Service.Client(ServiceProcess.KeyA);
        using var b = fixture.Service.Client(ServiceProcess.KeyB);
        var model = await ApiClient.UploadId(a, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(a, "v1/datasets", fixture.Files.Csv);
        var job = await ApiClient.SubmitId(a, new { modelId = model, datasetId = dataset, maxPoints = 4 });

        await ApiClient.Problem(await b.GetAsync($"v1/models/{model}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await b.GetAsync($"v1/datasets/{dataset}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await b.GetAsync($"v1/measurements/{job}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await b.DeleteAsync($"v1/models/{model}"), HttpStatusCode.NotFound);
        await ApiClient.Problem(await b.DeleteAsync($"v1/measurements/{job}"), HttpStatusCode.NotFound);
        Assert.DoesNotContain((await ApiClient.Get(b, "v1/models"))["items"]!.AsArray(), m => m!["id"]!.GetValue<string>() == model);
        Assert.DoesNotContain((await ApiClient.Get(b, "v1/measurements"))["items"]!.AsArray(), m => m!["id"]!.GetValue<string>() == job);
        var problem = await ApiClient.Problem(await ApiClient.Submit(b, new { modelId = model, datasetId = dataset }), HttpStatusCode.BadRequest);
        Assert.Equal("modelId", problem.GetProperty("field").GetString());

        Assert.Equal("succeeded", (await ApiClient.WaitFor(a, job, TimeSpan.FromMinutes(1)))["status"]!.GetValue<string>());
    }
}
