using System.Runtime.InteropServices;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Switches libtorch's oneDNN (MKL-DNN) convolution kernels off for the whole process, so that convolutions run
/// libtorch's own im2col + GEMM kernels.
/// </summary>
/// <remarks>
/// <para>
/// Why: with libtorch 2.10 (TorchSharp 0.107) on this project's machines (AMD EPYC, AVX-512), the float32 oneDNN
/// convolution backward pass gives wrong input gradients for small channel counts, intermittently: the same call
/// repeated on the same tensors returned relative errors of 10–60% or NaN on some repetitions (1→2, 2→3, 3→3, 4→8
/// and 16→2 channels on 8×8 to 28×28 inputs; 8→16 and wider were right in every repetition tried). With the
/// oneDNN path off every case agreed with a float64 computation to float32 rounding (≈10⁻⁶ relative). Training a
/// small CNN on this path produced NaN weights; input derivatives of a float32 TorchScript CNN would be wrong the
/// same way. float64 convolutions never take the oneDNN path and are unaffected.
/// </para>
/// <para>
/// Cost: the im2col path trains the default MNIST CNN about 4–5× slower on CPU (26 s instead of 5.5 s per epoch of
/// 8,000 digits on one thread). Correct gradients come first.
/// </para>
/// <para>
/// How: libtorch exposes the switch only in C++ (<c>at::globalContext().setUserEnabledMkldnn(false)</c>, the
/// equivalent of Python's <c>torch.backends.mkldnn.enabled = False</c>); TorchSharp has no binding for it, so it is
/// called through its exported Itanium-mangled symbols in the <c>libtorch_cpu</c> that TorchSharp already loaded.
/// Where that library or those symbols are missing (another platform or libtorch build), nothing changes and
/// <see cref="Disabled"/> is false.
/// </para>
/// </remarks>
public static class OneDnnConvolutions
{
    private static readonly Lazy<bool> State = new(Disable, LazyThreadSafetyMode.ExecutionAndPublication);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetEnabledFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool GetEnabledFn(IntPtr context);

    /// <summary>Whether the oneDNN convolutions are off in this process (after <see cref="EnsureDisabled"/>).</summary>
    public static bool Disabled => State.IsValueCreated && State.Value;

    /// <summary>Switches the oneDNN convolutions off (once per process; <see cref="TorchRuntime.EnsureConfigured"/> calls it) and returns whether they are off.</summary>
    public static bool EnsureDisabled() => State.Value;

    private static bool Disable()
    {
        // Called by TorchRuntime after libtorch has been loaded through TorchSharp, so that the handle below is
        // the copy TorchSharp uses.
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        var name = OperatingSystem.IsLinux() ? "libtorch_cpu.so" : "libtorch_cpu.dylib";
        // A bare file name goes to dlopen unchanged; a library with that soname that is already loaded is returned as is.
        if (!NativeLibrary.TryLoad(name, out var library)) return false;
        if (!NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var contextFn)
            || !NativeLibrary.TryGetExport(library, "_ZN2at7Context20setUserEnabledMkldnnEb", out var setFn)
            || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context17userEnabledMkldnnEv", out var getFn))
        {
            return false;
        }
        var context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(contextFn)();
        Marshal.GetDelegateForFunctionPointer<SetEnabledFn>(setFn)(context, false);
        // With oneDNN off, libtorch tries NNPACK for every float32 convolution; on CPUs NNPACK does not support (this
        // project's AMD EPYC) each try fails and prints "Could not initialize NNPACK! Reason: Unsupported hardware." to
        // stderr, thousands of lines per training run, before falling back to the same im2col kernels. Switch it off too.
        if (NativeLibrary.TryGetExport(library, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setNnpack))
        {
            Marshal.GetDelegateForFunctionPointer<SetEnabledFn>(setNnpack)(context, false);
        }
        return !Marshal.GetDelegateForFunctionPointer<GetEnabledFn>(getFn)(context);
    }
}
