using System.Text;
using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class CsvRejectionTests
{
    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void A_short_row_is_rejected_naming_its_row_and_field_count()
    {
        // Row numbers are line numbers: the header is row 1.
        var csv = "a,b,c,d,e,f\n" + string.Concat(Enumerable.Repeat("1,2,3,4,5,6\n", 15)) + "1,2,3,4,5\n";

        DataAssert.Rejects(Text(csv), "d.csv", "data", "row 17 has 5 fields but the header has 6");
    }

    [Fact]
    public void A_long_row_is_rejected()
    {
        DataAssert.Rejects(Text("a,b\n1,2\n1,2,3\n"), "d.csv", "data", "row 3 has 3 fields but the header has 2");
    }

    [Fact]
    public void A_non_numeric_cell_is_rejected_naming_row_and_column()
    {
        DataAssert.Rejects(Text("a,b\n1,2\n3,abc\n"), "d.csv", "data", "row 3, column 2 ('b') has 'abc', which is not a number");
    }

    [Fact]
    public void A_decimal_comma_in_a_semicolon_file_gets_a_hint()
    {
        DataAssert.Rejects(Text("a;b\n1,5;2\n"), "d.csv", "data", "row 2, column 1 ('a') has '1,5'", "use '.' as the decimal point");
    }

    [Fact]
    public void An_empty_cell_is_rejected()
    {
        DataAssert.Rejects(Text("a,b\n1,\n"), "d.csv", "data", "row 2, column 2 ('b') is empty");
    }

    [Theory]
    [InlineData("NaN", "NaN")]
    [InlineData("nan", "NaN")]
    [InlineData("inf", "+inf")]
    [InlineData("-inf", "-inf")]
    [InlineData("Infinity", "+inf")]
    [InlineData("-Infinity", "-inf")]
    [InlineData("1e999", "+inf")]
    public void Non_finite_values_are_rejected_naming_row_and_column(string cell, string shown)
    {
        DataAssert.Rejects(Text($"a,b\n1,2\n3,{cell}\n"), "d.csv", "data", $"contains {shown} at row 3, column 2 ('b')", "clean the data");
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n")]
    public void An_empty_file_is_rejected(string text)
    {
        DataAssert.Rejects(Text(text), "d.csv", "data", "empty");
    }

    [Fact]
    public void A_header_without_rows_is_rejected()
    {
        DataAssert.Rejects(Text("a,b\n"), "d.csv", "data", "no data rows");
    }

    [Fact]
    public void A_named_label_column_that_is_absent_is_rejected()
    {
        var options = new DataReadOptions { LabelColumn = "target" };

        DataAssert.Rejects(Text("a,b\n1,2\n"), "d.csv", options, "labelColumn", "'target' is not in the CSV header", "'a', 'b'");
    }

    [Fact]
    public void A_label_column_named_twice_is_rejected()
    {
        DataAssert.Rejects(Text("label,a,label\n1,2,1\n"), "d.csv", "labelColumn", "several columns named 'label'");
    }

    [Fact]
    public void A_header_with_only_the_label_column_is_rejected()
    {
        DataAssert.Rejects(Text("label\n1\n"), "d.csv", "data", "no feature columns");
    }

    [Theory]
    [InlineData("-1", "label -1 at row 3 is negative")]
    [InlineData("1.5", "label 1.5 at row 3 is not a whole number")]
    [InlineData("cat", "row 3 has the label 'cat'")]
    [InlineData("", "row 3 has no label")]
    [InlineData("NaN", "label NaN at row 3 is not a class index")]
    public void Labels_that_are_not_non_negative_integers_are_rejected(string label, string message)
    {
        DataAssert.Rejects(Text($"a,label\n1,0\n2,{label}\n"), "d.csv", "labels", message);
    }

    [Fact]
    public void An_unclosed_quote_is_rejected()
    {
        DataAssert.Rejects(Text("a,b\n1,\"2\n3,4\n"), "d.csv", "data", "row 2 has a quote that is never closed");
    }

    [Fact]
    public void Text_after_a_closing_quote_is_rejected()
    {
        DataAssert.Rejects(Text("a,b\n1,\"2\"x\n"), "d.csv", "data", "row 2 has text after a closing quote");
    }

    [Fact]
    public void A_field_longer_than_the_limit_is_rejected()
    {
        DataAssert.Rejects(Text("a,b\n1," + new string('1', 5000) + "\n"), "d.csv", "data", "row 2 has a field longer than 1024");
    }

    [Fact]
    public void A_row_far_longer_than_its_fields_can_be_is_rejected_as_a_field_too_long()
    {
        // 20,000 characters in one field exceed the bound CsvTokenizer puts on a whole record (2 fields × 6,208 bytes),
        // which stops CsvHelper before the field is read: the message is the field's, as for a 5,000-character one.
        DataAssert.Rejects(Text("a,b\n1,2\n3," + new string('1', 20_000) + "\n"), "d.csv", "data", "row 3 has a field longer than 1024");
    }

    [Fact]
    public void A_quote_inside_an_unquoted_field_is_kept_as_text_and_named_as_not_a_number()
    {
        DataAssert.Rejects(Text("a,b\n1,2\"3\n"), "d.csv", "data", "row 2, column 2 ('b') has", "which is not a number");
    }

    [Fact]
    public void Rows_after_a_quoted_line_break_are_named_by_their_own_line()
    {
        // Line 2 holds a quoted field spanning lines 2–3, so the bad row "5,abc" is on line 4.
        DataAssert.Rejects(Text("a,b\n1,\"2\n\"\n5,abc\n"), "d.csv", "data", "row 4, column 2 ('b') has 'abc'");
    }

    [Fact]
    public void A_header_with_more_columns_than_the_limit_is_rejected()
    {
        var header = string.Join(",", Enumerable.Repeat("c", (1 << 20) + 1));

        DataAssert.Rejects(Text(header + "\n"), "d.csv", "data", "more than 1048576 columns");
    }

    [Fact]
    public void More_values_than_the_limit_are_rejected()
    {
        DataAssert.Rejects(Text("a,b\n1,2\n3,4\n5,6\n"), "d.csv", new DataReadOptions { MaxValues = 5 }, "data", "limit of 5 values");
    }

    [Fact]
    public void Binary_content_that_is_no_known_format_is_rejected()
    {
        DataAssert.Rejects([0x00, 0x01, 0x02, 0x03, 0x0A, 0x00], "d.bin", "data", "neither text nor a NumPy array");
    }

    [Fact]
    public void A_gzip_file_is_rejected()
    {
        DataAssert.Rejects([0x1F, 0x8B, 0x08, 0x00, 0x00], "d.csv.gz", "data", "gzip");
    }

    [Fact]
    public void Untrusted_text_in_messages_stays_on_one_line()
    {
        var ex = DataAssert.Rejects(Text("a,b\n1,\"x\ny\"\n"), "d.csv", "data", "not a number");

        Assert.Contains("'x?y'", ex.Message);
    }
}
