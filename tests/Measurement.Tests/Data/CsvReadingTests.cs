using System.Text;
using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class CsvReadingTests
{
    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void Feature_columns_without_a_label_column_give_unlabelled_samples()
    {
        var dataset = DataAssert.Read(Text("a,b,c\n1,2,3\n4.5,-6e-1,0\n"), "d.csv");

        Assert.Equal([1, 2, 3, 4.5, -0.6, 0], dataset.X);
        Assert.Equal(2, dataset.Rows);
        Assert.Equal([3], dataset.SampleShape);
        Assert.Null(dataset.Labels);
        Assert.Equal("csv", dataset.Format);
    }

    [Fact]
    public void The_default_label_column_is_taken_out_of_the_features()
    {
        var dataset = DataAssert.Read(Text("a,label,b\n1,0,2\n3,2,4\n"), "d.csv");

        Assert.Equal([1.0, 2, 3, 4], dataset.X);
        Assert.Equal([2], dataset.SampleShape);
        Assert.Equal([0, 2], dataset.Labels!);
    }

    [Fact]
    public void A_custom_label_column_is_used_when_named()
    {
        var options = new DataReadOptions { LabelColumn = "target" };

        var dataset = DataAssert.Read(Text("target,f1,f2,label\n1,0.5,0.25,9\n0,1,2,3\n"), "d.csv", options);

        Assert.Equal([0.5, 0.25, 9, 1, 2, 3], dataset.X);
        Assert.Equal([3], dataset.SampleShape);
        Assert.Equal([1, 0], dataset.Labels!);
    }

    [Fact]
    public void Whole_number_labels_written_as_floats_are_accepted()
    {
        Assert.Equal([3, 0], DataAssert.Read(Text("x,label\n1,3.0\n2,0\n"), "d.csv").Labels!);
    }

    [Fact]
    public void A_semicolon_separated_file_is_read()
    {
        var dataset = DataAssert.Read(Text("a;b;label\n1.5;2;1\n3;4;0\n"), "d.csv");

        Assert.Equal([1.5, 2, 3, 4], dataset.X);
        Assert.Equal([1, 0], dataset.Labels!);
    }

    [Fact]
    public void A_tab_separated_file_is_read()
    {
        var dataset = DataAssert.Read(Text("a\tb\n1\t2\n3\t4\n"), "d.tsv");

        Assert.Equal([1.0, 2, 3, 4], dataset.X);
    }

    [Fact]
    public void Quoted_fields_and_quoted_names_are_read()
    {
        var dataset = DataAssert.Read(Text("\"a, first\",\"b \"\"q\"\"\",label\n\"1\", \"2\" ,\"1\"\n3,4,0\n"), "d.csv");

        Assert.Equal([1.0, 2, 3, 4], dataset.X);
        Assert.Equal([1, 0], dataset.Labels!);
    }

    [Fact]
    public void Windows_line_endings_a_byte_order_mark_blank_lines_and_spaces_are_tolerated()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Text("a , b\r\n 1 , 2 \r\n\r\n   \r\n3,4")).ToArray();

        var dataset = DataAssert.Read(bytes, "d.csv");

        Assert.Equal([1.0, 2, 3, 4], dataset.X);
        Assert.Equal(2, dataset.Rows);
    }

    [Fact]
    public void Old_mac_line_endings_are_read()
    {
        var dataset = DataAssert.Read(Text("a,b\r1,2\r3,4\r"), "d.csv");

        Assert.Equal([1.0, 2, 3, 4], dataset.X);
        Assert.Equal(2, dataset.Rows);
    }

    [Fact]
    public void A_blank_line_in_a_tab_separated_file_is_skipped_but_a_line_of_one_tab_is_a_row()
    {
        // Tabs are blanks around fields unless they separate them: "\t" is then a row of two empty fields.
        Assert.Equal([1.0, 2, 3, 4], DataAssert.Read(Text("a\tb\n1\t2\n  \n3\t4\n"), "d.tsv").X);
        DataAssert.Rejects(Text("a\tb\n1\t2\n\t\n"), "d.tsv", "data", "row 3, column 1 ('a') is empty");
    }

    [Fact]
    public void A_single_column_file_is_read()
    {
        var dataset = DataAssert.Read(Text("value\n1\n2\n3\n"), "d.csv");

        Assert.Equal([1.0, 2, 3], dataset.X);
        Assert.Equal([1], dataset.SampleShape);
    }

    [Fact]
    public void The_hash_covers_the_file_bytes()
    {
        // sha256 of the 8 bytes "a,b\n1,2\n", computed with sha256sum.
        var dataset = DataAssert.Read(Text("a,b\n1,2\n"), "d.csv");

        Assert.Equal("492d5ea496056f1a6a6592241032fab764c321596317930b4fa0e1e8bc3b7470", dataset.Sha256);
    }

    [Fact]
    public void Exactly_max_values_are_accepted()
    {
        var dataset = DataAssert.Read(Text("a,b\n1,2\n3,4\n"), "d.csv", new DataReadOptions { MaxValues = 4 });

        Assert.Equal(4, dataset.X.Length);
    }

    [Fact]
    public void An_empty_label_column_option_means_no_labels()
    {
        var dataset = DataAssert.Read(Text("a,label\n1,2\n"), "d.csv", new DataReadOptions { LabelColumn = "" });

        Assert.Null(dataset.Labels);
        Assert.Equal([1.0, 2], dataset.X);
    }
}
