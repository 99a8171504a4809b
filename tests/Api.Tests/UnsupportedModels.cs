using Onnx;

namespace LambdaService.Api.Tests;

/// <summary>Smooth ONNX models with an operator the Taylor-mode importer has no rule for, so that engine auto falls back to finite differences.</summary>
internal static class UnsupportedModels
{
    /// <summary>
    /// <paramref name="mlp"/> (Gemm layers with transB = 1) with every Gemm written as Einsum <c>bi,oi→bo</c> plus Add of the bias:
    /// the same function (smooth for a tanh MLP), which ONNX Runtime runs in float64 and the importer does not read.
    /// </summary>
    public static ModelProto WithEinsum(ModelProto mlp)
    {
        var model = mlp.Clone();
        var nodes = model.Graph.Node.ToList();
        model.Graph.Node.Clear();
        foreach (var node in nodes)
        {
            if (node.OpType != "Gemm")
            {
                model.Graph.Node.Add(node);
                continue;
            }
            var product = node.Output[0] + "_einsum";
            var einsum = new NodeProto { OpType = "Einsum", Name = node.Name.Replace("gemm", "einsum", StringComparison.Ordinal) };
            einsum.Input.Add([node.Input[0], node.Input[1]]);
            einsum.Output.Add(product);
            einsum.Attribute.Add(new AttributeProto { Name = "equation", Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8("bi,oi->bo") });
            var add = new NodeProto { OpType = "Add", Name = node.Name + "_bias" };
            add.Input.Add([product, node.Input[2]]);
            add.Output.Add(node.Output[0]);
            model.Graph.Node.Add(einsum);
            model.Graph.Node.Add(add);
        }
        return model;
    }
}
