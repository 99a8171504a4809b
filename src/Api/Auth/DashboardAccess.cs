using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Hangfire.Dashboard;
using LambdaService.Api.Hosting;

namespace LambdaService.Api.Auth;

/// <summary>
/// Who may open the Hangfire dashboard at <c>/hangfire</c>: operators only (README, <em>The service</em>). It lists every tenant's
/// jobs, so a tenant's key is refused with 403 and the dashboard is off (404) when no <c>Auth:AdminKeys</c> is configured. An
/// operator sends the key in <c>X-Api-Key</c>, or logs in once with a form (<c>POST /hangfire/login</c>, field <c>key</c>) that sets
/// a session cookie; a key in the query string is refused, since query strings end up in logs, proxies and browser history.
/// The cookie holds no key: <c>v1.{expiry}.{HMAC-SHA256 keyed by the key's digest over the expiry}</c>, valid on every node that
/// has the same admin key and for <see cref="SessionLifetime"/>.
/// </summary>
public sealed class DashboardGate(RequestDelegate next, ApiKeyRegistry registry, TimeProvider clock)
{
    /// <summary>The dashboard's path.</summary>
    public const string Path = "/hangfire";

    /// <summary>The session cookie's name.</summary>
    public const string Cookie = "lambdaservice-dashboard";

    /// <summary>How long a login lasts.</summary>
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(8);

    /// <summary>Set on requests this gate let through; <see cref="AdminDashboardFilter"/> admits only those.</summary>
    internal const string AdmittedItem = "lambdaservice.dashboard-admitted";

    private const string LoginPath = Path + "/login";
    private const string LogoutPath = Path + "/logout";

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (!registry.HasAdminKeys)
        {
            await Problems.WriteAsync(context, 404, "Auth:AdminKeys",
                "the dashboard is off: no operator key is configured. Set Auth:AdminKeys (environment Auth__AdminKeys__0) to open it to operators.");
            return;
        }
        if (request.Query.ContainsKey("apiKey"))
        {
            await Problems.WriteAsync(context, 400, "apiKey",
                $"keys are not accepted in the query string (it ends up in logs, proxies and browser history); send the operator key in the X-Api-Key header, or log in at {LoginPath}.");
            return;
        }
        if (request.Path.Equals(LoginPath, StringComparison.OrdinalIgnoreCase))
        {
            await LoginAsync(context);
            return;
        }
        if (request.Path.Equals(LogoutPath, StringComparison.OrdinalIgnoreCase) && HttpMethods.IsPost(request.Method))
        {
            context.Response.Cookies.Delete(Cookie, CookieOptionsFor(context));
            context.Response.Redirect(LoginPath, permanent: false);
            context.Response.StatusCode = StatusCodes.Status303SeeOther;
            return;
        }
        var key = request.Headers[ApiKeyAuthenticationHandler.Header].ToString();
        if (!string.IsNullOrEmpty(key))
        {
            if (registry.AdminDigestOf(key) is null)
            {
                await RefuseKey(context, key);
                return;
            }
        }
        else if (!ValidSession(request.Cookies[Cookie]))
        {
            if (HttpMethods.IsGet(request.Method) && request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase))
            {
                context.Response.Redirect(LoginPath);
                return;
            }
            await Problems.WriteAsync(context, 401, ApiKeyAuthenticationHandler.Header,
                $"the dashboard is for operators: send a key of Auth:AdminKeys in the X-Api-Key header, or log in at {LoginPath}.");
            return;
        }
        context.Items[AdmittedItem] = true;
        await next(context);
    }

    private async Task LoginAsync(HttpContext context)
    {
        if (HttpMethods.IsGet(context.Request.Method))
        {
            context.Response.ContentType = "text/html; charset=utf-8";
            await context.Response.WriteAsync(LoginForm, context.RequestAborted);
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method) || !context.Request.HasFormContentType)
        {
            await Problems.WriteAsync(context, 400, "key", $"log in with a form POST to {LoginPath} whose field 'key' is an operator key.");
            return;
        }
        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var key = form["key"].ToString();
        if (string.IsNullOrEmpty(key))
        {
            await Problems.WriteAsync(context, 400, "key", "the form field 'key' is empty; enter an operator key (Auth:AdminKeys).");
            return;
        }
        if (registry.AdminDigestOf(key) is not { } digest)
        {
            await RefuseKey(context, key, field: "key");
            return;
        }
        var expires = clock.GetUtcNow() + SessionLifetime;
        var options = CookieOptionsFor(context);
        options.Expires = expires;
        context.Response.Cookies.Append(Cookie, Session(digest, expires.ToUnixTimeSeconds()), options);
        context.Response.Redirect(Path);
        context.Response.StatusCode = StatusCodes.Status303SeeOther;
    }

    private Task RefuseKey(HttpContext context, string key, string field = ApiKeyAuthenticationHandler.Header) =>
        registry.TenantOf(key) is not null
            ? Problems.WriteAsync(context, 403, field, "the dashboard shows every tenant's jobs, so it is for operators only: a tenant's key does not open it. Use a key of Auth:AdminKeys.")
            : Problems.WriteAsync(context, 401, field, "the key is not known; the dashboard takes a key of Auth:AdminKeys.");

    private bool ValidSession(string? cookie)
    {
        if (string.IsNullOrEmpty(cookie)) return false;
        var parts = cookie.Split('.');
        if (parts.Length != 3 || parts[0] != "v1" || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)) return false;
        if (expires <= clock.GetUtcNow().ToUnixTimeSeconds()) return false;
        var valid = false;
        foreach (var digest in registry.AdminDigests)
        {
            valid |= CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Session(digest, expires)), Encoding.ASCII.GetBytes(cookie));
        }
        return valid;
    }

    /// <summary>The cookie value for a session of the operator key with <paramref name="digest"/> that ends at <paramref name="expires"/> (Unix seconds).</summary>
    internal static string Session(byte[] digest, long expires)
    {
        var text = expires.ToString(CultureInfo.InvariantCulture);
        var mac = HMACSHA256.HashData(digest, Encoding.ASCII.GetBytes("lambdaservice-dashboard|" + text));
        return $"v1.{text}.{Convert.ToBase64String(mac).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";
    }

    private static CookieOptions CookieOptionsFor(HttpContext context) =>
        new() { HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = context.Request.IsHttps, Path = Path };

    private static readonly string LoginForm = $"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>LambdaService jobs dashboard</title></head>
        <body style="font-family: sans-serif; max-width: 28em; margin: 4em auto">
        <h1>Jobs dashboard</h1>
        <p>For operators: enter a key of <code>Auth:AdminKeys</code>. A tenant's API key does not open it.</p>
        <form method="post" action="{WebUtility.HtmlEncode(LoginPath)}">
        <label>Operator key <input type="password" name="key" autocomplete="off" required></label>
        <button type="submit">Log in</button>
        </form>
        </body></html>
        """;
}

/// <summary>Hangfire's own check: admits only the requests <see cref="DashboardGate"/> let through.</summary>
public sealed class AdminDashboardFilter : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context) =>
        context.GetHttpContext().Items.TryGetValue(DashboardGate.AdmittedItem, out var admitted) && admitted is true;
}
