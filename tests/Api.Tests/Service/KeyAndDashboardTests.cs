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
    public async Task The_hangfire_dashboard_needs_a_key_and_is_read_only()
    {
        using var service = new ServiceProcess();
        using var anonymous = service.Client(key: null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("hangfire")).StatusCode);
        using var client = service.Client();
        var page = await client.GetAsync("hangfire");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Hangfire", html);
        // Read-only: the dashboard's mutating endpoints are refused.
        var delete = await client.PostAsync("hangfire/jobs/enqueued/delete", new FormUrlEncodedContent([new("jobs[]", "1")]));
        Assert.NotEqual(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, delete.StatusCode);
    }
}
