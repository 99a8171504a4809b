#!/usr/bin/python3
"""Real PyTorch fixtures for the test suite (tests/Measurement.Tests/RealModels), with their float64 reference.

Run with Debian's interpreter, which has python3-torch 1.13 and python3-torchvision 0.14:

    /usr/bin/python3 tests/Fixtures/torch/make_torch_fixtures.py OUT_DIR

For each small model built from torchvision's own building blocks (seeded), OUT_DIR receives

    NAME.opset13.onnx, NAME.opset17.onnx   torch.onnx.export, input "x", output "logits", dynamic batch axis
    NAME.trace.pt, NAME.script.pt          torch.jit.trace / torch.jit.script (float32, as exported)
    NAME.reference.json                    points, unit directions, labels, float64 logits and the float64 directional
                                           derivatives D^n_v f(x), n = 0..4, of the cross-entropy loss
                                           f(x) = logsumexp(z(x)) - z_y(x) (README "What measure computes",
                                           src/Measurement/Engines/Objective.cs), by nested torch.autograd.grad on the
                                           model converted to float64
    manifest.json                          written last: the models, their files, and what could not be exported

The reference differentiates a copy of the model in which torch's fused operators whose higher derivatives are not
exact under nested autograd (README "Engines", autograd: layer_norm, instance_norm; hardsigmoid has no 2nd derivative)
are spelled out in elementary operations, and BatchNorm (eval), hardswish and GELU too; every replacement is checked
against the fused module's forward on the same input (1e-12), and one order-2 value per model against a float64 central
finite difference. The script fails (exit code 1) when a check fails.
"""

import json
import math
import os
import sys
import time
import warnings
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.efficientnet import MBConv, MBConvConfig
from torchvision.models.mobilenetv3 import InvertedResidual, InvertedResidualConfig
from torchvision.models.resnet import BasicBlock
from torchvision.ops.misc import Conv2dNormActivation

CLASSES = 3
POINTS = 3
DIRECTIONS = 2
MAX_ORDER = 4
IMAGE = [3, 16, 16]
TABULAR = [8]


# ---------------------------------------------------------------------------------------------------------------------
# The models (torchvision 0.14's building blocks), float32 as a user would export them.

class TinyResNet(nn.Module):
    """Stem conv-BN-ReLU, 2x2 max pooling, two torchvision BasicBlocks (the second strided with a 1x1 downsample), head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(2))
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.layers = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, stride=2, downsample=down))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class TinyEfficientNet(nn.Module):
    """EfficientNet-style: SiLU stem, two torchvision MBConv blocks (SiLU, squeeze-excitation with sigmoid), head."""

    def __init__(self):
        super().__init__()
        bn = nn.BatchNorm2d
        self.stem = Conv2dNormActivation(3, 8, kernel_size=3, stride=2, norm_layer=bn, activation_layer=nn.SiLU)
        self.blocks = nn.Sequential(MBConv(MBConvConfig(1, 3, 1, 8, 8, 1), 0.0, bn),
                                    MBConv(MBConvConfig(4, 3, 2, 8, 16, 1), 0.0, bn))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class TinyMobileNetV3(nn.Module):
    """MobileNetV3-style: hardswish stem, one torchvision InvertedResidual (hardswish, SE with ReLU and hardsigmoid), head."""

    def __init__(self):
        super().__init__()
        bn = nn.BatchNorm2d
        self.stem = Conv2dNormActivation(3, 16, kernel_size=3, stride=2, norm_layer=bn, activation_layer=nn.Hardswish)
        self.block = InvertedResidual(InvertedResidualConfig(16, 3, 32, 16, True, "HS", 1, 1, 1.0), bn)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.block(self.stem(x))), 1))


class TabularMlp(nn.Module):
    """Linear, BatchNorm1d, tanh, linear, LayerNorm, GELU, linear."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 16), nn.LayerNorm(16),
                                 nn.GELU(), nn.Linear(16, CLASSES))

    def forward(self, x):
        return self.net(x)


def tiny_vit():
    return torchvision.models.VisionTransformer(image_size=16, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                                                mlp_dim=32, num_classes=CLASSES)


def tiny_convnext():
    return ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], stochastic_depth_prob=0.0, layer_scale=0.5,
                    num_classes=CLASSES)


MODELS = [
    ("resnet", TinyResNet, IMAGE),
    ("efficientnet", TinyEfficientNet, IMAGE),
    ("mobilenetv3", TinyMobileNetV3, IMAGE),
    ("vit", tiny_vit, IMAGE),
    ("convnext", tiny_convnext, IMAGE),
    ("mlp", TabularMlp, TABULAR),
]


def build(factory, seed):
    """The model with seeded weights and non-trivial running statistics and affine parameters in every BatchNorm (eval)."""
    torch.manual_seed(seed)
    model = factory()
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
                m.weight.copy_(1 + 0.3 * torch.randn(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        if hasattr(model, "class_token"):  # the ViT's class token and position embedding start at zeros / small
            model.class_token.copy_(0.5 * torch.randn(model.class_token.shape, generator=g))
        # A head drawn anew (torchvision's ViT starts it at zeros), larger than the default initialisation, so the loss
        # is not nearly constant along the lines.
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.out_features == CLASSES:
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(m.in_features) * 3.0)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------------
# The float64 reference: elementary replacements, each checked against the fused module on its own input.

CHECKS = {}


class Checked(nn.Module):
    """Runs the elementary spelling; on the first call of each kind compares it with the fused module (no grad)."""

    def __init__(self, fused, kind, elementary):
        super().__init__()
        self.fused = fused
        self.kind = kind
        self.elementary = elementary

    def forward(self, x):
        y = self.elementary(self.fused, x)
        with torch.no_grad():
            want = self.fused(x.detach().clone())  # a copy: torchvision's activations run in place
            err = (y.detach() - want).abs().max().item() / (1 + want.abs().max().item())
        if err > 1e-12:
            raise AssertionError(f"{self.kind}: elementary spelling differs from torch's by {err:.3g} (> 1e-12)")
        CHECKS[self.kind] = max(CHECKS.get(self.kind, 0.0), err)
        return y


def layer_norm(m, x):
    dims = tuple(range(-len(m.normalized_shape), 0))
    c = x - x.mean(dim=dims, keepdim=True)
    y = c / torch.sqrt((c * c).mean(dim=dims, keepdim=True) + m.eps)
    return y * m.weight + m.bias if m.elementwise_affine else y


def layer_norm_2d(m, x):  # torchvision's LayerNorm2d: layer_norm over channels of x.permute(0, 2, 3, 1)
    return layer_norm(m, x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def batch_norm_eval(m, x):
    shape = [1, -1] + [1] * (x.dim() - 2)
    scale = m.weight / torch.sqrt(m.running_var + m.eps)
    return (x - m.running_mean.view(shape)) * scale.view(shape) + m.bias.view(shape)


def hardsigmoid(m, x):  # relu6(x + 3) / 6, with relu6 as two clamps (piecewise linear: no higher-derivative kernels)
    return torch.clamp(torch.clamp(x + 3, min=0), max=6) / 6


def hardswish(m, x):
    return x * hardsigmoid(m, x)


def gelu(m, x):  # exact GELU: x/2 (1 + erf(x/sqrt 2))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def elementary(model):
    """Replaces, in place, the modules whose fused kernels the reference must not differentiate."""
    for name, child in list(model.named_children()):
        kind = type(child).__name__
        if kind == "LayerNorm2d":
            setattr(model, name, Checked(child, "layer_norm (LayerNorm2d)", layer_norm_2d))
        elif isinstance(child, nn.LayerNorm):
            setattr(model, name, Checked(child, "layer_norm", layer_norm))
        elif isinstance(child, nn.InstanceNorm2d):
            raise AssertionError("instance_norm: no model here uses it; add its elementary spelling first")
        elif isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, Checked(child, "batch_norm (eval)", batch_norm_eval))
        elif isinstance(child, nn.Hardsigmoid):
            setattr(model, name, Checked(child, "hardsigmoid", hardsigmoid))
        elif isinstance(child, nn.Hardswish):
            setattr(model, name, Checked(child, "hardswish", hardswish))
        elif isinstance(child, nn.GELU):
            setattr(model, name, Checked(child, "gelu", gelu))
        else:
            elementary(child)
    return model


def loss(logits, labels):
    """Cross-entropy per row: logsumexp(z) - z_y (src/Measurement/Engines/Objective.cs)."""
    return torch.logsumexp(logits, dim=1) - logits.gather(1, labels.unsqueeze(1)).squeeze(1)


def derivatives(model, points, directions, labels):
    """[P, D, K+1]: D^n_v f(x_p) for n = 0..K by nested autograd on g(t) = f(x + t v), all lines in one graph."""
    P, D = directions.shape[0], directions.shape[1]
    x = points.unsqueeze(1).expand(P, D, *points.shape[1:]).reshape(P * D, *points.shape[1:])
    v = directions.reshape(P * D, *points.shape[1:])
    y = labels.repeat_interleave(D)
    t = torch.zeros(P * D, dtype=torch.float64, requires_grad=True)
    g = loss(model(x + t.view(-1, *[1] * (x.dim() - 1)) * v), y)
    out = [g.detach()]
    for n in range(1, MAX_ORDER + 1):
        (g,) = torch.autograd.grad(g.sum(), t, create_graph=n < MAX_ORDER)
        out.append(g.detach())
    return torch.stack(out, dim=1).reshape(P, D, MAX_ORDER + 1)


def finite_difference_check(model, point, direction, label, want):
    """Order 2 at one line by a float64 central difference (g(h) - 2 g(0) + g(-h)) / h^2, h = 1e-3: error ~ h^2 g''''/12."""
    h = 1e-3
    with torch.no_grad():
        xs = torch.stack([point + h * direction, point, point - h * direction])
        g = loss(model(xs), label.repeat(3))
    fd = ((g[0] - 2 * g[1] + g[2]) / h ** 2).item()
    err = abs(fd - want) / max(abs(want), 1e-3)
    if err > 1e-4:
        raise AssertionError(f"order 2: nested autograd {want:.12g} but central difference {fd:.12g} (relative {err:.3g})")
    return fd, err


# ---------------------------------------------------------------------------------------------------------------------
# Exports.

def export_onnx(model, example, path, opset):
    # TrainingMode.PRESERVE (the model is in eval mode, so BatchNormalization runs on its running statistics): the default
    # EVAL mode folds each BatchNorm into the preceding convolution's weights in float32, which moves the file's function
    # by ~1e-7 relative from the model the float64 reference differentiates; PRESERVE keeps the weights bit for bit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, path, opset_version=opset, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.PRESERVE)


def export_torchscript(model, example, path, how):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # trace's own check compares graphs by value names, which differ between two traces of the ViT (w.1 and w)
        # with the same operations; the outputs are compared here instead.
        module = torch.jit.trace(model, example, check_trace=False) if how == "trace" else torch.jit.script(model)
    other = example.flip(0) * 0.5
    with torch.no_grad():
        err = (module(other) - model(other)).abs().max().item()
    if err > 1e-5:
        raise AssertionError(f"{path}: torch.jit.{how} gives outputs {err:.3g} away from the model's")
    module.save(path)


def main(out):
    started = time.time()
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    manifest = {"torch": torch.__version__, "torchvision": torchvision.__version__, "classes": CLASSES,
                "maxOrder": MAX_ORDER, "models": {}}
    for index, (name, factory, shape) in enumerate(MODELS):
        seed = 100 + index
        model = build(factory, seed)
        g = torch.Generator().manual_seed(seed + 2000)
        points = torch.randn(POINTS, *shape, generator=g, dtype=torch.float64)
        directions = torch.randn(POINTS, DIRECTIONS, *shape, generator=g, dtype=torch.float64)
        norms = directions.reshape(POINTS, DIRECTIONS, -1).norm(dim=2)
        directions = directions / norms.view(POINTS, DIRECTIONS, *[1] * len(shape))
        labels = torch.randint(0, CLASSES, (POINTS,), generator=g)

        files, refused = {}, {}
        example = points[:2].float()
        for opset in (13, 17):
            file = f"{name}.opset{opset}.onnx"
            export_onnx(model, example, os.path.join(out, file), opset)
            files[f"opset{opset}"] = file
        for how in ("trace", "script"):
            file = f"{name}.{how}.pt"
            try:
                export_torchscript(model, example, os.path.join(out, file), how)
                files[how] = file
            except Exception as e:  # reported in the manifest; the tests read it
                refused[how] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

        CHECKS.clear()
        model64 = build(factory, seed).double()
        with torch.no_grad():
            fused_logits = model64(points)
            logits32 = model(points.float()).double()
        reference = elementary(build(factory, seed).double())
        with torch.no_grad():
            logits = reference(points)
        agree = (logits - fused_logits).abs().max().item()
        if agree > 1e-12 * (1 + fused_logits.abs().max().item()):
            raise AssertionError(f"{name}: the elementary model's logits differ from torch's float64 model by {agree:.3g}")
        d = derivatives(reference, points, directions, labels)
        fd, fd_err = finite_difference_check(reference, points[0], directions[0, 0], labels[:1], d[0, 0, 2].item())

        ref = {
            "model": name, "sampleShape": shape, "classes": CLASSES, "seed": seed, "maxOrder": MAX_ORDER,
            "target": "loss: logsumexp(z) - z[label]",
            "points": points.reshape(POINTS, -1).tolist(),
            "directions": directions.reshape(POINTS, DIRECTIONS, -1).tolist(),
            "labels": labels.tolist(),
            "logits": logits.tolist(),
            "logitsFloat32": logits32.tolist(),
            "derivatives": d.tolist(),
            "replacementsChecked": dict(CHECKS),
            "finiteDifferenceCheck": {"point": 0, "direction": 0, "order": 2, "autograd": d[0, 0, 2].item(),
                                      "centralDifference": fd, "relativeError": fd_err},
        }
        with open(os.path.join(out, f"{name}.reference.json"), "w") as f:
            json.dump(ref, f)
        files["reference"] = f"{name}.reference.json"
        manifest["models"][name] = {"files": files, "notExported": refused, "replacements": sorted(CHECKS)}
        print(f"{name}: {', '.join(sorted(files))}; not exported: {refused or 'none'}; replaced: {sorted(CHECKS) or 'none'}; "
              f"FD check {fd_err:.1e}")
    manifest["seconds"] = round(time.time() - started, 1)
    tmp = os.path.join(out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(out, "manifest.json"))
    print(f"torch fixtures in {out} ({manifest['seconds']} s)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 make_torch_fixtures.py OUT_DIR")
    try:
        main(sys.argv[1])
    except AssertionError as e:
        sys.exit(f"make_torch_fixtures: check failed: {e}")
