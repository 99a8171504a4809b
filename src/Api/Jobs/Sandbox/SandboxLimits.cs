namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>Limits for one sandboxed job; exceeding either ends the child process and fails the job with that cause.</summary>
/// <param name="TimeLimit">Wall-clock time from the start of the child; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
/// <param name="MemoryLimitBytes">
/// Resident set size (VmRSS, and the child's high-water mark VmHWM) of the child and its descendants, in bytes;
/// it counts the runtime and the native libraries the child maps, not only the job's data.
/// </param>
public sealed record SandboxLimits(TimeSpan TimeLimit, long MemoryLimitBytes)
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a time limit that is neither positive nor infinite, or a memory limit that is not positive.</summary>
    public void Validate()
    {
        if (TimeLimit <= TimeSpan.Zero && TimeLimit != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(TimeLimit), TimeLimit, "The time limit must be positive (or Timeout.InfiniteTimeSpan).");
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MemoryLimitBytes);
    }
}
