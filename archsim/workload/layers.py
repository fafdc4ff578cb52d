"""Shape-checked constructors of workload ops: the one place where output shapes are computed.

The zoo builders, the ONNX importer and the TOML layer lists all add ops through these, so every
op in a graph has a checked shape and a clear error naming the op when something does not fit.
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import ir
from archsim.workload.ir import GraphBuilder


def _f32(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def _fail(g: GraphBuilder, name: str, message: str) -> WorkloadError:
    return WorkloadError(f"{g.name}: op {name!r}: {message}")


def input_(g: GraphBuilder, name: str, shape: tuple[int, ...], batch_axis: int = 0) -> str:
    return g.add(ir.Input(name, (), tuple(int(d) for d in shape), int(batch_axis)))


def conv2d(
    g: GraphBuilder,
    name: str,
    x: str,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> str:
    """Conv2d on an NCHW input; weight (C_out, C_in / groups, kh, kw)."""
    shape = g.shape(x)
    if len(shape) != 3:
        raise _fail(g, name, f"conv expects a (C, H, W) input, got {shape}")
    c, h, w = shape
    if weight.ndim != 4 or weight.shape[1] * groups != c or weight.shape[0] % groups:
        raise _fail(g, name, f"weight {weight.shape} does not fit input {shape}, groups {groups}")
    kh, kw = weight.shape[2:]
    ho = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise _fail(g, name, f"kernel {kh}x{kw} does not fit input {h}x{w}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise _fail(g, name, f"bias {bias.shape} does not match {weight.shape[0]} channels")
    return g.add(
        ir.Conv2d(
            name,
            (x,),
            (int(weight.shape[0]), int(ho), int(wo)),
            _f32(weight),
            _f32(bias),
            tuple(stride),
            tuple(pads),
            tuple(dilation),
            int(groups),
        )
    )


def linear(g: GraphBuilder, name: str, x: str, weight_kn: np.ndarray, bias=None) -> str:
    """y = x @ weight_kn + bias over the last axis; weight_kn is (in, out)."""
    shape = g.shape(x)
    if weight_kn.ndim != 2 or shape[-1] != weight_kn.shape[0]:
        raise _fail(g, name, f"weight {weight_kn.shape} (in, out) does not fit input {shape}")
    if bias is not None and np.shape(bias) != (weight_kn.shape[1],):
        raise _fail(g, name, f"bias {np.shape(bias)} does not match {weight_kn.shape[1]} outputs")
    out = (*shape[:-1], int(weight_kn.shape[1]))
    return g.add(ir.Linear(name, (x,), out, _f32(weight_kn), _f32(bias)))


def lstm(g: GraphBuilder, name: str, x: str, w_ih, w_hh, b_ih=None, b_hh=None) -> str:
    """LSTM (ONNX gate order i, o, f, c) over (seq, in); w_ih (4H, in), w_hh (4H, H)."""
    shape = g.shape(x)
    hidden = w_hh.shape[1]
    if (
        len(shape) != 2
        or w_ih.shape != (4 * hidden, shape[1])
        or w_hh.shape != (4 * hidden, hidden)
    ):
        raise _fail(g, name, f"weights {w_ih.shape}, {w_hh.shape} do not fit input {shape}")
    bias = np.zeros(4 * hidden)
    for b in (b_ih, b_hh):
        if b is not None:
            bias = bias + np.asarray(b).reshape(4 * hidden)
    weight = np.concatenate([np.asarray(w_ih).T, np.asarray(w_hh).T], axis=0)
    return g.add(
        ir.Lstm(name, (x,), (shape[0], int(hidden)), _f32(weight), _f32(bias), int(hidden))
    )


def act(g: GraphBuilder, name: str, x: str, fn: str, alpha: float = 0.01, beta: float = 0.0) -> str:
    if fn not in get_args(ir.Activation):
        raise _fail(g, name, f"unknown activation {fn!r}")
    return g.add(ir.Act(name, (x,), g.shape(x), fn, float(alpha), float(beta)))


def binary(
    g: GraphBuilder,
    name: str,
    fn: str,
    a: str,
    b: str | None = None,
    const=None,
    const_first: bool = False,
) -> str:
    """a (op) b for two tensors, or a (op) const with the constant broadcast per sample."""
    if fn not in ("add", "sub", "mul", "div", "max", "min", "pow", "prelu"):
        raise _fail(g, name, f"unknown element-wise op {fn!r}")
    if b is not None:
        try:
            shape = np.broadcast_shapes(g.shape(a), g.shape(b))
        except ValueError:
            raise _fail(g, name, f"cannot broadcast {g.shape(a)} with {g.shape(b)}") from None
        return g.add(ir.Binary(name, (a, b), tuple(shape), fn))
    c = np.asarray(const, dtype=np.float32)
    try:
        shape = np.broadcast_shapes(g.shape(a), c.shape)
    except ValueError:
        raise _fail(g, name, f"cannot broadcast {g.shape(a)} with constant {c.shape}") from None
    if tuple(shape) != g.shape(a):
        raise _fail(g, name, f"constant {c.shape} would grow the per-sample shape {g.shape(a)}")
    return g.add(ir.Binary(name, (a,), tuple(shape), fn, c, const_first))


def affine(g: GraphBuilder, name: str, x: str, scale, shift, axis: int = 0) -> str:
    """Per-channel scale and shift along per-sample axis `axis` (0: channels; -1: features)."""
    if axis not in (0, -1):
        raise _fail(g, name, f"affine axis must be 0 or -1, got {axis}")
    c = g.shape(x)[axis]
    if np.shape(scale) != (c,) or np.shape(shift) != (c,):
        raise _fail(g, name, f"scale/shift must have {c} channels")
    return g.add(ir.Affine(name, (x,), g.shape(x), _f32(scale), _f32(shift), axis))


def pool(
    g: GraphBuilder,
    name: str,
    x: str,
    fn: str,
    kernel,
    stride=None,
    pads=(0, 0, 0, 0),
    count_include_pad: bool = False,
) -> str:
    shape = g.shape(x)
    if len(shape) != 3:
        raise _fail(g, name, f"pooling expects a (C, H, W) input, got {shape}")
    stride = tuple(stride or kernel)
    c, h, w = shape
    ho = (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
    wo = (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise _fail(g, name, f"pool {kernel} does not fit input {h}x{w}")
    return g.add(
        ir.Pool(name, (x,), (c, ho, wo), fn, tuple(kernel), stride, tuple(pads), count_include_pad)
    )


def global_pool(g: GraphBuilder, name: str, x: str, fn: str = "avg") -> str:
    shape = g.shape(x)
    if len(shape) < 2:
        raise _fail(g, name, f"global pooling expects (C, ...) spatial input, got {shape}")
    return g.add(ir.GlobalPool(name, (x,), (shape[0],) + (1,) * (len(shape) - 1), fn))


def reshape(g: GraphBuilder, name: str, x: str, shape) -> str:
    """Reshape per sample; one entry may be -1."""
    size = int(np.prod(g.shape(x)))
    target = [int(d) for d in shape]
    if target.count(-1) > 1:
        raise _fail(g, name, f"at most one -1 in reshape target {target}")
    if -1 in target:
        rest = int(np.prod([d for d in target if d != -1])) or 1
        target[target.index(-1)] = size // rest
    if int(np.prod(target)) != size:
        raise _fail(g, name, f"cannot reshape {g.shape(x)} ({size} values) to {tuple(shape)}")
    return g.add(ir.Reshape(name, (x,), tuple(target)))


def flatten(g: GraphBuilder, name: str, x: str) -> str:
    return reshape(g, name, x, (-1,))


def transpose(g: GraphBuilder, name: str, x: str, perm) -> str:
    shape = g.shape(x)
    if sorted(perm) != list(range(len(shape))):
        raise _fail(g, name, f"perm {tuple(perm)} is not a permutation of {len(shape)} axes")
    return g.add(ir.Transpose(name, (x,), tuple(shape[p] for p in perm), tuple(perm)))


def concat(g: GraphBuilder, name: str, xs: list[str], axis: int) -> str:
    shapes = [g.shape(x) for x in xs]
    nd = len(shapes[0])
    ax = axis % nd if -nd <= axis < nd else None
    if ax is None or any(len(s) != nd for s in shapes):
        raise _fail(g, name, f"cannot concatenate {shapes} on axis {axis}")
    for s in shapes:
        if s[:ax] + s[ax + 1 :] != shapes[0][:ax] + shapes[0][ax + 1 :]:
            raise _fail(g, name, f"cannot concatenate {shapes} on axis {axis}")
    out = list(shapes[0])
    out[ax] = sum(s[ax] for s in shapes)
    return g.add(ir.Concat(name, tuple(xs), tuple(out), ax))


def softmax(g: GraphBuilder, name: str, x: str, axis: int = -1, log: bool = False) -> str:
    nd = len(g.shape(x))
    if not -nd <= axis < nd:
        raise _fail(g, name, f"axis {axis} out of range for {g.shape(x)}")
    return g.add(ir.Softmax(name, (x,), g.shape(x), axis % nd, bool(log)))


def layernorm(g: GraphBuilder, name: str, x: str, gamma=None, beta=None, axis=-1, eps=1e-5) -> str:
    shape = g.shape(x)
    nd = len(shape)
    if not -nd <= axis < nd:
        raise _fail(g, name, f"axis {axis} out of range for {shape}")
    norm_shape = shape[axis % nd :]
    for p in (gamma, beta):
        if p is not None and np.broadcast_shapes(np.shape(p), norm_shape) != norm_shape:
            raise _fail(g, name, f"scale/shift {np.shape(p)} do not fit {norm_shape}")
    return g.add(ir.LayerNorm(name, (x,), shape, axis % nd, float(eps), _f32(gamma), _f32(beta)))


def matmul(g: GraphBuilder, name: str, a: str, b: str) -> str:
    """Batched product of two dynamic tensors over their last two axes."""
    sa, sb = g.shape(a), g.shape(b)
    if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-2]:
        raise _fail(g, name, f"cannot multiply {sa} by {sb}")
    try:
        lead = np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise _fail(g, name, f"cannot broadcast {sa} with {sb}") from None
    return g.add(ir.MatMul(name, (a, b), (*lead, sa[-2], sb[-1])))


def slice_last(g: GraphBuilder, name: str, x: str, axis: int = 0) -> str:
    shape = g.shape(x)
    return g.add(ir.SliceLast(name, (x,), shape[:axis] + shape[axis + 1 :], axis))


def slice_(g: GraphBuilder, name: str, x: str, slices) -> str:
    """Python slices (start, stop, step; None for a default) of every per-sample axis."""
    shape = g.shape(x)
    if len(slices) != len(shape):
        raise _fail(g, name, f"{len(slices)} slices for {len(shape)} axes")
    out = tuple(len(range(*slice(*s).indices(d))) for s, d in zip(slices, shape, strict=True))
    sl = tuple(tuple(None if v is None else int(v) for v in s) for s in slices)
    return g.add(ir.Slice(name, (x,), out, sl))


def take(g: GraphBuilder, name: str, x: str, axis: int, indices) -> str:
    """x.take(indices, axis) per sample; indices constant, in -size..size-1."""
    shape = g.shape(x)
    idx = np.asarray(indices, dtype=np.int64)
    if not 0 <= axis < len(shape):
        raise _fail(g, name, f"axis {axis} out of range for {shape}")
    if idx.size and (idx.min() < -shape[axis] or idx.max() >= shape[axis]):
        raise _fail(g, name, f"indices out of range for an axis of size {shape[axis]}")
    out = shape[:axis] + idx.shape + shape[axis + 1 :]
    return g.add(ir.Take(name, (x,), out, axis, idx))


def embedding(g: GraphBuilder, name: str, x: str, table, axis: int = 0) -> str:
    """table.take(x, axis): x holds indices (as floats); per sample
    table.shape[:axis] + x.shape + table.shape[axis + 1:]."""
    t = np.asarray(table, dtype=np.float32)
    if not 0 <= axis < t.ndim:
        raise _fail(g, name, f"axis {axis} out of range for a table of shape {t.shape}")
    out = t.shape[:axis] + g.shape(x) + t.shape[axis + 1 :]
    return g.add(ir.Embedding(name, (x,), tuple(int(d) for d in out), _f32(t), axis))


def pad(g: GraphBuilder, name: str, x: str, pads, mode: str = "constant", value=0.0) -> str:
    """Pad every per-sample axis by (before, after) >= 0."""
    shape = g.shape(x)
    if len(pads) != len(shape) or any(a < 0 or b < 0 for a, b in pads):
        raise _fail(g, name, f"pads {pads} do not fit {shape} (one non-negative pair per axis)")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise _fail(g, name, f"unknown pad mode {mode!r}")
    if mode == "reflect" and any(max(p) >= d for p, d in zip(pads, shape, strict=True) if any(p)):
        raise _fail(g, name, f"reflect pads {pads} must be smaller than the axes {shape}")
    out = tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))
    pp = tuple((int(a), int(b)) for a, b in pads)
    return g.add(ir.Pad(name, (x,), out, pp, mode, float(value)))


def reduce(g: GraphBuilder, name: str, x: str, fn: str, axes, keepdims: bool = True) -> str:
    shape = g.shape(x)
    axes = tuple(sorted({int(a) for a in axes}))
    if fn not in ("mean", "sum", "max", "min") or not axes:
        raise _fail(g, name, f"cannot reduce ({fn}) over axes {axes}")
    if axes[0] < 0 or axes[-1] >= len(shape):
        raise _fail(g, name, f"axes {axes} out of range for {shape}")
    out = tuple(1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes)
    return g.add(ir.Reduce(name, (x,), out, fn, axes, bool(keepdims)))


def lrn(g: GraphBuilder, name: str, x: str, size: int, alpha=1e-4, beta=0.75, bias=1.0) -> str:
    shape = g.shape(x)
    if not shape or size < 1:
        raise _fail(g, name, f"LRN of size {size} needs a (C, ...) input, got {shape}")
    return g.add(ir.Lrn(name, (x,), shape, int(size), float(alpha), float(beta), float(bias)))
