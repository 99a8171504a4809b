using System.Diagnostics;
using System.IO.Compression;
using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class NpzRejectionTests
{
    private static readonly byte[] X = NpyBytes.Float64([2], 1, 2);

    [Theory]
    [InlineData("../x.npy")]
    [InlineData("a/x.npy")]
    [InlineData("/x.npy")]
    [InlineData("a\\x.npy")]
    [InlineData("C:x.npy")]
    [InlineData("..")]
    [InlineData("dir/")]
    public void An_entry_whose_name_is_a_path_is_rejected_by_name(string name)
    {
        var file = NpzBytes.Zip(("x.npy", X), (name, X));

        DataAssert.Rejects(file, "d.npz", "data", $"'{name}'", "is a path");
    }

    [Fact]
    public void A_traversal_entry_named_like_x_is_rejected_rather_than_skipped()
    {
        var file = NpzBytes.Zip(("../x.npy", X));

        DataAssert.Rejects(file, "d.npz", "data", "../x.npy");
    }

    [Fact]
    public void A_missing_x_is_rejected_listing_the_entries_present()
    {
        var file = NpzBytes.Zip(("features.npy", X), ("y.npy", NpyBytes.Array("|u1", [2], [0, 1])));

        DataAssert.Rejects(file, "d.npz", "data", "no array x", "'features.npy'", "'y.npy'", "numpy.savez(file, x=");
    }

    [Fact]
    public void An_empty_zip_is_rejected_as_missing_x()
    {
        DataAssert.Rejects(NpzBytes.Zip(), "d.npz", "data", "no array x", "it is empty");
    }

    [Fact]
    public void A_duplicate_entry_is_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", X), ("x.npy", NpyBytes.Float64([2], 3, 4)));

        DataAssert.Rejects(file, "d.npz", "data", "'x.npy' more than once");
    }

    [Fact]
    public void An_encrypted_entry_is_rejected()
    {
        var file = NpzBytes.MarkEncrypted(NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", X)));

        DataAssert.Rejects(file, "d.npz", "data", "'x.npy' is encrypted");
    }

    [Fact]
    public void An_entry_compressed_with_an_unsupported_method_is_rejected()
    {
        var file = NpzBytes.SetCompressionMethod(NpzBytes.Zip(("x.npy", X)), 12);

        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy of the npz file cannot be read", "save it again with numpy.savez");
    }

    [Fact]
    public void Corrupt_deflate_data_is_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([64], new double[64])));
        // Overwrite the compressed bytes that follow the 30-byte local header and the 5-byte name.
        for (var i = 35; i < 60; i++) file[i] = 0xFF;

        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy of the npz file cannot be decompressed");
    }

    [Theory]
    [InlineData(CompressionLevel.NoCompression)]
    [InlineData(CompressionLevel.Optimal)]
    public void An_entry_that_fails_its_crc_check_is_rejected(CompressionLevel level)
    {
        var file = NpzBytes.CorruptCrc(NpzBytes.Zip(level, ("x.npy", X)));

        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy", "CRC-32", "corrupt");
    }

    [Fact]
    public void A_flipped_data_bit_in_a_stored_entry_is_caught_by_the_crc()
    {
        var file = NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", X));
        file[30 + "x.npy".Length + X.Length - 1] ^= 0x40; // last byte of x's data, after the 30-byte local header and the name

        DataAssert.Rejects(file, "d.npz", "data", "CRC-32");
    }

    [Fact]
    public void A_truncated_zip_is_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", X));

        DataAssert.Rejects(file[..(file.Length / 2)], "d.npz", "data", "not a readable zip archive");
    }

    [Fact]
    public void Garbage_after_a_zip_signature_is_rejected()
    {
        byte[] file = [(byte)'P', (byte)'K', 3, 4, .. new byte[200]];

        DataAssert.Rejects(file, "d.npz", "data", "not a readable zip archive");
    }

    [Fact]
    public void A_file_named_npz_that_is_not_a_zip_is_rejected()
    {
        DataAssert.Rejects(NpyBytes.Float64([1], 1)[6..], "d.npz", "data", "named .npz but is not a zip archive");
    }

    [Fact]
    public void A_stream_that_cannot_seek_is_not_buffered_beyond_the_limit()
    {
        var file = NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", NpyBytes.Float64([1000], new double[1000])));

        DataAssert.Message(() => DatasetReader.Read(new ForwardOnlyStream(file), "d.npz", new DataReadOptions { MaxDecompressedBytes = 4096 }),
            "data", "larger than the limit of 4096 bytes");
    }

    [Fact]
    public void An_entry_that_is_not_an_npy_array_is_rejected()
    {
        DataAssert.Rejects(NpzBytes.Zip(("x.npy", "a,b\n1,2\n"u8.ToArray())), "d.npz", "data", "entry x.npy", "is not a NumPy array");
    }

    [Fact]
    public void A_directory_listing_too_many_entries_is_rejected()
    {
        var entries = Enumerable.Range(0, 1001).Select(i => ($"e{i}.npy", Array.Empty<byte>())).ToArray();

        DataAssert.Rejects(NpzBytes.Zip(CompressionLevel.NoCompression, entries), "d.npz", "data", "1001 entries");
    }

    [Fact]
    public void A_zip_bomb_is_stopped_quickly_without_allocating_its_size()
    {
        // x.npy declares 6,553,600 float64 values: 50 MiB of zeros that deflate to about 50 KB.
        const long zeros = 50L << 20;
        var header = NpyBytes.WithHeader(NpyBytes.Dict("<f8", [zeros / 8]), []);
        var bomb = NpzBytes.ZipWithZeros("x.npy", header, zeros);
        Assert.True(bomb.Length < 1 << 20);
        var options = new DataReadOptions { MaxDecompressedBytes = 1 << 20 };

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        DataAssert.Rejects(bomb, "bomb.npz", options, "data", "limit of 1048576");
        clock.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.True(allocated < 8 << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_zip_bomb_whose_header_understates_its_size_is_rejected_before_decompressing()
    {
        var header = NpyBytes.WithHeader(NpyBytes.Dict("<f8", [1]), []);
        var bomb = NpzBytes.ZipWithZeros("x.npy", header, 50L << 20);

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        DataAssert.Rejects(bomb, "bomb.npz", new DataReadOptions { MaxDecompressedBytes = 1 << 20 }, "data",
            "entry x.npy is truncated or corrupt", "shape (1,)");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 8 << 20);
    }

    [Fact]
    public void A_header_claiming_more_data_than_the_entry_holds_is_rejected_before_allocating_it()
    {
        // The header declares 4,000,000 float64 values (32 MB); the entry holds none of them.
        var file = NpzBytes.Zip(("x.npy", NpyBytes.WithHeader(NpyBytes.Dict("<f8", [4_000_000]), [])));

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy is truncated or corrupt", "(4000000,)", "32000128");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 8 << 20);
    }

    [Fact]
    public void Decompressed_bytes_are_counted_across_x_and_y()
    {
        var x = NpyBytes.Float64([100], new double[100]);
        var y = NpyBytes.Array("<i8", [100], NpyBytes.Int64Data(new long[100]));
        var file = NpzBytes.Zip(("x.npy", x), ("y.npy", y));

        var options = new DataReadOptions { MaxDecompressedBytes = x.Length + y.Length - 1 };

        DataAssert.Rejects(file, "d.npz", options, "data", "entry y.npy", $"limit of {options.MaxDecompressedBytes}");
        Assert.Equal(100, DataAssert.Read(file, "d.npz", options with { MaxDecompressedBytes = x.Length + y.Length }).Rows);
    }

    [Fact]
    public void Bytes_actually_decompressed_are_counted_even_past_the_size_the_zip_records()
    {
        // The zip records 80 bytes (header and data, which fit the limit exactly) but the entry holds one byte more.
        var x = NpyBytes.Float64([2], 1, 2);
        var file = NpzBytes.SetRecordedSize(NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", [.. x, 0])), (ushort)x.Length);

        DataAssert.Rejects(file, "d.npz", new DataReadOptions { MaxDecompressedBytes = x.Length }, "data",
            "decompresses to more than the limit", "x.npy");
    }

    [Fact]
    public void An_entry_longer_than_the_size_the_zip_records_is_rejected()
    {
        var x = NpyBytes.Float64([2], 1, 2);
        var file = NpzBytes.SetRecordedSize(NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", [.. x, 0])), (ushort)x.Length);

        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy has bytes after the end of its array");
    }

    [Fact]
    public void A_limit_smaller_than_the_header_stops_reading_inside_the_header()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([2], 1, 2)));

        DataAssert.Rejects(file, "d.npz", new DataReadOptions { MaxDecompressedBytes = 32 }, "data", "limit of 32");
    }

    [Fact]
    public void An_object_array_x_inside_an_npz_is_rejected_as_pickled()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Array("|O", [2], new byte[16])));

        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy", "pickled/object arrays are not accepted");
    }

    [Fact]
    public void A_truncated_x_entry_is_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([2], 1, 2)[..^4]));

        DataAssert.Rejects(file, "d.npz", "data", "entry x.npy is truncated");
    }

    [Fact]
    public void NaN_in_x_is_rejected_naming_its_row()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([4, 1], 0, 0, 0, double.NaN)));

        DataAssert.Rejects(file, "d.npz", "data", "x contains NaN at row 3");
    }

    [Fact]
    public void Labels_of_the_wrong_length_are_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([3, 1], 1, 2, 3)), ("y.npy", NpyBytes.Array("|u1", [2], [0, 1])));

        DataAssert.Rejects(file, "d.npz", "labels", "(2,)", "3 rows");
    }

    [Fact]
    public void Two_dimensional_labels_are_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([2, 1], 1, 2)), ("y.npy", NpyBytes.Array("|u1", [2, 1], [0, 1])));

        DataAssert.Rejects(file, "d.npz", "labels", "(2, 1)", "1-D", "y.ravel()");
    }

    [Theory]
    [InlineData(-1.0, "label -1 at row 1 is negative")]
    [InlineData(2.5, "label 2.5 at row 1 is not a whole number")]
    [InlineData(double.NaN, "label NaN at row 1 is not a class index")]
    [InlineData(1e10, "at row 1 is too large")]
    public void Labels_that_are_not_class_indices_are_rejected(double label, string message)
    {
        var file = NpzBytes.Zip(("x.npy", X), ("y.npy", NpyBytes.Float64([2], 0, label)));

        DataAssert.Rejects(file, "d.npz", "labels", message);
    }

    [Fact]
    public void Negative_integer_labels_are_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", X), ("y.npy", NpyBytes.Array("|i1", [2], [0, 0xFD])));

        DataAssert.Rejects(file, "d.npz", "labels", "label -3 at row 1 is negative");
    }

    [Fact]
    public void String_labels_are_rejected()
    {
        var file = NpzBytes.Zip(("x.npy", X), ("y.npy", NpyBytes.Array("<U3", [2], new byte[24])));

        DataAssert.Rejects(file, "d.npz", "data", "entry y.npy", "string arrays are not accepted");
    }
}
