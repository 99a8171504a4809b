namespace LambdaService.Measurement.Engines;

/// <summary>
/// The batching shared by the exact engines: a request's lines (point-major: line l is point ⌊l / D⌋ along direction l)
/// go through the network in passes of at most a given number of lines, and each pass's values
/// <c>[line, order 0..K]</c> land in one row-major array <c>[line, order]</c>.
/// </summary>
internal static class LinePasses
{
    /// <summary>
    /// One pass: base points <paramref name="x"/> and directions <paramref name="v"/> (<paramref name="lines"/> samples each,
    /// row-major) and one class per line; returns <c>lines × (K+1)</c> values.
    /// </summary>
    public delegate double[] Pass(double[] x, double[] v, long[] classes, int lines);

    /// <summary>Runs <paramref name="pass"/> over all lines of <paramref name="request"/>, reporting progress after each pass.</summary>
    public static double[] Run(DerivativeRequest request, int sampleSize, int linesPerPass, Pass pass, IProgress<double>? progress,
        CancellationToken cancellationToken)
    {
        var lines = request.PointCount * request.DirectionsPerPoint;
        var width = request.MaxOrder + 1;
        var values = new double[(long)lines * width];
        for (var start = 0; start < lines; start += linesPerPass)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(linesPerPass, lines - start);
            var x = new double[(long)n * sampleSize];
            var classes = new long[n];
            for (var i = 0; i < n; i++)
            {
                var p = (start + i) / request.DirectionsPerPoint;
                Array.Copy(request.Points, (long)p * sampleSize, x, (long)i * sampleSize, sampleSize);
                classes[i] = request.TargetClass.Length > 0 ? request.TargetClass[p] : 0;
            }
            var v = request.Directions.AsSpan(start * sampleSize, n * sampleSize).ToArray();
            var block = pass(x, v, classes, n);
            Array.Copy(block, 0, values, (long)start * width, block.Length);
            progress?.Report((double)(start + n) / lines);
        }
        return values;
    }
}
