using LambdaService.Api.Cli;
using LambdaService.Api.Hosting;

if (args.Length > 0 && CliApp.Verbs.Contains(args[0]))
{
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cancel.Cancel();
    };
    return CliApp.Run(args, Console.Out, Console.Error, cancel.Token);
}
if (args.Length > 0 && args[0] == "worker")
{
    await ServiceHost.BuildWorker(args[1..]).RunAsync();
    return 0;
}
await ServiceHost.BuildService(args).RunAsync();
return 0;
