using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using LambdaService.Api.Hosting;
using LambdaService.Api.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace LambdaService.Api.Auth;

/// <summary>One configured key (section <c>Auth:ApiKeys</c>, a list).</summary>
public sealed class ApiKeyEntry
{
    /// <summary>The secret sent in <c>X-Api-Key</c>.</summary>
    public string Key { get; set; } = "";

    /// <summary>The tenant whose models, datasets and jobs the key reaches.</summary>
    public string Tenant { get; set; } = "";
}

/// <summary>Section <c>Auth</c>.</summary>
public sealed class AuthOptions
{
    /// <summary>Configured keys. When none is configured and none was generated before, the service generates one at first start.</summary>
    public List<ApiKeyEntry> ApiKeys { get; set; } = [];

    /// <summary>
    /// Operators' keys (<c>Auth:AdminKeys</c>, a list of secrets): they open the Hangfire dashboard at <c>/hangfire</c> and nothing
    /// else; a tenant's key never does. With none configured the dashboard is off (404).
    /// </summary>
    public List<string> AdminKeys { get; set; } = [];
}

/// <summary>
/// Known API keys, held only as SHA-256 digests. A presented key is hashed and compared with every
/// digest with <see cref="CryptographicOperations.FixedTimeEquals"/> (no early exit), so timing does not
/// reveal which prefix matched.
/// </summary>
public sealed class ApiKeyRegistry
{
    private readonly List<(byte[] Hash, string Tenant)> _keys = [];
    private readonly List<byte[]> _adminKeys = [];

    public ApiKeyRegistry(IOptions<AuthOptions> options, MetadataStore store, ILogger<ApiKeyRegistry> logger)
    {
        foreach (var key in options.Value.AdminKeys.Where(k => !string.IsNullOrWhiteSpace(k)))
        {
            if (options.Value.ApiKeys.Any(e => e.Key == key))
            {
                throw new InvalidOperationException("A key in Auth:AdminKeys is also a tenant's key in Auth:ApiKeys; give operators keys of their own.");
            }
            _adminKeys.Add(Hash(key));
        }
        foreach (var entry in options.Value.ApiKeys.Where(e => !string.IsNullOrWhiteSpace(e.Key)))
        {
            if (string.IsNullOrWhiteSpace(entry.Tenant)) throw new InvalidOperationException("Every Auth:ApiKeys entry needs a Tenant.");
            _keys.Add((Hash(entry.Key), entry.Tenant));
        }
        var stored = store.Read(db => db.Query<ApiKeyRecord>("SELECT * FROM api_keys"));
        foreach (var record in stored) _keys.Add((Convert.FromHexString(record.KeyHash), record.Tenant));
        if (_keys.Count == 0)
        {
            var key = "ls_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
            var record = new ApiKeyRecord { KeyHash = Convert.ToHexStringLower(Hash(key)), Tenant = "default", CreatedAt = DateTime.UtcNow };
            store.Write(db => db.Insert(record));
            _keys.Add((Hash(key), record.Tenant));
            logger.LogWarning("No API key was configured; generated one for tenant {Tenant}. It is shown only now: {ApiKey}", record.Tenant, key);
        }
    }

    /// <summary>The tenant of a presented key, or null.</summary>
    public string? TenantOf(string presented)
    {
        var hash = Hash(presented);
        string? tenant = null;
        foreach (var (known, owner) in _keys)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, known)) tenant ??= owner;
        }
        return tenant;
    }

    /// <summary>Whether any operator key is configured (else the dashboard is off).</summary>
    public bool HasAdminKeys => _adminKeys.Count > 0;

    /// <summary>The digest of a presented operator key, or null when it is not one (compared like <see cref="TenantOf"/>).</summary>
    public byte[]? AdminDigestOf(string presented)
    {
        var hash = Hash(presented);
        byte[]? found = null;
        foreach (var known in _adminKeys)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, known)) found ??= known;
        }
        return found;
    }

    /// <summary>The digests of the operator keys (to check a dashboard session signed with one of them).</summary>
    public IReadOnlyList<byte[]> AdminDigests => _adminKeys;

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}

/// <summary>Authenticates <c>X-Api-Key</c>; the principal carries the tenant as <see cref="TenantClaim"/>.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyRegistry registry)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    /// <summary>The scheme name.</summary>
    public const string SchemeName = "ApiKey";

    /// <summary>The header carrying the key.</summary>
    public const string Header = "X-Api-Key";

    /// <summary>The claim holding the tenant.</summary>
    public const string TenantClaim = "tenant";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!Request.Headers.TryGetValue(Header, out var values) || string.IsNullOrEmpty(values.ToString()))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }
        var tenant = registry.TenantOf(values.ToString());
        if (tenant is null) return Task.FromResult(AuthenticateResult.Fail("The API key is not known."));
        var identity = new ClaimsIdentity([new Claim(TenantClaim, tenant)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        Problems.WriteAsync(Context, StatusCodes.Status401Unauthorized, Header, $"Send a valid key in the {Header} header (in Swagger UI: the Authorize button).");
}

/// <summary>Reads the caller's tenant.</summary>
public static class TenantExtensions
{
    /// <summary>The authenticated caller's tenant.</summary>
    public static string Tenant(this ClaimsPrincipal user) =>
        user.FindFirst(ApiKeyAuthenticationHandler.TenantClaim)?.Value ?? throw new InvalidOperationException("The request is not authenticated.");
}
