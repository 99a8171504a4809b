namespace LambdaService.Measurement.Models;

/// <summary>
/// Process-wide native settings, applied once before the first model runs. libtorch's intra-op pool and ONNX Runtime's each get
/// <see cref="Threads"/> threads: <c>LAMBDASERVICE_THREADS</c> when set (a sandboxed job gets <c>Jobs:ThreadsPerJob</c> this way;
/// the older <c>LAMBDASERVICE_TORCH_THREADS</c> is still read), else every core of the machine. An earlier measurement on a 2-core
/// machine found nested autograd 10–40× slower with as many torch threads as cores; measured again on 2026-12-08 on this VM (README,
/// <em>Threads</em>), two threads were as fast or faster for every engine (a 2-64-64-2 tanh MLP, orders 1–6, 1024 lines: Taylor 1.3 →
/// 1.15 s, autograd 1.95 → 1.7 s; ResNet-18 at 3×32×32, 32 lines: Taylor 4.0 → 2.9 s, autograd 12.4 → 7.8 s), so the default is
/// every core. libtorch's oneDNN convolutions are switched off (see <see cref="OneDnnConvolutions"/>: wrong float32 gradients seen
/// here), and glibc's malloc keeps freed tensor memory for reuse (<see cref="GlibcAllocator"/>: steady instead of erratic timings).
/// </summary>
public static class TorchRuntime
{
    /// <summary>
    /// <c>float64</c> or <c>float32</c>: the name of a pass's <paramref name="dtype"/> in results (<see cref="IModelRunner.Precision"/>,
    /// the engines' <c>precision</c>, <see cref="TensorInfo"/> element types).
    /// </summary>
    public static string PrecisionName(TorchSharp.torch.ScalarType dtype) => dtype == TorchSharp.torch.ScalarType.Float32 ? "float32" : "float64";

    /// <summary>The environment variable that sets <see cref="Threads"/>.</summary>
    public const string ThreadsVariable = "LAMBDASERVICE_THREADS";

    /// <summary>Intra-op threads of libtorch and of ONNX Runtime in this process (at least 1).</summary>
    public static int Threads { get; } = ThreadsFrom(Environment.GetEnvironmentVariable(ThreadsVariable) ?? Environment.GetEnvironmentVariable("LAMBDASERVICE_TORCH_THREADS"));

    private static readonly Lazy<int> Configured = new(() =>
    {
        TorchSharp.torch.set_num_threads(Threads);
        OneDnnConvolutions.EnsureDisabled();
        GlibcAllocator.Configure();
        return Threads;
    });

    /// <summary>Applies the settings (idempotent) and returns the number of intra-op threads.</summary>
    public static int EnsureConfigured() => Configured.Value;

    /// <summary>The thread count a setting asks for: a positive integer, else every core.</summary>
    public static int ThreadsFrom(string? setting) =>
        int.TryParse(setting, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var t) && t > 0
            ? t
            : Math.Max(1, Environment.ProcessorCount);
}
