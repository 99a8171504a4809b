using System.Security.Cryptography;
using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class NpyReadingTests
{
    public static TheoryData<string, byte[], double[]> DTypes => new()
    {
        // float16: 0x3C00 = 1, 0xC000 = -2, 0x3800 = 0.5, 0x7BFF = 65504 (largest half).
        { "<f2", [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B], [1, -2, 0.5, 65504] },
        // float32: 0x3FC00000 = 1.5, 0xBE800000 = -0.25, 0x40400000 = 3.
        { "<f4", [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x80, 0xBE, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x00, 0x00], [1.5, -0.25, 3, 0] },
        // float64: 0x3FF0000000000000 = 1, 0xC004000000000000 = -2.5.
        { "<f8", [0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0, 0, 0, 0, 0, 0, 0x04, 0xC0], [1, -2.5] },
        { "|i1", [0xFF, 0x80, 0x7F, 0x00], [-1, -128, 127, 0] },
        { "|u1", [0x00, 0xC8, 0xFF, 0x01], [0, 200, 255, 1] },
        { "<i2", [0xFE, 0xFF, 0x00, 0x80, 0x39, 0x30, 0x01, 0x00], [-2, -32768, 12345, 1] },
        { "<u2", [0xFF, 0xFF, 0x00, 0x80], [65535, 32768] },
        { "<i4", [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x80], [-1, -2147483648] },
        { "<u4", [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x00, 0x00], [4294967295, 256] },
        // int64: -1 and 2^40.
        { "<i8", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0x01, 0, 0], [-1, 1099511627776] },
        // uint64: 2^64 - 1 rounds to 2^64 as a double; 7.
        { "<u8", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0, 0, 0, 0, 0], [18446744073709551616.0, 7] },
        { "|b1", [0, 1, 2, 0], [0, 1, 1, 0] },
        // Byte-order variants: '=' (native, little-endian here), '<' on one-byte types, and big-endian '>' converted.
        { "=f4", [0x00, 0x00, 0xC0, 0x3F], [1.5] },
        { "<u1", [0x07], [7] },
        { ">f8", [0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xC0, 0x04, 0, 0, 0, 0, 0, 0], [1, -2.5] },
        { ">i4", [0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFE], [256, -2] },
        { ">f2", [0x3C, 0x00], [1] },
    };

    [Theory]
    [MemberData(nameof(DTypes))]
    public void Each_accepted_dtype_is_read_as_its_hand_computed_doubles(string descr, byte[] data, double[] expected)
    {
        var size = int.Parse(descr[2..]);
        var file = NpyBytes.Array(descr, [data.Length / size], data);

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal(expected, dataset.X);
        Assert.Equal(expected.Length, dataset.Rows);
        Assert.Equal([1], dataset.SampleShape);
    }

    [Fact]
    public void A_two_dimensional_array_gives_one_row_per_sample_and_no_labels()
    {
        var file = NpyBytes.Float64([2, 3], 1, 2, 3, 4, 5, 6);

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal(2, dataset.Rows);
        Assert.Equal([3], dataset.SampleShape);
        Assert.Equal([1.0, 2, 3, 4, 5, 6], dataset.X);
        Assert.Null(dataset.Labels);
        Assert.Equal("npy", dataset.Format);
    }

    [Fact]
    public void An_image_array_keeps_its_per_sample_shape()
    {
        var file = NpyBytes.Array("|u1", [2, 1, 28, 28], new byte[2 * 784]);

        var dataset = DataAssert.Read(file, "images.npy");

        Assert.Equal(2, dataset.Rows);
        Assert.Equal([1, 28, 28], dataset.SampleShape);
        Assert.Equal(784, dataset.SampleSize);
    }

    [Fact]
    public void A_fortran_ordered_matrix_is_transposed_to_row_major()
    {
        // x = [[1, 2, 3], [4, 5, 6]] stored column by column.
        var file = NpyBytes.Array("<f8", [2, 3], NpyBytes.Float64Data(1, 4, 2, 5, 3, 6), fortranOrder: true);

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal([1.0, 2, 3, 4, 5, 6], dataset.X);
    }

    [Fact]
    public void A_fortran_ordered_three_dimensional_array_is_transposed_to_row_major()
    {
        // x[i, j, k] = 100 i + 10 j + k with shape (2, 3, 4); Fortran order has i fastest, then j, then k.
        var stored = new List<double>();
        for (var k = 0; k < 4; k++)
            for (var j = 0; j < 3; j++)
                for (var i = 0; i < 2; i++)
                    stored.Add(100 * i + 10 * j + k);
        var rowMajor = new List<double>();
        for (var i = 0; i < 2; i++)
            for (var j = 0; j < 3; j++)
                for (var k = 0; k < 4; k++)
                    rowMajor.Add(100 * i + 10 * j + k);
        var file = NpyBytes.Array("<f8", [2, 3, 4], NpyBytes.Float64Data([.. stored]), fortranOrder: true);

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal(rowMajor, dataset.X);
        Assert.Equal([3, 4], dataset.SampleShape);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Format_versions_2_and_3_are_read(int major)
    {
        var file = NpyBytes.WithHeader(NpyBytes.Dict("<f4", [2]), NpyBytes.Float32Data(0.5f, -4f), major);

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal([0.5, -4.0], dataset.X);
    }

    [Fact]
    public void A_header_with_double_quotes_python2_longs_and_no_trailing_comma_is_read()
    {
        var file = NpyBytes.WithHeader("{\"descr\": \"<f8\", \"shape\": (1L, 2L), \"fortran_order\": False}", NpyBytes.Float64Data(7, 8));

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal([7.0, 8.0], dataset.X);
        Assert.Equal([2], dataset.SampleShape);
    }

    [Fact]
    public void The_hash_is_the_lower_case_sha256_of_the_whole_file()
    {
        var file = NpyBytes.Float64([1], 42);

        var dataset = DataAssert.Read(file, "x.npy");

        Assert.Equal(Convert.ToHexString(SHA256.HashData(file)).ToLowerInvariant(), dataset.Sha256);
        Assert.Equal(64, dataset.Sha256.Length);
    }

    [Fact]
    public void Content_decides_the_format_whatever_the_extension()
    {
        var file = NpyBytes.Float64([1, 2], 1, 2);

        var dataset = DataAssert.Read(file, "upload.csv");

        Assert.Equal("npy", dataset.Format);
    }

    [Fact]
    public void A_stream_that_cannot_seek_is_read_and_hashed_like_any_other()
    {
        var file = NpyBytes.Float64([2], 3, 4);

        var dataset = DatasetReader.Read(new ForwardOnlyStream(file), "x.npy", new DataReadOptions());

        Assert.Equal([3.0, 4.0], dataset.X);
        Assert.Equal(DataAssert.Read(file, "x.npy").Sha256, dataset.Sha256);
    }

    [Fact]
    public void A_file_on_disk_is_read_by_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"lambda-data-{Guid.NewGuid():N}.npy");
        File.WriteAllBytes(path, NpyBytes.Float64([1, 2], 5, 6));
        try
        {
            var dataset = DatasetReader.Read(path, new DataReadOptions());

            Assert.Equal([5.0, 6.0], dataset.X);
            Assert.Equal("npy", dataset.Format);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_missing_file_is_reported_as_a_data_error()
    {
        var path = Path.Combine(Path.GetTempPath(), $"lambda-missing-{Guid.NewGuid():N}.npy");

        DataAssert.Message(() => DatasetReader.Read(path, new DataReadOptions()), "data", "does not exist");
    }

    [Fact]
    public void Exactly_max_values_are_accepted()
    {
        var file = NpyBytes.Float64([2, 3], 1, 2, 3, 4, 5, 6);

        var dataset = DataAssert.Read(file, "x.npy", new DataReadOptions { MaxValues = 6 });

        Assert.Equal(6, dataset.X.Length);
    }
}
