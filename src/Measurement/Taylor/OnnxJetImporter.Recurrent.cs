using Onnx;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Taylor;

public static partial class OnnxJetImporter
{
    private sealed partial class Importer
    {
        /// <summary>
        /// ONNX GRU, LSTM and RNN (opsets 7–22): the recurrence unrolled over the time steps into matrix products, sums, products
        /// and the cell activations, on plain tensors or on jets (README, Engines). One graph node computes every output of the
        /// operator at once, as <c>[Y; Y_h; Y_c]</c> stacked along a leading axis (<c>[seq + 1 (+1), dirs, batch, hidden]</c>); one
        /// node per used output then takes its part, so a graph that reads Y and Y_h runs the recurrence once.
        /// </summary>
        /// <remarks>
        /// Per the ONNX operator specification, with <c>x_t W^T</c> the input projection and <c>h R^T</c> the recurrent one of each
        /// gate (gate order GRU z, r, h; LSTM i, o, f, c; RNN one), biases <c>Wb</c>, <c>Rb</c> from <c>B = [Wb, Rb]</c>, activations
        /// f, g, h (defaults Sigmoid, Tanh, Tanh; RNN Tanh):
        /// GRU <c>z = f(x Wzᵀ + h Rzᵀ + Wbz + Rbz)</c>, <c>r = f(x Wrᵀ + h Rrᵀ + Wbr + Rbr)</c>,
        /// <c>n = g(x Whᵀ + r ⊙ (h Rhᵀ + Rbh) + Wbh)</c> (linear_before_reset = 1, what torch exports) or
        /// <c>n = g(x Whᵀ + (r ⊙ h) Rhᵀ + Rbh + Wbh)</c> (0), <c>h' = (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)</c>;
        /// LSTM <c>i = f(x Wiᵀ + h Riᵀ + Pi ⊙ c + Wbi + Rbi)</c>, <c>f = f(… + Pf ⊙ c)</c>, <c>c̃ = g(x Wcᵀ + h Rcᵀ + Wbc + Rbc)</c>,
        /// <c>c' = f ⊙ c + i ⊙ c̃</c>, <c>o = f(x Woᵀ + h Roᵀ + Po ⊙ c' + Wbo + Rbo)</c>, <c>h' = o ⊙ h(c')</c> (peepholes
        /// <c>P = [Pi, Po, Pf]</c> optional); RNN <c>h' = f(x Wᵀ + h Rᵀ + Wb + Rb)</c>. A reverse direction runs from the last step to
        /// the first and writes Y in time order; Y_h is each direction's last computed state. Refused with the reason: clip,
        /// input_forget = 1, activations other than Sigmoid, Tanh and Relu, a sequence_lens input, weights that depend on the input.
        /// </remarks>
        private List<JetGraphNode> Recurrent(NodeProto node, Attributes a, out bool relu)
        {
            relu = false;
            var op = node.OpType;
            var gates = op switch { "GRU" => 3, "LSTM" => 4, _ => 1 };
            string[] defaults = op switch { "GRU" => ["Sigmoid", "Tanh"], "LSTM" => ["Sigmoid", "Tanh", "Tanh"], _ => ["Tanh"] };
            var direction = a.String("direction", "forward");
            if (direction is not ("forward" or "reverse" or "bidirectional"))
            {
                Problem($"{op} (direction={direction}; forward, reverse and bidirectional are supported)");
                return [];
            }
            var dirs = direction == "bidirectional" ? 2 : 1;
            if (a.Attribute("clip") is not null) Problem($"{op} (attribute clip: a clipped cell input has no derivatives where it clips; export the network without clip)");
            if (op == "LSTM" && a.Int("input_forget", 0) != 0) Problem("LSTM (attribute input_forget=1: coupled input and forget gates are not supported)");
            var layout = a.Int("layout", 0);
            if (layout is not (0 or 1)) Problem($"{op} (layout={layout})");
            var linearBeforeReset = a.Int("linear_before_reset", 0) != 0;
            string[] activations;
            if (a.Attribute("activations") is { } given)
            {
                activations = [.. given.Strings.Select(s => s.ToStringUtf8())];
                if (activations.Length != defaults.Length * dirs)
                {
                    Problem($"{op} (attribute activations: {activations.Length} given, {defaults.Length * dirs} needed for {defaults.Length} per direction)");
                    return [];
                }
                foreach (var f in activations.Where(f => f is not ("Sigmoid" or "Tanh" or "Relu")).Distinct(StringComparer.Ordinal))
                {
                    Problem($"{op} (activation {f}; Sigmoid, Tanh and Relu are supported)");
                }
            }
            else
            {
                activations = [.. Enumerable.Range(0, dirs).SelectMany(_ => defaults)];
            }
            relu = activations.Contains("Relu");
            if (node.Input.Count > 4 && node.Input[4].Length > 0)
            {
                Problem($"{op} (input sequence_lens: sequences of different lengths are not supported; export without packed sequences)");
            }
            for (var i = 1; i <= 3; i++) NeedConstant(node, i, "a weight or bias");
            if (a.Attribute("hidden_size") is { } hs && node.Input.Count > 2 && _constants.TryGetValue(node.Input[2], out var rw) && (rw.dim() != 3 || rw.shape[2] != hs.I))
            {
                Problem($"{op} (attribute hidden_size={hs.I} but R is [{string.Join(",", rw.shape)}]; R must be [directions, {gates}·hidden_size, hidden_size])");
            }
            if (op == "LSTM") NeedConstant(node, 7, "the peepholes");
            var cell = new RecurrentCell(op, gates, dirs, direction == "reverse", layout == 1, linearBeforeReset, activations);
            var stateCount = op == "LSTM" ? 2 : 1;
            var all = $"{node.Output.FirstOrDefault(o => o.Length > 0) ?? node.Name}#{op}:all";
            var result = new List<JetGraphNode>
            {
                new(op, [.. node.Input], all, t => cell.Run(PlainAlgebra.Instance, t[0]!, Operands(t)), (j, order) =>
                {
                    var states = j.Select(v => v.Tensor).ToArray();
                    return new JetArg(null, cell.Run(new JetAlgebra(order), j[0].AsJet(order), Operands(states), StateJet(j, 5), StateJet(j, 6)));
                }) { Internal = true },
            };
            for (var k = 0; k < Math.Min(node.Output.Count, 1 + stateCount); k++)
            {
                if (node.Output[k].Length == 0 || !_used.Contains(node.Output[k])) continue;
                var part = k;
                result.Add(new JetGraphNode(op, [all], node.Output[k], t => cell.Part(PlainAlgebra.Instance, t[0]!, part, stateCount),
                    (j, order) => new JetArg(null, cell.Part(new JetAlgebra(order), j[0].Jet!, part, stateCount))));
            }
            return result;

            RecurrentOperands Operands(Tensor?[] t) => new(t[1]!, t[2]!, At(t, 3), At(t, 5), At(t, 6), At(t, 7));
            static Tensor? At(Tensor?[] t, int i) => i < t.Length ? t[i] : null;
            static Jet? StateJet(JetArg[] j, int i) => i < j.Length && j[i].IsJet ? j[i].Jet : null;
        }
    }

    /// <summary>The constant operands of a recurrent node (and its initial states when they are plain tensors).</summary>
    private sealed record RecurrentOperands(Tensor W, Tensor R, Tensor? B, Tensor? InitialH, Tensor? InitialC, Tensor? P);

    /// <summary>The operations a recurrence needs, on plain tensors or on jets (axes are those of one value, without the coefficient axis).</summary>
    private abstract class RecurrentAlgebra<T>
    {
        public abstract T Linear(T x, Tensor weight, Tensor? bias);

        public abstract T Add(T a, T b);

        public abstract T Sub(T a, T b);

        public abstract T Mul(T a, T b);

        public abstract T MulConstant(T a, Tensor c);

        public abstract T Activation(string name, T x);

        public abstract T Narrow(T x, long axis, long start, long length);

        public abstract T Squeeze(T x, long axis);

        public abstract T Unsqueeze(T x, long axis);

        public abstract T Concat(IReadOnlyList<T> parts, long axis);

        public abstract T Permute(T x, long[] permutation);

        /// <summary>A constant (an initial state) in the algebra, in the dtype of <paramref name="like"/>.</summary>
        public abstract T Constant(Tensor value, T like);

        public abstract long[] Shape(T x);

        public T Select(T x, long axis, long index) => Squeeze(Narrow(x, axis, index, 1), axis);
    }

    private sealed class PlainAlgebra : RecurrentAlgebra<Tensor>
    {
        public static PlainAlgebra Instance { get; } = new();

        public override Tensor Linear(Tensor x, Tensor weight, Tensor? bias) => nn.functional.linear(x, weight, bias);

        public override Tensor Add(Tensor a, Tensor b) => a + b;

        public override Tensor Sub(Tensor a, Tensor b) => a - b;

        public override Tensor Mul(Tensor a, Tensor b) => a * b;

        public override Tensor MulConstant(Tensor a, Tensor c) => a * c;

        public override Tensor Activation(string name, Tensor x) => name switch
        {
            "Sigmoid" => x.sigmoid(),
            "Tanh" => x.tanh(),
            _ => nn.functional.relu(x),
        };

        public override Tensor Narrow(Tensor x, long axis, long start, long length) => x.narrow(axis, start, length);

        public override Tensor Squeeze(Tensor x, long axis) => x.squeeze(axis);

        public override Tensor Unsqueeze(Tensor x, long axis) => x.unsqueeze(axis);

        public override Tensor Concat(IReadOnlyList<Tensor> parts, long axis) => cat([.. parts], axis);

        public override Tensor Permute(Tensor x, long[] permutation) => x.permute(permutation);

        public override Tensor Constant(Tensor value, Tensor like) => value.to(like.dtype, like.device);

        public override long[] Shape(Tensor x) => x.shape;
    }

    private sealed class JetAlgebra(int order) : RecurrentAlgebra<Jet>
    {
        public override Jet Linear(Jet x, Tensor weight, Tensor? bias) => JetOps.Linear(x, weight, bias);

        public override Jet Add(Jet a, Jet b) => JetOps.Add(a, b);

        public override Jet Sub(Jet a, Jet b) => JetOps.Sub(a, b);

        public override Jet Mul(Jet a, Jet b) => JetOps.Mul(a, b);

        public override Jet MulConstant(Jet a, Tensor c) => JetOps.Mul(a, c);

        public override Jet Activation(string name, Jet x) => name switch
        {
            "Sigmoid" => JetOps.Sigmoid(x),
            "Tanh" => JetOps.Tanh(x),
            _ => JetOps.Relu(x),
        };

        public override Jet Narrow(Jet x, long axis, long start, long length) => JetOps.Narrow(x, axis, start, length);

        public override Jet Squeeze(Jet x, long axis) => JetOps.Squeeze(x, axis);

        public override Jet Unsqueeze(Jet x, long axis) => JetOps.Unsqueeze(x, axis);

        public override Jet Concat(IReadOnlyList<Jet> parts, long axis) => JetOps.Concat(parts, axis);

        public override Jet Permute(Jet x, long[] permutation) => JetOps.Permute(x, permutation);

        public override Jet Constant(Tensor value, Jet like) => Jet.Constant(value.to(like.DType, like.Leading.device), order);

        public override long[] Shape(Jet x) => x.Shape;
    }

    /// <summary>The unrolled recurrence of one GRU, LSTM or RNN node (see <see cref="Importer"/>'s Recurrent for the formulas).</summary>
    private sealed class RecurrentCell(string op, int gates, int dirs, bool reverse, bool batchFirst, bool linearBeforeReset, string[] activations)
    {
        private int PerDirection => op switch { "GRU" => 2, "LSTM" => 3, _ => 1 };

        /// <summary><c>[Y; Y_h (; Y_c)]</c> along a new leading axis: <c>[seq + 1 (+1), dirs, batch, hidden]</c> (layout 0 axes).</summary>
        public T Run<T>(RecurrentAlgebra<T> m, T input, RecurrentOperands o, T? jetH = default, T? jetC = default)
        {
            var x = batchFirst ? m.Permute(input, [1, 0, 2]) : input;                 // layout 1: [batch, seq, input] → [seq, batch, input]
            var shape = m.Shape(x);
            if (shape.Length != 3) throw new InvalidOperationException($"{op}: the input X must have rank 3; it has shape [{string.Join(",", shape)}].");
            var (seq, batch) = (shape[0], shape[1]);
            var hidden = o.R.shape[^1];
            if (o.W.dim() != 3 || o.W.shape[0] != dirs || o.W.shape[1] != gates * hidden || o.R.shape[1] != gates * hidden)
            {
                throw new InvalidOperationException($"{op}: W [{string.Join(",", o.W.shape)}] and R [{string.Join(",", o.R.shape)}] do not fit {dirs} direction(s) of {gates} gate(s) of hidden size {hidden}.");
            }
            T? State(T? jet, Tensor? plain)
            {
                if (jet is not null) return batchFirst ? m.Permute(jet, [1, 0, 2]) : jet;
                if (plain is null) return default;
                return m.Constant(batchFirst ? plain.permute(1, 0, 2) : plain, x);
            }
            var h0 = State(jetH, o.InitialH);
            var c0 = State(jetC, o.InitialC);
            var zero = m.Constant(zeros(batch, hidden), x);
            var ys = new List<T>();
            var hs = new List<T>();
            var cs = new List<T>();
            for (var d = 0; d < dirs; d++)
            {
                var backward = reverse || d == 1;
                var w = o.W[d];
                var r = o.R[d];
                var wb = o.B?[d].narrow(0, 0, gates * hidden);
                var rb = o.B?[d].narrow(0, gates * hidden, gates * hidden);
                var p = o.P?[d];
                var act = activations.Skip(d * PerDirection).Take(PerDirection).ToArray();
                var projected = m.Linear(x, w, wb);                                   // every step's x_t Wᵀ + Wb: [seq, batch, gates·hidden]
                var h = h0 is null ? zero : m.Select(h0, 0, d);
                var c = c0 is null ? zero : m.Select(c0, 0, d);
                var steps = new T[seq];
                for (var k = 0; k < seq; k++)
                {
                    var t = backward ? seq - 1 - k : k;
                    var xt = m.Select(projected, 0, t);
                    (h, c) = Step(m, xt, h, c, r, rb, p, act, hidden);
                    steps[t] = m.Unsqueeze(h, 0);
                }
                ys.Add(m.Unsqueeze(m.Concat(steps, 0), 1));                          // [seq, 1, batch, hidden]
                hs.Add(m.Unsqueeze(h, 0));
                cs.Add(m.Unsqueeze(c, 0));
            }
            List<T> parts = [m.Concat(ys, 1), m.Unsqueeze(m.Concat(hs, 0), 0)];
            if (op == "LSTM") parts.Add(m.Unsqueeze(m.Concat(cs, 0), 0));
            return m.Concat(parts, 0);
        }

        /// <summary>Output <paramref name="part"/> (0 Y, 1 Y_h, 2 Y_c) of <see cref="Run"/>'s stack, in the node's layout.</summary>
        public T Part<T>(RecurrentAlgebra<T> m, T all, int part, int states)
        {
            var seq = m.Shape(all)[0] - states;                                   // states: Y_h (and Y_c) follow the seq steps of Y
            if (part == 0)
            {
                var y = m.Narrow(all, 0, 0, seq);                                     // [seq, dirs, batch, hidden]
                return batchFirst ? m.Permute(y, [2, 0, 1, 3]) : y;                   // layout 1: [batch, seq, dirs, hidden]
            }
            var state = m.Select(all, 0, seq + part - 1);                             // [dirs, batch, hidden]
            return batchFirst ? m.Permute(state, [1, 0, 2]) : state;
        }

        private (T H, T C) Step<T>(RecurrentAlgebra<T> m, T xt, T h, T c, Tensor r, Tensor? rb, Tensor? p, string[] act, long hidden)
        {
            T Gate(T v, int g) => m.Narrow(v, 1, g * hidden, hidden);
            Tensor Rows(Tensor v, int g, int count) => v.narrow(0, g * hidden, count * hidden);
            switch (op)
            {
                case "GRU":
                {
                    var hr = m.Linear(h, Rows(r, 0, 2), rb is null ? null : Rows(rb, 0, 2));    // z and r: h [Rz; Rr]ᵀ + [Rbz; Rbr]
                    var z = m.Activation(act[0], m.Add(Gate(xt, 0), Gate(hr, 0)));
                    var reset = m.Activation(act[0], m.Add(Gate(xt, 1), Gate(hr, 1)));
                    var rh = Rows(r, 2, 1);
                    var rbh = rb is null ? null : Rows(rb, 2, 1);
                    var recurrent = linearBeforeReset ? m.Mul(reset, m.Linear(h, rh, rbh)) : m.Linear(m.Mul(reset, h), rh, rbh);
                    var n = m.Activation(act[1], m.Add(Gate(xt, 2), recurrent));
                    return (m.Add(n, m.Mul(z, m.Sub(h, n))), c);
                }
                case "LSTM":
                {
                    var hr = m.Linear(h, r, rb);                                      // [batch, 4·hidden], gates i, o, f, c
                    var pi = p?.narrow(0, 0, hidden);
                    var po = p?.narrow(0, hidden, hidden);
                    var pf = p?.narrow(0, 2 * hidden, hidden);
                    T Pre(int g, Tensor? peephole, T state)
                    {
                        var v = m.Add(Gate(xt, g), Gate(hr, g));
                        return peephole is null ? v : m.Add(v, m.MulConstant(state, peephole));
                    }
                    var i = m.Activation(act[0], Pre(0, pi, c));
                    var f = m.Activation(act[0], Pre(2, pf, c));
                    var candidate = m.Activation(act[1], m.Add(Gate(xt, 3), Gate(hr, 3)));
                    var cNext = m.Add(m.Mul(f, c), m.Mul(i, candidate));
                    var o = m.Activation(act[0], Pre(1, po, cNext));
                    return (m.Mul(o, m.Activation(act[2], cNext)), cNext);
                }
                default:
                    return (m.Activation(act[0], m.Add(xt, m.Linear(h, r, rb))), c);
            }
        }
    }
}
