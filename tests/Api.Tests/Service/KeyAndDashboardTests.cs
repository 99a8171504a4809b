using System.Net;
using System.Text.RegularExpressions;

namespace LambdaService.Api.Tests.Service;

public partial class KeyAndDashboardTests
{
    [GeneratedRegex(@"It is shown only now: (ls_[A-Za-z0-9_\-]+)")]
    private static partial Regex GeneratedKey();

    [Fact]
    public async Task Without_configured_keys_the_first_start_generates_one_logs_it_once_and_keeps_it_across_restarts()
    {
        using var service = new ServiceProcess(withKeys: false);
        var match = GeneratedKey().Match(service.Log);
        Assert.True(match.Success, service.Log);
        var key = match.Groups[1].Value;
        using (var client = service.Client(key))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("v1/models")).StatusCode);
        }
        // Only its hash is stored.
        Assert.DoesNotContain(key, File.ReadAllText(Path.Combine(service.DataRoot, "metadata.db")));

        service.KillHard();
        service.Start();
        Assert.Single(GeneratedKey().Matches(service.Log));
        using var again = service.Client(key);
        Assert.Equal(HttpStatusCode.OK, (await again.GetAsync("v1/models")).StatusCode);
    }

    [Fact]
    public async Task The_hangfire_dashboard_is_for_operator_keys_only_and_a_tenant_key_is_refused_with_403()
    {
        using var files = new TestFiles();
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Auth__AdminKeys__0"] = AdminKey });
        using var a = service.Client(ServiceProcess.KeyA);
        var model = await ApiClient.UploadId(a, "v1/models", files.Onnx);
        var dataset = await ApiClient.UploadId(a, "v1/datasets", files.Csv);
        var job = await ApiClient.SubmitId(a, new { modelId = model, datasetId = dataset, maxPoints = 4 });
        await ApiClient.WaitFor(a, job, TimeSpan.FromMinutes(1));

        // Tenant B's key (and A's own) sees nothing of it: 403 problem details naming the header.
        foreach (var tenantKey in new[] { ServiceProcess.KeyB, ServiceProcess.KeyA })
        {
            using var tenant = service.Client(tenantKey);
            foreach (var page in new[] { "hangfire", "hangfire/jobs/succeeded", "hangfire/jobs/details/1" })
            {
                var response = await tenant.GetAsync(page);
                var body = await response.Content.ReadAsStringAsync();
                Assert.DoesNotContain(job, body);
                var problem = await ApiClient.Problem(response, HttpStatusCode.Forbidden);
                Assert.Equal("X-Api-Key", problem.GetProperty("field").GetString());
            }
        }
        using var anonymous = service.Client(key: null);
        await ApiClient.Problem(await anonymous.GetAsync("hangfire/jobs/succeeded"), HttpStatusCode.Unauthorized);
        // A key in the query string is refused whoever's it is: it would end up in logs and browser history.
        var query = await ApiClient.Problem(await anonymous.GetAsync($"hangfire/jobs/succeeded?apiKey={AdminKey}"), HttpStatusCode.BadRequest);
        Assert.Equal("apiKey", query.GetProperty("field").GetString());

        // The operator's key in the header sees every tenant's jobs.
        using var admin = service.Client(AdminKey);
        var succeeded = await admin.GetAsync("hangfire/jobs/succeeded");
        Assert.Equal(HttpStatusCode.OK, succeeded.StatusCode);
        var details = await admin.GetAsync("hangfire/jobs/details/1");
        Assert.Equal(HttpStatusCode.OK, details.StatusCode);
        Assert.Contains(job, await details.Content.ReadAsStringAsync());
        // The operator key is no tenant key.
        await ApiClient.Problem(await admin.GetAsync("v1/models"), HttpStatusCode.Unauthorized);
        // Read-only: the dashboard's mutating endpoints are refused.
        var delete = await admin.PostAsync("hangfire/jobs/enqueued/delete", new FormUrlEncodedContent([new("jobs[]", "1")]));
        Assert.NotEqual(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, delete.StatusCode);
    }

    [Fact]
    public async Task An_operator_logs_in_to_the_dashboard_with_a_form_that_sets_a_cookie_holding_no_key()
    {
        using var service = new ServiceProcess(new Dictionary<string, string> { ["Auth__AdminKeys__0"] = AdminKey });
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new System.Net.CookieContainer() };
        using var browser = new HttpClient(handler) { BaseAddress = service.BaseAddress };
        browser.DefaultRequestHeaders.Accept.ParseAdd("text/html");

        var first = await browser.GetAsync("hangfire");
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Equal("/hangfire/login", first.Headers.Location!.OriginalString);
        Assert.Contains("name=\"key\"", await (await browser.GetAsync("hangfire/login")).Content.ReadAsStringAsync());

        using (var form = new HttpRequestMessage(HttpMethod.Post, "hangfire/login") { Content = new FormUrlEncodedContent([new("key", ServiceProcess.KeyB)]) })
        {
            form.Headers.Accept.ParseAdd("application/problem+json");
            var tenant = await browser.SendAsync(form);
            Assert.Equal("key", (await ApiClient.Problem(tenant, HttpStatusCode.Forbidden)).GetProperty("field").GetString());
        }
        Assert.Empty(handler.CookieContainer.GetCookies(service.BaseAddress));

        var login = await browser.PostAsync("hangfire/login", new FormUrlEncodedContent([new("key", AdminKey)]));
        Assert.Equal(HttpStatusCode.SeeOther, login.StatusCode);
        var cookie = Assert.Single(handler.CookieContainer.GetCookies(new Uri(service.BaseAddress, "hangfire/")));
        Assert.True(cookie.HttpOnly);
        Assert.DoesNotContain(AdminKey, cookie.Value);
        var page = await browser.GetAsync("hangfire");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Hangfire", await page.Content.ReadAsStringAsync());

        // A forged cookie (another expiry under the same signature) opens nothing.
        var parts = cookie.Value.Split('.');
        handler.CookieContainer.Add(new Uri(service.BaseAddress, "hangfire/"), new System.Net.Cookie(cookie.Name, $"v1.{long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) + 3600}.{parts[2]}", "/hangfire"));
        using var api = new HttpClient(handler) { BaseAddress = service.BaseAddress };
        await ApiClient.Problem(await api.GetAsync("hangfire/jobs/succeeded"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Without_an_operator_key_the_dashboard_is_off()
    {
        using var service = new ServiceProcess();
        using var client = service.Client();
        var problem = await ApiClient.Problem(await client.GetAsync("hangfire"), HttpStatusCode.NotFound);
        Assert.Equal("Auth:AdminKeys", problem.GetProperty("field").GetString());
    }

    private const string AdminKey = "test-operator-key";
}
