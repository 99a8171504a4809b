using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class NpyRejectionTests
{
    [Fact]
    public void An_object_array_is_rejected_as_pickled()
    {
        var file = NpyBytes.Array("|O", [2], new byte[16]);

        DataAssert.Rejects(file, "x.npy", "data", "pickled/object arrays are not accepted; save a numeric array");
    }

    [Fact]
    public void A_structured_dtype_written_as_a_list_of_fields_is_rejected()
    {
        var dict = "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }";

        DataAssert.Rejects(NpyBytes.WithHeader(dict, new byte[16]), "x.npy", "data", "structured/record dtypes are not accepted");
    }

    [Fact]
    public void A_void_record_dtype_is_rejected()
    {
        DataAssert.Rejects(NpyBytes.Array("|V8", [2], new byte[16]), "x.npy", "data", "structured/record", "|V8");
    }

    [Theory]
    [InlineData("<U3", "string arrays are not accepted")]
    [InlineData("|S4", "string arrays are not accepted")]
    [InlineData("<c16", "complex arrays are not accepted")]
    [InlineData("<c8", "complex arrays are not accepted")]
    [InlineData("<M8[ns]", "datetime arrays are not accepted")]
    [InlineData("<m8[s]", "datetime arrays are not accepted")]
    [InlineData("<f16", "is not supported")]
    [InlineData("<i3", "is not supported")]
    [InlineData("|b2", "is not supported")]
    [InlineData("<q", "is not supported")]
    [InlineData("", "is not supported")]
    public void Non_numeric_and_unusual_dtypes_are_rejected_with_a_message_naming_them(string descr, string message)
    {
        var file = NpyBytes.Array(descr, [1], new byte[16]);

        var ex = DataAssert.Rejects(file, "x.npy", "data", message);
        Assert.Contains($"'{descr}'", ex.Message);
    }

    [Fact]
    public void A_data_section_shorter_than_the_header_claims_is_rejected_as_truncated()
    {
        var file = NpyBytes.Array("<f4", [3, 4], new byte[20]);

        DataAssert.Rejects(file, "x.npy", "data", "truncated", "(3, 4)", "48 bytes", "only 20 bytes");
    }

    [Fact]
    public void A_file_cut_inside_its_header_is_rejected_as_truncated()
    {
        var file = NpyBytes.Float64([2], 1, 2)[..30];

        DataAssert.Rejects(file, "x.npy", "data", "truncated");
    }

    [Fact]
    public void A_file_cut_after_the_magic_is_rejected_as_truncated()
    {
        DataAssert.Rejects(NpyBytes.Float64([2], 1, 2)[..7], "x.npy", "data", "truncated");
    }

    [Fact]
    public void Bytes_after_the_array_are_rejected()
    {
        byte[] file = [.. NpyBytes.Float64([2], 1, 2), .. NpyBytes.Float64([2], 3, 4)];

        DataAssert.Rejects(file, "x.npy", "data", "after the end of its array", "one array per .npy file");
    }

    [Theory]
    [InlineData("{'descr': '<f8', 'fortran_order': False}", "'shape' is missing")]
    [InlineData("{'descr': '<f8', 'shape': (2,)}", "'fortran_order' is missing")]
    [InlineData("{'fortran_order': False, 'shape': (2,)}", "'descr' is missing")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected key 'extra'")]
    [InlineData("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", "'fortran_order' is not True or False")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': 2}", "'shape' is not a tuple")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2)}", "'shape' is not a tuple")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}", "non-negative integers")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2.0,)}", "whole numbers")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large")]
    [InlineData("{'descr': 8, 'fortran_order': False, 'shape': (2,)}", "'descr' is not a string")]
    [InlineData("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", "appears twice")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}'")]
    [InlineData("{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}", "malformed header")]
    [InlineData("['descr', '<f8']", "not a dictionary")]
    [InlineData("", "unexpected end")]
    [InlineData("{'descr': __import__('os').system('rm -rf /'), 'fortran_order': False, 'shape': (2,)}", "is not a literal")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} trailing", "unexpected text")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': ((((((((((((((((((((1,),),),),),),),),),),),),),),),),),),),)}", "nested too deeply")]
    public void A_malformed_header_is_rejected_without_evaluating_it(string dict, string detail)
    {
        var file = NpyBytes.WithHeader(dict, NpyBytes.Float64Data(1, 2));

        DataAssert.Rejects(file, "x.npy", "data", "malformed header", detail, "numpy.save");
    }

    [Fact]
    public void A_header_that_is_not_valid_utf8_in_version_3_is_rejected()
    {
        var v3 = NpyBytes.WithHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", NpyBytes.Float64Data(1, 2), major: 3);
        v3[20] = 0xFF; // inside the dict, which starts after the 12-byte preamble

        DataAssert.Rejects(v3, "x.npy", "data", "not valid UTF-8");
    }

    [Fact]
    public void An_unknown_format_version_is_rejected()
    {
        var file = NpyBytes.Float64([2], 1, 2);
        file[6] = 4;

        DataAssert.Rejects(file, "x.npy", "data", "version 4.0", "not supported");
    }

    [Fact]
    public void A_header_longer_than_the_limit_is_rejected_before_it_is_read()
    {
        // Version 2.0 declares a 4 GB header; only the preamble is present.
        byte[] file = [0x93, .. "NUMPY"u8, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF];

        DataAssert.Rejects(file, "x.npy", "data", "header of 4294967295 bytes");
    }

    [Fact]
    public void A_file_named_npy_without_the_magic_is_rejected()
    {
        DataAssert.Rejects("a,b\n1,2\n"u8.ToArray(), "x.npy", "data", "named .npy", "numpy.save");
    }

    [Fact]
    public void A_shape_with_zero_rows_is_rejected()
    {
        DataAssert.Rejects(NpyBytes.Array("<f8", [0, 784], []), "x.npy", "data", "(0, 784)", "zero rows");
    }

    [Fact]
    public void A_shape_with_no_values_per_sample_is_rejected()
    {
        DataAssert.Rejects(NpyBytes.Array("<f8", [5, 0], []), "x.npy", "data", "(5, 0)", "no values per sample");
    }

    [Fact]
    public void A_zero_dimensional_array_is_rejected()
    {
        DataAssert.Rejects(NpyBytes.Array("<f8", [], NpyBytes.Float64Data(3)), "x.npy", "data", "0-d array");
    }

    [Fact]
    public void NaN_is_rejected_naming_its_row()
    {
        var file = NpyBytes.Float64([5, 2], 0, 0, 0, 0, 0, 0, 1, double.NaN, 0, 0);

        DataAssert.Rejects(file, "x.npy", "data", "x contains NaN at row 3; clean the data");
    }

    [Theory]
    [InlineData(double.PositiveInfinity, "+inf")]
    [InlineData(double.NegativeInfinity, "-inf")]
    public void Infinities_are_rejected_naming_their_row(double value, string shown)
    {
        var file = NpyBytes.Float64([2, 2], 0, 0, 0, value);

        DataAssert.Rejects(file, "x.npy", "data", $"x contains {shown} at row 1", "clean the data");
    }

    [Fact]
    public void A_half_precision_infinity_is_rejected()
    {
        var file = NpyBytes.Array("<f2", [2], [0x00, 0x3C, 0x00, 0x7C]);

        DataAssert.Rejects(file, "x.npy", "data", "x contains +inf at row 1");
    }

    [Fact]
    public void More_values_than_the_limit_are_rejected_before_they_are_read()
    {
        var file = NpyBytes.Float64([2, 3], 1, 2, 3, 4, 5, 6);

        DataAssert.Rejects(file, "x.npy", new DataReadOptions { MaxValues = 5 }, "data", "(2, 3)", "limit of 5");
    }

    [Fact]
    public void A_shape_whose_product_overflows_is_rejected_by_the_limit()
    {
        var file = NpyBytes.Array("<f8", [4294967296, 4294967296, 4294967296], []);

        DataAssert.Rejects(file, "x.npy", "data", "limit of");
    }
}
