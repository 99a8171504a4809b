namespace LambdaService.Training.Tests;

/// <summary>
/// Tests that seed or draw from torch's process-wide generator (<c>torch.manual_seed</c>, layer constructors)
/// and compare numbers across runs. xunit runs test classes in parallel; this collection runs on its own after
/// the parallel ones, so no other test can shift the generator between a seed and its draws.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGeneratorCollection
{
    public const string Name = "torch generator";
}
