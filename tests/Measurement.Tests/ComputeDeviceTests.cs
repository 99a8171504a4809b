using LambdaService.Measurement.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests;

public class ComputeDeviceTests
{
    [Theory]
    [InlineData("tpu")]
    [InlineData("CUDA")]
    [InlineData("")]
    [InlineData(null)]
    public void An_unknown_device_word_is_refused_naming_the_field(string? word)
    {
        var e = Assert.Throws<MeasurementInputException>(() => ComputeDevice.Check(word, "crr.device"));
        Assert.Equal("crr.device", e.Field);
        Assert.Contains("use auto", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cpu_is_the_cpu_and_auto_and_cuda_follow_what_libtorch_sees()
    {
        Assert.Equal(DeviceType.CPU, ComputeDevice.Torch("cpu").type);
        if (cuda.is_available())
        {
            Assert.Equal(DeviceType.CUDA, ComputeDevice.Torch("auto").type);
            Assert.Equal("cuda:0", ComputeDevice.Name(ComputeDevice.Torch("cuda")));
        }
        else
        {
            Assert.Equal(DeviceType.CPU, ComputeDevice.Torch("auto").type);
            var e = Assert.Throws<MeasurementInputException>(() => ComputeDevice.Torch("cuda"));
            Assert.Equal("device", e.Field);
            Assert.Equal(ComputeDevice.UnavailableTitle, e.Title);
            Assert.Contains("libtorch sees no CUDA device", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal("cpu", ComputeDevice.Name(CPU));
        Assert.Equal("cuda:1", ComputeDevice.Name(new Device(DeviceType.CUDA, 1)));
    }
}
