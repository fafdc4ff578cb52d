"""Forward and backward rules of the IR ops for reverse-mode training, one pair per op kind.

Every forward rule is the inference executor's (`archsim.workload.execute.forward_op`), so a
trained network computes exactly what inference computes; analog ops route their products
through an `AnalogProduct` and keep its contexts. A backward rule gets the op, its input
arrays, its output, that context and the gradient of the output (all batch first), and
returns the gradients of the inputs (None where `need` is False) and of the op's parameters
(keys as in `archsim.train.params`).

The rules of the analog ops (Conv2d, Linear, Lstm) live in `archsim.train.analog_rules`.

Simplifications: max pooling passes the gradient to the first maximum of a window (row-major),
as a global max does; no rules for comparisons (Binary max/min/pow/prelu), Lrn, non-constant
Pad, Reduce max/min, or the activations outside `ACT_FNS`: training refuses those ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from archsim.train.analog_rules import analog_forward, conv_backward, linear_backward, lstm_backward
from archsim.train.params import Params
from archsim.workload import execute, ir

Forward = Callable[..., tuple[np.ndarray, object]]
"""(op, args, product, params) -> (output, context for the backward)."""
Backward = Callable[..., tuple[list, Params]]
"""(op, args, y, ctx, dy, need, product) -> ([d arg or None], {param key: grad})."""


class Rule(NamedTuple):
    forward: Forward
    backward: Backward


ACT_FNS = ("relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "identity", "leaky_relu")
"""Activations with a backward rule."""
BINARY_FNS = ("add", "sub", "mul", "div")
"""Element-wise ops with a backward rule."""


def refusal(op: ir.Op) -> str | None:
    """Why `op` cannot be trained through, or None when it has a backward rule."""
    kind = type(op).__name__
    if type(op) not in RULES:
        return f"{kind} has no backward rule"
    for attr, allowed in ((ir.Act, ACT_FNS), (ir.Binary, BINARY_FNS)):
        if isinstance(op, attr) and op.fn not in allowed:
            return f"{kind} {op.fn!r} has no backward rule (supported: {', '.join(allowed)})"
    if isinstance(op, ir.Pad) and op.mode != "constant":
        return f"Pad mode {op.mode!r} has no backward rule (supported: constant)"
    if isinstance(op, ir.Reduce) and op.fn not in ("mean", "sum"):
        return f"Reduce {op.fn!r} has no backward rule (supported: mean, sum)"
    return None


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `g` over the axes that broadcasting added to or stretched from `shape`."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _plain_forward(op, args, product, params):
    return execute.forward_op(op, args, execute.float_matmul), None


_SQRT_HALF = float(np.sqrt(0.5))
_SQRT_2_PI = float(np.sqrt(2.0 / np.pi))
_GELU_CUBIC = 0.044715


def _act_backward(op: ir.Act, args, y, ctx, dy, need, product):
    x = args[0]
    if op.fn == "relu":
        d = dy * (x > 0)
    elif op.fn == "sigmoid":
        d = dy * y * (1 - y)
    elif op.fn == "tanh":
        d = dy * (1 - y * y)
    elif op.fn == "gelu":
        # d/dx x Phi(x) = Phi(x) + x phi(x)
        cdf = 0.5 * (1 + execute.erf(x * _SQRT_HALF))
        d = dy * (cdf + x * np.exp(-0.5 * x * x) * (_SQRT_2_PI * 0.5))
    elif op.fn == "gelu_tanh":
        t = np.tanh(_SQRT_2_PI * (x + _GELU_CUBIC * x * x * x))
        slope = _SQRT_2_PI * (1 + 3 * _GELU_CUBIC * x * x)
        d = dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * slope)
    elif op.fn == "leaky_relu":
        d = dy * np.where(x >= 0, 1, op.alpha).astype(dy.dtype)
    else:  # identity
        d = dy
    return [d], {}


def _binary_backward(op: ir.Binary, args, y, ctx, dy, need, product):
    if op.const is None:
        a, b = (execute.align(v, op.shape) for v in args)
    else:
        a, b = (op.const, args[0]) if op.const_first else (args[0], op.const)
    if op.fn in ("add", "sub"):
        da, db = dy, (-dy if op.fn == "sub" else dy)
    elif op.fn == "mul":
        da, db = dy * b, dy * a
    else:  # div
        da = dy / b
        db = -da * a / b
    if op.const is not None:
        d = db if op.const_first else da
        return [unbroadcast(d, args[0].shape)], {}
    return [
        unbroadcast(d, execute.align(v, op.shape).shape).reshape(v.shape) if n else None
        for d, v, n in zip((da, db), args, need, strict=True)
    ], {}


def _affine_backward(op: ir.Affine, args, y, ctx, dy, need, product):
    x = args[0]
    view = op.view(x.ndim)
    axes = tuple(i for i, n in enumerate(view) if n == 1)
    grads = {f"{op.name}.scale": (dy * x).sum(axis=axes), f"{op.name}.shift": dy.sum(axis=axes)}
    return [dy * op.scale.reshape(view)], grads


def _offsets(op: ir.Pool):
    """(rows, cols) per kernel offset: the strided slices of the padded input that the
    offset's element of every window reads."""
    _, ho, wo = op.shape
    sh, sw = op.stride
    for i in range(op.kernel[0]):
        for j in range(op.kernel[1]):
            yield slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def _pool_backward(op: ir.Pool, args, y, ctx, dy, need, product):
    x = args[0]
    pt, pl, pb, pr = op.pads
    padded = (*x.shape[:2], x.shape[2] + pt + pb, x.shape[3] + pl + pr)
    _, ho, wo = op.shape
    # windows that tile the padded input write every element once: no zeroing, no adds
    tiles = op.stride == op.kernel and padded[2:] == (ho * op.kernel[0], wo * op.kernel[1])
    dxp = np.empty(padded, dy.dtype) if tiles else np.zeros(padded, dy.dtype)
    if op.fn == "max":
        pad = ((0, 0), (0, 0), (pt, pb), (pl, pr))
        xp = np.pad(x, pad, constant_values=-np.inf) if any(op.pads) else x
        taken = None
        for rows, cols in _offsets(op):
            hit = xp[:, :, rows, cols] == y
            if taken is None:
                taken = hit
            else:
                np.greater(hit, taken, out=hit)  # a maximum not taken by an earlier offset
                taken |= hit
            if tiles:
                np.multiply(dy, hit, out=dxp[:, :, rows, cols])
            else:
                dxp[:, :, rows, cols] += dy * hit
    else:
        share = dy / execute.pool_count(op, x.shape[2:])
        for rows, cols in _offsets(op):
            if tiles:
                dxp[:, :, rows, cols] = share
            else:
                dxp[:, :, rows, cols] += share
    return [dxp[:, :, pt : pt + x.shape[2], pl : pl + x.shape[3]]], {}


def _global_pool_backward(op: ir.GlobalPool, args, y, ctx, dy, need, product):
    x = args[0]
    b, c = x.shape[:2]
    if op.fn == "avg":
        n = x[0, 0].size
        return [np.broadcast_to(dy / n, x.shape).copy()], {}
    flat = np.zeros((b, c, x[0, 0].size), dy.dtype)
    first = x.reshape(b, c, -1).argmax(axis=2)[..., None]
    np.put_along_axis(flat, first, dy.reshape(b, c, 1), axis=2)
    return [flat.reshape(x.shape)], {}


def _softmax_backward(op: ir.Softmax, args, y, ctx, dy, need, product):
    ax = op.axis + 1
    if op.log:
        return [dy - np.exp(y) * dy.sum(axis=ax, keepdims=True)], {}
    return [y * (dy - (dy * y).sum(axis=ax, keepdims=True))], {}


def _layernorm_backward(op: ir.LayerNorm, args, y, ctx, dy, need, product):
    x = args[0]
    axes = tuple(range(op.axis + 1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + op.eps)
    xhat = (x - mean) * inv
    dxhat = dy if op.gamma is None else dy * op.gamma
    dx = inv * (
        dxhat
        - dxhat.mean(axis=axes, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
    )
    grads = {}
    if op.gamma is not None:
        grads[f"{op.name}.gamma"] = unbroadcast(dy * xhat, op.gamma.shape)
    if op.beta is not None:
        grads[f"{op.name}.beta"] = unbroadcast(dy, op.beta.shape)
    return [dx], grads


def _matmul_backward(op: ir.MatMul, args, y, ctx, dy, need, product):
    a, b = (execute.align(v, op.shape) for v in args)
    da = np.matmul(dy, b.swapaxes(-1, -2)) if need[0] else None
    db = np.matmul(a.swapaxes(-1, -2), dy) if need[1] else None
    return [
        None if d is None else unbroadcast(d, al.shape).reshape(v.shape)
        for d, al, v in zip((da, db), (a, b), args, strict=True)
    ], {}


def _scatter_backward(index: Callable[[ir.Op], tuple]) -> Backward:
    """Backward of an op that picks part of its input: zeros, with dy put where it came from."""

    def backward(op, args, y, ctx, dy, need, product):
        dx = np.zeros(args[0].shape, dy.dtype)
        dx[(slice(None), *index(op))] = dy
        return [dx], {}

    return backward


def _take_backward(op: ir.Take, args, y, ctx, dy, need, product):
    dx = np.zeros(args[0].shape, dy.dtype)
    np.add.at(np.moveaxis(dx, op.axis + 1, 0), op.indices, np.moveaxis(dy, op.axis + 1, 0))
    return [dx], {}


def _embedding_backward(op: ir.Embedding, args, y, ctx, dy, need, product):
    idx = args[0].astype(np.int64)
    table = np.zeros(op.table.shape, dy.dtype)
    # y = moveaxis(take(table, idx, axis), axis, 0): the index axes sit at axis.. in take's layout
    raw = np.moveaxis(dy, 0, op.axis)
    spots = list(range(op.axis, op.axis + idx.ndim))
    np.add.at(np.moveaxis(table, op.axis, 0), idx, np.moveaxis(raw, spots, range(idx.ndim)))
    return [None], {f"{op.name}.table": table}


def _pad_backward(op: ir.Pad, args, y, ctx, dy, need, product):
    inner = (slice(lo, lo + d) for (lo, _), d in zip(op.pads, args[0].shape[1:], strict=True))
    return [dy[(slice(None), *inner)]], {}


def _reduce_backward(op: ir.Reduce, args, y, ctx, dy, need, product):
    x = args[0]
    axes = tuple(a + 1 for a in op.axes)
    d = dy if op.keepdims else np.expand_dims(dy, axes)
    if op.fn == "mean":
        d = d / int(np.prod([x.shape[a] for a in axes]))
    return [np.broadcast_to(d, x.shape).copy()], {}


def _concat_backward(op: ir.Concat, args, y, ctx, dy, need, product):
    cuts = np.cumsum([a.shape[op.axis + 1] for a in args])[:-1]
    return np.split(dy, cuts, axis=op.axis + 1), {}


def _transpose_backward(op: ir.Transpose, args, y, ctx, dy, need, product):
    inverse = np.argsort(op.perm)
    return [dy.transpose(0, *(int(p) + 1 for p in inverse))], {}


RULES: dict[type, Rule] = {
    ir.Conv2d: Rule(analog_forward, conv_backward),
    ir.Linear: Rule(analog_forward, linear_backward),
    ir.Lstm: Rule(analog_forward, lstm_backward),
    ir.Act: Rule(_plain_forward, _act_backward),
    ir.Binary: Rule(_plain_forward, _binary_backward),
    ir.Affine: Rule(_plain_forward, _affine_backward),
    ir.Pool: Rule(_plain_forward, _pool_backward),
    ir.GlobalPool: Rule(_plain_forward, _global_pool_backward),
    ir.Reshape: Rule(_plain_forward, lambda op, a, y, c, dy, n, p: ([dy.reshape(a[0].shape)], {})),
    ir.Transpose: Rule(_plain_forward, _transpose_backward),
    ir.Concat: Rule(_plain_forward, _concat_backward),
    ir.Softmax: Rule(_plain_forward, _softmax_backward),
    ir.LayerNorm: Rule(_plain_forward, _layernorm_backward),
    ir.MatMul: Rule(_plain_forward, _matmul_backward),
    ir.SliceLast: Rule(
        _plain_forward, _scatter_backward(lambda op: (*(slice(None),) * op.axis, -1))
    ),
    ir.Slice: Rule(
        _plain_forward, _scatter_backward(lambda op: tuple(slice(*s) for s in op.slices))
    ),
    ir.Take: Rule(_plain_forward, _take_backward),
    ir.Embedding: Rule(_plain_forward, _embedding_backward),
    ir.Pad: Rule(_plain_forward, _pad_backward),
    ir.Reduce: Rule(_plain_forward, _reduce_backward),
}
"""Op type -> its forward and backward rule."""
