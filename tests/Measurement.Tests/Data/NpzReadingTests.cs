using System.IO.Compression;
using System.Security.Cryptography;
using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class NpzReadingTests
{
    [Fact]
    public void Features_and_integer_labels_are_read_from_x_and_y()
    {
        var file = NpzBytes.Zip(
            ("x.npy", NpyBytes.Float64([3, 2], 1, 2, 3, 4, 5, 6)),
            ("y.npy", NpyBytes.Array("<i8", [3], NpyBytes.Int64Data(0, 2, 1))));

        var dataset = DataAssert.Read(file, "train.npz");

        Assert.Equal([1.0, 2, 3, 4, 5, 6], dataset.X);
        Assert.Equal(3, dataset.Rows);
        Assert.Equal([2], dataset.SampleShape);
        Assert.Equal([0, 2, 1], dataset.Labels!);
        Assert.Equal(3, dataset.LabelClasses);
        Assert.Equal("npz", dataset.Format);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(file)).ToLowerInvariant(), dataset.Sha256);
    }

    [Fact]
    public void Features_alone_give_a_dataset_without_labels()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Array("|u1", [2, 1, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])));

        var dataset = DataAssert.Read(file, "x.npz");

        Assert.Null(dataset.Labels);
        Assert.Equal([1, 2, 2], dataset.SampleShape);
        Assert.Equal([1.0, 2, 3, 4, 5, 6, 7, 8], dataset.X);
    }

    [Fact]
    public void Whole_float_labels_are_accepted()
    {
        var file = NpzBytes.Zip(
            ("x.npy", NpyBytes.Float64([2], 0.5, 0.25)),
            ("y.npy", NpyBytes.Float64([2], 3.0, 0.0)));

        Assert.Equal([3, 0], DataAssert.Read(file, "d.npz").Labels!);
    }

    [Theory]
    [InlineData("|u1", new byte[] { 4, 9 }, new[] { 4, 9 })]
    [InlineData("<i4", new byte[] { 1, 0, 0, 0, 0, 1, 0, 0 }, new[] { 1, 256 })]
    [InlineData("|b1", new byte[] { 1, 0 }, new[] { 1, 0 })]
    public void Labels_of_other_integer_dtypes_are_accepted(string descr, byte[] data, int[] expected)
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([2], 1, 2)), ("y.npy", NpyBytes.Array(descr, [2], data)));

        Assert.Equal(expected, DataAssert.Read(file, "d.npz").Labels!);
    }

    [Fact]
    public void Entry_order_and_other_entries_do_not_matter()
    {
        var file = NpzBytes.Zip(
            ("notes.npy", NpyBytes.Float64([1], 9)),
            ("y.npy", NpyBytes.Array("|u1", [2], [1, 0])),
            ("x.npy", NpyBytes.Float64([2], 7, 8)));

        var dataset = DataAssert.Read(file, "d.npz");

        Assert.Equal([7.0, 8.0], dataset.X);
        Assert.Equal([1, 0], dataset.Labels!);
    }

    [Fact]
    public void Stored_entries_are_read_like_deflated_ones()
    {
        var file = NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", NpyBytes.Float64([2], 7, 8)));

        Assert.Equal([7.0, 8.0], DataAssert.Read(file, "d.npz").X);
    }

    [Fact]
    public void A_fortran_ordered_x_inside_an_npz_is_transposed()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Array("<f8", [2, 2], NpyBytes.Float64Data(1, 3, 2, 4), fortranOrder: true)));

        Assert.Equal([1.0, 2, 3, 4], DataAssert.Read(file, "d.npz").X);
    }

    [Fact]
    public void A_zip_is_read_as_npz_whatever_its_name()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([1], 1)));

        Assert.Equal("npz", DataAssert.Read(file, "upload.bin").Format);
    }

    [Fact]
    public void An_npz_from_a_stream_that_cannot_seek_is_read()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([2], 7, 8)), ("y.npy", NpyBytes.Array("|u1", [2], [0, 1])));

        var dataset = DatasetReader.Read(new ForwardOnlyStream(file), "d.npz", new DataReadOptions());

        Assert.Equal([0, 1], dataset.Labels!);
    }

    [Fact]
    public void An_npz_after_other_bytes_in_a_seekable_stream_is_read_from_the_current_position()
    {
        var file = NpzBytes.Zip(("x.npy", NpyBytes.Float64([2], 7, 8)));
        var stream = new MemoryStream([.. "junk"u8, .. file]) { Position = 4 };

        var dataset = DatasetReader.Read(stream, "d.npz", new DataReadOptions());

        Assert.Equal([7.0, 8.0], dataset.X);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(file)).ToLowerInvariant(), dataset.Sha256);
    }
}
