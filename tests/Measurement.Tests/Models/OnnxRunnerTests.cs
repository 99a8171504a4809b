using System.Runtime.InteropServices;
using LambdaService.Measurement.Models;
using LambdaService.Measurement.Tests.Engines;

namespace LambdaService.Measurement.Tests.Models;

public class OnnxRunnerTests
{
    [Fact]
    public void The_float64_rewrite_of_an_mlp_computes_the_same_logits_as_hand_arithmetic()
    {
        // logits = W2·tanh(W1·x + b1) + b2 with W1 = [[1,2],[3,4]], b1 = [0.5,-0.5], W2 = [[1,-1]], b2 = [0.25]; x = (0.1, 0.2):
        // h = tanh(0.1+0.4+0.5, 0.3+0.8−0.5) = tanh(1.0, 0.6); out = tanh(1) − tanh(0.6) + 0.25.
        var model = OnnxModelBuilder.Mlp([new float[,] { { 1, 2 }, { 3, 4 } }, new float[,] { { 1, -1 } }], [[0.5f, -0.5f], [0.25f]]);
        using var runner = OnnxRunner.Create(TestData.Onnx(model), [2]);
        Assert.Equal("float64", runner.Precision);
        Assert.Equal(ModelKind.Scalar, runner.Signature.Kind);
        var y = runner.Forward([0.1, 0.2], 1);
        // The inputs 0.1 and 0.2 enter in float64, so only float64 rounding remains.
        Assert.Equal(Math.Tanh(1.0) - Math.Tanh(0.6) + 0.25, y[0], 12);
    }

    [Fact]
    public void Float32_and_float64_runs_of_the_same_graph_agree_to_float32_precision()
    {
        var mlp = new ReferenceMlp([4, 8, 3], seed: 5);
        var file = TestData.Onnx(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases));
        using var f64 = OnnxRunner.Create(file, [4]);
        using var f32 = OnnxRunner.Create(file, [4], new OnnxRunnerOptions { PreferFloat64 = false });
        Assert.Equal("float32", f32.Precision);
        Assert.Equal(ModelKind.Classifier, f64.Signature.Kind);
        Assert.Equal(3, f64.Signature.Classes);
        var x = TestData.Uniform(40, seed: 6);
        var a = f64.Forward(x, 10);
        var b = f32.Forward(x, 10);
        for (var i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-5 * Math.Max(1, Math.Abs(a[i])), $"{a[i]} vs {b[i]}");
    }
}

public class OnnxConvolutionTests
{
    /// <summary>A tiny CNN: Conv(1→2, 3×3) → Tanh → MaxPool(2) → Flatten → Gemm(→3), input [N,1,6,6].</summary>
    internal static Onnx.ModelProto TinyCnn(int seed)
    {
        var rng = new Random(seed);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var b = new OnnxModelBuilder("x", 1, 6, 6);
        var conv = b.Node("Conv", [b.Input, b.Constant(Rand(18), 2, 1, 3, 3), b.Constant(Rand(2), 2)], ("kernel_shape", new long[] { 3, 3 }));
        var pooled = b.Node("MaxPool", [b.Node("Tanh", [conv])], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }));
        var flat = b.Node("Flatten", [pooled], ("axis", 1L));
        var logits = b.Node("Gemm", [flat, b.Constant(Rand(24), 3, 8), b.Constant(Rand(3), 3)], ("transB", 1L));
        return b.Build(logits, "logits", 3);
    }

    [Fact]
    public void A_graph_runs_in_the_best_precision_onnx_runtime_offers_and_says_which()
    {
        var file = TestData.Onnx(TinyCnn(3));
        using var best = OnnxRunner.Create(file, [1, 6, 6]);
        using var f32 = OnnxRunner.Create(file, [1, 6, 6], new OnnxRunnerOptions { PreferFloat64 = false });
        Assert.Equal(3, best.Signature.Classes);
        if (best.Precision == "float32")
        {
            Assert.Contains(best.Notes, n => n.Contains("float64 is not available"));
        }
        var x = TestData.Uniform(2 * 36, seed: 4);
        var a = best.Forward(x, 2);
        var c = f32.Forward(x, 2);
        for (var i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - c[i]) < 1e-5, $"{a[i]} vs {c[i]}");
    }
}

// Alone (not in parallel with other tests): forced collections with freed memory scribbled over would also expose
// TorchSharp's own short windows (an implicit Scalar temporary finalized during a native call) in unrelated tests.
[Collection(AllocatorCollection.Name)]
public class OnnxRunnerLifetimeTests
{
    // glibc's mallopt(M_PERTURB, byte): from now on freed blocks are filled with that byte, so reading freed memory gives
    // garbage at once instead of the old values (mallopt returns 1 on success).
    private const int MPerturb = -6;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    [Fact]
    public void Forward_gives_the_same_logits_while_the_garbage_collector_finalizes_concurrently()
    {
        // Regression: Forward once passed a fresh RunOptions to InferenceSession.Run and kept no reference to it. ONNX
        // Runtime's C# Run hands the native handle over as a plain IntPtr, so the GC could finalize (free) the native run
        // options while ONNX Runtime was still reading them: `bench --repeats 7` died with SIGSEGV inside libonnxruntime
        // (a core dump showed a run-options config lookup through freed memory). Here a second thread forces collections
        // and finalizers without pause while the same batch runs again and again, with freed memory scribbled over
        // (M_PERTURB) so that a use after free shows; every call must return the first call's logits bit for bit (and the
        // process must survive). With the old code this crashed the test host or returned wrong logits in 3 of 3 runs.
        Assert.True(OperatingSystem.IsLinux() && Mallopt(MPerturb, 0xA5) == 1, "glibc's mallopt(M_PERTURB) is needed for this check.");
        try
        {
            var mlp = new ReferenceMlp([16, 256, 256, 10], seed: 11);
            using var runner = OnnxRunner.Create(TestData.Onnx(OnnxModelBuilder.Mlp(mlp.Weights, mlp.Biases)), [16]);
            var x = TestData.Uniform(16 * 1024, seed: 12);
            var expected = runner.Forward(x, 1024);
            // Warm up first: a method's first calls run unoptimised code, which keeps every local alive to the end of its
            // method and so hides a premature finalization; after 30 calls and a short delay the runtime swaps in optimised
            // code (tiered compilation), whose lifetimes end as early as a long-running process has them.
            for (var round = 0; round < 3; round++)
            {
                for (var i = 0; i < 40; i++) runner.Forward(x, 1024);
                Thread.Sleep(500);
            }
            using var stop = new CancellationTokenSource();
            var collector = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true);
                    GC.WaitForPendingFinalizers();
                }
            }) { IsBackground = true };
            collector.Start();
            try
            {
                var deadline = DateTime.UtcNow.AddSeconds(3);
                while (DateTime.UtcNow < deadline) Assert.Equal(expected, runner.Forward(x, 1024));
            }
            finally
            {
                stop.Cancel();
                collector.Join();
            }
        }
        finally
        {
            Mallopt(MPerturb, 0);
        }
    }
}
