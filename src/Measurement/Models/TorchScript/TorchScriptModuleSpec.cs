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
public sealed record TorchScriptModuleSpec(string ClassName, IReadOnlyList<TorchScriptParameter> Parameters, string ForwardSource)
{
    /// <summary>
    /// The Python module the class lives in, dotted identifiers starting with <c>__torch__</c>: <c>__torch__</c> (the
    /// default, code in <c>code/__torch__.py</c>) or, for example, <c>__torch__.torch.nn.modules.linear</c> (code in
    /// <c>code/__torch__/torch/nn/modules/linear.py</c>). Modules that share a qualified class name share its one
    /// definition, which must then come out the same for each.
    /// </summary>
    public string Qualifier { get; init; } = "__torch__";

    /// <summary>Name of forward's tensor argument: <c>x</c>, or <c>argument_1</c> as torch.jit.trace names a submodule's input.</summary>
    public string ForwardArgument { get; init; } = "x";

    /// <summary>Child modules, reachable in forward as <c>self.Name</c>, each an attribute typed by its own class.</summary>
    public IReadOnlyList<TorchScriptSubmodule> Submodules { get; init; } = [];

    /// <summary>
    /// Tensor constants of the archive (root module only): written to <c>constants.pkl</c> and <c>constants/&lt;key&gt;</c>
    /// and reachable in forward code as <c>CONSTANTS.c0</c>, <c>CONSTANTS.c1</c>, … in this order; no gradient.
    /// </summary>
    public IReadOnlyList<TorchScriptParameter> Constants { get; init; } = [];

    /// <summary>Class constants printed as <c>name : Final[int] = value</c>, as nn.Linear's <c>in_features</c>.</summary>
    public IReadOnlyList<KeyValuePair<string, long>> FinalInts { get; init; } = [];

    /// <summary>Whether the class has the attribute <c>_is_full_backward_hook : Optional[bool]</c> (None) that nn.Module types carry.</summary>
    public bool FullBackwardHookAttribute { get; init; }
}

/// <summary>A child module: its attribute name in the parent and its spec.</summary>
public sealed record TorchScriptSubmodule(string Name, TorchScriptModuleSpec Module);

/// <summary>The TorchScript code <see cref="TorchScriptWriter.Mlp"/> writes, after the program that would have made it.</summary>
public enum TorchScriptCodeStyle
{
    /// <summary>One class with the parameters <c>w0, b0, …</c> and <c>torch.linear(x, self.w0, self.b0)</c> (the writer's own).</summary>
    Flat,

    /// <summary>
    /// As <c>torch.jit.trace</c> of a module with nn.Linear children prints it: locals <c>fc0 = self.fc0</c>, calls
    /// <c>(fc0).forward(x, )</c>, and <c>Linear.forward(self, argument_1)</c> with <c>weight = self.weight</c>.
    /// </summary>
    Traced,

    /// <summary>
    /// Traced code with the children's calls inlined (as <c>torch._C._jit_pass_inline</c> prints it): the root reads
    /// <c>self.fc0.weight</c> and calls <c>torch.linear</c> itself; the children's classes stay in the archive.
    /// </summary>
    TracedInlined,

    /// <summary>As <c>torch.jit.script</c> prints it: <c>(self.fc0).forward(x, )</c>, and <c>Linear.forward(self, input)</c>.</summary>
    Scripted,
}
