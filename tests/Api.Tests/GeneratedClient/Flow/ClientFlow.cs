// Compiled at test time with the Kiota client generated from the served /openapi/v1.json (namespace
// LambdaService.Generated); never compiled into the test project itself. Every type used below comes from the
// generated code: if the document stops describing a field, an enum value or an error response, this fails to compile.
using System;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using LambdaService.Generated;
using LambdaService.Generated.Models;
using Microsoft.Kiota.Abstractions;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Http.HttpClientLibrary;
using Xunit;

namespace LambdaService.Tests.GeneratedFlow;

public static class ClientFlow
{
    /// <summary>Upload, measure, poll, read λ and orders, plot, train, read history, and a typed problem.</summary>
    public static async Task RunAsync(string baseUrl, string apiKey, string modelPath, string dataPath, CancellationToken ct)
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        var adapter = new HttpClientRequestAdapter(new AnonymousAuthenticationProvider(), httpClient: http) { BaseUrl = baseUrl.TrimEnd('/') };
        var client = new LambdaClient(adapter);

        // Uploads: multipart with a binary file part.
        var modelBody = new MultipartBody();
        modelBody.AddOrReplacePart("file", "application/octet-stream", File.ReadAllBytes(modelPath), Path.GetFileName(modelPath));
        modelBody.AddOrReplacePart("name", "text/plain", "generated-client-mlp");
        var model = await client.V1.Models.PostAsync(modelBody, cancellationToken: ct);
        Assert.NotNull(model);
        Assert.StartsWith("mdl_", model!.Id);
        Assert.Equal(ModelResponse_format.Onnx, model.Format);
        Assert.Equal("generated-client-mlp", model.Name);

        var dataBody = new MultipartBody();
        dataBody.AddOrReplacePart("file", "application/octet-stream", File.ReadAllBytes(dataPath), Path.GetFileName(dataPath));
        var dataset = await client.V1.Datasets.PostAsync(dataBody, cancellationToken: ct);
        Assert.Equal(DatasetResponse_format.Csv, dataset!.Format);
        Assert.True(dataset.HasLabels);

        // A measurement, polled to the end, with a typed result.
        var accepted = await client.V1.Measurements.PostAsync(new MeasurementRequest
        {
            ModelId = model.Id,
            DatasetId = dataset.Id,
            Orders = new OrderRange { Min = 1, Max = 4 },
            Engine = MeasurementRequest_engine.Taylor,
            Directions = 2,
            MaxPoints = 32,
            Seed = 3,
        }, cancellationToken: ct);
        Assert.Equal(MeasurementAccepted_status.Queued, accepted!.Status);
        var measurement = await client.V1.Measurements[accepted.Id!].GetAsync(cancellationToken: ct);
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (measurement!.Status is MeasurementResponse_status.Queued or MeasurementResponse_status.Running && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
            measurement = await client.V1.Measurements[accepted.Id!].GetAsync(cancellationToken: ct);
        }
        Assert.Equal(MeasurementResponse_status.Succeeded, measurement.Status);
        var result = measurement.Result!;
        Assert.Equal(MeasurementResult_engine.Taylor, result.Engine);
        Assert.True(result.Lambda is > -20 and < 20, $"λ = {result.Lambda}");
        Assert.Equal(new[] { 1, 2, 3, 4 }, result.Orders!.Select(o => o.N!.Value));
        Assert.All(result.Orders!, o => Assert.True(o.Norm > 0 && o.UsedInFit == true));
        // λ is the least-squares slope of log v_n against n: recomputed here from the typed orders.
        var xs = result.Orders!.Select(o => (double)o.N!.Value).ToArray();
        var ys = result.Orders!.Select(o => o.LogNorm!.Value).ToArray();
        double mx = xs.Average(), my = ys.Average();
        var slope = xs.Zip(ys).Sum(p => (p.First - mx) * (p.Second - my)) / xs.Sum(x => (x - mx) * (x - mx));
        Assert.Equal(slope, result.Lambda!.Value, 9);
        Assert.Equal(2, result.Ci95!.Count);
        Assert.Null(measurement.Error);

        // The plot: binary PNG bytes.
        await using (var png = await client.V1.Measurements[accepted.Id!].Plot.GetAsync(c => c.QueryParameters.Format = LambdaService.Generated.V1.Measurements.Item.Plot.GetFormatQueryParameterType.Png, ct))
        {
            using var buffer = new MemoryStream();
            await png!.CopyToAsync(buffer, ct);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, buffer.ToArray()[..4]);
        }

        // A training run with a typed history.
        var run = await client.V1.TrainingRuns.PostAsync(new TrainingRunRequest
        {
            Dataset = new TrainingDatasetRequest { Builtin = TrainingDatasetRequest_builtin.TwoMoons, Samples = 200 },
            Method = TrainingRunRequest_method.Crr,
            Epochs = 2,
            Seed = 1,
        }, cancellationToken: ct);
        var training = await client.V1.TrainingRuns[run!.Id!].GetAsync(cancellationToken: ct);
        deadline = DateTime.UtcNow.AddMinutes(3);
        while (training!.Status is TrainingRunResponse_status.Queued or TrainingRunResponse_status.Running && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
            training = await client.V1.TrainingRuns[run.Id!].GetAsync(cancellationToken: ct);
        }
        Assert.Equal(TrainingRunResponse_status.Succeeded, training.Status);
        var history = training.Result!.History!;
        Assert.Equal(new[] { 1, 2 }, history.Select(h => h.Epoch!.Value));
        Assert.All(history, h => Assert.True(h.TestError is >= 0 and <= 1 && h.TrainLoss > 0));
        Assert.Equal(history[^1].TestError, training.Result.TestError);
        Assert.StartsWith("mdl_", training.Models!.Onnx);

        // A bad request: a typed problem naming the field.
        var problem = await Assert.ThrowsAsync<ProblemDetails>(() => client.V1.Measurements.PostAsync(new MeasurementRequest
        {
            ModelId = model.Id,
            DatasetId = dataset.Id,
            Orders = new OrderRange { Min = 3, Max = 2 },
        }, cancellationToken: ct));
        Assert.Equal(400, problem.Status);
        Assert.Equal("orders", problem.Field);
        Assert.False(string.IsNullOrWhiteSpace(problem.Detail));

        var missing = await Assert.ThrowsAsync<ProblemDetails>(() => client.V1.Measurements["msr_missing"].GetAsync(cancellationToken: ct));
        Assert.Equal(404, missing.ResponseStatusCode);
        Assert.Equal("id", missing.Field);
    }
}
