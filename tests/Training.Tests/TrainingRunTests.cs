using LambdaService.Measurement;
using LambdaService.Training.Datasets;

namespace LambdaService.Training.Tests;

[Collection(TorchGeneratorCollection.Name)]
public class TrainingRunTests
{
    /// <summary>The paper's Two Moons protocol at a small size: 30% label noise, a 2-32-32-2 tanh MLP, 40 epochs.</summary>
    private static TrainingRequest NoisyMoons(string method, int seed) => new()
    {
        Data = new DataSpec { Samples = 400, Noise = 0.2, LabelNoise = 0.3, TestFraction = 0.3 },
        Model = new ModelSpec { Hidden = [32, 32], Activation = "tanh" },
        Method = method,
        Crr = new CrrSettings { Scale = 0.003, Orders = new OrderSpan(2, 3), Directions = 1 },
        Epochs = 40,
        BatchSize = 32,
        LearningRate = 0.01,
        Seed = seed,
        Measure = new LambdaSettings { BootstrapResamples = 0 },
    };

    private static TrainingRequest Small(string method = "baseline") => new()
    {
        Data = new DataSpec { Samples = 120, LabelNoise = 0.1 },
        Model = new ModelSpec { Hidden = [8] },
        Method = method,
        Epochs = 4,
        BatchSize = 16,
        LearningRate = 0.01,
        Seed = 3,
        Measure = new LambdaSettings { BootstrapResamples = 20, MaxPoints = 32 },
    };

    [Fact]
    public void Crr_gives_a_lower_lambda_than_baseline_at_a_comparable_test_error_on_noisy_two_moons()
    {
        int[] seeds = [1, 2];
        var baseline = seeds.Select(s => TrainingRun.Run(NoisyMoons("baseline", s), null, default)).ToArray();
        var crr = seeds.Select(s => TrainingRun.Run(NoisyMoons("crr", s), null, default)).ToArray();
        // Observed here (2 cores, libtorch 2.10): λ baseline 1.715, 1.699 vs CRR 0.697, 0.635 (boundary
        // points, orders 1-4); test error baseline 0.183, 0.042 vs CRR 0.167, 0.083 (120 clean test points).
        // Means: λ 1.71 vs 0.67 (gap 1.04), test error 0.113 vs 0.125. Asserted: a gap of at least 0.5 in λ
        // and at most 0.06 in mean test error (7 of 120 points).
        var lambdaGap = baseline.Average(r => r.Lambda!.Lambda) - crr.Average(r => r.Lambda!.Lambda);
        Assert.True(lambdaGap >= 0.5, $"λ baseline {string.Join(", ", baseline.Select(r => r.Lambda!.Lambda))} vs CRR {string.Join(", ", crr.Select(r => r.Lambda!.Lambda))}");
        var errorGap = Math.Abs(baseline.Average(r => r.TestError) - crr.Average(r => r.TestError));
        Assert.True(errorGap <= 0.06, $"test error baseline {string.Join(", ", baseline.Select(r => r.TestError))} vs CRR {string.Join(", ", crr.Select(r => r.TestError))}");
        Assert.All(baseline.Concat(crr), r => Assert.True(r.TestError < 0.3, $"test error {r.TestError}: the network did not learn the moons"));
        Assert.All(crr, r => Assert.All(r.History, e => Assert.NotNull(e.Penalty)));
    }

    [Fact]
    public void Crr_with_scale_zero_trains_as_baseline_up_to_float32_rounding()
    {
        // CRR reads the loss from the order-0 coefficient of its jet pass instead of a second forward pass: the same function
        // of the same parameters, rounded differently (a batched matmul over the stacked coefficients, logsumexp with its own
        // shift). In float32 that is ~1e-7 relative per step; after 3 epochs (18 steps of 16 points) the parameters agree to 1e-5.
        var request = Small() with { Epochs = 3 };
        using var baseline = TrainingRun.Train(request, null, null, default);
        using var crr = TrainingRun.Train(request with { Method = "crr", Crr = new CrrSettings { Scale = 0, Orders = new OrderSpan(1, 3), Directions = 2 } }, null, null, default);
        var expected = ParameterAccess.Get(baseline.Model.Network);
        var actual = ParameterAccess.Get(crr.Model.Network);
        Assert.Equal(expected.Length, actual.Length);
        Assert.All(Enumerable.Range(0, expected.Length), i => Assert.Equal(expected[i], actual[i], 1e-5));
        Assert.All(baseline.Result.History.Zip(crr.Result.History), p => Assert.Equal(p.First.TrainLoss, p.Second.TrainLoss, 1e-5));
        Assert.NotEqual(expected, actual);   // the shared pass is really taken (bitwise equal only if the loss came from a second pass)
        Assert.All(crr.Result.History, h => Assert.True(h.Penalty > 0));
    }

    [Fact]
    public void Crr_target_raises_the_scale_while_lambda_is_above_the_band_and_brings_lambda_into_it()
    {
        // Two Moons with 30% label noise, a 2-16-16-2 tanh MLP, 15 epochs at lr 0.01: without a penalty λ on the test set climbs
        // from about 0.3 to 0.5. A band of [−0.6, −0.2] lies below that, so the controller must raise the scale until λ falls in.
        TrainingRequest Request(string method) => new()
        {
            Data = new DataSpec { Samples = 500, LabelNoise = 0.3 },
            Model = new ModelSpec { Hidden = [16, 16] },
            Method = method,
            Crr = new CrrSettings { Orders = new OrderSpan(1, 4), Target = method == "crr-target" ? new CrrTargetSettings { Min = -0.6, Max = -0.2, Every = 5 } : null },
            Epochs = 15,
            LearningRate = 0.01,
            Seed = 0,
            Measure = new LambdaSettings { BootstrapResamples = 50 },
        };
        var baseline = TrainingRun.Run(Request("baseline"), null, default);
        var target = TrainingRun.Run(Request("crr-target"), null, default);

        Assert.Equal("crr-target", target.Method);
        // 350 training samples: a fifth (70) held out as monitor samples, echoed in the request; 280 trained on.
        Assert.Equal(70, target.Config.Request.Crr.Target!.MonitorPoints);
        Assert.Equal(280, target.Config.TrainSamples);
        var scales = target.History.Select(h => h.Scale!.Value).ToArray();
        Assert.True(scales[^1] > 10 * 0.001, $"the scale rose only to {scales[^1]}");
        // While λ stayed above the band the scale only rose; 3 updates per epoch (10 steps, every 5) change it by at most e^{1.5}.
        for (var e = 1; e < scales.Length; e++) Assert.InRange(scales[e] / scales[e - 1], Math.Exp(-1.5) - 1e-9, Math.Exp(1.5) + 1e-9);
        Assert.Contains(target.History, h => h.MonitorLambda is >= -0.6 and <= -0.2);
        Assert.InRange(target.TimeInBand!.Value, 0.01, 1);
        Assert.True(target.Lambda!.Lambda < baseline.Lambda!.Lambda - 0.3, $"λ {target.Lambda.Lambda} against the baseline's {baseline.Lambda.Lambda}");
        Assert.All(baseline.History, h => Assert.Null(h.Scale));
        Assert.Null(baseline.TimeInBand);
        Assert.Contains("log s += clamp(1 * e, -0.5, 0.5)", target.Config.Objective, StringComparison.Ordinal);
        Assert.Equal("fused", target.Config.CrrEngine);
        Assert.Null(baseline.Config.CrrEngine);
    }

    [Fact]
    public void Crr_target_needs_a_band_and_a_band_needs_crr_target()
    {
        var noBand = Assert.Throws<MeasurementInputException>(() => TrainingRun.Run(Small("crr-target"), null, default));
        Assert.Equal("crr.target", noBand.Field);
        var stray = Assert.Throws<MeasurementInputException>(() => TrainingRun.Run(Small("crr") with { Crr = new CrrSettings { Target = new CrrTargetSettings { Min = 0, Max = 1 } } }, null, default));
        Assert.Equal("crr.target", stray.Field);
        var tooMany = Assert.Throws<MeasurementInputException>(() => TrainingRun.Run(
            Small("crr-target") with { Crr = new CrrSettings { Target = new CrrTargetSettings { Min = 0, Max = 1, MonitorPoints = 84 } } }, null, default));
        Assert.Equal("crr.target.monitorPoints", tooMany.Field);
    }

    [Fact]
    public void Crr_engine_fused_is_refused_for_networks_the_kernel_has_no_rules_for_and_names_crr_engine()
    {
        var cnn = Small("crr") with { Model = new ModelSpec { Kind = "cnn" }, Crr = new CrrSettings { Engine = "fused" } };
        var gelu = Small("crr") with { Model = new ModelSpec { Hidden = [8], Activation = "gelu" }, Crr = new CrrSettings { Engine = "fused" } };
        var unknown = Small("crr") with { Crr = new CrrSettings { Engine = "fast" } };
        foreach (var request in new[] { cnn, gelu, unknown })
        {
            var e = Assert.Throws<MeasurementInputException>(() => request.Validate());
            Assert.Equal("crr.engine", e.Field);
        }
        Assert.Contains("with gelu", Assert.Throws<MeasurementInputException>(() => gelu.Validate()).Message, StringComparison.Ordinal);
        (Small("crr") with { Model = new ModelSpec { Hidden = [8] }, Crr = new CrrSettings { Engine = "fused", At = "act1", Pairs = ["0-1"] } }).Validate();
    }

    [Fact]
    public void The_same_request_gives_the_same_numbers()
    {
        var request = Small("sam") with { Sam = new SamSettings { Rho = 0.05, Adaptive = true } };
        var a = TrainingRun.Run(request, null, default);
        var b = TrainingRun.Run(request, null, default);
        Assert.Equal(a.History, b.History);
        Assert.Equal(a.Lambda!.Lambda, b.Lambda!.Lambda);
        Assert.Equal(a.Lambda!.Ci95, b.Lambda!.Ci95);
        Assert.Equal(a.Ece, b.Ece);
        var other = TrainingRun.Run(request with { Seed = 4 }, null, default);
        Assert.NotEqual(a.History[^1].TrainLoss, other.History[^1].TrainLoss);
    }

    [Fact]
    public void Tracking_lambda_records_it_every_k_epochs_without_changing_the_training()
    {
        var request = Small() with { Epochs = 5, Track = new TrackSettings { LambdaEvery = 2 } };
        var progress = new List<TrainingProgress>();
        using var tracked = TrainingRun.Train(request, null, new SynchronousProgress(progress.Add), default);
        using var plain = TrainingRun.Train(request with { Track = new TrackSettings() }, null, null, default);
        Assert.Equal(new[] { false, true, false, true, true }, tracked.Result.History.Select(h => h.Lambda.HasValue));
        Assert.All(plain.Result.History, h => Assert.Null(h.Lambda));
        Assert.Equal(ParameterAccess.Get(plain.Model.Network), ParameterAccess.Get(tracked.Model.Network));
        // The last tracked λ is the final measurement without its bootstrap: the same points, directions and fit.
        Assert.Equal(tracked.Result.Lambda!.Lambda, tracked.Result.History[^1].Lambda!.Value, 12);
        Assert.Equal(Enumerable.Range(1, 5), progress.Select(p => p.Epoch));
        Assert.Equal(1.0, progress[^1].Fraction);
    }

    [Fact]
    public void The_result_reports_metrics_pair_lambdas_and_the_resolved_configuration()
    {
        var request = Small("crr") with { Measure = new LambdaSettings { Points = "all", Pairs = ["0-1"], BootstrapResamples = 20, MaxPoints = 32 } };
        using var outcome = TrainingRun.Train(request, null, null, default);
        var r = outcome.Result;
        Assert.Equal("crr", r.Method);
        Assert.Equal(1 - r.TestAccuracy, r.TestError, 15);
        Assert.InRange(r.Ece, 0, 1);
        Assert.InRange(r.Hard20Accuracy, 0, 1);
        Assert.Equal(4, r.History.Count);
        Assert.Equal("all", r.Lambda!.Points);
        Assert.Equal(4, r.Lambda!.Orders.Count);
        Assert.True(double.IsFinite(r.Lambda!.Ci95[0]) && r.Lambda!.Ci95[0] <= r.Lambda!.Ci95[1]);
        // Two Moons has classes 0 and 1 only: the pair 0-1 selects every test sample, as points all does.
        var pair = Assert.Single(r.PairLambdas);
        Assert.Equal("0-1", pair.Pair);
        Assert.Equal(r.Lambda!.Lambda, pair.Measurement!.Lambda, 12);
        Assert.Equal(3, r.Config.Request.Data.Seed);
        Assert.Equal(3, r.Config.Request.Measure.Seed);
        Assert.Equal([2, 8, 2], r.Config.Widths);
        Assert.Equal(36, r.Config.TestSamples);
        Assert.Equal(84, r.Config.TrainSamples);
        Assert.Contains("sum_{n=2..3}", r.Config.Objective);
        Assert.StartsWith("0.107", r.Config.Versions.TorchSharp);
        Assert.True(r.TrainingSeconds > 0);
        var mlp = outcome.Model.Mlp!;
        Assert.Equal([2, 8, 2], mlp.Widths);
        Assert.Equal(2, mlp.Parameters().Length);
    }

    [Theory]
    [InlineData("auto", "fused")]        // a 2-8-2 tanh mlp at batch 16 is far below CrrMethod.AutoFusedWorkLimit
    [InlineData("taylor", "taylor")]
    [InlineData("autograd", "autograd")]
    public void The_resolved_configuration_names_the_engine_that_computed_the_penalty(string engine, string expected)
    {
        var request = Small("crr") with { Epochs = 1, Crr = new CrrSettings { Engine = engine } };
        var r = TrainingRun.Run(request, null, default);
        Assert.Equal(expected, r.Config.CrrEngine);
        Assert.EndsWith($"derivatives by {expected}", r.Config.Objective, StringComparison.Ordinal);
        Assert.Null(TrainingRun.Run(Small() with { Epochs = 1 }, null, default).Config.CrrEngine);
    }

    [Fact]
    public void An_empty_boundary_band_falls_back_to_all_test_points_with_a_warning()
    {
        // After one epoch of a tiny learning rate every prediction is near 0.5: nothing reaches the band 0.95-1.
        var request = Small() with { Epochs = 1, LearningRate = 1e-5, Measure = new LambdaSettings { Band = [0.95, 1.0], BootstrapResamples = 0, MaxPoints = 32 } };
        var r = TrainingRun.Run(request, null, default);
        Assert.Equal("all", r.Lambda!.Points);
        Assert.Contains(r.Warnings, w => w.Contains("0.95-1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pair_without_test_samples_gets_no_lambda_and_a_warning_instead_of_failing_the_run()
    {
        // Four output classes, but the moons only use 0 and 1: the pair 2-3 selects no test sample.
        var data = TwoMoons.Generate(100, 0.1, 0, 0.2, seed: 5) with { Classes = 4 };
        var request = Small() with { Measure = new LambdaSettings { Pairs = ["0-1", "2-3"], BootstrapResamples = 0, MaxPoints = 32 } };
        var r = TrainingRun.Run(request, data, null, default);
        Assert.NotNull(r.Lambda);
        Assert.NotNull(r.PairLambdas[0].Measurement);
        Assert.Equal("2-3", r.PairLambdas[1].Pair);
        Assert.Null(r.PairLambdas[1].Measurement);
        Assert.Contains(r.Warnings, w => w.StartsWith("λ (pair 2-3) could not be measured", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pairs_lambda_equals_a_measurement_of_the_pair_on_the_whole_test_set()
    {
        // The run measures a pair on its two classes' test samples only (skipping the other samples' forward pass); a measurement
        // with points 'pairs' over the whole test set selects the same rows in the same order, so the same points, directions and λ.
        var moons = TwoMoons.Generate(150, 0.1, 0, 0.4, seed: 3);
        // Three classes: the upper moon's points right of x = 0.5 become class 2 (train and test alike).
        int[] Relabel(float[] x, int[] y) => [.. y.Select((c, i) => c == 0 && x[2 * i] > 0.5f ? 2 : c)];
        var data = moons with { TrainY = Relabel(moons.TrainX, moons.TrainY), TestY = Relabel(moons.TestX, moons.TestY), Classes = 3 };
        data = data with { CleanTrainY = data.TrainY };
        var request = Small() with { Measure = new LambdaSettings { Pairs = ["0-2"], BootstrapResamples = 50, MaxPoints = 12 } };
        using var outcome = TrainingRun.Train(request, data, null, default);
        var pair = outcome.Result.PairLambdas[0].Measurement!;
        var options = new LambdaService.Measurement.Estimation.MeasurementOptions
        {
            Target = "loss", Labels = LambdaService.Measurement.Estimation.LabelSource.True, Points = LambdaService.Measurement.Estimation.PointSelection.Pairs,
            Pairs = [(0, 2)], MinOrder = 1, MaxOrder = 4, Directions = 4, MaxPoints = 12, Seed = request.Seed, BootstrapResamples = 50,
        };
        var whole = TrainingRun.MeasureTest(outcome.Model, data, options, default);
        Assert.True(data.TestY.Count(c => c == 1) > 0, "the test set must hold samples outside the pair");
        Assert.Equal(whole.Lambda, pair.Lambda, 12);
        Assert.Equal(whole.Ci95, pair.Ci95);
        Assert.Equal(whole.PointsEligible, pair.PointsEligible);
    }

    [Fact]
    public void The_initial_weights_depend_on_the_run_seed_only_not_on_torch_global_generator()
    {
        var spec = new ModelSpec { Hidden = [16, 8] };
        TorchSharp.torch.manual_seed(1);
        using var a = TrainingRun.CreateNetwork(spec, [2], 3, seed: 7);
        TorchSharp.torch.manual_seed(2);
        using var b = TrainingRun.CreateNetwork(spec, [2], 3, seed: 7);
        TorchSharp.torch.manual_seed(1);
        using var unseeded = TrainingRun.CreateNetwork(spec, [2], 3);
        var weights = ParameterAccess.Get(a);
        Assert.Equal(weights, ParameterAccess.Get(b));
        Assert.NotEqual(weights, ParameterAccess.Get(unseeded));
        // Same draws as torch.manual_seed(7) followed by the layers' own default initialisation (observed: the
        // generators share the stream, and kaiming_uniform(a = √5) draws U(±1/√fan_in) like the bias).
        TorchSharp.torch.manual_seed(7);
        using var torchDefault = TrainingRun.CreateNetwork(spec, [2], 3);
        Assert.Equal(weights, ParameterAccess.Get(torchDefault));
        // torch.nn.Linear's default bound 1/√fan_in: layers 2→16 (bound 0.707), 16→8 (0.25), 8→3 (0.354).
        var bounds = new[] { (32 + 16, 1 / Math.Sqrt(2)), (128 + 8, 0.25), (24 + 3, 1 / Math.Sqrt(8)) };
        var offset = 0;
        foreach (var (count, bound) in bounds)
        {
            var layer = weights[offset..(offset + count)];
            Assert.All(layer, w => Assert.InRange(Math.Abs(w), 0, bound));
            Assert.True(layer.Max(Math.Abs) > 0.7 * bound, "the draws should fill the interval");
            offset += count;
        }
    }

    [Fact]
    public void Requests_read_from_camel_case_json_with_defaults_and_results_write_back()
    {
        var options = new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)
        {
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        const string json = """
            { "method": "crr", "epochs": 2, "seed": 3, "data": { "samples": 120, "labelNoise": 0.1 },
              "model": { "hidden": [8] }, "crr": { "scale": 0.01, "orders": { "min": 1, "max": 2 } },
              "measure": { "bootstrapResamples": 0, "maxPoints": 16 } }
            """;
        var request = System.Text.Json.JsonSerializer.Deserialize<TrainingRequest>(json, options)!;
        Assert.Equal(new OrderSpan(1, 2), request.Crr.Orders);
        Assert.Equal(1, request.Crr.Directions);
        Assert.Equal(0.2, request.Data.Noise);
        Assert.Equal("tanh", request.Model.Activation);
        var result = TrainingRun.Run(request, null, default);
        var text = System.Text.Json.JsonSerializer.Serialize(result, options);
        Assert.Contains("\"testError\":", text, StringComparison.Ordinal);
        Assert.Contains("\"ci95\":[\"NaN\",\"NaN\"]", text, StringComparison.Ordinal);
        var echoed = System.Text.Json.JsonSerializer.Deserialize<TrainingResult>(text, options)!.Config.Request;
        Assert.Equal(0.01, echoed.Crr.Scale);
        Assert.Equal(3, echoed.Data.Seed);
    }

    [Fact]
    public void Caller_data_is_trained_on_as_given()
    {
        var data = TwoMoons.Generate(100, 0.1, 0, 0.2, seed: 5) with { Source = "caller" };
        var r = TrainingRun.Run(Small() with { Data = new DataSpec { Kind = "dataset" } }, data, null, default);
        Assert.Equal("caller", r.Config.DataSource);
        Assert.Equal(80, r.Config.TrainSamples);
    }

    private static readonly Dictionary<string, (TrainingRequest Request, string Field)> Invalid = new()
    {
        ["method = 'adamw'"] = (new TrainingRequest { Method = "adamw" }, "method"),
        ["epochs = 0"] = (new TrainingRequest { Epochs = 0 }, "epochs"),
        ["batchSize = 0"] = (new TrainingRequest { BatchSize = 0 }, "batchSize"),
        ["learningRate = 0"] = (new TrainingRequest { LearningRate = 0 }, "learningRate"),
        ["learningRate = double.NaN"] = (new TrainingRequest { LearningRate = double.NaN }, "learningRate"),
        ["weightDecay = -1"] = (new TrainingRequest { WeightDecay = -1 }, "weightDecay"),
        ["crr.scale = -0.1"] = (new TrainingRequest { Crr = new CrrSettings { Scale = -0.1 } }, "crr.scale"),
        ["crr.orders = (0, 3)"] = (new TrainingRequest { Crr = new CrrSettings { Orders = new OrderSpan(0, 3) } }, "crr.orders"),
        ["crr.orders = (2, 9)"] = (new TrainingRequest { Crr = new CrrSettings { Orders = new OrderSpan(2, 9) } }, "crr.orders"),
        ["crr.orders = (3, 2)"] = (new TrainingRequest { Crr = new CrrSettings { Orders = new OrderSpan(3, 2) } }, "crr.orders"),
        ["crr.directions = 0"] = (new TrainingRequest { Crr = new CrrSettings { Directions = 0 } }, "crr.directions"),
        ["crr.every = 0"] = (new TrainingRequest { Crr = new CrrSettings { Every = 0 } }, "crr.every"),
        ["sam.rho = 0"] = (new TrainingRequest { Sam = new SamSettings { Rho = 0 } }, "sam.rho"),
        ["model.kind = 'transformer'"] = (new TrainingRequest { Model = new ModelSpec { Kind = "transformer" } }, "model.kind"),
        ["model.hidden = [0]"] = (new TrainingRequest { Model = new ModelSpec { Hidden = [0] } }, "model.hidden"),
        ["model.activation = 'swish'"] = (new TrainingRequest { Model = new ModelSpec { Activation = "swish" } }, "model.activation"),
        ["data.samples = 3"] = (new TrainingRequest { Data = new DataSpec { Samples = 3 } }, "data.samples"),
        ["data.noise = -0.1"] = (new TrainingRequest { Data = new DataSpec { Noise = -0.1 } }, "data.noise"),
        ["data.labelNoise = 1.2"] = (new TrainingRequest { Data = new DataSpec { LabelNoise = 1.2 } }, "data.labelNoise"),
        ["data.testFraction = 0"] = (new TrainingRequest { Data = new DataSpec { TestFraction = 0 } }, "data.testFraction"),
        ["data.kind = 'imagenet'"] = (new TrainingRequest { Data = new DataSpec { Kind = "imagenet" } }, "data.kind"),
        ["measure.points = 'pairs'"] = (new TrainingRequest { Measure = new LambdaSettings { Points = "pairs" } }, "measure.points"),
        ["measure.band = [0.7, 0.6]"] = (new TrainingRequest { Measure = new LambdaSettings { Band = [0.7, 0.6] } }, "measure.band"),
        ["measure.band = [0.5]"] = (new TrainingRequest { Measure = new LambdaSettings { Band = [0.5] } }, "measure.band"),
        ["measure.orders = (1, 1)"] = (new TrainingRequest { Measure = new LambdaSettings { Orders = new OrderSpan(1, 1) } }, "measure.orders"),
        ["measure.directions = 0"] = (new TrainingRequest { Measure = new LambdaSettings { Directions = 0 } }, "measure.directions"),
        ["measure.pairs = ['4']"] = (new TrainingRequest { Measure = new LambdaSettings { Pairs = ["4"] } }, "measure.pairs"),
        ["measure.pairs = ['0-2']"] = (new TrainingRequest { Measure = new LambdaSettings { Pairs = ["0-2"] } }, "measure.pairs"),
        ["measure.bootstrapResamples = -1"] = (new TrainingRequest { Measure = new LambdaSettings { BootstrapResamples = -1 } }, "measure.bootstrapResamples"),
        ["track.lambdaEvery = -1"] = (new TrainingRequest { Track = new TrackSettings { LambdaEvery = -1 } }, "track.lambdaEvery"),
    };

    public static TheoryData<string> InvalidCases => new(Invalid.Keys);

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public void Invalid_requests_are_refused_with_the_field_named(string name)
    {
        var (request, field) = Invalid[name];
        var e = Assert.Throws<MeasurementInputException>(() => TrainingRun.Run(request, null, default));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void A_cancelled_run_stops()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => TrainingRun.Run(Small(), null, cts.Token));
    }

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
