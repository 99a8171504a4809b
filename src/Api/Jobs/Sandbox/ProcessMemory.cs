using System.Globalization;

namespace LambdaService.Api.Jobs.Sandbox;

/// <summary>Resident memory of a process and its descendants, read from <c>/proc</c> (Linux).</summary>
internal static class ProcessMemory
{
    /// <summary>Resident bytes of <paramref name="pid"/> and its descendants, and the high-water mark of <paramref name="pid"/> itself.</summary>
    /// <returns>Zeros for a process that has gone.</returns>
    public static (long TreeResident, long PeakResident) Read(int pid)
    {
        var (rss, hwm) = Status(pid);
        long tree = rss;
        var seen = new HashSet<int> { pid };
        var pending = new Stack<int>(Children(pid));
        while (pending.Count > 0 && seen.Count < 4096)
        {
            var child = pending.Pop();
            if (!seen.Add(child)) continue;
            tree += Status(child).Rss;
            foreach (var grandchild in Children(child)) pending.Push(grandchild);
        }
        return (tree, hwm);
    }

    /// <summary>VmRSS and VmHWM of one process in bytes (zeros when it has gone or has no memory of its own).</summary>
    public static (long Rss, long Hwm) Status(int pid)
    {
        long rss = 0, hwm = 0;
        try
        {
            foreach (var line in File.ReadLines("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kilobytes(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kilobytes(line);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return (rss, hwm);
    }

    private static IEnumerable<int> Children(int pid)
    {
        var result = new List<int>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/task"))
            {
                string text;
                try
                {
                    text = File.ReadAllText(Path.Combine(task, "children"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out var child)) result.Add(child);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return result;
    }

    // "VmRSS:	  123456 kB"
    private static long Kilobytes(string line)
    {
        var words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return words.Length >= 2 && long.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : 0;
    }
}
