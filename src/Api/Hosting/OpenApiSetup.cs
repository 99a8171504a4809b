using LambdaService.Api.Auth;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace LambdaService.Api.Hosting;

/// <summary>The OpenAPI document (<c>/openapi/v1.json</c>) with the API-key scheme, and Swagger UI at <c>/swagger</c>.</summary>
public static class OpenApiSetup
{
    /// <summary>Registers the document and its transformers.</summary>
    public static IServiceCollection AddLambdaOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "LambdaService",
                    Version = "v1",
                    Description = "The curvature rate λ of neural networks: upload a model (ONNX or TorchScript) and data, submit a "
                        + "measurement, poll it until it has succeeded. Every call but /healthz and /readyz needs an API key "
                        + "(header X-Api-Key; in Swagger UI use Authorize).",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiKeyAuthenticationHandler.SchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.ApiKey,
                    In = ParameterLocation.Header,
                    Name = ApiKeyAuthenticationHandler.Header,
                    Description = "Your API key (configured as Auth:ApiKeys, or generated and logged at first start).",
                };
                document.Security ??= [];
                document.Security.Add(new OpenApiSecurityRequirement
                {
                    [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, document)] = [],
                });
                return Task.CompletedTask;
            });
            OpenApiContract.Apply(options);
            options.AddSchemaTransformer((schema, context, _) =>
            {
                if (context.JsonTypeInfo.Type == typeof(Measurements.MeasurementRequest))
                {
                    schema.Examples ??= [];
                    schema.Examples.Add(System.Text.Json.Nodes.JsonNode.Parse("""
                        { "modelId": "mdl_…", "datasetId": "ds_…", "target": "loss", "points": "all", "orders": { "min": 1, "max": 4 }, "directions": 4, "maxPoints": 256, "seed": 0 }
                        """)!);
                }
                if (context.JsonTypeInfo.Type == typeof(Training.TrainingRunRequest))
                {
                    schema.Examples ??= [];
                    schema.Examples.Add(System.Text.Json.Nodes.JsonNode.Parse("""
                        { "dataset": { "builtin": "two-moons", "samples": 1000, "labelNoise": 0.3 }, "method": "crr", "crr": { "scale": 0.003, "orders": { "min": 2, "max": 3 } }, "epochs": 50, "seed": 0 }
                        """)!);
                }
                return Task.CompletedTask;
            });
        });

    /// <summary>Serves the document and Swagger UI (with the Authorize button for X-Api-Key).</summary>
    public static WebApplication MapLambdaOpenApi(this WebApplication app)
    {
        app.MapOpenApi().AllowAnonymous();
        app.UseSwaggerUI(ui =>
        {
            ui.SwaggerEndpoint("/openapi/v1.json", "LambdaService v1");
            ui.RoutePrefix = "swagger";
            ui.DocumentTitle = "LambdaService";
            ui.EnableDeepLinking();
            ui.EnableTryItOutByDefault();
            ui.EnablePersistAuthorization();
        });
        return app;
    }
}
