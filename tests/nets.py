"""Test networks with real models' layer shapes, built directly in the workload IR.

Weights are seeded random draws (He-scaled so activations stay in range); batch norms are
taken as folded into the convolutions. `shufflenet` has the layer shapes of the ONNX
`light_shufflenet` model (ShuffleNet v1 with 4 groups: grouped 1x1 convolutions, channel
shuffles, depthwise 3x3 convolutions); `vgg19` those of the ONNX `light_vgg19` model.
`size` shrinks the input image (the crossbar matrices stay the same) for fast functional tests.
"""

from __future__ import annotations

import itertools

import numpy as np

from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload


def _conv(g, rng, name, x, c_out, k, stride=1, groups=1, relu=True) -> str:
    c_in = g.shape(x)[0]
    fan_in = c_in // groups * k * k
    w = rng.standard_normal((c_out, c_in // groups, k, k), dtype=np.float32)
    w *= np.float32(np.sqrt(2.0 / fan_in))
    b = rng.standard_normal(c_out, dtype=np.float32) * np.float32(0.01)
    p = k // 2
    y = L.conv2d(g, name, x, w, b, (stride, stride), (p, p, p, p), groups=groups)
    return L.act(g, f"{name}_relu", y, "relu") if relu else y


def _shuffle(g, name, x, groups) -> str:
    c, h, w = g.shape(x)
    y = L.reshape(g, f"{name}_r1", x, (groups, c // groups, h, w))
    y = L.transpose(g, f"{name}_t", y, (1, 0, 2, 3))
    return L.reshape(g, f"{name}_r2", y, (c, h, w))


def shufflenet(seed: int = 0, size: int = 224, groups: int = 4) -> Workload:
    """ShuffleNet as in `light_shufflenet` (caffe2 ShuffleNet v1): 4 grouped convolution groups,
    stages of 4, 8, 4 units with 136, 272, 544 output channels; a stride-2 first unit concatenates
    its branch (out - in channels) with a 3x3 average pool of its input, the others add their
    input; 1,365,464 weights."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("shufflenet", "tests/nets.py")
    x = L.input_(g, "input", (3, size, size))
    x = _conv(g, rng, "conv1", x, 24, 3, stride=2)
    x = L.pool(g, "pool1", x, "max", (3, 3), (2, 2), (1, 1, 1, 1))
    for s, (out, repeats) in enumerate(((136, 4), (272, 8), (544, 4)), start=2):
        for u in range(repeats):
            name = f"s{s}u{u}"
            c_in = g.shape(x)[0]
            first = u == 0
            mid = out - c_in if first else out
            y = _conv(g, rng, f"{name}_gc1", x, mid, 1, groups=groups)
            y = _shuffle(g, f"{name}_shuffle", y, groups)
            y = _conv(
                g, rng, f"{name}_dw", y, mid, 3, stride=2 if first else 1, groups=mid, relu=False
            )
            y = _conv(g, rng, f"{name}_gc2", y, mid, 1, groups=groups, relu=False)
            if first:
                short = L.pool(g, f"{name}_avg", x, "avg", (3, 3), (2, 2), (1, 1, 1, 1))
                y = L.concat(g, f"{name}_cat", [short, y], 0)
            else:
                y = L.binary(g, f"{name}_add", "add", x, y)
            x = L.act(g, f"{name}_relu", y, "relu")
    x = L.global_pool(g, "gap", x)
    x = L.flatten(g, "flat", x)
    w = rng.standard_normal((544, 1000), dtype=np.float32) * np.float32(np.sqrt(1.0 / 544))
    L.linear(g, "fc", x, w, np.zeros(1000, dtype=np.float32))
    return g.build()


VGG19_CONVS = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)


def vgg19_toml() -> str:
    """VGG-19 (224 x 224 input, fc6 = 25088 x 4096) as a TOML layer list with seeded weights,
    for the CLI (`archsim simulate --workload vgg19.toml`)."""
    lines = [
        'name = "vgg19"',
        "",
        "[[layer]]",
        'id = "input"',
        'op = "input"',
        "shape = [3, 224, 224]",
    ]
    conv = pool = 0
    for c in VGG19_CONVS:
        if c == "M":
            pool += 1
            lines += ["", "[[layer]]", f'id = "pool{pool}"', 'op = "maxpool"', "kernel = 2"]
        else:
            conv += 1
            lines += [
                "",
                "[[layer]]",
                f'id = "conv{conv}"',
                'op = "conv2d"',
                f"out_channels = {c}",
                "kernel = 3",
                "padding = 1",
                "",
                "[[layer]]",
                f'id = "relu{conv}"',
                'op = "relu"',
            ]
    lines += ["", "[[layer]]", 'id = "flatten"', 'op = "flatten"']
    for i, n in ((6, 4096), (7, 4096), (8, 1000)):
        lines += ["", "[[layer]]", f'id = "fc{i}"', 'op = "linear"', f"out_features = {n}"]
        if i < 8:
            lines += ["", "[[layer]]", f'id = "fc{i}_relu"', 'op = "relu"']
    return "\n".join(lines) + "\n"


def mlp(sizes: tuple[int, ...], seed: int = 0) -> Workload:
    """A plain stack of linear layers with ReLUs between (sizes: input, hidden..., output)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("mlp", "tests/nets.py")
    x = L.input_(g, "input", (sizes[0],))
    for i, (k, n) in enumerate(itertools.pairwise(sizes)):
        w = rng.standard_normal((k, n), dtype=np.float32) * np.float32(np.sqrt(2.0 / k))
        x = L.linear(g, f"fc{i}", x, w, rng.standard_normal(n, dtype=np.float32))
        if i < len(sizes) - 2:
            x = L.act(g, f"fc{i}_relu", x, "relu")
    return g.build()


def grouped_net(seed: int = 0) -> Workload:
    """A small network of grouped, depthwise and plain layers (for 32 x 32 crossbars)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("grouped", "tests/nets.py")
    x = L.input_(g, "input", (8, 10, 10))
    x = _conv(g, rng, "gc1", x, 24, 1, groups=4)
    x = _shuffle(g, "shuffle", x, 4)
    x = _conv(g, rng, "dw", x, 24, 3, groups=24, relu=False)
    x = _conv(g, rng, "gc2", x, 32, 3, groups=2)
    x = L.global_pool(g, "gap", x)
    x = L.flatten(g, "flat", x)
    w = rng.standard_normal((32, 10), dtype=np.float32) * np.float32(np.sqrt(1.0 / 32))
    L.linear(g, "fc", x, w, np.zeros(10, dtype=np.float32))
    return g.build()
