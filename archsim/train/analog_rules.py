"""Forward and backward rules of the analog ops (Conv2d, Linear, Lstm): every static-weight
product goes through an `AnalogProduct` (`archsim.train.grad`), which keeps its own context.

Convolutions are lowered with im2col as in inference (`archsim.workload.execute`, one GEMM per
group); their input gradient is put back by the col2im kernel (`archsim.kernels.windows`).
LSTMs are differentiated through time (BPTT) from the per-step products, gates recomputed.
Signatures as in `archsim.train.rules`.

Simplifications: the input gradient of a product is computed even when a network input feeds
it (only the col2im scatter is skipped).
"""

from __future__ import annotations

import numpy as np

from archsim.kernels import windows
from archsim.train.params import Params, add_grads
from archsim.workload import execute, ir


def analog_forward(op, args, product, params):
    mats = ir.matrices(op)
    ctxs, raw = [], []

    def matmul(_op, group, x):
        y, ctx = product.forward(op, group, x, mats[group], params)
        ctxs.append(ctx)
        if isinstance(op, ir.Lstm):
            raw.append(y)
        return y

    return execute.forward_op(op, args, matmul), (ctxs, raw)


def _bias_grad(op, dy_rows: np.ndarray) -> Params:
    return {} if op.bias is None else {f"{op.name}.bias": dy_rows.sum(axis=0)}


def conv_backward(op: ir.Conv2d, args, y, ctx, dy, need, product):
    x = args[0]
    c_out, _, _ = op.shape
    per_group = c_out // op.groups
    c_in = x.shape[1] // op.groups
    kh, kw = op.kernel
    _, ho, wo = op.shape
    rows = np.ascontiguousarray(dy.transpose(0, 2, 3, 1)).reshape(-1, c_out)
    dw = np.empty(op.weight.shape, dtype=dy.dtype)
    dx = np.zeros(x.shape, dy.dtype) if need[0] else None
    grads: Params = {}
    for g, c in enumerate(ctx[0]):
        part = (
            rows
            if op.groups == 1
            else np.ascontiguousarray(rows[:, g * per_group : (g + 1) * per_group])
        )
        dcols, dwg, pgrads = product.backward(c, part)
        add_grads(grads, pgrads)
        dw[g * per_group : (g + 1) * per_group] = dwg.T.reshape(per_group, c_in, kh, kw)
        if dx is not None:
            geometry = (*op.kernel, *op.stride, *op.dilation, *op.pads[:2], ho, wo)
            windows.col2im(dcols, g * c_in, *geometry, dx)
    grads[f"{op.name}.weight"] = dw
    grads.update(_bias_grad(op, rows))
    return [dx], grads


def linear_backward(op: ir.Linear, args, y, ctx, dy, need, product):
    x = args[0]
    rows = dy.reshape(-1, dy.shape[-1])
    dx, dw, grads = product.backward(ctx[0][0], rows)
    grads = {**grads, f"{op.name}.weight": dw, **_bias_grad(op, rows)}
    return [dx.reshape(x.shape)], grads


def lstm_backward(op: ir.Lstm, args, y, ctx, dy, need, product):
    """BPTT. Per step, z = [x_t, h_{t-1}] W + b split into gates i, o, f, c (ONNX order):
    c_t = s(f) c_{t-1} + s(i) tanh(g), h_t = s(o) tanh(c_t), s the logistic function."""
    ctxs, raw = ctx
    x = args[0]
    n_in, hid = x.shape[2], op.hidden
    bias = 0.0 if op.bias is None else op.bias
    gates, cells = [], [np.zeros((x.shape[0], hid), dy.dtype)]
    for z in raw:
        z = z + bias
        i, o, f = (execute.sigmoid(z[:, k * hid : (k + 1) * hid]) for k in range(3))
        g = np.tanh(z[:, 3 * hid :])
        gates.append((i, o, f, g))
        cells.append(f * cells[-1] + i * g)
    dx = np.empty_like(x)
    dw = np.zeros(op.weight.shape, dy.dtype)
    db = np.zeros(4 * hid, dy.dtype)
    grads: Params = {}
    dh, dc = np.zeros_like(cells[0]), np.zeros_like(cells[0])
    for t in reversed(range(len(raw))):
        i, o, f, g = gates[t]
        tc = np.tanh(cells[t + 1])
        dh = dh + dy[:, t]
        dc = dc + dh * o * (1 - tc * tc)
        dz = np.concatenate(
            [
                dc * g * i * (1 - i),
                dh * tc * o * (1 - o),
                dc * cells[t] * f * (1 - f),
                dc * i * (1 - g * g),
            ],
            axis=1,
        )
        dxh, dwt, pgrads = product.backward(ctxs[t], dz)
        add_grads(grads, pgrads)
        dw += dwt
        db += dz.sum(axis=0)
        dx[:, t] = dxh[:, :n_in]
        dh, dc = dxh[:, n_in:], dc * f
    grads[f"{op.name}.weight"] = dw
    if op.bias is not None:
        grads[f"{op.name}.bias"] = db
    return [dx], grads
