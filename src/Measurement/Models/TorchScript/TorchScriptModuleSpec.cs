namespace LambdaService.Measurement.Models;

/// <summary>
/// One float32 parameter of a TorchScript module: its attribute name, its shape and its values in row-major
/// (C) order. A shape of length 0 is a scalar tensor holding one value.
/// </summary>
/// <param name="Name">Attribute name; a Python identifier, reachable in the forward code as <c>self.Name</c>.</param>
/// <param name="Shape">Sizes of the dimensions, each at least 0.</param>
/// <param name="Data">The values, row-major; its length is the product of <paramref name="Shape"/>.</param>
public sealed record TorchScriptParameter(string Name, long[] Shape, float[] Data);

/// <summary>
/// Everything <see cref="TorchScriptWriter"/> needs to write a TorchScript module with one method,
/// <c>def forward(self, x: Tensor) -&gt; Tensor</c>.
/// </summary>
/// <param name="ClassName">
/// Name of the module class (a Python identifier); the archive holds it as <c>__torch__.ClassName</c>.
/// </param>
/// <param name="Parameters">The module's parameters, in the order <c>parameters()</c> will list them.</param>
/// <param name="ForwardSource">
/// Body of <c>forward</c> as TorchScript lines without the method's own indentation, for example
/// <c>"h = torch.tanh(torch.linear(x, self.w0, self.b0))\nreturn torch.linear(h, self.w1, self.b1)"</c>.
/// The input is <c>x</c>; <c>torch.*</c> names the ATen operators. Nested blocks keep their relative indentation;
/// an indentation common to all lines is removed.
/// </param>
public sealed record TorchScriptModuleSpec(string ClassName, IReadOnlyList<TorchScriptParameter> Parameters, string ForwardSource);
