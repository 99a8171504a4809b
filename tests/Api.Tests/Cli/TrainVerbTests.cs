using System.Text.Json;

namespace LambdaService.Api.Tests.Cli;

public class TrainVerbTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void Train_with_json_prints_the_metrics_the_lambda_and_the_objective()
    {
        var (code, stdout, stderr) = fixture.Run("train", "--method", "crr", "--epochs", "3", "--samples", "120", "--hidden", "8,8", "--seed", "2", "--json");
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("crr", r.GetProperty("method").GetString());
        Assert.InRange(r.GetProperty("testAccuracy").GetDouble(), 0, 1);
        Assert.Equal(1 - r.GetProperty("testAccuracy").GetDouble(), r.GetProperty("testError").GetDouble(), 12);
        Assert.True(r.TryGetProperty("ece", out _));
        Assert.True(r.TryGetProperty("hard20Accuracy", out _));
        Assert.True(double.IsFinite(r.GetProperty("lambda").GetProperty("lambda").GetDouble()));
        Assert.Equal(3, r.GetProperty("history").GetArrayLength());
        Assert.Contains("0.003", r.GetProperty("config").GetProperty("objective").GetString());
    }

    [Fact]
    public void Train_on_a_labelled_csv_file_uses_its_samples()
    {
        var (code, stdout, stderr) = fixture.Run("train", "--dataset", fixture.CsvPath, "--epochs", "2", "--hidden", "4", "--json");
        Assert.True(code == 0, stderr);
        var config = JsonDocument.Parse(stdout).RootElement.GetProperty("config");
        Assert.Equal(40, config.GetProperty("trainSamples").GetInt32() + config.GetProperty("testSamples").GetInt32());
    }

    [Fact]
    public void Train_with_export_writes_onnx_and_torchscript_that_load_and_reports_their_paths()
    {
        var folder = Path.Combine(fixture.Folder, "export");
        var (code, stdout, stderr) = fixture.Run("train", "--epochs", "1", "--samples", "60", "--hidden", "4", "--export", folder, "--json");
        Assert.True(code == 0, stderr);
        var export = JsonDocument.Parse(stdout).RootElement.GetProperty("export");
        var onnx = export.GetProperty("onnxPath").GetString()!;
        var torchScript = export.GetProperty("torchScriptPath").GetString()!;
        Assert.Equal(LambdaService.Measurement.Models.ModelFormat.Onnx, LambdaService.Measurement.Models.ModelFile.Open(onnx).Format);
        Assert.Equal(LambdaService.Measurement.Models.ModelFormat.TorchScript, LambdaService.Measurement.Models.ModelFile.Open(torchScript).Format);
    }

    [Fact]
    public void Train_with_crr_at_a_layer_and_class_pairs_echoes_them_and_measures_lambda_at_the_asked_layer()
    {
        var (code, stdout, stderr) = fixture.Run("train", "--method", "crr", "--crr-at", "act1", "--crr-pairs", "0-1", "--measure-at", "fc1",
            "--epochs", "2", "--samples", "120", "--hidden", "8,8", "--json");
        Assert.True(code == 0, stderr);
        var config = JsonDocument.Parse(stdout).RootElement.GetProperty("config");
        Assert.Equal("act1", config.GetProperty("request").GetProperty("crr").GetProperty("at").GetString());
        Assert.Equal("fc1", config.GetProperty("request").GetProperty("measure").GetProperty("at").GetString());
        Assert.Contains("layer act1", config.GetProperty("objective").GetString());

        var (bad, _, error) = fixture.Run("train", "--method", "crr", "--crr-at", "conv1", "--hidden", "8");
        Assert.Equal(2, bad);
        Assert.Contains("crr.at", error);
        Assert.Contains("fc1, act1", error);
    }

    [Fact]
    public void Train_takes_every_controller_setting_of_crr_target_from_the_command_line()
    {
        var (code, stdout, stderr) = fixture.Run("train", "--method", "crr-target", "--crr-target", "1.0,1.4", "--crr-target-every", "3",
            "--crr-target-gain", "2.5", "--crr-target-max-step", "0.25", "--crr-target-deadband", "0.8", "--crr-target-initial-scale", "0.01",
            "--crr-target-min-scale", "1e-4", "--crr-target-max-scale", "5", "--crr-target-monitor-points", "10",
            "--epochs", "1", "--samples", "80", "--hidden", "4", "--json");
        Assert.True(code == 0, stderr);
        var target = JsonDocument.Parse(stdout).RootElement.GetProperty("config").GetProperty("request").GetProperty("crr").GetProperty("target");
        Assert.Equal(1.0, target.GetProperty("min").GetDouble());
        Assert.Equal(1.4, target.GetProperty("max").GetDouble());
        Assert.Equal(3, target.GetProperty("every").GetInt32());
        Assert.Equal(2.5, target.GetProperty("gain").GetDouble());
        Assert.Equal(0.25, target.GetProperty("maxStep").GetDouble());
        Assert.Equal(0.8, target.GetProperty("deadband").GetDouble());
        Assert.Equal(0.01, target.GetProperty("initialScale").GetDouble());
        Assert.Equal(1e-4, target.GetProperty("minScale").GetDouble());
        Assert.Equal(5, target.GetProperty("maxScale").GetDouble());
        Assert.Equal(10, target.GetProperty("monitorPoints").GetInt32());

        var (bad, _, error) = fixture.Run("train", "--method", "crr-target", "--crr-target", "1,2", "--crr-target-deadband", "1.5");
        Assert.Equal(2, bad);
        Assert.Contains("deadband", error);
    }

    [Theory]
    [InlineData("--method", "adamw", "method")]
    [InlineData("--epochs", "0", "epochs")]
    [InlineData("--crr-scale", "-1", "crr")]
    [InlineData("--sam-rho", "zero", "sam-rho")]
    public void A_bad_training_option_is_one_line_on_stderr_with_exit_code_2(string option, string value, string mentioned)
    {
        var (code, stdout, stderr) = fixture.Run("train", option, value);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains(mentioned, stderr);
    }
}
