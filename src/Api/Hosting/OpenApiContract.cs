using System.Reflection;
using System.Text.Json.Nodes;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using LambdaService.Training;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using LambdaService.Api.Contracts;

namespace LambdaService.Api.Hosting;

/// <summary>
/// What the generated OpenAPI document does not say by itself, added by transformers so that clients generated from it
/// need no casts: typed results, enums, nullable references, problem responses, binary and multipart bodies.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Numbers: the service writes non-finite numbers as the strings <c>NaN</c>, <c>Infinity</c>, <c>-Infinity</c>
/// (System.Text.Json's named literals), so a double is <c>anyOf: [number, string enum]</c>; the generator marks that
/// union <c>type: object</c>, which no number satisfies, and that is removed.</item>
/// <item>Results: the stored result JSON of a measurement (<see cref="MeasurementResult"/>) and of a training run
/// (<see cref="TrainingResult"/>) is described by the schema of those records.</item>
/// <item>Errors: every operation under <c>/v1</c> can answer 401 (no or unknown key), 429 (rate limit) and 503 (database
/// unavailable); operations with a body 400, 409 (Idempotency-Key reused with another body) and 422; uploads 413; operations on
/// <c>{id}</c> 404; cancels and downloads 409. Each is <c>application/problem+json</c> with the <c>field</c> extension.</item>
/// </list>
/// </remarks>
public static class OpenApiContract
{
    private const string Problem = "ProblemDetails";

    private static readonly string[] JobStatuses = ["queued", "running", "succeeded", "failed", "canceled"];

    /// <summary>
    /// String properties whose values are a closed set but whose type is a string: (declaring record, JSON name) → values. Properties
    /// typed by an enum (the request bodies' <see cref="WordsAttribute"/> fields) need no entry: their words come from the enum.
    /// </summary>
    private static readonly Dictionary<(Type, string), IReadOnlyList<string>> Enums = new()
    {
        [(typeof(Measurements.MeasurementResponse), "status")] = JobStatuses,
        [(typeof(Measurements.MeasurementAccepted), "status")] = JobStatuses,
        [(typeof(Training.TrainingRunResponse), "status")] = JobStatuses,
        [(typeof(Training.TrainingRunAccepted), "status")] = JobStatuses,
        [(typeof(ResolvedConfig), "device")] = ComputeDevice.Choices,
        [(typeof(ResolvedConfig), "precision")] = ClosedSet.Words<ComputePrecision>(),
        // Not ModelFormat's words: results spell it torch-script (MeasurementResult.model.format), the model resource torchscript.
        [(typeof(Models.ModelResponse), "format")] = ["onnx", "torchscript"],
        [(typeof(Datasets.DatasetResponse), "format")] = ClosedSet.Words<Measurement.Data.DataFormat>(),
        // The engine that ran: never auto.
        [(typeof(MeasurementResult), "engine")] = [.. ClosedSet.Words<EngineChoice>().Where(w => w != ClosedSet.Word(EngineChoice.Auto))],
        // The result lists them in the other order than requests do.
        [(typeof(MeasurementResult), "precision")] = [.. ClosedSet.Words<ComputePrecision>().Reverse()],
    };

    /// <summary>Registers the transformers on the document's options.</summary>
    public static void Apply(OpenApiOptions options)
    {
        options.AddSchemaTransformer(TransformSchema);
        options.AddOperationTransformer(TransformOperation);
        options.AddDocumentTransformer(TransformDocumentAsync);
    }

    private static Task TransformSchema(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken cancellationToken)
    {
        // anyOf [number, NaN/Infinity literals] marked type: object by the generator.
        if (schema.AnyOf is { Count: > 0 } anyOf && anyOf.Any(s => s.Type == JsonSchemaType.Number))
        {
            schema.Type = null;
            foreach (var literal in anyOf.OfType<OpenApiSchema>().Where(s => s.Enum is { Count: > 0 } && s.Type is null)) literal.Type = JsonSchemaType.String;
        }
        if (context.JsonPropertyInfo is { } property && property.DeclaringType is { } declaring
            && Enums.TryGetValue((declaring, property.Name), out var values))
        {
            schema.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
        }
        else if (context.JsonPropertyInfo?.AttributeProvider is PropertyInfo typed && typed.GetCustomAttribute<WordsAttribute>() is not null)
        {
            // A closed set typed by an enum: a string (null where the property may be left out) of the enum's words.
            schema.Type = Nullable.GetUnderlyingType(typed.PropertyType) is null ? JsonSchemaType.String : JsonSchemaType.String | JsonSchemaType.Null;
            schema.Enum = [.. ClosedSet.Words(typed.PropertyType).Select(v => (JsonNode)JsonValue.Create(v))];
            // The generator leaves out the [Description] of a property with its own converter.
            schema.Description ??= typed.GetCustomAttribute<System.ComponentModel.DescriptionAttribute>()?.Description;
        }
        if (context.JsonTypeInfo.Type == typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))
        {
            schema.Properties ??= new Dictionary<string, IOpenApiSchema>();
            schema.Properties["field"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String | JsonSchemaType.Null,
                Description = "The request field (JSON path, query parameter, header or multipart field) at fault, e.g. orders or dataset.labelNoise.",
            };
            schema.AdditionalPropertiesAllowed = true;
        }
        return Task.CompletedTask;
    }

    private static Task TransformOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var description = context.Description;
        var path = "/" + (description.RelativePath ?? "").TrimStart('/');
        var method = description.HttpMethod ?? "GET";
        operation.Responses ??= [];
        var document = context.Document;

        // Multipart uploads: file as binary, name as text (the generator emits an allOf with a $ref to IFormFile).
        if (operation.RequestBody?.Content is { } content && content.TryGetValue("multipart/form-data", out var form))
        {
            form.Schema = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Required = new HashSet<string> { "file" },
                Properties = new Dictionary<string, IOpenApiSchema>
                {
                    ["file"] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "The file's bytes." },
                    ["name"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A display name (default: the file name)." },
                },
            };
        }

        // Binary downloads.
        string[]? binary = path.EndsWith("/plot", StringComparison.Ordinal) ? ["image/svg+xml", "image/png"]
            : path.EndsWith("/model", StringComparison.Ordinal) ? ["application/octet-stream"]
            : null;
        if (binary is not null && operation.Responses.TryGetValue("200", out var ok) && ok is OpenApiResponse okResponse)
        {
            okResponse.Description = binary.Length > 1 ? "The picture (the format parameter chooses SVG or PNG)." : "The model file (the format parameter chooses ONNX or TorchScript).";
            okResponse.Content = binary.ToDictionary(t => t, _ => new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" } });
        }

        // Query parameters with a closed set of words.
        foreach (var parameter in (operation.Parameters ?? []).OfType<OpenApiParameter>())
        {
            IReadOnlyList<string>? words = parameter.Name switch
            {
                "format" when path.EndsWith("/plot", StringComparison.Ordinal) => ClosedSet.Words<Plots.PlotFormat>(),
                "format" when path.EndsWith("/model", StringComparison.Ordinal) => ["onnx", "torchscript"],
                "status" => JobStatuses,
                _ => null,
            };
            if (words is not null && parameter.Schema is OpenApiSchema parameterSchema)
            {
                parameterSchema.Type = JsonSchemaType.String;
                parameterSchema.Enum = [.. words.Select(v => (JsonNode)JsonValue.Create(v))];
            }
        }

        if (!path.StartsWith("/v1/", StringComparison.Ordinal))
        {
            // Probes need no key; one that sends X-Api-Key counts against that key's rate limit like any request.
            AddProblem(operation, document, "429", "The request carried an X-Api-Key that is over its rate limit (probes need no key).");
            if (path == "/readyz")
            {
                AddProblem(operation, document, "503",
                    "Not ready: the database cannot be reached, the data folder is below Storage:MinFreeMb free or not writable (checks.storage says which), or no job worker is alive.");
            }
            return Task.CompletedTask;
        }
        var hasBody = method is "POST" or "PUT";
        var hasId = path.Contains("{id}", StringComparison.Ordinal);
        if (hasBody || hasId || operation.Parameters is { Count: > 0 }) AddProblem(operation, document, "400", "A field, query parameter or header is invalid; `field` names it.");
        AddProblem(operation, document, "401", "No API key or an unknown one (header X-Api-Key).");
        if (hasId) AddProblem(operation, document, "404", "No such resource for this API key (`field`: id).");
        if (hasBody || method == "DELETE" || binary is not null)
        {
            AddProblem(operation, document, "409", hasBody
                ? "The Idempotency-Key was used before with another body."
                : method == "DELETE" ? "The resource cannot be deleted or canceled in its state (e.g. a model in use, a job already finished)." : "The job has not succeeded (yet).");
        }
        if (hasBody && operation.RequestBody?.Content?.ContainsKey("multipart/form-data") == true) AddProblem(operation, document, "413", "The upload is larger than the configured limit.");
        if (hasBody) AddProblem(operation, document, "422", "The file or request is well formed but cannot be used (an unreadable model, data that do not fit it).");
        AddProblem(operation, document, "429", "Over the rate limit of this API key; retry after Retry-After seconds.");
        AddProblem(operation, document, "503", hasBody
            ? "The database cannot be reached or the store is read-only just now (or a needed resource such as the MNIST cache is missing); nothing was stored; retry after Retry-After seconds."
            : "The database cannot be reached just now; retry after Retry-After seconds.");
        if (hasBody) AddProblem(operation, document, "507", "The service's storage is full (or below its Storage:MinFreeMb floor); nothing was stored; retry after Retry-After seconds (`field`: storage).");
        return Task.CompletedTask;
    }

    private static void AddProblem(OpenApiOperation operation, OpenApiDocument? document, string status, string description)
    {
        if (operation.Responses!.ContainsKey(status)) return;
        operation.Responses[status] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(Problem, document) },
            },
        };
    }

    private static async Task TransformDocumentAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        var o = context.ApplicationServices.GetService<Microsoft.Extensions.Options.IOptions<OpenApiDocumentOptions>>()?.Value ?? new OpenApiDocumentOptions();
        document.Info.License = Uri.TryCreate(o.LicenseUrl, UriKind.Absolute, out var url)
            ? new OpenApiLicense { Name = o.LicenseName, Url = url }
            : new OpenApiLicense { Name = o.LicenseName, Identifier = o.LicenseIdentifier };
        foreach (var server in document.Servers ?? []) server.Url = server.Url?.TrimEnd('/');
        document.Tags = new HashSet<OpenApiTag>
        {
            new() { Name = "Health", Description = "Liveness and readiness probes (no API key)." },
            new() { Name = "Nodes", Description = "The service's nodes (API and worker processes) and their heartbeats." },
            new() { Name = "Models", Description = "Upload, list, read and delete your ONNX and TorchScript models." },
            new() { Name = "Datasets", Description = "Upload, list, read and delete your datasets (npz, npy, CSV)." },
            new() { Name = "Measurements", Description = "Measure the curvature rate λ of a model on a dataset, in the background; follow, plot, cancel." },
            new() { Name = "Training runs", Description = "Train with baseline, CRR or SAM in the background; follow, plot, cancel, download the trained model." },
            new() { Name = "Sweeps", Description = "Grids of training runs over seeds and parameters, with summaries, correlations and plots." },
        };
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();

        // Typed results instead of the JsonElement the responses carry.
        await TypeResultAsync(document, context, typeof(MeasurementResult), nameof(Measurements.MeasurementResponse), cancellationToken);
        await TypeResultAsync(document, context, typeof(TrainingResult), nameof(Training.TrainingRunResponse), cancellationToken);
        document.Components.Schemas.Remove("JsonElement");
        document.Components.Schemas.Remove("IFormFile");                 // multipart files are described inline as binary strings

        // References that may be null: oneOf [ref, null] (a $ref alone cannot say so).
        foreach (var type in typeof(OpenApiContract).Assembly.GetTypes().Concat([typeof(MeasurementResult), typeof(TrainingResult)]))
        {
            if (!document.Components.Schemas.TryGetValue(type.Name, out var component) || component is not OpenApiSchema schema || schema.Properties is null) continue;
            var nullability = new NullabilityInfoContext();
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                var name = JsonName(property.Name);
                if (!schema.Properties.TryGetValue(name, out var propertySchema) || propertySchema is not OpenApiSchemaReference reference) continue;
                if (nullability.Create(property).ReadState != NullabilityState.Nullable) continue;
                schema.Properties[name] = new OpenApiSchema
                {
                    OneOf = [reference, new OpenApiSchema { Type = JsonSchemaType.Null }],
                    Description = reference.Description,
                };
            }
        }
    }

    private static async Task TypeResultAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, Type result, string response, CancellationToken cancellationToken)
    {
        var schema = await context.GetOrCreateSchemaAsync(result, null, cancellationToken);
        document.Components!.Schemas![result.Name] = schema;
        if (document.Components.Schemas.TryGetValue(response, out var owner) && owner is OpenApiSchema o && o.Properties is not null && o.Properties.TryGetValue("result", out var old))
        {
            o.Properties["result"] = new OpenApiSchema
            {
                OneOf = [new OpenApiSchemaReference(result.Name, document), new OpenApiSchema { Type = JsonSchemaType.Null }],
                Description = old.Description,
            };
        }
    }

    private static string JsonName(string name) => System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(name);
}
