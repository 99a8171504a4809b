using LambdaService.Measurement.Taylor;
using TorchSharp;
using static LambdaService.Measurement.Tests.Taylor.TaylorTestSupport;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Tests.Taylor;

/// <summary>One layer written twice: on plain tensors (torch functions) and on jets (<see cref="JetOps"/>).</summary>
internal sealed record DualLayer(string Name, Func<Tensor, Tensor> Plain, Func<Jet, Jet> Taylor);

/// <summary>A test network as a list of <see cref="DualLayer"/>s: the plain path is the reference for the jet path.</summary>
internal sealed class DualModel(IReadOnlyList<DualLayer> layers, IReadOnlyList<string> piecewise) : IJetModule
{
    public IReadOnlyList<DualLayer> Layers => layers;

    public IReadOnlyList<string> PiecewiseLinearOperators => piecewise;

    public Tensor Plain(Tensor x)
    {
        foreach (var l in layers) x = l.Plain(x);
        return x;
    }

    public Jet Forward(Jet input)
    {
        foreach (var l in layers) input = l.Taylor(input);
        return input;
    }

    public string Describe() => string.Join(" → ", layers.Select(l => l.Name));

    public static DualLayer Linear(Tensor w, Tensor b) => new($"linear {w.shape[1]}→{w.shape[0]}", x => nn.functional.linear(x, w, b), j => JetOps.Linear(j, w, b));

    public static DualLayer Activation(string name) => name switch
    {
        "tanh" => new(name, x => x.tanh(), JetOps.Tanh),
        "sigmoid" => new(name, x => x.sigmoid(), JetOps.Sigmoid),
        "softplus" => new(name, x => nn.functional.softplus(x), JetOps.Softplus),
        "gelu" => new(name, x => nn.functional.gelu(x), JetOps.Gelu),
        "relu" => new(name, x => nn.functional.relu(x), JetOps.Relu),
        "leaky relu" => new(name, x => nn.functional.leaky_relu(x, 0.1), j => JetOps.LeakyRelu(j, 0.1)),
        "sin" => new(name, x => x.sin(), JetOps.Sin),
        "erf" => new(name, x => x.erf(), JetOps.Erf),
        "exp" => new(name, x => (x * 0.5).exp(), j => JetOps.Exp(JetOps.Scale(j, 0.5))),
        _ => throw new ArgumentException(name),
    };

    public static readonly string[] Activations = ["tanh", "sigmoid", "softplus", "gelu", "relu", "leaky relu", "sin", "erf", "exp"];

    public static DualLayer BatchNorm(Random rng, long channels)
    {
        var mean = Uniform(rng, [channels], -0.3, 0.3);
        var variance = Uniform(rng, [channels], 0.5, 1.5);
        var weight = Uniform(rng, [channels], 0.5, 1.5);
        var bias = Uniform(rng, [channels], -0.3, 0.3);
        return new("batchnorm(eval)", x => nn.functional.batch_norm(x, mean, variance, weight, bias, false, 0.1, 1e-5),
            j => JetOps.BatchNormEval(j, mean, variance, weight, bias, 1e-5));
    }

    /// <summary>Weights uniform in ±scale·√(3/fan_in) (unit-variance pre-activations for unit inputs, times scale).</summary>
    public static (Tensor W, Tensor B) Dense(Random rng, long fanIn, long fanOut, double scale = 1.5)
    {
        var bound = scale * Math.Sqrt(3.0 / fanIn);
        return (Uniform(rng, [fanOut, fanIn], -bound, bound), Uniform(rng, [fanOut], -0.5, 0.5));
    }

    /// <summary>
    /// A random small network (seeded): either dense (linear → [batchnorm] → activation, 1–3 times, → linear) or
    /// convolutional (conv with random stride/padding/dilation/groups → activation → [batchnorm] → [max or average
    /// pooling] → flatten → linear → activation → linear), 3 classes, sometimes ending in softmax or log-softmax.
    /// </summary>
    public static (DualModel Model, long[] Sample) Random(int seed, bool convolutional)
    {
        var rng = new Random(seed);
        var layers = new List<DualLayer>();
        var piecewise = new List<string>();
        string Act()
        {
            var a = Activations[rng.Next(Activations.Length)];
            if (a is "relu" && !piecewise.Contains("Relu")) piecewise.Add("Relu");
            if (a is "leaky relu" && !piecewise.Contains("LeakyRelu")) piecewise.Add("LeakyRelu");
            return a;
        }
        long[] sample;
        long width;
        if (!convolutional)
        {
            width = rng.Next(2, 5);
            sample = [width];
            var depth = rng.Next(1, 4);
            for (var i = 0; i < depth; i++)
            {
                var next = rng.Next(3, 7);
                var (w, b) = Dense(rng, width, next);
                layers.Add(Linear(w, b));
                if (rng.NextDouble() < 0.3) layers.Add(BatchNorm(rng, next));
                layers.Add(Activation(Act()));
                width = next;
            }
        }
        else
        {
            var cin = rng.Next(1, 3);
            var size = rng.Next(6, 9);
            sample = [cin, size, size];
            var groups = cin == 2 && rng.NextDouble() < 0.5 ? 2 : 1;
            var cout = groups * rng.Next(1, 3);
            var kernel = rng.Next(2, 4);
            long stride = rng.Next(1, 3), padding = rng.Next(0, 2), dilation = rng.Next(1, 3);
            var outSize = (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
            var bound = 1.5 * Math.Sqrt(3.0 / (cin / groups * kernel * kernel));
            var cw = Uniform(rng, [cout, cin / groups, kernel, kernel], -bound, bound);
            var cb = Uniform(rng, [cout], -0.5, 0.5);
            layers.Add(new($"conv {kernel}×{kernel} s{stride} p{padding} d{dilation} g{groups}",
                x => nn.functional.conv2d(x, cw, cb, [stride, stride], [padding, padding], [dilation, dilation], groups),
                j => JetOps.Conv2d(j, cw, cb, [stride, stride], [padding, padding], [dilation, dilation], groups)));
            layers.Add(Activation(Act()));
            if (rng.NextDouble() < 0.4) layers.Add(BatchNorm(rng, cout));
            var pool = outSize >= 2 ? rng.Next(3) : 0;
            if (pool == 1)
            {
                long ps = rng.Next(1, 3);
                layers.Add(new($"maxpool 2 s{ps}", x => nn.functional.max_pool2d(x, [2, 2], [ps, ps]), j => JetOps.MaxPool2d(j, [2, 2], [ps, ps])));
                outSize = (outSize - 2) / ps + 1;
                piecewise.Add("MaxPool");
            }
            else if (pool == 2)
            {
                layers.Add(new("avgpool 2", x => nn.functional.avg_pool2d(x, [2, 2], [1, 1]), j => JetOps.AvgPool2d(j, [2, 2], [1, 1])));
                outSize -= 1;
            }
            layers.Add(new("flatten", x => x.flatten(1), j => JetOps.Flatten(j, 1)));
            width = cout * outSize * outSize;
            var hidden = rng.Next(3, 7);
            var (w, b) = Dense(rng, width, hidden);
            layers.Add(Linear(w, b));
            layers.Add(Activation(Act()));
            width = hidden;
        }
        var (wo, bo) = Dense(rng, width, 3);
        layers.Add(Linear(wo, bo));
        var head = rng.Next(4);
        if (head == 0) layers.Add(new("softmax", x => x.softmax(1), j => JetOps.Softmax(j, 1)));
        if (head == 1) layers.Add(new("log-softmax", x => x.log_softmax(1), j => JetOps.LogSoftmax(j, 1)));
        return (new DualModel(layers, piecewise), sample);
    }
}
