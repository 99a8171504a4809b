namespace LambdaService.Measurement.Data;

/// <summary>An append-only list of doubles kept in fixed-size chunks, so that growing it never copies what it holds.</summary>
internal sealed class ChunkedDoubleBuffer
{
    private const int ChunkSize = 1 << 16;
    private readonly List<double[]> _chunks = [];
    private double[] _current = [];
    private int _inCurrent;

    /// <summary>Number of values added.</summary>
    public long Count { get; private set; }

    /// <summary>Appends a value.</summary>
    public void Add(double value)
    {
        if (_inCurrent == _current.Length)
        {
            _current = new double[ChunkSize];
            _chunks.Add(_current);
            _inCurrent = 0;
        }
        _current[_inCurrent++] = value;
        Count++;
    }

    /// <summary>Copies the values into one array.</summary>
    public double[] ToArray()
    {
        var result = new double[Count];
        long at = 0;
        foreach (var chunk in _chunks)
        {
            var n = (int)Math.Min(chunk.Length, Count - at);
            Array.Copy(chunk, 0, result, at, n);
            at += n;
        }
        return result;
    }
}
