namespace LambdaService.Measurement.Engines;

/// <summary>
/// The batching shared by the engines: a request's lines (point-major: line l is point ⌊l / D⌋ along direction l)
/// go through the network in passes whose size <see cref="PassPlanner"/> derives from a <see cref="LineBudget"/>, and each
/// pass's values <c>[line, order 0..K]</c> land in one row-major array <c>[line, order]</c>.
/// </summary>
internal static class LinePasses
{
    /// <summary>
    /// One pass: base points <paramref name="x"/> and directions <paramref name="v"/> (<paramref name="lines"/> samples each,
    /// row-major) and one class per line; returns <c>lines × (K+1)</c> values.
    /// </summary>
    public delegate double[] Pass(double[] x, double[] v, long[] classes, int lines);

    /// <summary>
    /// Runs <paramref name="pass"/> over all lines of <paramref name="request"/> in passes planned from <paramref name="budget"/>
    /// (passes hold multiples of <paramref name="granularity"/> lines where they can), reporting progress after each pass. The
    /// planner's probe passes are the first passes: their values are kept. <paramref name="device"/> is where the passes run: on
    /// the CPU passes stay within <see cref="PassPlanner.CpuPassTargetMb"/> when the budget is larger.
    /// </summary>
    public static (double[] Values, PassPlan Plan) Run(DerivativeRequest request, int sampleSize, LineBudget budget, int granularity, string engine,
        Pass pass, IProgress<double>? progress, CancellationToken cancellationToken, TorchSharp.torch.Device? device = null)
    {
        var lines = request.PointCount * request.DirectionsPerPoint;
        var width = request.MaxOrder + 1;
        cancellationToken.ThrowIfCancellationRequested();
        var values = new double[(long)lines * width];
        void RunLines(int start, int n)
        {
            var (x, v, classes) = Slice(request, sampleSize, start, n);
            var block = pass(x, v, classes, n);
            Array.Copy(block, 0, values, (long)start * width, block.Length);
            progress?.Report((double)(start + n) / lines);
        }
        var onCpu = device is null || device.type == TorchSharp.DeviceType.CPU;
        var plan = PassPlanner.Run(budget, lines, granularity, engine, RunLines, cancellationToken, passTargetMb: onCpu ? PassPlanner.CpuPassTargetMb : null);
        return (values, plan);
    }

    /// <summary>Base points, directions and classes of lines <paramref name="start"/>..<paramref name="start"/>+<paramref name="n"/>−1.</summary>
    private static (double[] X, double[] V, long[] Classes) Slice(DerivativeRequest request, int sampleSize, int start, int n)
    {
        var x = new double[(long)n * sampleSize];
        var classes = new long[n];
        for (var i = 0; i < n; i++)
        {
            var p = (start + i) / request.DirectionsPerPoint;
            Array.Copy(request.Points, (long)p * sampleSize, x, (long)i * sampleSize, sampleSize);
            classes[i] = request.TargetClass.Length > 0 ? request.TargetClass[p] : 0;
        }
        var v = request.Directions.AsSpan(start * sampleSize, n * sampleSize).ToArray();
        return (x, v, classes);
    }
}
