using System.Text.Json;
using LambdaService.Measurement;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using LambdaService.Api.Storage;

namespace LambdaService.Api.Hosting;

/// <summary>RFC 9457 problem details for every error a caller can cause; each names the field at fault and what to do.</summary>
public static class Problems
{
    /// <summary>A problem response naming <paramref name="field"/>.</summary>
    public static ProblemHttpResult Field(int status, string field, string detail, string? title = null) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title ?? TitleFor(status),
            extensions: new Dictionary<string, object?> { ["field"] = field });

    /// <summary>400 for an invalid option or input, titled with the exception's own title where it has one.</summary>
    public static ProblemHttpResult From(MeasurementInputException e, int status = StatusCodes.Status400BadRequest) => Field(status, e.Field, e.Message, e.Title);

    /// <summary>404 for a resource of another tenant or none at all (the two are indistinguishable on purpose).</summary>
    public static ProblemHttpResult NotFound(string kind, string id) =>
        Field(StatusCodes.Status404NotFound, "id", $"no {kind} with id '{id}' exists for this API key; list yours with GET /v1/{kind}s.");

    /// <summary>
    /// Writes a problem response naming <paramref name="field"/> from middleware (outside an endpoint). A client that accepts
    /// neither JSON nor anything else (a browser that asked for HTML only) gets the same words as plain text instead of a 500.
    /// </summary>
    public static async Task WriteAsync(HttpContext context, int status, string field, string detail, string? title = null)
    {
        context.Response.StatusCode = status;
        var problems = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        var written = await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Title = title ?? TitleFor(status), Detail = detail, Extensions = { ["field"] = field } },
        });
        if (!written)
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync($"{title ?? TitleFor(status)}: {field}: {detail}", context.RequestAborted);
        }
    }

    private static string TitleFor(int status) => status switch
    {
        400 => "Invalid request",
        401 => "API key required",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable content",
        429 => "Too many requests",
        503 => "Service unavailable",
        _ => "Error",
    };
}

/// <summary>
/// Turns exceptions that come from what the caller sent into problem details: malformed JSON, bodies over the
/// limit, invalid measurement options; and failures to write the store into 507 (full) or 503 (read-only, database away)
/// with <c>Retry-After</c> (<see cref="StorageErrors"/>). Anything else stays a 500 without internals.
/// </summary>
public sealed class CallerErrorHandler(IProblemDetailsService problems, ILogger<CallerErrorHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var failure = StorageErrors.Classify(exception);
        (int Status, string Field, string Detail)? problem = exception switch
        {
            // First: a request body that could not be buffered because the disk is full is the store's failure, not the caller's.
            _ when failure != StorageFailure.None => Storage(failure, exception),
            MeasurementInputException e => (400, e.Field, e.Message),
            PayloadTooLargeException e => (413, "file", $"the upload is larger than the limit of {e.Limit} bytes; upload a smaller file or raise Limits:MaxModelBytes / Limits:MaxDatasetBytes."),
            BadHttpRequestException { StatusCode: 413 } when RequestLimits.IsJson(httpContext.Request) => (413, "body", RequestLimits.JsonTooLarge(httpContext)),
            BadHttpRequestException { StatusCode: 413 } => (413, "body", "the request body is larger than the limit; upload a smaller file."),
            // A word outside a closed set (WordsAttribute): the field's own message, as when the field was a string checked later.
            BadHttpRequestException { InnerException: Contracts.UnknownWordException u } => (400, u.Field, u.Message),
            BadHttpRequestException { InnerException: JsonException j } when Unmapped(j) => (400, FieldOf(j),
                $"the request has no field '{FieldOf(j)}'; check its spelling and place against the operation's schema in /openapi/v1.json (unknown fields are refused rather than ignored)."),
            BadHttpRequestException { InnerException: JsonException j } => (400, FieldOf(j), $"the JSON body is not valid: {j.Message}"),
            BadHttpRequestException e => (e.StatusCode, "body", e.Message),
            InvalidDataException e when e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) => (413, "file", e.Message),
            _ => null,
        };
        if (problem is not { } p) return false;
        httpContext.Response.StatusCode = p.Status;
        if (failure != StorageFailure.None)
        {
            logger.LogWarning(exception, "{Method} {Path} answered {Status}: storage {Failure}", httpContext.Request.Method, httpContext.Request.Path.Value, p.Status, failure);
            httpContext.Response.Headers.RetryAfter = StorageErrors.RetryAfterOf(failure).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = p.Status,
                Title = (exception as MeasurementInputException)?.Title
                    ?? p.Status switch { 413 => "Payload too large", 503 => "Service unavailable", 507 => "Insufficient storage", _ => "Invalid request" },
                Detail = p.Detail,
                Extensions = { ["field"] = p.Field },
            },
        });
    }

    /// <summary>System.Text.Json's error for a property that no member takes (<see cref="System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow"/>).</summary>
    private static bool Unmapped(JsonException j) => j.Message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal);

    private static string FieldOf(JsonException j) =>
        string.IsNullOrEmpty(j.Path) || j.Path == "$" ? "body" : j.Path.TrimStart('$', '.');

    /// <summary>
    /// A failure to write the store (<see cref="StorageErrors"/>): 507 when it is full, 503 when it is read-only or the database is away.
    /// The request has left nothing behind (the endpoints withdraw what they had written), which the detail says.
    /// </summary>
    private static (int, string, string) Storage(StorageFailure failure, Exception exception) =>
        (StorageErrors.StatusOf(failure), failure == StorageFailure.Unavailable ? "database" : "storage", failure switch
        {
            StorageFailure.Full when exception is InsufficientStorageException e => e.Message,
            StorageFailure.Full =>
                "the service's storage is full (no space left in its data folder or database); nothing was stored or changed by this request — retry after the Retry-After seconds, once space has been freed.",
            StorageFailure.ReadOnly =>
                "the service's storage is read-only just now (its data folder or database refuses writes); nothing was stored or changed by this request — retry after the Retry-After seconds.",
            _ => "the service's database cannot be reached just now (it may be restarting); nothing was changed by this request unless it says otherwise — retry after the Retry-After seconds.",
        });
}
