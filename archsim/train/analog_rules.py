"""Forward and backward rules of the analog ops (Conv2d, Linear, Lstm): every static-weight
product goes through an `AnalogProduct` (`archsim.train.grad`), which keeps its own context.

Convolutions are lowered with im2col as in inference (`archsim.workload.execute`, one GEMM per
group); their input gradient is scattered back by a loop over the kernel offsets (col2im).
LSTMs are differentiated through time (BPTT) from the per-step products, gates recomputed.
Signatures as in `archsim.train.rules`.

Simplifications: the input gradient of a product is computed even when a network input feeds
it (only the col2im scatter is skipped).
"""

from __future__ import annotations

import numpy as np

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


def _col2im(cols: np.ndarray, op: ir.Conv2d, out: np.ndarray) -> None:
    """out (B, Hp, Wp, C/groups) += the patches `cols` (B * Ho * Wo, C/groups * kh * kw) put
    back where im2col took them (padded coordinates), one strided add per kernel offset
    (channels last: twice as fast as adding into NCHW)."""
    b, _, _, c = out.shape
    _, ho, wo = op.shape
    kh, kw = op.kernel
    (sh, sw), (dh, dw) = op.stride, op.dilation
    patches = cols.reshape(b, ho, wo, c, kh, kw)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            colr = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
            out[:, rows, colr] += patches[..., i, j]


def conv_backward(op: ir.Conv2d, args, y, ctx, dy, need, product):
    x = args[0]
    c_out, _, _ = op.shape
    per_group = c_out // op.groups
    c_in = x.shape[1] // op.groups
    kh, kw = op.kernel
    pt, pl, pb, pr = op.pads
    rows = np.ascontiguousarray(dy.transpose(0, 2, 3, 1)).reshape(-1, c_out)
    dw = np.empty(op.weight.shape, dtype=dy.dtype)
    dxp = None
    if need[0]:
        dxp = np.zeros(
            (x.shape[0], x.shape[2] + pt + pb, x.shape[3] + pl + pr, x.shape[1]), dy.dtype
        )
    grads: Params = {}
    for g, c in enumerate(ctx[0]):
        part = (
            rows
            if op.groups == 1
            else np.ascontiguousarray(rows[:, g * per_group : (g + 1) * per_group])
        )
        dcols, dwg, pgrads = _product_backward(product, c, part, dxp is not None)
        add_grads(grads, pgrads)
        dw[g * per_group : (g + 1) * per_group] = dwg.T.reshape(per_group, c_in, kh, kw)
        if dxp is not None:
            _col2im(dcols, op, dxp[..., g * c_in : (g + 1) * c_in])
    grads[f"{op.name}.weight"] = dw
    grads.update(_bias_grad(op, rows))
    if dxp is None:
        return [None], grads
    inner = dxp[:, pt : pt + x.shape[2], pl : pl + x.shape[3]]
    return [np.ascontiguousarray(inner.transpose(0, 3, 1, 2))], grads


def _product_backward(product, ctx, dy: np.ndarray, need_dx: bool):
    """product.backward, telling a product that can skip it (`skips_input_grad`, on-chip
    training: a transposed analog read saved) when the input gradient is not needed (dx None)."""
    if not need_dx and getattr(product, "skips_input_grad", False):
        return product.backward(ctx, dy, input_grad=False)
    return product.backward(ctx, dy)


def linear_backward(op: ir.Linear, args, y, ctx, dy, need, product):
    x = args[0]
    rows = dy.reshape(-1, dy.shape[-1])
    dx, dw, grads = _product_backward(product, ctx[0][0], rows, need[0])
    grads = {**grads, f"{op.name}.weight": dw, **_bias_grad(op, rows)}
    return [None if dx is None else dx.reshape(x.shape)], grads


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
