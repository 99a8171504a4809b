using LambdaService.Api.Cli;
using LambdaService.Api.Hosting;

// The service starts from no arguments, `serve` or host switches (`--urls URL`, `--Jobs:WorkerCount=4`); `worker` starts a job
// worker; any other first word is a command-line verb, and an unknown one is exit code 2 with the usage text (README, Command line).
switch (CliApp.Role(args))
{
    case ProcessRole.Service:
        await ServiceHost.BuildService(args is ["serve", ..] ? args[1..] : args).RunAsync();
        return 0;
    case ProcessRole.Worker:
        await ServiceHost.BuildWorker(args[1..]).RunAsync();
        return 0;
    default:
        using (var cancel = new CancellationTokenSource())
        {
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            return CliApp.Run(args, Console.Out, Console.Error, cancel.Token);
        }
}
