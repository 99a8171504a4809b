using LambdaService.Measurement.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LambdaService.Measurement.Engines;

/// <summary>
/// Nested reverse-mode differentiation in TorchSharp. For each line <c>g(t) = f(x + t v)</c> a scalar
/// parameter t (one per line, all lines in one batch) is created with <c>requires_grad</c>; then
/// <c>gₙ = ∂/∂t Σ_lines gₙ₋₁</c> with <c>create_graph</c> for n = 1..K. Lines are independent (the model
/// runs in evaluation mode), so the derivative of the sum with respect to a line's own t is that line's
/// derivative. Cost grows roughly threefold per order. Lines go in passes sized from <paramref name="budget"/> (default
/// <see cref="LineBudget.Default"/>; see <see cref="PassPlanner"/>).
/// </summary>
/// <param name="model">The network.</param>
/// <param name="budget">Memory budget (or fixed size) of a pass.</param>
public sealed class AutogradEngine(TorchModelRunner model, LineBudget? budget = null) : IDerivativeEngine
{
    /// <inheritdoc />
    public string Name => "autograd";

    /// <inheritdoc />
    public string Device => model.Device;

    /// <inheritdoc />
    public DerivativeResult Compute(DerivativeRequest request, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var k = request.MaxOrder;
        var shape = model.SampleShape.Select(d => (long)d).ToArray();
        var (values, plan) = LinePasses.Run(request, model.SampleSize, budget ?? LineBudget.Default, 1, Name,
            (x, v, cls, n) => Lines(x, v, cls, n, shape, request.Target, k), progress, cancellationToken, model.TorchDevice);
        return new DerivativeResult(values, request.PointCount, request.DirectionsPerPoint, k, model.Precision, null, plan);
    }

    private double[] Lines(double[] x, double[] v, long[] cls, int n, long[] sampleShape, TargetKind target, int k)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var dtype = model.DType;
        long[] full = [n, .. sampleShape];
        long[] tShape = [n, .. sampleShape.Select(_ => 1L)];
        var device = model.TorchDevice;
        var xt = tensor(x, full, ScalarType.Float64).to(dtype, device);
        var vt = tensor(v, full, ScalarType.Float64).to(dtype, device);
        var t = zeros([n], dtype: dtype, device: device, requires_grad: true);
        var output = model.ForwardTensor(xt + t.view(tShape) * vt);
        if (output.dim() == 1) output = output.unsqueeze(1);
        var g = Objective.Evaluate(target, output, tensor(cls, ScalarType.Int64).to(device));
        var orders = new List<Tensor> { g.detach() };
        for (var order = 1; order <= k; order++)
        {
            // THSAutograd_grad has no try/catch in TorchSharp 0.107: calling it on a value that does not
            // depend on t would abort the process. Such a value has all further derivatives zero.
            if (!g.requires_grad)
            {
                for (var rest = order; rest <= k; rest++) orders.Add(zeros([n], dtype: dtype, device: device));
                break;
            }
            var more = order < k;
            var d = autograd.grad([g.sum()], [t], retain_graph: more, create_graph: more, allow_unused: true)[0];
            g = d is null || d.IsInvalid ? zeros([n], dtype: dtype, device: device) : d;
            orders.Add(g.detach());
        }
        var stacked = stack(orders, 1).to(ScalarType.Float64).cpu().contiguous();
        return stacked.data<double>().ToArray();
    }
}
