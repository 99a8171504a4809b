using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests;

public class NativeLoadingTests
{
    [Fact]
    public void Libtorch_loads_in_the_test_host_and_computes_a_dot_product_and_a_gradient()
    {
        // (1,2,3)·(1,2,3) = 14; d/dx Σx² = 2x = (2,4,6).
        using var scope = NewDisposeScope();
        var x = tensor(new double[] { 1, 2, 3 }, requires_grad: true);
        var y = (x * x).sum();
        Assert.Equal(14.0, y.item<double>());
        var g = autograd.grad([y], [x])[0];
        Assert.Equal([2.0, 4.0, 6.0], g.data<double>().ToArray());
    }

    [Fact]
    public void Onnx_runtime_loads_in_the_test_host_and_offers_the_cpu_provider()
    {
        Assert.Contains("CPUExecutionProvider", OrtEnv.Instance().GetAvailableProviders());
    }
}
