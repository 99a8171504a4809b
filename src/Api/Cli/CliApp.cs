using LambdaService.Api.Contracts;
using LambdaService.Api.Measurements;
using LambdaService.Api.Training;
using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Cli;

/// <summary>
/// The command-line verbs. Results go to standard output (a readable summary, or one JSON object with
/// <c>--json</c>); a user error is one line on standard error and exit code 2; never a stack trace.
/// </summary>
public static class CliApp
{
    /// <summary>Verbs for people: the ones the help text and error messages list.</summary>
    public static readonly IReadOnlyList<string> PublicVerbs = ["validate", "measure", "train", "sweep", "reproduce", "bench", "bench-nodes", "help"];

    /// <summary>Verbs this class runs: the public ones and the internal <c>runner</c> (the sandbox process of a job).</summary>
    public static readonly IReadOnlyList<string> Verbs = [.. PublicVerbs, Jobs.Sandbox.RunnerVerb.Name, NetworksBench.RowVerbName];

    /// <summary>
    /// What a process started with <paramref name="args"/> is: the HTTP service for no arguments, <c>serve</c> or a first argument
    /// that is a host switch (<c>--urls URL</c>, <c>--Section:Key=value</c>); a job worker for <c>worker</c>; else the command line,
    /// where an unknown first word is an error (exit code 2 and the usage text), never a web server started by a typo.
    /// </summary>
    public static ProcessRole Role(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0) return ProcessRole.Service;
        return args[0] switch
        {
            "serve" => ProcessRole.Service,
            "worker" => ProcessRole.Worker,
            var first when first.StartsWith("--", StringComparison.Ordinal) && first is not ("--help" or "--version") => ProcessRole.Service,
            _ => ProcessRole.CommandLine,
        };
    }

    /// <summary>Runs a verb. Returns the process exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        if (args.Count == 0 || args[0] is "help" or "--help" or "-h")
        {
            stdout.Write(Usage);
            return 0;
        }
        var verb = args[0];
        var rest = args.Skip(1).ToArray();
        try
        {
            return verb switch
            {
                "validate" => ValidateVerb.Run(rest, stdout, cancellationToken),
                "measure" => MeasureVerb.Run(rest, stdout, cancellationToken),
                "train" => TrainVerb.Run(rest, stdout, cancellationToken),
                "sweep" => SweepVerb.Run(rest, stdout, stderr, cancellationToken),
                "reproduce" => ReproduceVerb.Run(rest, stdout, stderr, cancellationToken),
                "bench" => BenchVerb.Run(rest, stdout, cancellationToken),
                "bench-nodes" => NodesBenchVerb.Run(rest, stdout, cancellationToken),
                // Internal: the sandbox process the service starts per job (README, The service: Jobs); not listed in PublicVerbs or Usage.
                Jobs.Sandbox.RunnerVerb.Name => Jobs.Sandbox.RunnerVerb.Run(rest, stdout, stderr, cancellationToken),
                // Internal: one row of bench --networks in a process of its own (its peak memory is its own); not listed either.
                NetworksBench.RowVerbName => NetworksBench.RunRow(rest, stdout, cancellationToken),
                _ => throw new MeasurementInputException("verb", $"unknown verb '{verb}'; use one of {string.Join(", ", PublicVerbs)}."),
            };
        }
        catch (MeasurementInputException e) when (e.Field == "verb")
        {
            stderr.WriteLine($"error: {e.Message}");
            stderr.Write(Usage);
            return 2;
        }
        catch (MeasurementInputException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("error: canceled.");
            return 130;
        }
    }

    /// <summary>The help text. Its closed sets are the words of the enums the HTTP bodies take (<see cref="ClosedSet"/>).</summary>
    public static readonly string Usage = $$"""
        LambdaService: the curvature rate λ of neural networks (slope of log ‖Dⁿf‖ against n).

        Usage: LambdaService.Api [serve] [--urls URL]  the HTTP service (settings: appsettings.json, environment)
               LambdaService.Api worker                a job worker only, for nodes on the same PostgreSQL database
               LambdaService.Api <verb> [options]

          validate [--max-order N] [--json]
              λ on functions with known answers (paper §5.1): radii of convergence, a band edge, sin x.
          measure --model FILE --data FILE [--target {{W<MeasurementTarget>()}}] [--labels {{W<LabelSource>()}}] [--class K]
                  [--points {{W<PointSelection>()}}] [--band 0.45,0.65] [--pairs 4-9,3-8] [--orders 1-4]
                  [--directions 4] [--max-points N] [--norm {{W<NormKind>()}}] [--normalization {{W<Normalization>()}}]
                  [--engine {{W<EngineChoice>()}}] [--label-column NAME] [--seed S]
                  [--input-shape 1,28,28] [--max-data-mb 1024] [--max-derivative-error 0.05] [--allow-unreliable]
                  [--device {{W<DeviceChoice>()}}] [--at {{Measurement.Taylor.Layers.Input}}|LAYER] [--precision {{W<ComputePrecision>()}}] [--json]
              λ of an ONNX or TorchScript model on .npz / .npy / .csv data (--at: at a layer, e.g. act1 or conv2). Finite differences whose estimated median error
              exceeds --max-derivative-error (a fraction) at an order in the fit fail (exit code 2) unless --allow-unreliable.
          train [--dataset {{W<BuiltinDataset>()}}|FILE] [--test-data FILE] [--method {{W<TrainingMethod>()}}] [--crr-scale X]
                [--crr-orders 2-3] [--crr-engine {{W<CrrEngine>()}}] [--sam-rho R] [--adaptive] [--epochs N] [--seed S] [--label-noise F]
                [--samples N] [--model {{W<NetworkKind>()}}] [--hidden 64,64] [--lr 0.001] [--batch-size 32] [--lambda-every K]
                [--crr-target 1.2,1.5 | 1.35+-0.15] [--crr-target-every 10] [--crr-target-gain 1] [--crr-target-max-step 0.5]
                [--crr-target-deadband 0.5] [--crr-target-initial-scale 0.001] [--crr-target-min-scale 1e-5]
                [--crr-target-max-scale 10] [--crr-target-monitor-points N] [--crr-at LAYER] [--crr-pairs 4-9,3-8]
                [--measure-at LAYER]
                [--pairs 4-9,3-8] [--export DIR] [--device {{W<DeviceChoice>()}}] [--json]
              train an MLP with cross-entropy, CRR or SAM and report accuracy, ECE, hardest-20% accuracy and λ.
          sweep --request FILE.json [--max-runs N] [--json]
              a POST /v1/sweeps body ({ base, grid, seeds }) run here: per-cell mean, sd and 95% interval of test
              error, ECE, hardest-20% accuracy, λ and time, and the correlation of λ with test error.
          reproduce {{W<ReproductionExperiment>()}} [--scale {{W<ReproductionScale>()}}] [--out DIR]
              the paper's protocol (Two Moons §5.2; MNIST §5.3–5.6) end to end, λ-targeting CRR (lambda-band) and
              class-filtered CRR at the input and at a feature map (feature-maps, §7): a Markdown report with tables
              and plots (default DIR: docs/reproduction/<experiment>).
          bench [--orders 2,4,6,8] [--repeats N] [--mlp-points N] [--cnn-points N] [--directions D] [--skip-training]
                [--device cpu|cuda|auto] [--profile [--model {{W<NetworkKind>()}}] [--hidden 32,32] [--batch B]] [--json]
              time of the taylor, autograd and finite-difference engines for orders 1..K on a tanh MLP and the
              paper's CNN, and training time per method relative to baseline and SAM, in one run (default device cpu;
              --device cuda on a GPU node). --profile: where the time of one CRR step goes, phase by phase, on the
              Two Moons MLP (--hidden, --batch 32) or the paper's CNN (--model cnn, --batch 128).
          bench --networks [resnet18,efficientnet_b0,vit,convnext] [--lines 64,1024] [--engines taylor-float64,taylor-float32,autograd-float64]
                [--memory-budget-mb 1024] [--skip-pytorch] [--python /usr/bin/python3] [--json]
              the exact engines on torchvision networks exported by Debian's PyTorch (python3-torch, python3-torchvision):
              seconds, lines/s and peak resident memory per row (each row a process of its own), PyTorch float32 nested
              autograd on the same lines, and issue 25's ratios against their targets (met or missed).
          bench-nodes [--postgres CONNECTION] [--jobs 200] [--latency-jobs 20] [--json]
              the deployment on this machine: submit→result p50/p99 of a small measurement embedded (SQLite) and on
              PostgreSQL (API node + worker node), and jobs/second with one and with two worker nodes on one database
              (default: a throwaway local PostgreSQL server; --postgres names a server, a database is made there).

        Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error.

        """;

    private static string W<T>() where T : struct, Enum => ClosedSet.Bar<T>();
}

/// <summary>What the executable runs as (<see cref="CliApp.Role"/>).</summary>
public enum ProcessRole
{
    /// <summary>The HTTP service (and its workers, per <c>Jobs:WorkerCount</c>).</summary>
    Service,

    /// <summary>A job worker without HTTP.</summary>
    Worker,

    /// <summary>A command-line verb.</summary>
    CommandLine,
}
