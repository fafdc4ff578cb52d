"""Run a workload graph on a batch: every op in NumPy, every static-weight product through a
caller-supplied `matmul`, so the same code gives the float reference and the analog run.

Convolutions are lowered with im2col (rows = batch x output pixels, columns in C, kh, kw order)
exactly as `ir.matrices` lowers their weights; LSTMs do one product per time step on
[x_t, h_{t-1}]. `digital` is applied to the output of every op that a digital unit computes
(the LDPU's bias/activation after an analog layer included), e.g. FP16 rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from archsim.blas import one_blas_thread
from archsim.errors import WorkloadError
from archsim.kernels.fp16 import round_fp16
from archsim.workload import ir

MatmulFn = Callable[[ir.Op, int, np.ndarray], np.ndarray]
"""(op, group, x of shape (rows, K)) -> (rows, N)."""


def float_matmul(op: ir.Op, group: int, x: np.ndarray) -> np.ndarray:
    """The exact product with the op's lowered matrix."""
    return x @ ir.matrices(op)[group]


def fp16_round(x: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Round to the nearest FP16 value (the LDPU/GDPU arithmetic of HERMES), kept as float32."""
    return round_fp16(x, in_place)


def real_dtype(x: np.ndarray) -> type:
    """float64 for float64 data (gradient checks in archsim.train), else float32."""
    return np.float64 if x.dtype == np.float64 else np.float32


def _creates_values(op: ir.Op) -> bool:
    """False for ops whose outputs are some of their inputs' values (moves, max, ReLU): on
    rounded inputs they need no rounding of their own."""
    if isinstance(op, ir.Reshape | ir.Transpose | ir.Concat | ir.SliceLast | ir.Slice | ir.Take):
        return False
    if isinstance(op, ir.Binary):
        return op.fn not in ("max", "min")
    if isinstance(op, ir.Pool | ir.GlobalPool):
        return op.fn != "max"
    if isinstance(op, ir.Act):
        return op.fn not in ("relu", "identity")
    return True


@one_blas_thread
def run(
    workload: ir.Workload,
    inputs: np.ndarray | dict[str, np.ndarray],
    matmul: MatmulFn = float_matmul,
    *,
    digital: Callable[[np.ndarray], np.ndarray] | None = None,
    keep: bool = False,
) -> dict[str, np.ndarray]:
    """Run `workload` on a batch.

    Args:
        workload: the graph.
        inputs: the batch for the single input, or {input name: batch}; arrays (B, *shape).
        matmul: product used by every static-weight op.
        digital: `digital(y, in_place)` rounds the output of a digitally computed op to the
            digital units' precision (None = exact float32); ops that only move or select
            already rounded values are skipped, and `in_place` is set when y owns its memory.
        keep: return every tensor, not only the outputs.

    Returns:
        {tensor name: (B, *shape) float32 array}.
    """
    batches = input_batches(workload, inputs)
    consumers = {n: workload.graph.out_degree(n) for n in workload.graph}
    values: dict[str, np.ndarray] = {}
    for op in workload.ops():
        if isinstance(op, ir.Input):
            values[op.name] = batches[op.name]
            continue
        args = [values[s] for s in op.inputs]
        y = forward_op(op, args, matmul)
        if not np.isfinite(y).all():
            raise WorkloadError(
                f"{workload.name}: op {op.name!r} ({type(op).__name__}) gives "
                "non-finite values (nan or inf) on these inputs (outside its "
                "domain, or overflow); archsim computes on finite numbers "
                "only"
            )
        if digital is not None and (_creates_values(op) or _reads_input(workload, op)):
            fresh = not any(np.may_share_memory(y, a) for a in args)
            y = digital(y, in_place=fresh)
        values[op.name] = y
        if not keep:
            for s in op.inputs:
                consumers[s] -= 1
                if consumers[s] == 0 and s not in workload.outputs:
                    del values[s]
    if keep:
        return values
    return {name: values[name] for name in workload.outputs}


def input_batches(
    workload: ir.Workload, inputs: np.ndarray | dict[str, np.ndarray], dtype: type = np.float32
) -> dict[str, np.ndarray]:
    """{input name: (B, *shape) array of `dtype`}, checked for shape and finite values.

    Args:
        workload: the graph.
        inputs: the batch for the single input, or {input name: batch}.
        dtype: float32 (archsim's compute type) or float64 (gradient checks).

    Raises:
        WorkloadError: a missing input, a wrong per-sample shape or a non-finite value.
    """
    if not isinstance(inputs, dict):
        if len(workload.inputs) != 1:
            raise WorkloadError(f"{workload.name}: give a dict for its inputs {workload.inputs}")
        inputs = {workload.inputs[0]: inputs}
    batches = {}
    for op in workload.ops():
        if not isinstance(op, ir.Input):
            continue
        if op.name not in inputs:
            raise WorkloadError(f"{workload.name}: no data for input {op.name!r}")
        x = np.asarray(inputs[op.name], dtype=dtype)
        if x.shape[1:] != op.shape:
            want = ", ".join(map(str, op.shape))
            raise WorkloadError(
                f"{workload.name}: input {op.name!r} expects (B, {want}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise WorkloadError(
                f"{workload.name}: input {op.name!r} holds non-finite "
                "values (nan or inf); archsim computes on finite numbers "
                "only"
            )
        batches[op.name] = x
    return batches


def _reads_input(workload: ir.Workload, op: ir.Op) -> bool:
    """Reads a network input directly (whose values were never rounded)."""
    return any(isinstance(workload.op(s), ir.Input) for s in op.inputs)


def im2col(x: np.ndarray, op: ir.Conv2d, group: int = 0) -> np.ndarray:
    """(B, C, H, W) -> (B * Ho * Wo, C/groups * kh * kw) patches of one convolution group."""
    c_in = x.shape[1] // op.groups
    x = x[:, group * c_in : (group + 1) * c_in]
    pt, pl, pb, pr = op.pads
    if any(op.pads):
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    kh, kw = op.kernel
    dh, dw = op.dilation
    win = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, :: op.stride[0], :: op.stride[1], ::dh, ::dw]
    _, ho, wo = op.shape
    win = win[:, :, :ho, :wo]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(-1, c_in * kh * kw)


def forward_op(op: ir.Op, args: list[np.ndarray], matmul: MatmulFn) -> np.ndarray:
    """One op's output from its input arrays (batch first); `matmul` does static products."""
    fn = _FORWARD.get(type(op))
    if fn is None:
        raise WorkloadError(f"op {op.name!r}: no forward rule for {type(op).__name__}")
    return fn(op, args, matmul)


def _conv(op: ir.Conv2d, args, matmul) -> np.ndarray:
    x = args[0]
    b = x.shape[0]
    c_out, ho, wo = op.shape
    per_group = c_out // op.groups
    out = np.empty((b, c_out, ho, wo), dtype=real_dtype(x))
    for g in range(op.groups):
        y = matmul(op, g, im2col(x, op, g)).reshape(b, ho, wo, per_group).transpose(0, 3, 1, 2)
        part = out[:, g * per_group : (g + 1) * per_group]
        if op.bias is None:
            part[...] = y
        else:  # bias add and NHWC -> NCHW in one pass
            np.add(y, op.bias[g * per_group : (g + 1) * per_group, None, None], out=part)
    return out


def _linear(op: ir.Linear, args, matmul) -> np.ndarray:
    x = args[0]
    y = matmul(op, 0, x.reshape(-1, x.shape[-1]))
    if op.bias is not None:
        y = y + op.bias
    return y.reshape(x.shape[0], *op.shape)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written with tanh so it never overflows."""
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _lstm(op: ir.Lstm, args, matmul) -> np.ndarray:
    x = args[0]
    b, steps, _ = x.shape
    hid = op.hidden
    h = np.zeros((b, hid), dtype=real_dtype(x))
    c = np.zeros((b, hid), dtype=real_dtype(x))
    out = np.empty((b, steps, hid), dtype=real_dtype(x))
    bias = op.bias if op.bias is not None else 0.0
    for t in range(steps):
        z = matmul(op, 0, np.concatenate([x[:, t], h], axis=1)) + bias
        i, o, f, g = (z[:, k * hid : (k + 1) * hid] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out[:, t] = h
    return out


def erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: keeps scipy out of the dependencies
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return (s * (1.0 - poly * np.exp(-a * a))).astype(real_dtype(x))


def _act(op: ir.Act, args, matmul) -> np.ndarray:
    x = args[0]
    if op.fn == "relu":
        return np.maximum(x, 0)
    if op.fn == "sigmoid":
        return sigmoid(x)
    if op.fn == "tanh":
        return np.tanh(x)
    if op.fn == "gelu":
        return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))
    if op.fn == "gelu_tanh":
        inner = np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x * x * x)
        return (0.5 * x * (1.0 + np.tanh(inner))).astype(real_dtype(x))
    if op.fn == "erf":
        return erf(x)
    if op.fn == "fp16":
        return round_fp16(x)
    if op.fn == "clip":
        return np.clip(x, np.float32(op.alpha), np.float32(op.beta))
    if op.fn == "hard_sigmoid":
        return np.clip(np.float32(op.alpha) * x + np.float32(op.beta), 0, 1).astype(np.float32)
    if op.fn == "hard_swish":
        return (x * np.clip(x / np.float32(6) + np.float32(0.5), 0, 1)).astype(np.float32)
    if op.fn in ("elu", "selu", "celu"):
        a = np.float32(op.alpha)
        neg = a * np.expm1(x / a if op.fn == "celu" else x)
        y = np.where(x > 0, x, neg)
        return (y * np.float32(op.beta) if op.fn == "selu" else y).astype(np.float32)
    if op.fn == "thresholded_relu":
        return np.where(x > np.float32(op.alpha), x, np.float32(0)).astype(np.float32)
    if op.fn in _UNARY:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _UNARY[op.fn](x).astype(np.float32)
    if op.fn == "leaky_relu":
        return np.where(x >= 0, x, np.float32(op.alpha) * x)
    return x


_UNARY = {
    "sqrt": np.sqrt,
    "exp": np.exp,
    "abs": np.abs,
    "neg": np.negative,
    "reciprocal": np.reciprocal,
    "log": np.log,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(np.float32(0), x),
}


def _prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x < 0, slope * x, x)


_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
    "pow": np.power,
    "prelu": _prelu,
}


def _binary(op: ir.Binary, args, matmul) -> np.ndarray:
    f = _BINARY[op.fn]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if op.const is None:
            a, b = args
            y = f(align(a, op.shape), align(b, op.shape))
        else:
            a = args[0]
            y = f(op.const, a) if op.const_first else f(a, op.const)
    return np.broadcast_to(y, (y.shape[0], *op.shape)).astype(real_dtype(args[0]))


def align(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Insert singleton axes after the batch axis so per-sample shapes broadcast."""
    missing = len(shape) - (x.ndim - 1)
    return x.reshape(x.shape[0], *((1,) * missing), *x.shape[1:]) if missing > 0 else x


def _affine(op: ir.Affine, args, matmul) -> np.ndarray:
    x = args[0]
    view = op.view(x.ndim)
    return x * op.scale.reshape(view) + op.shift.reshape(view)


def _pool(op: ir.Pool, args, matmul) -> np.ndarray:
    x = args[0]
    pt, pl, pb, pr = op.pads
    kh, kw = op.kernel
    _, ho, wo = op.shape
    if op.fn == "max":
        # elementwise max over the kernel offsets: one strided slice each (fast in NumPy)
        xp = (
            np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
            if any(op.pads)
            else x
        )
        sh, sw = op.stride
        out = None
        for i in range(kh):
            for j in range(kw):
                part = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
                out = part.copy() if out is None else np.maximum(out, part, out=out)
        return out
    pad = ((0, 0), (0, 0), (pt, pb), (pl, pr))
    xp = np.pad(x, pad) if any(op.pads) else x
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, :: op.stride[0], :: op.stride[1]]
    total = win[:, :, :ho, :wo].sum(axis=(4, 5))
    return (total / pool_count(op, x.shape[2:])).astype(real_dtype(x))


def pool_count(op: ir.Pool, hw: tuple[int, int]) -> float | np.ndarray:
    """Divisor of an average pool over an (H, W) input: kh * kw, or per output pixel (Ho, Wo)
    the number of window elements inside the unpadded input."""
    kh, kw = op.kernel
    if op.count_include_pad or not any(op.pads):
        return kh * kw
    pt, pl, pb, pr = op.pads
    _, ho, wo = op.shape
    ones = np.pad(np.ones(hw, np.float32), ((pt, pb), (pl, pr)))
    count = sliding_window_view(ones, (kh, kw))[:: op.stride[0], :: op.stride[1]][:ho, :wo]
    return count.sum(axis=(2, 3))


def _global_pool(op: ir.GlobalPool, args, matmul) -> np.ndarray:
    x = args[0]
    axes = tuple(range(2, x.ndim))
    y = x.mean(axis=axes, keepdims=True) if op.fn == "avg" else x.max(axis=axes, keepdims=True)
    return y.astype(real_dtype(x))


def _softmax(op: ir.Softmax, args, matmul) -> np.ndarray:
    x = args[0]
    shifted = x - x.max(axis=op.axis + 1, keepdims=True)
    e = np.exp(shifted)
    if op.log:
        return (shifted - np.log(e.sum(axis=op.axis + 1, keepdims=True))).astype(real_dtype(x))
    return (e / e.sum(axis=op.axis + 1, keepdims=True)).astype(real_dtype(x))


def _layernorm(op: ir.LayerNorm, args, matmul) -> np.ndarray:
    x = args[0]
    axes = tuple(range(op.axis + 1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.float32(op.eps))
    if op.gamma is not None:
        y = y * op.gamma
    if op.beta is not None:
        y = y + op.beta
    return y.astype(real_dtype(x))


def _slice(op: ir.Slice, args, matmul) -> np.ndarray:
    return args[0][(slice(None), *(slice(*s) for s in op.slices))]


def _embedding(op: ir.Embedding, args, matmul) -> np.ndarray:
    idx = args[0]
    n = op.table.shape[op.axis]
    if idx.size and (idx.min() < -n or idx.max() >= n or np.any(idx != np.round(idx))):
        raise WorkloadError(f"op {op.name!r}: indices must be integers in -{n}..{n - 1}")
    y = np.take(op.table, idx.astype(np.int64), axis=op.axis)
    return np.ascontiguousarray(np.moveaxis(y, op.axis, 0))


def _pad(op: ir.Pad, args, matmul) -> np.ndarray:
    pads = ((0, 0), *op.pads)
    if op.mode == "constant":
        return np.pad(args[0], pads, constant_values=np.float32(op.value))
    return np.pad(args[0], pads, mode=op.mode)


_REDUCE = {"mean": np.mean, "sum": np.sum, "max": np.max, "min": np.min}


def _reduce(op: ir.Reduce, args, matmul) -> np.ndarray:
    axes = tuple(a + 1 for a in op.axes)
    return _REDUCE[op.fn](args[0], axis=axes, keepdims=op.keepdims).astype(real_dtype(args[0]))


def _lrn(op: ir.Lrn, args, matmul) -> np.ndarray:
    x = args[0]
    sq = np.square(x, dtype=np.float32)
    lo, hi = (op.size - 1) // 2, op.size - 1 - (op.size - 1) // 2
    pad = [(0, 0)] * x.ndim
    pad[1] = (lo, hi)
    csum = np.cumsum(np.pad(sq, pad), axis=1, dtype=np.float64)
    csum = np.concatenate([np.zeros_like(csum[:, :1]), csum], axis=1)
    window = csum[:, op.size :] - csum[:, : -op.size]
    scale = (op.bias + op.alpha / op.size * window) ** op.beta
    return (x / scale).astype(np.float32)


_FORWARD = {
    ir.Conv2d: _conv,
    ir.Linear: _linear,
    ir.Lstm: _lstm,
    ir.Act: _act,
    ir.Binary: _binary,
    ir.Affine: _affine,
    ir.Pool: _pool,
    ir.GlobalPool: _global_pool,
    ir.Reshape: lambda op, a, m: a[0].reshape(a[0].shape[0], *op.shape),
    ir.Transpose: lambda op, a, m: a[0].transpose(0, *(p + 1 for p in op.perm)),
    ir.Concat: lambda op, a, m: np.concatenate(a, axis=op.axis + 1),
    ir.Softmax: _softmax,
    ir.LayerNorm: _layernorm,
    ir.MatMul: lambda op, a, m: np.matmul(align(a[0], op.shape), align(a[1], op.shape)).astype(
        real_dtype(a[0])
    ),
    ir.SliceLast: lambda op, a, m: np.take(a[0], -1, axis=op.axis + 1),
    ir.Slice: _slice,
    ir.Take: lambda op, a, m: np.take(a[0], op.indices, axis=op.axis + 1),
    ir.Embedding: _embedding,
    ir.Pad: _pad,
    ir.Reduce: _reduce,
    ir.Lrn: _lrn,
}
