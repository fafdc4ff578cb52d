"""ONNX weighted layers and pools for the importer: Conv, Gemm, MatMul, LSTM, BatchNormalization
(folded into the layer before it), Max/AveragePool and the global pools.

Mixed into `onnx_import._Importer`, whose helpers (`dyn`, `const`, `attrs`, `fail`, `uid`,
`set_out`, `fold_bias`, `readers_of_ir`) they use. Weights, biases and statistics must be
constants: a present operand computed at run time is refused, never dropped.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from archsim.workload import ir
from archsim.workload import layers as L


class LayerOps:
    """Handlers (methods named op_<ONNX type>) of the ops that carry weights, and pools."""

    def op_Conv(self, node) -> None:
        t = self.dyn(node)
        if t.batch_axis != 0 or len(self.g.shape(t.name)) != 3:
            raise self.fail(node, "only 2-D convolutions on NCHW inputs are supported")
        w = self.const(node, 1)
        b = self.const(node, 2, required=False)
        a = self.attrs(node)
        kh, kw = w.shape[2:]
        strides = tuple(a.get("strides", (1, 1)))
        dil = tuple(a.get("dilations", (1, 1)))
        pads = self.pads(node, a, self.g.shape(t.name)[1:], (kh, kw), strides, dil)
        out = L.conv2d(
            self.g,
            self.uid(node.name or "conv"),
            t.name,
            w,
            b,
            strides,
            pads,
            dil,
            int(a.get("group", 1)),
        )
        self.set_out(node, out)

    def pads(self, node, a, hw, kernel, strides, dil=(1, 1)) -> tuple[int, int, int, int]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("NOTSET", "VALID"):
            p = tuple(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
            if len(p) != 4:
                raise self.fail(node, f"expected 4 pads for 2-D, got {p}")
            return (int(p[0]), int(p[1]), int(p[2]), int(p[3]))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            total = []
            for size, k, s, d in zip(hw, kernel, strides, dil, strict=True):
                out = -(-size // s)
                total.append(max(0, (out - 1) * s + (k - 1) * d + 1 - size))
            lo = [p // 2 if auto == "SAME_UPPER" else p - p // 2 for p in total]
            return (lo[0], lo[1], total[0] - lo[0], total[1] - lo[1])
        raise self.fail(node, f"auto_pad {auto!r} is not supported")

    def op_Gemm(self, node) -> None:
        a = self.attrs(node)
        t = self.dyn(node)
        if a.get("transA", 0):
            raise self.fail(node, "transA = 1 is not supported")
        b = self.const(node, 1).astype(np.float32, copy=False)
        w = b.T if a.get("transB", 0) else b
        if a.get("alpha", 1.0) != 1.0:
            w = w * np.float32(a["alpha"])
        c = self.const(node, 2, required=False)
        bias = None
        if c is not None:
            c = np.asarray(c, np.float32)
            if c.size not in (1, w.shape[1]) or (c.ndim and c.shape[-1] not in (1, w.shape[1])):
                raise self.fail(
                    node,
                    f"C of shape {c.shape} varies along the batch; only a "
                    f"bias of {w.shape[1]} values is supported",
                )
            bias = np.broadcast_to(c.reshape(-1), (w.shape[1],)) * np.float32(a.get("beta", 1.0))
        self.set_out(node, L.linear(self.g, self.uid(node.name or "gemm"), t.name, w, bias))

    def op_MatMul(self, node) -> None:
        name = self.uid(node.name or "matmul")
        if node.input[1] in self.consts:
            t = self.dyn(node)
            w = np.asarray(self.consts[node.input[1]], np.float32)
            if w.ndim != 2:
                raise self.fail(node, f"constant operand must be 2-D, got {w.shape}")
            self.set_out(node, L.linear(self.g, name, t.name, w), t.batch_axis)
            return
        if node.input[0] in self.consts:
            raise self.fail(node, "a constant left operand is not supported")
        ta, tb = self.dyn(node, 0), self.dyn(node, 1)
        if ta.batch_axis or tb.batch_axis:
            raise self.fail(node, "dynamic products need the batch axis first")
        ra, rb = len(self.g.shape(ta.name)) + 1, len(self.g.shape(tb.name)) + 1
        if min(ra, rb) < 3:
            raise self.fail(
                node,
                f"a product of two run-time tensors of rank {ra} and {rb}: "
                "archsim takes axis 0 of each as the batch axis, so each needs rank "
                ">= 3 (batch, rows, columns)",
            )
        if len(self.g.shape(ta.name)) != len(self.g.shape(tb.name)):
            raise self.fail(
                node,
                "operands of different rank would broadcast the batch axis "
                "against another axis; not supported",
            )
        self.set_out(node, L.matmul(self.g, name, ta.name, tb.name))

    def op_LSTM(self, node) -> None:
        a = self.attrs(node)
        t = self.dyn(node)
        if a.get("direction", b"forward") not in (b"forward", "forward"):
            raise self.fail(node, "only forward LSTMs are supported")
        if a.get("layout", 0) != 0 or t.batch_axis != 1:
            raise self.fail(node, "expected X as (seq, batch, input) (layout 0)")
        for i, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c"), (7, "P")):
            if i < len(node.input) and node.input[i]:
                v = self.consts.get(node.input[i])
                if v is None or np.any(v):
                    raise self.fail(node, f"{what} is not supported")
        if "activations" in a or "clip" in a or a.get("input_forget", 0):
            raise self.fail(node, "custom activations, clip and input_forget are not supported")
        w, r = self.const(node, 1)[0], self.const(node, 2)[0]
        hidden = int(a.get("hidden_size", r.shape[-1]))
        b = self.const(node, 3, required=False)
        b_ih = b_hh = None
        if b is not None:
            b_ih, b_hh = b[0][: 4 * hidden], b[0][4 * hidden :]
        base = self.uid(node.name or "lstm")
        y = L.lstm(self.g, base, t.name, w, r, b_ih, b_hh)
        seq = self.g.shape(y)[0]
        if len(node.output) > 0 and node.output[0]:
            self.set_out(node, L.reshape(self.g, self.uid(f"{base}_Y"), y, (seq, 1, hidden)), 2)
        if len(node.output) > 1 and node.output[1]:
            last = L.slice_last(self.g, self.uid(f"{base}_last"), y, 0)
            self.set_out(node, L.reshape(self.g, self.uid(f"{base}_Y_h"), last, (1, hidden)), 1, 1)
        if len(node.output) > 2 and node.output[2] and self.readers.get(node.output[2]):
            raise self.fail(node, "the cell-state output Y_c is not supported")

    def op_BatchNormalization(self, node) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise self.fail(
                node,
                "training mode (batch statistics) is not supported; archsim "
                "runs inference with the stored mean and variance",
            )
        if a.get("spatial", 1) != 1:
            raise self.fail(node, "spatial = 0 is not supported")
        scale, bias, mean, var = (np.asarray(self.const(node, i), np.float64) for i in (1, 2, 3, 4))
        eps = self.attrs(node).get("epsilon", 1e-5)
        k = scale / np.sqrt(var + eps)
        shift = bias - mean * k
        op = self.g.get(t.name)
        if isinstance(op, ir.Conv2d) and t.batch_axis == 0 and self.readers_of_ir(t) == 1:
            w = op.weight * k.reshape(-1, 1, 1, 1).astype(np.float32)
            b = (op.bias if op.bias is not None else 0.0) * k + shift
            self.g.replace(replace(op, weight=w.astype(np.float32), bias=b.astype(np.float32)))
            self.tensors[node.output[0]] = t
            return
        if (
            isinstance(op, ir.Linear)
            and self.readers_of_ir(t) == 1
            and len(op.shape) == 1
            and op.shape[-1] == k.size
        ):
            w = op.weight * k.astype(np.float32)
            b = (op.bias if op.bias is not None else 0.0) * k + shift
            self.g.replace(replace(op, weight=w.astype(np.float32), bias=b.astype(np.float32)))
            self.tensors[node.output[0]] = t
            return
        if t.batch_axis != 0:
            raise self.fail(node, "batch norm needs the batch axis first")
        self.set_out(node, L.affine(self.g, self.uid(node.name or "bn"), t.name, k, shift))

    # -- pooling, shapes --------------------------------------------------------------------
    def pool(self, node, fn: str) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        ceil = bool(a.get("ceil_mode", 0))
        if ceil and fn == "avg" and a.get("count_include_pad", 0):
            raise self.fail(node, "ceil_mode with count_include_pad is not supported")
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            raise self.fail(node, "dilated pooling is not supported")
        if len(self.g.shape(t.name)) != 3 or t.batch_axis:
            raise self.fail(node, "only 2-D pooling on NCHW inputs is supported")
        k = tuple(a["kernel_shape"])
        s = tuple(a.get("strides", (1, 1)))
        pads = self.pads(node, a, self.g.shape(t.name)[1:], k, s)
        if ceil:
            pads = self.ceil_pads(self.g.shape(t.name)[1:], k, s, pads)
        out = L.pool(
            self.g,
            self.uid(node.name or fn),
            t.name,
            fn,
            k,
            s,
            pads,
            bool(a.get("count_include_pad", 0)),
        )
        self.set_out(node, out)

    @staticmethod
    def ceil_pads(hw, kernel, strides, pads) -> tuple[int, int, int, int]:
        """ceil_mode as extra bottom/right padding (never counted, never the max): one more
        window where a partial one starts inside the input or its leading padding."""
        end = list(pads[2:])
        for i, (size, k, st) in enumerate(zip(hw, kernel, strides, strict=True)):
            total = size + pads[i] + pads[i + 2]
            out = -(-(total - k) // st) + 1
            if (out - 1) * st >= size + pads[i]:
                out -= 1
            end[i] += max(0, (out - 1) * st + k - total)
        return (pads[0], pads[1], end[0], end[1])

    def op_MaxPool(self, node) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "the Indices output is not supported")
        self.pool(node, "max")

    def op_AveragePool(self, node) -> None:
        self.pool(node, "avg")

    def op_GlobalAveragePool(self, node) -> None:
        t = self.dyn(node)
        self.set_out(node, L.global_pool(self.g, self.uid(node.name or "gap"), t.name, "avg"))

    def op_GlobalMaxPool(self, node) -> None:
        t = self.dyn(node)
        self.set_out(node, L.global_pool(self.g, self.uid(node.name or "gmp"), t.name, "max"))
