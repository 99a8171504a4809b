using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Hosting;

/// <summary>
/// Limits on what a client sends, enforced before anything is read into memory or stored (README, <em>Limits</em>): JSON bodies
/// up to <see cref="LimitsOptions.MaxJsonBytes"/>, names up to <see cref="LimitsOptions.MaxNameLength"/> characters. Uploads have
/// their own limits (<see cref="LimitsOptions.MaxModelBytes"/>, <see cref="LimitsOptions.MaxDatasetBytes"/>).
/// </summary>
public static class RequestLimits
{
    /// <summary>
    /// Caps every JSON request body at <see cref="LimitsOptions.MaxJsonBytes"/>: a declared length over it is a 413 at once; a
    /// body sent without a length (chunked) is read into memory up to the limit first, and is the same 413 when it goes past it.
    /// </summary>
    public static WebApplication UseJsonBodyLimit(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (IsJson(context.Request))
            {
                var max = context.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxJsonBytes;
                if (context.Request.ContentLength > max || (context.Request.ContentLength is null && !await BufferAsync(context, max)))
                {
                    await Problems.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "body", JsonTooLarge(context));
                    return;
                }
                if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = max;
            }
            await next(context);
        });
        return app;
    }

    /// <summary>Reads a body of unknown length into memory, at most <paramref name="max"/> bytes; false when it is longer.</summary>
    private static async Task<bool> BufferAsync(HttpContext context, long max)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > max) return false;
            buffer.Write(chunk, 0, read);
        }
        buffer.Position = 0;
        context.Request.Body = buffer;
        context.Request.ContentLength = buffer.Length;
        context.Response.RegisterForDispose(buffer);
        return true;
    }

    /// <summary>Whether the request carries a JSON body.</summary>
    public static bool IsJson(HttpRequest request) =>
        request.ContentType is { } type && (type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
            || type.Split(';')[0].Trim().EndsWith("+json", StringComparison.OrdinalIgnoreCase));

    /// <summary>The 413's detail for a JSON body over the limit.</summary>
    public static string JsonTooLarge(HttpContext context)
    {
        var max = context.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxJsonBytes;
        return string.Create(CultureInfo.InvariantCulture,
            $"the JSON body is larger than the limit of {max} bytes (Limits:MaxJsonBytes); send a smaller request (names of at most {LimitsOptions.MaxNameLength} characters, smaller lists).");
    }

    /// <summary>A 400 naming <paramref name="field"/> when <paramref name="name"/> is longer than <see cref="LimitsOptions.MaxNameLength"/>.</summary>
    public static ProblemHttpResult? CheckName(string? name, string field) =>
        name is { Length: > LimitsOptions.MaxNameLength }
            ? Problems.Field(400, field, string.Create(CultureInfo.InvariantCulture,
                $"{field} has {name.Length} characters; a name has at most {LimitsOptions.MaxNameLength}. Use a shorter one."))
            : null;
}
