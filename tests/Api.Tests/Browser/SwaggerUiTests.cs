using System.Diagnostics;
using System.Text.Json.Nodes;
using LambdaService.Api.Tests.Service;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace LambdaService.Api.Tests.Browser;

/// <summary>
/// Swagger UI as a person uses it, in a real browser: Debian's <c>chromium</c> driven headless by Playwright for .NET (the
/// system browser, not one of Playwright's own builds), against the real service on 127.0.0.1. Every step is what a person
/// clicks: Authorize with a key, open an operation, Try it out, fill the body, Execute, read the response on the page.
/// </summary>
public sealed class SwaggerUiTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    [Fact]
    public async Task A_person_authorizes_in_swagger_ui_lists_models_and_submits_a_measurement_that_then_succeeds()
    {
        using var client = fixture.Service.Client();
        var model = await ApiClient.UploadId(client, "v1/models", fixture.Files.Onnx);
        var dataset = await ApiClient.UploadId(client, "v1/datasets", fixture.Files.Csv);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium.Executable(),
            Headless = true,
            // Root has no user namespace sandbox here; /dev/shm may be small in containers.
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
        var page = await browser.NewPageAsync();
        // Generous waits for a loaded CI machine (Playwright's assertions wait 5 s by default).
        page.SetDefaultTimeout(30_000);
        SetDefaultExpectTimeout(30_000);
        await page.GotoAsync(new Uri(fixture.Service.BaseAddress, "swagger/index.html").ToString());
        await Expect(page.Locator(".swagger-ui .info .title")).ToContainTextAsync("LambdaService");

        // Without a key, Execute shows the 401 problem on the page.
        var list = page.Locator("#operations-Models-ListModels");
        await list.Locator(".opblock-summary").ClickAsync();
        await Execute(list);
        await Expect(Status(list)).ToHaveTextAsync("401");

        // Authorize: the dialog's X-Api-Key field, its Authorize button, Close.
        await page.Locator(".scheme-container button.authorize").ClickAsync();
        var dialog = page.Locator(".dialog-ux .modal-ux");
        await dialog.GetByLabel("Value").FillAsync(ServiceProcess.KeyA);
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Apply credentials" }).ClickAsync();
        await Expect(dialog.GetByRole(AriaRole.Button, new() { Name = "Remove authorization" })).ToBeVisibleAsync();
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Close", Exact = true }).ClickAsync();
        await Expect(dialog).ToBeHiddenAsync();

        // GET /v1/models: 200 and the uploaded model in the body shown.
        await Execute(list);
        await Expect(Status(list)).ToHaveTextAsync("200");
        await Expect(Body(list)).ToContainTextAsync(model);
        await Expect(list.Locator(".request-url")).ToContainTextAsync("/v1/models");

        // POST /v1/measurements with a body typed into the editor: 202 and a queued job.
        var submit = page.Locator("#operations-Measurements-SubmitMeasurement");
        await submit.Locator(".opblock-summary").ClickAsync();
        await TryItOut(submit);
        await submit.Locator("textarea.body-param__text").FillAsync(
            $$"""{ "modelId": "{{model}}", "datasetId": "{{dataset}}", "maxPoints": 8, "directions": 2 }""");
        await submit.Locator("button.execute").ClickAsync();
        await Expect(Status(submit)).ToHaveTextAsync("202");
        await Expect(Body(submit)).ToContainTextAsync("\"status\": \"queued\"");
        var shown = JsonNode.Parse(await Body(submit).InnerTextAsync())!;
        var id = shown["id"]!.GetValue<string>();
        Assert.StartsWith("msr_", id);

        // The job the page submitted is the tenant's, and it measures.
        var job = await ApiClient.WaitFor(client, id, TimeSpan.FromMinutes(1));
        Assert.True(job["status"]!.GetValue<string>() == "succeeded", job.ToJsonString());
        Assert.Equal(model, job["request"]!["modelId"]!.GetValue<string>());

        // A bad body: the problem details (400, naming the field) on the page.
        await submit.Locator("textarea.body-param__text").FillAsync($$"""{ "modelId": "{{model}}", "datasetId": "{{dataset}}", "directions": 0 }""");
        await submit.Locator("button.execute").ClickAsync();
        await Expect(Status(submit)).ToHaveTextAsync("400");
        await Expect(Body(submit)).ToContainTextAsync("\"field\": \"directions\"");
    }

    /// <summary>Presses "Try it out" when the operation is not editable yet (the service turns it on by default), then Execute.</summary>
    private static async Task Execute(ILocator operation)
    {
        await TryItOut(operation);
        await operation.Locator("button.execute").ClickAsync();
    }

    private static async Task TryItOut(ILocator operation)
    {
        var tryItOut = operation.Locator("button.try-out__btn:not(.cancel)");
        if (await tryItOut.CountAsync() > 0 && await tryItOut.IsVisibleAsync()) await tryItOut.ClickAsync();
        await Expect(operation.Locator("button.execute")).ToBeVisibleAsync();
    }

    /// <summary>The status code of the response the page shows under "Server response".</summary>
    private static ILocator Status(ILocator operation) => operation.Locator(".live-responses-table .response .response-col_status").First;

    /// <summary>The body of that response, as shown.</summary>
    private static ILocator Body(ILocator operation) => operation.Locator(".live-responses-table .response .response-col_description pre.microlight").First;
}

/// <summary>Debian's chromium: <c>LAMBDASERVICE_CHROMIUM</c>, else <c>/usr/bin/chromium</c>; installed first (package <c>chromium</c>) when this runs as root with apt-get and it is missing.</summary>
internal static class Chromium
{
    private static readonly Lock Gate = new();

    public static string Executable()
    {
        var path = Environment.GetEnvironmentVariable("LAMBDASERVICE_CHROMIUM") is { Length: > 0 } configured ? configured : "/usr/bin/chromium";
        lock (Gate)
        {
            if (!File.Exists(path) && Environment.UserName == "root" && File.Exists("/usr/bin/apt-get"))
            {
                using var install = Process.Start("/bin/sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null"])!;
                install.WaitForExit();
            }
        }
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's chromium (apt-get install chromium) or set LAMBDASERVICE_CHROMIUM.");
        return path;
    }
}
