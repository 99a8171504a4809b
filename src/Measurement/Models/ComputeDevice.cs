using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Models;

/// <summary>Where a request asks native work to run (<see cref="ComputeDevice"/>); its words are <see cref="ComputeDevice.Choices"/>.</summary>
public enum DeviceChoice
{
    /// <summary>CUDA when this process can reach a device, else the CPU (default).</summary>
    Auto,

    /// <summary>The CPU.</summary>
    Cpu,

    /// <summary>The first CUDA device; an error when there is none.</summary>
    Cuda,
}

/// <summary>
/// Where native work runs: <c>cpu</c>, <c>cuda</c> (the first CUDA device; an error when there is none) or <c>auto</c> (CUDA when
/// this process can reach a device, else the CPU). libtorch answers for the engines and training; ONNX Runtime answers for
/// finite differences (<see cref="OnnxRunnerOptions.Device"/>). This build's libtorch (TorchSharp-cpu) never sees a CUDA
/// device: a GPU node runs the CUDA image (see the README), where the same code finds one.
/// </summary>
public static class ComputeDevice
{
    /// <summary>The words accepted: the members of <see cref="DeviceChoice"/> in lower case, in their order.</summary>
    public static readonly string[] Choices = [.. Enum.GetNames<DeviceChoice>().Select(n => n.ToLowerInvariant())];

    /// <summary>Title of the problem when CUDA is requested and absent.</summary>
    public const string UnavailableTitle = "CUDA unavailable";

    /// <summary>Throws a <see cref="MeasurementInputException"/> naming <paramref name="field"/> unless the word is one of <see cref="Choices"/>.</summary>
    public static void Check(string? requested, string field = "device")
    {
        if (requested is null || !Choices.Contains(requested))
        {
            throw new MeasurementInputException(field, $"device '{requested}' is not known; use auto (the default: CUDA where there is a device, else the CPU), cpu or cuda.");
        }
    }

    /// <summary>The libtorch device for a request: CPU, the first CUDA device, or an error titled <see cref="UnavailableTitle"/> for <c>cuda</c> without one.</summary>
    public static Device Torch(string requested, string field = "device")
    {
        Check(requested, field);
        TorchRuntime.EnsureConfigured();
        if (requested == "cpu") return CPU;
        var available = cuda.is_available();
        if (available) return new Device(DeviceType.CUDA, 0);
        if (requested == "auto") return CPU;
        throw Unavailable(field, "libtorch sees no CUDA device in this process (this build runs libtorch on the CPU, or the node has no GPU or driver)");
    }

    /// <summary>The name a result reports: <c>cpu</c> or <c>cuda:N</c>.</summary>
    public static string Name(Device device) => device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, device.index)}" : "cpu";

    /// <summary>The error for CUDA requested and absent: names the field and what to do instead.</summary>
    public static MeasurementInputException Unavailable(string field, string why, Exception? inner = null) =>
        new(field, $"CUDA was requested but {why}. Run it on a GPU node (queue gpu, the CUDA image) or use device auto or cpu.", inner, UnavailableTitle);
}
