"""The real networks of `bench --networks` (README, Performance: "Real networks").

Run by the bench itself with Debian's /usr/bin/python3 (python3-torch, python3-torchvision):

  bench_networks.py export DIR NAME[,NAME...]
      writes DIR/NAME.onnx for each network (torchvision, random weights from seed 0, eval mode, ONNX opset 17) and prints
      one JSON line per network: {"name", "shape", "parameters"}.
  bench_networks.py time NAME X_FILE V_FILE POINTS DIRECTIONS MAX_ORDER LINES_PER_PASS THREADS
      PyTorch float32 nested autograd on the same lines as the C# rows: X_FILE holds POINTS samples and V_FILE
      POINTS*DIRECTIONS unit directions (raw little-endian float64, the layout the bench writes); line i = point i // D,
      direction i; the loss is cross-entropy against label (point % 10); orders 1..MAX_ORDER by torch.autograd.grad nested
      with create_graph, LINES_PER_PASS lines a pass. Prints one JSON line: {"seconds", "warmupSeconds", "passes", "meanAbs"}, meanAbs the mean over the lines of |D^n| for n = 1..MAX_ORDER.
"""
import json
import sys
import time

import numpy as np
import torch
import torchvision
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

SHAPES = {
    "resnet18": (3, 32, 32),
    "efficientnet_b0": (3, 64, 64),
    "vit": (3, 32, 32),
    "convnext": (3, 32, 32),
    "tiny": (3, 6, 6),
}


def build(name):
    torch.manual_seed(0)
    if name == "resnet18":
        model = torchvision.models.resnet18(num_classes=10)
    elif name == "efficientnet_b0":
        model = torchvision.models.efficientnet_b0(num_classes=10)
    elif name == "vit":
        model = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=4, hidden_dim=64,
                                                     mlp_dim=128, num_classes=10)
        # torchvision starts the ViT's head at zero (constant logits: every derivative 0); nn.Linear's own initialisation instead.
        model.heads.head.reset_parameters()
    elif name == "convnext":
        # A small ConvNeXt: two stages (32 then 64 channels, two blocks each) from torchvision's CNBlockConfig.
        model = ConvNeXt([CNBlockConfig(32, 64, 2), CNBlockConfig(64, None, 2)], num_classes=10)
    elif name == "tiny":
        # Not one of the four: a tanh CNN small enough for the tests of the bench's machinery.
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10))
    else:
        raise SystemExit(f"unknown network {name}; use one of {', '.join(SHAPES)}")
    return model.eval()


def export(folder, names):
    for name in names:
        model = build(name)
        x = torch.randn(1, *SHAPES[name])
        torch.onnx.export(model, x, f"{folder}/{name}.onnx", opset_version=17, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
        print(json.dumps({"name": name, "shape": list(SHAPES[name]),
                          "parameters": sum(p.numel() for p in model.parameters())}), flush=True)


def nested(model, x, v, labels, max_order):
    t = torch.zeros(x.shape[0], dtype=x.dtype, requires_grad=True)
    inputs = x + t.view(-1, *([1] * (x.dim() - 1))) * v
    loss = torch.nn.functional.cross_entropy(model(inputs), labels, reduction="none")
    g = loss.sum()
    out = []
    for n in range(1, max_order + 1):
        (g,) = torch.autograd.grad(g, t, create_graph=n < max_order)
        out.append(g.detach())
        g = g.sum()
    return torch.stack(out, 1)


def time_lines(name, x_file, v_file, points, directions, max_order, per_pass, threads):
    torch.set_num_threads(threads)
    shape = SHAPES[name]
    size = int(np.prod(shape))
    # The files hold the largest line count's points and directions; a smaller run takes their first lines.
    x = np.fromfile(x_file, dtype="<f8", count=points * size).reshape(points, *shape)
    v = np.fromfile(v_file, dtype="<f8", count=points * directions * size).reshape(points * directions, *shape)
    lines = points * directions
    xs = torch.from_numpy(np.repeat(x, directions, axis=0)).float()
    vs = torch.from_numpy(v).float()
    labels = torch.from_numpy(np.repeat(np.arange(points) % 10, directions)).long()
    model = build(name)
    for p in model.parameters():
        p.requires_grad_(False)
    # One untimed pass of one point's lines first (the first call of a process pays for its allocator and kernels).
    start = time.perf_counter()
    nested(model, xs[:directions], vs[:directions], labels[:directions], max_order)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    passes = 0
    derivatives = []
    for i in range(0, lines, per_pass):
        derivatives.append(nested(model, xs[i:i + per_pass], vs[i:i + per_pass], labels[i:i + per_pass], max_order))
        passes += 1
    seconds = time.perf_counter() - start
    mean_abs = torch.cat(derivatives).double().abs().mean(0).tolist()
    print(json.dumps({"seconds": seconds, "warmupSeconds": warmup, "passes": passes, "meanAbs": mean_abs}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3].split(","))
    elif len(sys.argv) == 10 and sys.argv[1] == "time":
        a = sys.argv
        time_lines(a[2], a[3], a[4], int(a[5]), int(a[6]), int(a[7]), int(a[8]), int(a[9]))
    else:
        raise SystemExit(__doc__)
