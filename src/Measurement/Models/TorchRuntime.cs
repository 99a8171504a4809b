namespace LambdaService.Measurement.Models;

/// <summary>
/// Process-wide libtorch settings, applied once before the first model runs. libtorch's OpenMP pool and
/// ONNX Runtime's pool share the cores of the process; with as many torch threads as cores, nested
/// autograd on a 2-core machine ran 10–40× slower and erratically (measured with the bench verb), so torch
/// gets half the cores (at least one). <c>LAMBDASERVICE_TORCH_THREADS</c> overrides the count. libtorch's
/// oneDNN convolutions are switched off (see <see cref="OneDnnConvolutions"/>: wrong float32 gradients seen here), and
/// glibc's malloc keeps freed tensor memory for reuse (<see cref="GlibcAllocator"/>: steady instead of erratic timings).
/// </summary>
public static class TorchRuntime
{
    private static readonly Lazy<int> Configured = new(() =>
    {
        var threads = int.TryParse(Environment.GetEnvironmentVariable("LAMBDASERVICE_TORCH_THREADS"), out var t) && t > 0
            ? t
            : Math.Max(1, Environment.ProcessorCount / 2);
        TorchSharp.torch.set_num_threads(threads);
        OneDnnConvolutions.EnsureDisabled();
        GlibcAllocator.Configure();
        return threads;
    });

    /// <summary>Applies the settings (idempotent) and returns the number of intra-op threads.</summary>
    public static int EnsureConfigured() => Configured.Value;
}
