using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LambdaService.Training.Models;

/// <summary>
/// Tensor values to and from plain arrays as whole blocks, for code that computes outside libtorch (the fused CRR kernel). TorchSharp's
/// element accessor <c>data&lt;T&gt;()</c> goes one index at a time (about 15 ns a value here); <c>bytes</c> copies the storage at once.
/// </summary>
public static class TensorValues
{
    /// <summary>Copies a tensor's values (any device, any layout; dtype <typeparamref name="T"/>) into <paramref name="into"/>, row-major.</summary>
    /// <remarks>Intermediates of a copy from another device or layout belong to the caller's dispose scope.</remarks>
    public static void CopyTo<T>(Tensor tensor, T[] into) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(into);
        // Conversions that have nothing to do may return their argument, so nothing here is disposed with `using`.
        var host = tensor.device_type == DeviceType.CPU && tensor.is_contiguous() ? tensor : tensor.detach().cpu().contiguous();
        MemoryMarshal.Cast<byte, T>(host.bytes).CopyTo(into);
    }

    /// <summary>Sets a parameter's gradient to <paramref name="values"/> (float or double, the parameter's layout): in place where it has one on the CPU, else as a new tensor.</summary>
    public static void SetGradient<T>(Parameter parameter, T[] values) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(parameter);
        ArgumentNullException.ThrowIfNull(values);
        var g = parameter.grad;
        if (g is not null && !g.IsInvalid && g.device_type == DeviceType.CPU && g.dtype == parameter.dtype && g.is_contiguous())
        {
            g.bytes = MemoryMarshal.AsBytes(values.AsSpan());
            return;
        }
        using var host = values switch
        {
            float[] f => tensor(f, parameter.shape),
            double[] d => tensor(d, parameter.shape),
            _ => throw new ArgumentException($"Gradients are float or double, not {typeof(T).Name}.", nameof(values)),
        };
        parameter.grad = host.to(parameter.device);
    }
}
