"""Workloads written as TOML layer lists.

```toml
name = "mlp_small"
weights = "mlp_small.npz"     # optional: <id>.weight / <id>.bias in PyTorch layout, else seeded

[[layer]]
id = "input"
op = "input"
shape = [64]

[[layer]]
id = "fc1"
op = "linear"
out_features = 32
inputs = ["input"]
```

Each layer names its producers in `inputs` (default: the layer before). Ops and their keys:
input (shape); linear (out_features, bias); conv2d (out_channels, kernel, stride, padding,
groups, bias); lstm (hidden); relu, sigmoid, tanh, gelu; maxpool, avgpool (kernel, stride,
padding); globalavgpool, globalmaxpool; flatten; reshape (shape); add, mul (two inputs);
concat (axis); softmax (axis); layernorm; matmul (two inputs). kernel, stride and padding are
one integer or [height, width]. Unknown ops or keys, and values of the wrong type or range,
raise a `WorkloadError` naming the file, the layer and the key.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from archsim.bounds import LAYER_WEIGHTS, TENSOR_ELEMENTS
from archsim.config import read_toml
from archsim.errors import ConfigError, SpecError, WorkloadError
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload
from archsim.workload.npz_file import read_npz

_KEYS = {
    "input": {"shape"},
    "linear": {"out_features", "bias"},
    "conv2d": {"out_channels", "kernel", "stride", "padding", "groups", "bias"},
    "lstm": {"hidden"},
    "relu": set(),
    "sigmoid": set(),
    "tanh": set(),
    "gelu": set(),
    "maxpool": {"kernel", "stride", "padding"},
    "avgpool": {"kernel", "stride", "padding"},
    "globalavgpool": set(),
    "globalmaxpool": set(),
    "flatten": set(),
    "reshape": {"shape"},
    "add": set(),
    "mul": set(),
    "concat": {"axis"},
    "softmax": {"axis"},
    "layernorm": set(),
    "matmul": set(),
}
_COMMON = {"id", "op", "inputs"}


def load_toml_workload(path: str | Path, seed: int = 0) -> Workload:
    """Read a TOML layer list; weights from its npz file or drawn from `seed`."""
    path = Path(path)
    try:
        raw = read_toml(path)
    except ConfigError as e:
        raise WorkloadError(str(e)) from None
    unknown = set(raw) - {"name", "description", "weights", "layer", "source"}
    if unknown:
        raise WorkloadError(
            f"{path}: {sorted(unknown)[0]}: unknown key (allowed: name, "
            "description, weights, layer)"
        )
    layers = raw.get("layer")
    if not isinstance(layers, list) or not layers:
        raise WorkloadError(f"{path}: expected [[layer]] tables")
    weights: dict[str, np.ndarray] = {}
    if "weights" in raw:
        wpath = path.parent / raw["weights"]
        try:
            weights = read_npz(wpath)
        except WorkloadError as e:
            raise WorkloadError(f"{path}: weights: {e}") from None
    rng = np.random.default_rng(seed)
    g = GraphBuilder(str(raw.get("name", path.stem)), str(path))
    previous = None
    for i, layer in enumerate(layers):
        previous = _add_layer(g, path, i, layer, previous, weights, rng)
    return g.build()


def _add_layer(g, path, i, layer, previous, weights, rng) -> str:
    where = f"{path}: layer {layer.get('id', i)!r}"
    op = layer.get("op")
    if op not in _KEYS:
        raise WorkloadError(f"{where}: op: expected one of {', '.join(sorted(_KEYS))}, got {op!r}")
    lid = layer.get("id")
    if not isinstance(lid, str) or not lid:
        raise WorkloadError(f"{where}: id: expected a non-empty string")
    extra = set(layer) - _COMMON - _KEYS[op]
    if extra:
        raise WorkloadError(
            f"{where}: {sorted(extra)[0]}: unknown key for op {op!r} "
            f"(allowed: {', '.join(sorted(_KEYS[op] | _COMMON))})"
        )
    if op == "input":
        shape = tuple(_ints(where, layer, "shape"))
        _within(where, "shape (elements)", TENSOR_ELEMENTS, math.prod(shape))
        return L.input_(g, lid, shape)
    inputs = layer.get("inputs", [previous] if previous else [])
    if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
        raise WorkloadError(f"{where}: inputs: expected a list of layer ids")
    for s in inputs:
        if not g.has(s):
            raise WorkloadError(f"{where}: inputs: no earlier layer {s!r}")
    two = op in ("add", "mul", "matmul")
    if (two and len(inputs) != 2) or (not two and op != "concat" and len(inputs) != 1):
        raise WorkloadError(f"{where}: inputs: op {op!r} takes {'two inputs' if two else 'one'}")
    x = inputs[0]
    try:
        out = _build(g, op, lid, x, inputs, layer, weights, rng, where)
    except WorkloadError as e:
        raise WorkloadError(f"{where}: {e}") from None
    _within(where, "output (elements per sample)", TENSOR_ELEMENTS, math.prod(g.shape(out)))
    return out


def _build(g, op, lid, x, inputs, layer, weights, rng, where) -> str:
    bias = layer.get("bias", True)
    if not isinstance(bias, bool):
        raise WorkloadError(f"{where}: bias: expected true or false, got {bias!r}")
    if op == "linear":
        n_in = g.shape(x)[-1]
        n_out = _int(where, layer, "out_features")
        w = _weight(weights, lid, (n_out, n_in), n_in, rng)
        b = _bias(weights, lid, n_out, bias)
        return L.linear(g, lid, x, w.T, b)
    if op == "conv2d":
        c_in = g.shape(x)[0]
        c_out = _int(where, layer, "out_channels")
        kh, kw = _pair(where, layer, "kernel", 3, 1)
        groups = _int(where, layer, "groups", 1)
        if c_in % groups or c_out % groups:
            raise WorkloadError(
                f"{where}: groups: {groups} does not divide the {c_in} input "
                f"and {c_out} output channels"
            )
        ph, pw = _pair(where, layer, "padding", 0, 0)
        stride = _pair(where, layer, "stride", 1, 1)
        fan_in = c_in // groups * kh * kw
        w = _weight(weights, lid, (c_out, c_in // groups, kh, kw), fan_in, rng)
        return L.conv2d(
            g, lid, x, w, _bias(weights, lid, c_out, bias), stride, (ph, pw, ph, pw), (1, 1), groups
        )
    if op == "lstm":
        hid = _int(where, layer, "hidden")
        n_in = g.shape(x)[-1]
        _within(where, "hidden (weights)", LAYER_WEIGHTS, 4 * hid * (n_in + hid))
        w_ih = weights.get(f"{lid}.weight_ih")
        w_hh = weights.get(f"{lid}.weight_hh")
        if w_ih is None:
            s = 1 / np.sqrt(hid)
            w_ih = rng.uniform(-s, s, (4 * hid, n_in))
            w_hh = rng.uniform(-s, s, (4 * hid, hid))
        return L.lstm(
            g, lid, x, w_ih, w_hh, weights.get(f"{lid}.bias_ih"), weights.get(f"{lid}.bias_hh")
        )
    if op in ("relu", "sigmoid", "tanh", "gelu"):
        return L.act(g, lid, x, op)
    if op in ("maxpool", "avgpool"):
        k = _pair(where, layer, "kernel", 2, 1)
        s = _pair(where, layer, "stride", list(k), 1)
        ph, pw = _pair(where, layer, "padding", 0, 0)
        return L.pool(g, lid, x, op[:3], k, s, (ph, pw, ph, pw))
    if op in ("globalavgpool", "globalmaxpool"):
        return L.global_pool(g, lid, x, op[6:9])
    if op == "flatten":
        return L.flatten(g, lid, x)
    if op == "reshape":
        return L.reshape(g, lid, x, _ints(where, layer, "shape"))
    if op in ("add", "mul"):
        return L.binary(g, lid, op, inputs[0], inputs[1])
    if op == "matmul":
        return L.matmul(g, lid, inputs[0], inputs[1])
    if op == "concat":
        return L.concat(g, lid, inputs, _int(where, layer, "axis", 0, None))
    if op == "softmax":
        return L.softmax(g, lid, x, _int(where, layer, "axis", -1, None))
    d = g.shape(x)[-1]
    return L.layernorm(
        g, lid, x, weights.get(f"{lid}.weight", np.ones(d)), weights.get(f"{lid}.bias", np.zeros(d))
    )


def _ints(where: str, layer: dict, key: str) -> list[int]:
    v = layer.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(d, int) for d in v):
        raise WorkloadError(f"{where}: {key}: expected a list of integers, got {v!r}")
    return v


def _int(where: str, layer: dict, key: str, default: int | None = None, low: int | None = 1) -> int:
    """layer[key] as an integer >= low (any integer when low is None); required if no default."""
    v = layer.get(key, default)
    if v is None:
        raise WorkloadError(f"{where}: {key}: missing (a positive integer)")
    if isinstance(v, bool) or not isinstance(v, int) or (low is not None and v < low):
        bound = f" >= {low}" if low is not None else ""
        raise WorkloadError(f"{where}: {key}: expected an integer{bound}, got {v!r}")
    return v


def _pair(where: str, layer: dict, key: str, default, low: int) -> tuple[int, int]:
    """layer[key] as (height, width): one integer for both, or [height, width]."""
    v = layer.get(key, default)
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v, v]
    if (
        not isinstance(v, list)
        or len(v) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= low for d in v)
    ):
        raise WorkloadError(
            f"{where}: {key}: expected an integer >= {low} or [height, width], got {v!r}"
        )
    return int(v[0]), int(v[1])


def _within(where: str, key: str, bound, value: int) -> None:
    """WorkloadError naming the layer when `value` exceeds `bound` (a `bounds.Bound`)."""
    try:
        bound.check(key, value)
    except SpecError as e:
        raise WorkloadError(f"{where}: {e}") from None


def _weight(weights, lid, shape, fan_in, rng) -> np.ndarray:
    _within(f"weight {lid}.weight", "size", LAYER_WEIGHTS, math.prod(shape))
    w = weights.get(f"{lid}.weight")
    if w is None:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    if w.shape != shape:
        raise WorkloadError(f"weight {lid}.weight: expected shape {shape}, got {w.shape}")
    return w


def _bias(weights, lid, n, use: bool) -> np.ndarray | None:
    if not use:
        return None
    b = weights.get(f"{lid}.bias")
    return np.zeros(n, np.float32) if b is None else b
