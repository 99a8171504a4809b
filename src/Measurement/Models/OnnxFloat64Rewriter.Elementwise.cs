using Onnx;

namespace LambdaService.Measurement.Models;

/// <summary>
/// Elementwise rewrites (x the input; α, β, γ the operator's attributes, read as the float32 values the
/// model stores):
/// <list type="bullet">
/// <item><b>Erf</b>: <c>erf(x) = sign(x)·E(|x|)</c> with fdlibm's (Sun, 1993; also Go's math.Erf)
/// piecewise rational approximations of E(a): a &lt; 0.84375: <c>a + a·P(a²)/Q(a²)</c>;
/// a &lt; 1.25: <c>erx + P₁(a−1)/Q₁(a−1)</c>; otherwise <c>1 − exp(−a² − 0.5625 + R(1/a²)/S(1/a²))/a</c>
/// with (R, S) for a &lt; 1/0.35 and another pair beyond (E = 1 − tiny, i.e. 1, for a ≥ 6). Each piece is
/// accurate to ≲ 2⁻⁵⁷ relative (fdlibm's split of a² into two halves is skipped; it would only matter at
/// the ulp level), so the result is within about 1 ulp of a correctly rounded erf and its jumps at the
/// region boundaries are of that size. All pieces are evaluated and the right one is picked with Where
/// (the tail uses max(a, 1.25) so no piece divides by zero).</item>
/// <item><b>Gelu</b> (opset 20): approximate = none: <c>x/2·(1 + erf(x/√2))</c>; approximate = tanh:
/// <c>x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</c>.</item>
/// <item><b>Softplus</b>: <c>log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|})</c> (no overflow).</item>
/// <item><b>LeakyRelu</b>: <c>x &lt; 0 ? α·x : x</c> (α = 0.01); <b>PRelu</b>: the same with the slope input.</item>
/// <item><b>Elu</b>: <c>x &lt; 0 ? α(eˣ − 1) : x</c> (α = 1); <b>Selu</b>: <c>x &gt; 0 ? γx : γ(α eˣ − α)</c>
/// (α ≈ 1.6733, γ ≈ 1.0507); <b>ThresholdedRelu</b>: <c>x &gt; α ? x : 0</c> (α = 1).</item>
/// <item><b>HardSigmoid</b>: <c>max(0, min(1, αx + β))</c> (α = 0.2, β = 0.5); <b>HardSwish</b>:
/// <c>x·max(0, min(1, x/6 + 1/2))</c>.</item>
/// <item><b>Mish</b>: <c>x·tanh(softplus(x))</c>; <b>Softsign</b>: <c>x/(1 + |x|)</c>.</item>
/// <item><b>Clip</b> (opset 11 only; later versions have float64 kernels): <c>min(max(x, lo), hi)</c> with
/// absent bounds skipped.</item>
/// </list>
/// </summary>
internal sealed partial class OnnxFloat64Rewriter
{
    private static bool HandlesElementwise(string op) => op is "Erf" or "Gelu" or "Softplus" or "LeakyRelu" or "PRelu" or "Elu" or "Selu"
        or "ThresholdedRelu" or "HardSigmoid" or "HardSwish" or "Mish" or "Softsign" or "Clip";

    private static string? Elementwise(NodeProto node, Emitter e)
    {
        var x = node.Input[0];
        string Scalar(double v) => e.Scalar(v);
        string Op(string op, params string[] inputs) => e.Op(op, inputs);
        string Where(string condition, string yes, string no) => e.Op("Where", [condition, yes, no]);
        string Softplus(string v) => Op("Add", Op("Relu", v), Op("Log", Op("Add", Op("Exp", Op("Neg", Op("Abs", v))), Scalar(1))));

        string y;
        switch (node.OpType)
        {
            case "Erf":
                y = Erf(e, x);
                break;
            case "Gelu":
                var approximate = Str(node, "approximate") ?? "none";
                var half = Op("Mul", x, Scalar(0.5));
                if (approximate == "none")
                {
                    y = Op("Mul", half, Op("Add", Erf(e, Op("Mul", x, Scalar(1 / Math.Sqrt(2)))), Scalar(1)));
                }
                else if (approximate == "tanh")
                {
                    var cube = Op("Mul", Op("Mul", x, x), x);
                    var inner = Op("Mul", Op("Add", x, Op("Mul", cube, Scalar(0.044715))), Scalar(Math.Sqrt(2 / Math.PI)));
                    y = Op("Mul", half, Op("Add", Op("Tanh", inner), Scalar(1)));
                }
                else
                {
                    return $"unknown approximate '{approximate}'";
                }
                break;
            case "Softplus":
                y = Softplus(x);
                break;
            case "LeakyRelu":
                y = Where(Op("Less", x, Scalar(0)), Op("Mul", x, Scalar(Float(node, "alpha", 0.01f))), x);
                break;
            case "PRelu":
                if (node.Input.Count < 2 || node.Input[1].Length == 0) return "it has no slope input";
                y = Where(Op("Less", x, Scalar(0)), Op("Mul", x, node.Input[1]), x);
                break;
            case "Elu":
                y = Where(Op("Less", x, Scalar(0)), Op("Mul", Op("Sub", Op("Exp", x), Scalar(1)), Scalar(Float(node, "alpha", 1f))), x);
                break;
            case "Selu":
                var alpha = Scalar(Float(node, "alpha", 1.67326319217681884765625f));
                var gamma = Scalar(Float(node, "gamma", 1.05070102214813232421875f));
                y = Where(Op("Greater", x, Scalar(0)), Op("Mul", x, gamma), Op("Mul", Op("Sub", Op("Mul", Op("Exp", x), alpha), alpha), gamma));
                break;
            case "ThresholdedRelu":
                y = Where(Op("Greater", x, Scalar(Float(node, "alpha", 1f))), x, Scalar(0));
                break;
            case "HardSigmoid":
                y = HardSigmoid(e, x, Float(node, "alpha", 0.2f), Float(node, "beta", 0.5f));
                break;
            case "HardSwish":
                y = Op("Mul", x, HardSigmoid(e, x, 1.0 / 6, 0.5));
                break;
            case "Mish":
                y = Op("Mul", x, Op("Tanh", Softplus(x)));
                break;
            case "Softsign":
                y = Op("Div", x, Op("Add", Op("Abs", x), Scalar(1)));
                break;
            case "Clip":
                if (Find(node, "min") is not null || Find(node, "max") is not null) return "Clip-6 attributes in an opset-11 model";
                y = x;
                if (node.Input.Count > 1 && node.Input[1].Length > 0) y = Op("Max", y, node.Input[1]);
                if (node.Input.Count > 2 && node.Input[2].Length > 0) y = Op("Min", y, node.Input[2]);
                break;
            default:
                return NotHandled;
        }
        e.Finish(y);
        return null;
    }

    private static string HardSigmoid(Emitter e, string x, double alpha, double beta) =>
        e.Op("Max", [e.Op("Min", [e.Op("Add", [e.Op("Mul", [x, e.Scalar(alpha)]), e.Scalar(beta)]), e.Scalar(1)]), e.Scalar(0)]);

    // fdlibm s_erf.c coefficients (Copyright (C) 1993 by Sun Microsystems, Inc.; freely usable with this notice).
    private const double Erx = 8.45062911510467529297e-01;
    private static readonly double[] Pp = [1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02, -5.77027029648944159157e-03, -2.37630166566501626084e-05];
    private static readonly double[] Qq = [1, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03, 1.32494738004321644526e-04, -3.96022827877536812320e-06];
    private static readonly double[] Pa = [-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01, 3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02, -2.16637559486879084300e-03];
    private static readonly double[] Qa = [1, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02, 1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02];
    private static readonly double[] Ra = [-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01, -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02, -8.12874355063065934246e+01, -9.81432934416914548592e+00];
    private static readonly double[] Sa = [1, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02, 6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02, 6.57024977031928170135e+00, -6.04244152148580987438e-02];
    private static readonly double[] Rb = [-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01, -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03, -4.83519191608651397019e+02];
    private static readonly double[] Sb = [1, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03, 3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02, -2.24409524465858183362e+01];

    /// <summary>Emits erf(<paramref name="x"/>) (see the class remarks) and returns its value name.</summary>
    private static string Erf(Emitter e, string x)
    {
        string Op(string op, params string[] inputs) => e.Op(op, inputs);
        string Poly(string t, double[] c)
        {
            // Horner: c₀ + t(c₁ + t(c₂ + …)).
            var acc = e.Scalar(c[^1]);
            for (var i = c.Length - 2; i >= 0; i--) acc = Op("Add", Op("Mul", acc, t), e.Scalar(c[i]));
            return acc;
        }

        var a = Op("Abs", x);
        var a2 = Op("Mul", a, a);
        var small = Op("Add", a, Op("Mul", a, Op("Div", Poly(a2, Pp), Poly(a2, Qq))));
        var s = Op("Sub", a, e.Scalar(1));
        var middle = Op("Add", e.Scalar(Erx), Op("Div", Poly(s, Pa), Poly(s, Qa)));
        var tailA = Op("Max", a, e.Scalar(1.25));
        var tailA2 = Op("Mul", tailA, tailA);
        var z = Op("Reciprocal", tailA2);
        var ratio = e.Op("Where", [Op("Less", a, e.Scalar(1 / 0.35)), Op("Div", Poly(z, Ra), Poly(z, Sa)), Op("Div", Poly(z, Rb), Poly(z, Sb))]);
        var erfc = Op("Div", Op("Exp", Op("Add", Op("Sub", Op("Neg", tailA2), e.Scalar(0.5625)), ratio)), tailA);
        var tail = Op("Sub", e.Scalar(1), erfc);
        var magnitude = e.Op("Where", [Op("Less", a, e.Scalar(0.84375)), small, e.Op("Where", [Op("Less", a, e.Scalar(1.25)), middle, tail])]);
        return Op("Mul", Op("Sign", x), magnitude);
    }
}
