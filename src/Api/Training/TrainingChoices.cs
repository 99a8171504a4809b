namespace LambdaService.Api.Training;

// The closed sets of a training-run body. The library's TrainingRequest (src/Training/TrainingRequest.cs) keeps their words as
// strings and checks them in Validate; these enums are the words' one list for the HTTP body, the OpenAPI document and the usage text.

/// <summary>A built-in dataset (<c>dataset.builtin</c>).</summary>
public enum BuiltinDataset
{
    /// <summary>The generated Two Moons set (default).</summary>
    TwoMoons,

    /// <summary>The 10,000-digit MNIST set.</summary>
    Mnist,
}

/// <summary>The network trained (<c>model.kind</c>).</summary>
public enum NetworkKind
{
    /// <summary>A multilayer perceptron (default).</summary>
    Mlp,

    /// <summary>The paper's MNIST convolutional network.</summary>
    Cnn,
}

/// <summary>The activation function (<c>model.activation</c>).</summary>
public enum ActivationChoice
{
    /// <summary>tanh (the mlp's default).</summary>
    Tanh,

    /// <summary>ReLU (the cnn's default).</summary>
    Relu,

    /// <summary>The logistic sigmoid.</summary>
    Sigmoid,

    /// <summary>softplus.</summary>
    Softplus,

    /// <summary>GELU (mlp only).</summary>
    Gelu,
}

/// <summary>The training method (<c>method</c>).</summary>
public enum TrainingMethod
{
    /// <summary>Plain cross-entropy (default).</summary>
    Baseline,

    /// <summary>Curvature Rate Regularization with a fixed scale.</summary>
    Crr,

    /// <summary>Sharpness-aware minimization.</summary>
    Sam,

    /// <summary>CRR whose scale holds λ inside a band.</summary>
    CrrTarget,
}

/// <summary>The engine of the CRR penalty (<c>crr.engine</c>).</summary>
public enum CrrEngine
{
    /// <summary>fused where it applies and is the faster, else taylor (default).</summary>
    Auto,

    /// <summary>Taylor mode and its reverse in one pass of managed code.</summary>
    Fused,

    /// <summary>Taylor mode through libtorch operations.</summary>
    Taylor,

    /// <summary>Nested reverse mode.</summary>
    Autograd,
}

/// <summary>The points λ is measured on after training (<c>measure.points</c>); unlike a measurement's, no class pairs.</summary>
public enum TrainingPoints
{
    /// <summary>Points near the decision boundary (default).</summary>
    Boundary,

    /// <summary>Every test point.</summary>
    All,
}
