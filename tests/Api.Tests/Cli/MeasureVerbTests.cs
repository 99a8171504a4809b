using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;
using System.Text.Json;

namespace LambdaService.Api.Tests.Cli;

public class MeasureVerbTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void Measure_with_json_prints_one_object_with_every_documented_field()
    {
        var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--orders", "1-4", "--seed", "5", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        foreach (var field in new[] { "lambda", "intercept", "r2", "ci95", "orders", "pointsUsed", "engine", "device", "config", "warnings", "accuracy", "ece", "hard20Accuracy", "unreliable" })
        {
            Assert.True(r.TryGetProperty(field, out _), $"missing {field}");
        }
        Assert.Equal(2, r.GetProperty("ci95").GetArrayLength());
        Assert.Equal(4, r.GetProperty("orders").GetArrayLength());
        Assert.Equal(1, r.GetProperty("orders")[0].GetProperty("n").GetInt32());
        Assert.True(r.GetProperty("orders")[0].TryGetProperty("logNorm", out _));
        Assert.Equal("taylor", r.GetProperty("engine").GetString());   // auto: the ONNX graph's operators all have jet rules
        Assert.Equal("cpu", r.GetProperty("device").GetString());
        Assert.Equal(40, r.GetProperty("pointsUsed").GetInt32());
        var config = r.GetProperty("config");
        Assert.Equal(5, config.GetProperty("seed").GetInt32());
        Assert.Equal(64, config.GetProperty("modelSha256").GetString()!.Length);
        Assert.Equal(64, config.GetProperty("dataSha256").GetString()!.Length);
        Assert.Equal("true", config.GetProperty("labels").GetString());
        Assert.InRange(r.GetProperty("accuracy").GetDouble(), 0, 1);
        Assert.False(r.GetProperty("unreliable").GetBoolean());
        Assert.Equal(0.05, config.GetProperty("maxDerivativeError").GetDouble());
        Assert.False(config.GetProperty("allowUnreliable").GetBoolean());
    }

    [Fact]
    public void The_memory_budget_reaches_the_engine_and_the_config_echoes_the_budget_and_the_passes_it_planned()
    {
        var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--memory-budget-mb", "64", "--json");
        Assert.True(code == 0, stderr);
        var config = JsonDocument.Parse(stdout).RootElement.GetProperty("config");
        Assert.Equal(64, config.GetProperty("memoryBudgetMb").GetDouble());
        var passes = config.GetProperty("passes");
        var perPass = passes.GetProperty("linesPerPass").GetInt32();
        // 40 points × 4 directions = 160 lines: probes of one point's 4 lines and the next 8, then passes of whole points (taylor)
        // that fit 64 MiB at the probe's bytes per line.
        Assert.InRange(perPass, 4, 160);
        Assert.Equal(12, passes.GetProperty("probedLines").GetInt32());
        Assert.Equal(2 + (148 + perPass - 1) / perPass, passes.GetProperty("passes").GetInt32());
        Assert.Equal(64, passes.GetProperty("memoryBudgetMb").GetDouble());
        Assert.True(perPass * passes.GetProperty("bytesPerLine").GetInt64() <= 64L << 20);
        Assert.Contains("VmHWM", passes.GetProperty("probe").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_http_field_memoryBudgetMb_maps_to_the_same_option_with_the_same_default_and_check()
    {
        Assert.Equal(256, new LambdaService.Api.Measurements.MeasurementRequest("m", "d", MemoryBudgetMb: 256).ToOptions().MemoryBudgetMb);
        Assert.Equal(1024, new LambdaService.Api.Measurements.MeasurementRequest("m", "d").ToOptions().MemoryBudgetMb);   // README: measure options
        var refused = Assert.Throws<MeasurementInputException>(() => new LambdaService.Api.Measurements.MeasurementRequest("m", "d", MemoryBudgetMb: -5).ToOptions());
        Assert.Equal("memoryBudgetMb", refused.Field);
    }

    /// <summary>A CSV of 30 sequences of 4 steps × 3 features (12 columns, reshaped to the GRU's input [4, 3]) with labels 0–2.</summary>
    private string GruData()
    {
        var path = Path.Combine(fixture.Folder, "sequences.csv");
        var rng = new Random(8);
        var csv = new System.Text.StringBuilder(string.Join(",", Enumerable.Range(0, 12).Select(i => $"f{i}")) + ",label\n");
        for (var i = 0; i < 30; i++)
        {
            csv.AppendLine(string.Join(",", Enumerable.Range(0, 12).Select(_ => (rng.NextDouble() * 3 - 1.5).ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + $",{i % 3}");
        }
        File.WriteAllText(path, csv.ToString());
        return path;
    }

    [Fact]
    public void Measure_on_an_exported_gru_classifier_runs_taylor_under_auto_and_finite_differences_in_float32_with_a_warning()
    {
        var model = Path.Combine(AppContext.BaseDirectory, "fixtures", "gru_opset17.onnx");
        var data = GruData();
        var (code, stdout, stderr) = fixture.Run("measure", "--model", model, "--data", data, "--seed", "2", "--json");
        Assert.True(code == 0, stderr);
        using var auto = JsonDocument.Parse(stdout);
        Assert.Equal("taylor", auto.RootElement.GetProperty("engine").GetString());   // auto: GRU and the exporter's shape operators have jet rules
        Assert.Equal("float64", auto.RootElement.GetProperty("precision").GetString());
        Assert.Equal(30, auto.RootElement.GetProperty("pointsUsed").GetInt32());
        var lambda = auto.RootElement.GetProperty("lambda").GetDouble();
        Assert.True(double.IsFinite(lambda));

        // float32 finite differences of order 4 on these points exceed the default 5% error estimate (measured: 6.7% median), so
        // without --allow-unreliable the verb refuses the result as "derivatives unreliable"; accepted here to compare λ.
        (code, stdout, stderr) = fixture.Run("measure", "--model", model, "--data", data, "--seed", "2", "--engine", "finite-difference", "--allow-unreliable", "--json");
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain("cannot accept one sample", stdout + stderr, StringComparison.Ordinal);
        using var fd = JsonDocument.Parse(stdout);
        Assert.Equal("finite-difference", fd.RootElement.GetProperty("engine").GetString());
        Assert.Equal("float32", fd.RootElement.GetProperty("precision").GetString());
        Assert.Contains(fd.RootElement.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("runs in float32", StringComparison.Ordinal));
        // RecurrentImportTests measures the same agreement on other points: 2e-4 in λ; 0.05 leaves room for these 30 points.
        Assert.InRange(fd.RootElement.GetProperty("lambda").GetDouble() - lambda, -0.05, 0.05);
    }

    [Fact]
    public void The_precision_flag_runs_the_exact_engine_in_float32_and_the_summary_and_json_say_so()
    {
        var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--precision", "float32", "--json");
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("float32", r.GetProperty("precision").GetString());
        Assert.Equal("float32", r.GetProperty("config").GetProperty("precision").GetString());
        var (_, text, _) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--precision", "float32");
        Assert.Contains("engine: taylor on cpu (float32)", text, StringComparison.Ordinal);
        var refused = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--precision", "float32", "--engine", "finite-difference");
        Assert.NotEqual(0, refused.Code);
        Assert.Contains("precision", refused.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void The_http_field_precision_maps_to_the_option_with_float64_as_default_and_refuses_other_words()
    {
        Assert.Equal(ComputePrecision.Float32, new LambdaService.Api.Measurements.MeasurementRequest("m", "d", Precision: ComputePrecision.Float32).ToOptions().Precision);
        Assert.Equal(ComputePrecision.Float64, new LambdaService.Api.Measurements.MeasurementRequest("m", "d").ToOptions().Precision);   // README: measure options
        var refused = Assert.Throws<LambdaService.Api.Contracts.UnknownWordException>(() => System.Text.Json.JsonSerializer.Deserialize<LambdaService.Api.Measurements.MeasurementRequest>(
            """{ "modelId": "m", "datasetId": "d", "precision": "double" }""", System.Text.Json.JsonSerializerOptions.Web));
        Assert.Equal("precision", refused.Field);
        Assert.Equal("precision 'double' is not known; use one of float64, float32.", refused.Message);
    }

    [Fact]
    public void Measure_without_json_prints_a_readable_summary()
    {
        var (code, stdout, _) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath);
        Assert.Equal(0, code);
        Assert.Contains("λ = ", stdout);
        Assert.Contains("engine: taylor on cpu (float64)", stdout);
        Assert.Contains("accuracy", stdout);
    }

    [Fact]
    public void The_same_options_give_the_same_lambda_twice()
    {
        string[] args = ["measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--directions", "2", "--json"];
        var a = JsonDocument.Parse(fixture.Run(args).Out).RootElement.GetProperty("lambda").GetDouble();
        var b = JsonDocument.Parse(fixture.Run(args).Out).RootElement.GetProperty("lambda").GetDouble();
        Assert.Equal(a, b);
    }

    [Theory]
    [InlineData("--orders", "0-4", "orders")]
    [InlineData("--orders", "four", "orders")]
    [InlineData("--band", "0.7,0.2", "band")]
    [InlineData("--engine", "magic", "engine")]
    [InlineData("--directions", "0", "directions")]
    [InlineData("--labels", "sideways", "labels")]
    [InlineData("--points", "pairs", "pair")]
    [InlineData("--input-shape", "3", "input shape")]
    [InlineData("--input-shape", "1,x", "input-shape")]
    [InlineData("--max-derivative-error", "0", "maxDerivativeError must be a fraction > 0")]
    [InlineData("--max-derivative-error", "-1", "maxDerivativeError must be a fraction > 0")]
    [InlineData("--max-derivative-error", "x", "--max-derivative-error must be a number")]
    [InlineData("--memory-budget-mb", "0", "memoryBudgetMb must be > 0")]
    [InlineData("--memory-budget-mb", "x", "--memory-budget-mb must be a number")]
    public void A_bad_option_is_one_line_on_stderr_with_exit_code_2(string option, string value, string mentioned)
    {
        var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, option, value);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(mentioned, stderr);
    }

    [Fact]
    public void Missing_files_unknown_options_and_unknown_verbs_are_user_errors()
    {
        Assert.Equal(2, fixture.Run("measure", "--data", fixture.CsvPath).Code);
        Assert.Contains("--model is required", fixture.Run("measure", "--data", fixture.CsvPath).Err);
        Assert.Contains("does not exist", fixture.Run("measure", "--model", "/no/such/model.onnx", "--data", fixture.CsvPath).Err);
        Assert.Contains("unknown option --colour", fixture.Run("measure", "--colour", "red").Err);
        Assert.Contains("unknown verb", fixture.Run("frobnicate").Err);
        Assert.Equal(2, fixture.Run("frobnicate").Code);
    }

    [Fact]
    public void A_truncated_model_file_is_reported_not_crashed_on()
    {
        var truncated = Path.Combine(fixture.Folder, "truncated.onnx");
        var bytes = File.ReadAllBytes(fixture.OnnxPath);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 3)]);
        var (code, _, stderr) = fixture.Run("measure", "--model", truncated, "--data", fixture.CsvPath);
        Assert.Equal(2, code);
        Assert.Contains("truncated", stderr);
    }

    [Fact]
    public void Help_lists_every_verb()
    {
        var (code, stdout, _) = fixture.Run("help");
        Assert.Equal(0, code);
        foreach (var verb in new[] { "validate", "measure", "bench" }) Assert.Contains(verb, stdout);
        Assert.Contains("[--max-derivative-error 0.05] [--allow-unreliable]", stdout);
    }

    [Fact]
    public void Finite_differences_on_a_relu_cnn_exit_with_code_2_saying_the_derivatives_are_unreliable()
    {
        var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.ReluCnnPath, "--data", fixture.ImagesCsvPath, "--engine", "finite-difference", "--seed", "1");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.StartsWith("error: derivatives unreliable:", stderr, StringComparison.Ordinal);
        Assert.Contains("order 4 (median ", stderr, StringComparison.Ordinal);
        Assert.Contains("use engine taylor or autograd (or auto)", stderr, StringComparison.Ordinal);
        Assert.Contains("--allow-unreliable", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void With_allow_unreliable_the_relu_cnn_result_is_printed_and_marked_unreliable()
    {
        string[] args = ["measure", "--model", fixture.ReluCnnPath, "--data", fixture.ImagesCsvPath, "--engine", "finite-difference", "--seed", "1", "--allow-unreliable"];
        var (code, stdout, stderr) = fixture.Run([.. args, "--json"]);
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.True(r.GetProperty("unreliable").GetBoolean());
        Assert.True(r.GetProperty("config").GetProperty("allowUnreliable").GetBoolean());
        Assert.Contains(r.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("derivatives unreliable:", StringComparison.Ordinal));

        var (textCode, text, _) = fixture.Run(args);
        Assert.Equal(0, textCode);
        Assert.Contains("UNRELIABLE", text.Split('\n')[0], StringComparison.Ordinal);
        Assert.Contains("warning: derivatives unreliable:", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_exact_default_engine_measures_the_relu_cnn_without_a_flag()
    {
        var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.ReluCnnPath, "--data", fixture.ImagesCsvPath, "--seed", "1", "--json");
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("taylor", r.GetProperty("engine").GetString());
        Assert.False(r.GetProperty("unreliable").GetBoolean());
    }

    [Fact]
    public void The_three_engines_measure_the_same_onnx_graph_to_the_same_lambda()
    {
        double Lambda(string engine)
        {
            var (code, stdout, stderr) = fixture.Run("measure", "--model", fixture.OnnxPath, "--data", fixture.CsvPath, "--engine", engine, "--seed", "3", "--json");
            Assert.True(code == 0, stderr);
            var r = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(engine, r.GetProperty("engine").GetString());
            return r.GetProperty("lambda").GetDouble();
        }
        var taylor = Lambda("taylor");
        // Taylor mode and nested autograd are both exact (float64): equal to rounding.
        Assert.Equal(taylor, Lambda("autograd"), 1e-9);
        // Finite differences (float64 ONNX Runtime, polynomial fits) agree to their error, ~1e-4 relative on orders 1–4 here.
        Assert.Equal(taylor, Lambda("finite-difference"), 1e-3);
    }

    [Fact]
    public void An_onnx_graph_with_an_operator_without_jet_rules_falls_back_to_finite_differences_and_names_it()
    {
        var model = UnsupportedModels.WithEinsum(OnnxModelBuilder.Mlp(fixture.Weights, fixture.Biases));
        var path = Path.Combine(fixture.Folder, "einsum.onnx");
        OnnxModelBuilder.Save(model, path);

        var (code, stdout, stderr) = fixture.Run("measure", "--model", path, "--data", fixture.CsvPath, "--json");
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("finite-difference", r.GetProperty("engine").GetString());
        Assert.Contains(r.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("engine auto chose finite-difference", StringComparison.Ordinal)
            && w.GetString()!.Contains("Einsum at nodes 'einsum", StringComparison.Ordinal));

        var (refused, _, error) = fixture.Run("measure", "--model", path, "--data", fixture.CsvPath, "--engine", "taylor");
        Assert.Equal(2, refused);
        Assert.Contains("unsupported operators Einsum at nodes 'einsum", error, StringComparison.Ordinal);
        Assert.Contains("engine auto measures such a model with finite differences", error, StringComparison.Ordinal);
    }
}
