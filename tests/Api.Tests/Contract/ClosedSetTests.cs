using System.Text.Json;
using System.Text.Json.Serialization;
using LambdaService.Api.Cli;
using LambdaService.Api.Contracts;
using LambdaService.Api.Hosting;
using LambdaService.Api.Measurements;
using LambdaService.Api.Sweeps;
using LambdaService.Api.Training;
using LambdaService.Measurement;
using LambdaService.Measurement.Estimation;
using LambdaService.Measurement.Models;

namespace LambdaService.Api.Tests.Contract;

/// <summary>
/// The closed sets of the request bodies are enums whose words are exactly the strings the fields took before (issue 26), and a
/// word outside a set is refused with the field's message of before: the lists and messages below are copied from the code
/// before the change (MeasurementRequest.Word, TrainingRequest.Validate, ComputeDevice.Check, TrainingRunRequest).
/// </summary>
public class ClosedSetTests
{
    [Fact]
    public void Each_enum_has_exactly_the_words_its_field_took_as_a_string_in_the_same_order()
    {
        Assert.Equal(["loss", "logit"], ClosedSet.Words<MeasurementTarget>());
        Assert.Equal(["true", "predicted"], ClosedSet.Words<LabelSource>());
        Assert.Equal(["all", "boundary", "pairs"], ClosedSet.Words<PointSelection>());
        Assert.Equal(["mean-abs", "rms"], ClosedSet.Words<NormKind>());
        Assert.Equal(["raw", "taylor"], ClosedSet.Words<Normalization>());
        Assert.Equal(["auto", "taylor", "autograd", "finite-difference"], ClosedSet.Words<EngineChoice>());
        Assert.Equal(["auto", "cpu", "cuda"], ClosedSet.Words<DeviceChoice>());
        Assert.Equal(ComputeDevice.Choices, ClosedSet.Words<DeviceChoice>());
        Assert.Equal(["float64", "float32"], ClosedSet.Words<ComputePrecision>());
        Assert.Equal(["two-moons", "mnist"], ClosedSet.Words<BuiltinDataset>());
        Assert.Equal(["mlp", "cnn"], ClosedSet.Words<NetworkKind>());
        Assert.Equal(["tanh", "relu", "sigmoid", "softplus", "gelu"], ClosedSet.Words<ActivationChoice>());
        Assert.Equal(["baseline", "crr", "sam", "crr-target"], ClosedSet.Words<TrainingMethod>());
        Assert.Equal(["auto", "fused", "taylor", "autograd"], ClosedSet.Words<CrrEngine>());
        Assert.Equal(["boundary", "all"], ClosedSet.Words<TrainingPoints>());
        Assert.Equal(["npz", "npy", "csv"], ClosedSet.Words<Measurement.Data.DataFormat>());
        Assert.Equal(["svg", "png"], ClosedSet.Words<LambdaService.Api.Plots.PlotFormat>());
        Assert.Equal(["cpu", "gpu"], ClosedSet.Words<StandardQueue>());
        Assert.Equal(["cpu", "gpu"], JobsOptions.StandardQueues);
    }

    [Fact]
    public void The_engine_numbers_stay_those_the_members_always_had_though_the_declaration_follows_the_word_order()
    {
        Assert.Equal([0, 3, 1, 2], new[] { EngineChoice.Auto, EngineChoice.Taylor, EngineChoice.Autograd, EngineChoice.FiniteDifference }.Select(e => (int)e));
    }

    [Theory]
    [InlineData("target", "x", "target 'x' is not known; use one of loss, logit.")]
    [InlineData("labels", "x", "labels 'x' is not known; use one of true, predicted.")]
    [InlineData("points", "x", "points 'x' is not known; use one of all, boundary, pairs.")]
    [InlineData("norm", "l7", "norm 'l7' is not known; use one of mean-abs, rms.")]
    [InlineData("normalization", "x", "normalization 'x' is not known; use one of raw, taylor.")]
    [InlineData("engine", "quantum", "engine 'quantum' is not known; use one of auto, taylor, autograd, finite-difference.")]
    [InlineData("device", "tpu", "device 'tpu' is not known; use one of auto, cpu, cuda.")]
    [InlineData("precision", "double", "precision 'double' is not known; use one of float64, float32.")]
    // Words match exactly, as the strings did: no other case, no numbers' names.
    [InlineData("engine", "Taylor", "engine 'Taylor' is not known; use one of auto, taylor, autograd, finite-difference.")]
    [InlineData("norm", "meanabs", "norm 'meanabs' is not known; use one of mean-abs, rms.")]
    public void An_unknown_word_in_a_measurement_body_names_the_field_and_lists_the_words(string field, string word, string message)
    {
        var refused = Assert.Throws<UnknownWordException>(() => JsonSerializer.Deserialize<MeasurementRequest>(
            $$"""{ "modelId": "m", "datasetId": "d", "{{field}}": "{{word}}" }""", JsonSerializerOptions.Web));
        Assert.Equal(field, refused.Field);
        Assert.Equal(message, refused.Message);
    }

    [Theory]
    [InlineData("""{ "dataset": { "builtin": "cifar" } }""", "dataset.builtin", "builtin dataset 'cifar' is not known; use two-moons or mnist, or upload data and pass datasetId.")]
    [InlineData("""{ "model": { "kind": "rnn" } }""", "model.kind", "model kind 'rnn' is not known; use mlp or cnn.")]
    [InlineData("""{ "model": { "activation": "swish" } }""", "model.activation", "activation 'swish' is not known; use tanh, relu, sigmoid, softplus or gelu.")]
    [InlineData("""{ "method": "adam" }""", "method", "method 'adam' is not known; use baseline, crr, sam or crr-target.")]
    [InlineData("""{ "crr": { "engine": "fast" } }""", "crr.engine", "crr engine 'fast' is not known; use auto, fused, taylor or autograd.")]
    [InlineData("""{ "measure": { "points": "pairs" } }""", "measure.points", "measure points 'pairs' is not known; use boundary or all.")]
    [InlineData("""{ "device": "tpu" }""", "device", "device 'tpu' is not known; use auto (the default: CUDA where there is a device, else the CPU), cpu or cuda.")]
    public void An_unknown_word_in_a_training_body_names_the_field_with_the_message_the_library_gave(string body, string field, string message)
    {
        var refused = Assert.Throws<UnknownWordException>(() => JsonSerializer.Deserialize<TrainingRunRequest>(body, JsonSerializerOptions.Web));
        Assert.Equal(field, refused.Field);
        Assert.Equal(message, refused.Message);
    }

    [Fact]
    public void The_training_device_message_is_the_library_s_own()
    {
        var library = Assert.Throws<MeasurementInputException>(() => ComputeDevice.Check("tpu"));
        var body = Assert.Throws<UnknownWordException>(() => JsonSerializer.Deserialize<TrainingRunRequest>("""{ "device": "tpu" }""", JsonSerializerOptions.Web));
        Assert.Equal(library.Message, body.Message);
    }

    [Fact]
    public void A_number_where_a_word_belongs_is_a_json_error_naming_the_field_not_an_unknown_word()
    {
        var refused = Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<MeasurementRequest>("""{ "modelId": "m", "datasetId": "d", "engine": 1 }""", JsonSerializerOptions.Web));
        Assert.IsNotType<UnknownWordException>(refused);
        Assert.Equal("$.engine", refused.Path);
    }

    [Fact]
    public void Words_are_written_whatever_enum_converter_the_options_carry()
    {
        var request = new MeasurementRequest("m", "d", Engine: EngineChoice.FiniteDifference, Norm: NormKind.MeanAbs, Device: DeviceChoice.Cuda);
        var withCamelCase = new JsonSerializerOptions(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) } };
        foreach (var options in new[] { JsonSerializerOptions.Web, CliJson.Options, withCamelCase })
        {
            var json = JsonSerializer.SerializeToNode(request, options)!;
            Assert.Equal("finite-difference", json["engine"]!.GetValue<string>());
            Assert.Equal("mean-abs", json["norm"]!.GetValue<string>());
            Assert.Equal("cuda", json["device"]!.GetValue<string>());
            Assert.Null(json["target"]);
            Assert.Equal(request, JsonSerializer.Deserialize<MeasurementRequest>(json, options));
        }
        var run = JsonSerializer.SerializeToNode(new TrainingRunRequest(Method: TrainingMethod.CrrTarget, Model: new TrainingModelRequest(Kind: NetworkKind.Cnn)), JsonSerializerOptions.Web)!;
        Assert.Equal("crr-target", run["method"]!.GetValue<string>());
        Assert.Equal("cnn", run["model"]!["kind"]!.GetValue<string>());
    }

    [Fact]
    public void The_library_request_gets_the_words_of_the_enums()
    {
        var request = new TrainingRunRequest(
            Dataset: new TrainingDatasetRequest(Builtin: BuiltinDataset.Mnist),
            Model: new TrainingModelRequest(Activation: ActivationChoice.Sigmoid),
            Method: TrainingMethod.CrrTarget,
            Crr: new TrainingCrrRequest(Engine: CrrEngine.Autograd, Target: new TrainingCrrTargetRequest(Min: 1.2, Max: 1.5)),
            Measure: new TrainingMeasureRequest(Points: TrainingPoints.All),
            Device: DeviceChoice.Cpu).ToTrainingRequest();
        Assert.Equal("mnist", request.Data.Kind);
        Assert.Equal("cnn", request.Model.Kind);   // mnist's default network
        Assert.Equal("sigmoid", request.Model.Activation);
        Assert.Equal("crr-target", request.Method);
        Assert.Equal("autograd", request.Crr.Engine);
        Assert.Equal("all", request.Measure.Points);
        Assert.Equal("cpu", request.Device);

        var options = new MeasurementRequest("m", "d", Target: MeasurementTarget.Logit, Device: DeviceChoice.Cuda).ToOptions();
        Assert.Equal("logit", options.Target);
        Assert.Equal("cuda", options.Device);
        Assert.Equal("loss", new MeasurementRequest("m", "d").ToOptions().Target);
        Assert.Equal("auto", new MeasurementRequest("m", "d").ToOptions().Device);
    }

    [Fact]
    public void The_command_line_refuses_an_unknown_word_with_the_message_of_the_http_body()
    {
        var refused = Assert.Throws<MeasurementInputException>(() => MeasureVerb.ParseRequest(new CliArguments(["--engine", "quantum"], ["engine"], [])));
        Assert.Equal("engine", refused.Field);
        Assert.Equal("engine 'quantum' is not known; use one of auto, taylor, autograd, finite-difference.", refused.Message);
        Assert.Equal(EngineChoice.FiniteDifference, MeasureVerb.ParseRequest(new CliArguments(["--engine", "finite-difference"], ["engine"], [])).Engine);
    }

    [Theory]
    [InlineData("""{ "base": { "model": { "kind": "rnn" } } }""", "base.model.kind", "model kind 'rnn' is not known; use mlp or cnn.")]
    [InlineData("""{ "grid": { "method": ["crr", "adam"] } }""", "grid.method", "method 'adam' is not known; use baseline, crr, sam or crr-target.")]
    [InlineData("""{ "grid": { "model": [{ "kind": "rnn" }] } }""", "grid.model", "model kind 'rnn' is not known; use mlp or cnn.")]
    public void An_unknown_word_in_a_sweep_names_the_base_or_grid_field_as_before(string body, string field, string message)
    {
        var refused = Assert.Throws<MeasurementInputException>(() =>
        {
            try
            {
                SweepPlan.Expand(JsonSerializer.Deserialize<SweepRequest>(body, JsonSerializerOptions.Web)!, 100);
            }
            catch (UnknownWordException e)
            {
                // The service reads the body first: a word in base is refused there (CallerErrorHandler), named by its path.
                throw new MeasurementInputException(e.Field, e.Message, e);
            }
        });
        Assert.Equal(field, refused.Field);
        Assert.Equal(message, refused.Message);
    }
}

/// <summary>The usage text's closed sets come from the enums and read as they did before issue 26 (fragments copied from the text before).</summary>
public class UsageWordsTests
{
    [Theory]
    [InlineData("[--target loss|logit] [--labels true|predicted] [--class K]")]
    [InlineData("[--points all|boundary|pairs] [--band 0.45,0.65]")]
    [InlineData("[--norm mean-abs|rms] [--normalization raw|taylor]")]
    [InlineData("[--engine auto|taylor|autograd|finite-difference] [--label-column NAME]")]
    [InlineData("[--device auto|cpu|cuda] [--at input|LAYER] [--precision float64|float32] [--json]")]
    [InlineData("train [--dataset two-moons|mnist|FILE] [--test-data FILE] [--method baseline|crr|sam|crr-target] [--crr-scale X]")]
    [InlineData("[--crr-engine auto|fused|taylor|autograd] [--sam-rho R]")]
    [InlineData("[--samples N] [--model mlp|cnn] [--hidden 64,64]")]
    [InlineData("[--export DIR] [--device auto|cpu|cuda] [--json]")]
    [InlineData("[--profile [--model mlp|cnn] [--hidden 32,32] [--batch B]]")]
    [InlineData("[--at input|LAYER]")]
    [InlineData("reproduce two-moons|mnist|lambda-band|feature-maps [--scale small|paper] [--out DIR]")]
    public void The_usage_text_lists_each_closed_set_as_before(string fragment)
    {
        Assert.Contains(fragment, CliApp.Usage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], "experiment", "name the experiment: reproduce two-moons|mnist|lambda-band|feature-maps [--scale small|paper] [--out DIR].")]
    [InlineData(new[] { "mnist", "--scale", "huge" }, "scale", "--scale 'huge' is not known; use small or paper.")]
    [InlineData(new[] { "cifar" }, "experiment", "experiment 'cifar' is not known; use two-moons, mnist, lambda-band or feature-maps.")]
    public void Reproduce_refuses_an_unknown_experiment_or_scale_with_the_words_as_before(string[] args, string field, string message)
    {
        var refused = Assert.Throws<MeasurementInputException>(() => ReproduceVerb.Run(args, TextWriter.Null, TextWriter.Null, CancellationToken.None));
        Assert.Equal(field, refused.Field);
        Assert.Equal(message, refused.Message);
    }
}

/// <summary>The README's option table of <c>measure</c> lists each closed set with the enum's words, in order.</summary>
public class ReadmeWordsTests
{
    private static readonly string Readme = File.ReadAllText(Path.Combine(GeneratedClient.ExternalTool.RepositoryRoot(), "README.md"));

    public static TheoryData<string, string[]> Options => new()
    {
        { "target", [.. ClosedSet.Words<MeasurementTarget>()] },
        { "labels", [.. ClosedSet.Words<LabelSource>()] },
        { "points", [.. ClosedSet.Words<PointSelection>()] },
        { "norm", [.. ClosedSet.Words<NormKind>()] },
        { "normalization", [.. ClosedSet.Words<Normalization>()] },
        { "engine", [.. ClosedSet.Words<EngineChoice>()] },
        { "device", [.. ClosedSet.Words<DeviceChoice>()] },
        { "precision", [.. ClosedSet.Words<ComputePrecision>()] },
    };

    [Theory]
    [MemberData(nameof(Options))]
    public void The_measure_option_table_lists_the_words_of_the_enum(string option, string[] words)
    {
        var row = Readme.Split('\n').Single(l => l.StartsWith($"| `--{option}` | ", StringComparison.Ordinal));
        var values = row.Split(" | ")[1];
        var listed = values[..values.IndexOf(" (", StringComparison.Ordinal)].Split(@" \| ").Select(w => w.Trim('`')).ToArray();
        Assert.Equal(words, listed);
    }

    [Fact]
    public void The_readme_spells_the_training_and_reproduction_sets_as_the_usage_text_does()
    {
        Assert.Contains($"`--device {ClosedSet.Bar<DeviceChoice>()}`: where training runs", Readme, StringComparison.Ordinal);
        Assert.Contains($"`reproduce {ClosedSet.Bar<ReproductionExperiment>()} [--scale {ClosedSet.Bar<ReproductionScale>()}] [--out DIR]`", Readme, StringComparison.Ordinal);
        Assert.Contains($"reproduce {ClosedSet.Bar<ReproductionExperiment>()} [--scale {ClosedSet.Bar<ReproductionScale>()}] [--out DIR]", CliApp.Usage, StringComparison.Ordinal);
    }
}
