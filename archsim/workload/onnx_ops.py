"""ONNX element-wise, selection and normalisation ops for the importer: Clip, PRelu, HardSigmoid,
HardSwish, Sqrt, Exp, Abs, Neg, Reciprocal, Pow, Sum/Max/Min/Mean, LRN, Pad, Split, Slice,
ReduceMean/Sum/Max/Min, Gather.

Mixed into `onnx_import._Importer`, whose helpers (`dyn`, `tensor`, `const`, `attrs`, `fail`,
`uid`, `set_out`, `ps_axis`, `full_shape`, `binary`) they use. Operands that set the op's
meaning (bounds, pads, starts, axes, indices) must be constants: a present operand that is
computed at run time is refused, never dropped.
"""

from __future__ import annotations

import numpy as np

from archsim.workload import layers as L

UNARY = {
    "Sqrt": "sqrt",
    "Exp": "exp",
    "Abs": "abs",
    "Neg": "neg",
    "Reciprocal": "reciprocal",
    "HardSwish": "hard_swish",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Log": "log",
}
SELU = (1.67326319217681884765625, 1.05070102214813232421875)
"""ONNX's default alpha and gamma of Selu."""
VARIADIC = {"Sum": "add", "Max": "max", "Min": "min", "Mean": "add"}


class ElementOps:
    """Handlers (methods named op_<ONNX type>)."""

    def unary(self, node, fn: str, alpha: float = 0.0, beta: float = 0.0) -> None:
        t = self.dyn(node)
        out = L.act(self.g, self.uid(node.name or node.op_type), t.name, fn, alpha, beta)
        self.set_out(node, out, t.batch_axis)

    def scalar(self, node, i: int, default: float) -> float:
        """Optional scalar operand i (a constant), or `default` when absent."""
        v = self.const(node, i, required=False)
        if v is None:
            return default
        if v.size != 1:
            raise self.fail(node, f"input {i} must be a scalar, got shape {v.shape}")
        return float(v.reshape(()))

    def op_Clip(self, node) -> None:
        a = self.attrs(node)
        if self.opset < 11:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            lo, hi = self.scalar(node, 1, -np.inf), self.scalar(node, 2, np.inf)
        self.unary(node, "clip", lo, hi)

    def op_Elu(self, node) -> None:
        self.unary(node, "elu", self.attrs(node).get("alpha", 1.0))

    def op_Celu(self, node) -> None:
        self.unary(node, "celu", self.attrs(node).get("alpha", 1.0))

    def op_Selu(self, node) -> None:
        a = self.attrs(node)
        self.unary(node, "selu", a.get("alpha", SELU[0]), a.get("gamma", SELU[1]))

    def op_ThresholdedRelu(self, node) -> None:
        self.unary(node, "thresholded_relu", self.attrs(node).get("alpha", 1.0))

    def op_HardSigmoid(self, node) -> None:
        a = self.attrs(node)
        self.unary(node, "hard_sigmoid", a.get("alpha", 0.2), a.get("beta", 0.5))

    def op_PRelu(self, node) -> None:
        self.const(node, 1)  # the slope: a weight
        self.binary(node, "prelu")

    def op_Pow(self, node) -> None:
        self.binary(node, "pow")

    def variadic(self, node) -> None:
        """Sum, Max, Min, Mean of any number of operands: the constants combined, then a chain
        of binary ops."""
        fn = VARIADIC[node.op_type]
        names = [i for i in node.input if i]
        consts = [self.consts[n] for n in names if n in self.consts]
        names = [n for n in names if n not in self.consts]
        if consts:
            combine = {"add": np.add, "max": np.maximum, "min": np.minimum}[fn]
            c = consts[0].astype(np.float32)
            for v in consts[1:]:
                c = combine(c, v.astype(np.float32))
            self.consts[f"{node.output[0]}/c"] = c
            names.append(f"{node.output[0]}/c")
        acc = names[0]
        last = len(names) - 2
        for k, b in enumerate(names[1:]):
            done = k == last and node.op_type != "Mean"
            out = node.output[0] if done else f"{node.output[0]}/{k}"
            self.binary(node, fn, acc, b, out)
            acc = out
        n_all = len([i for i in node.input if i])
        if node.op_type == "Mean" and n_all > 1:
            self.consts[f"{node.output[0]}/n"] = np.float32(n_all)
            self.binary(node, "div", acc, f"{node.output[0]}/n", node.output[0])
        elif len(names) == 1:
            self.tensors[node.output[0]] = self.tensor(node, acc)

    op_Sum = op_Max = op_Min = op_Mean = variadic

    def op_LRN(self, node) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        if t.batch_axis != 0 or not self.g.shape(t.name):
            raise self.fail(node, "LRN needs an (N, C, ...) input")
        out = L.lrn(
            self.g,
            self.uid(node.name or "lrn"),
            t.name,
            int(a["size"]),
            a.get("alpha", 1e-4),
            a.get("beta", 0.75),
            a.get("bias", 1.0),
        )
        self.set_out(node, out)

    # -- selection and padding --------------------------------------------------------------
    def axes_of(self, node, t, axes) -> list[int]:
        """ONNX axes (possibly negative) as full-rank axes, checked."""
        rank = len(self.g.shape(t.name)) + 1
        out = []
        for ax in axes:
            a = int(ax) + rank if int(ax) < 0 else int(ax)
            if not 0 <= a < rank:
                raise self.fail(node, f"axis {ax} out of range for rank {rank}")
            out.append(a)
        if len(set(out)) != len(out):
            raise self.fail(node, f"repeated axes {list(axes)}")
        return out

    def op_Pad(self, node) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        rank = len(self.g.shape(t.name)) + 1
        if self.opset < 11:
            pads, value = list(a.get("paddings", a.get("pads", []))), a.get("value", 0.0)
        else:
            pads = [int(p) for p in self.const(node, 1).reshape(-1)]
            value = self.scalar(node, 2, 0.0)
        axes = list(range(rank))
        if self.opset >= 18 and len(node.input) > 3 and node.input[3]:
            axes = self.axes_of(node, t, self.const(node, 3).reshape(-1))
        if len(pads) != 2 * len(axes):
            raise self.fail(node, f"{len(pads)} pads for {len(axes)} axes")
        full = [(0, 0)] * rank
        for k, ax in enumerate(axes):
            full[ax] = (pads[k], pads[k + len(axes)])
        if any(p < 0 for pair in full for p in pair):
            raise self.fail(node, "negative pads (cropping) are not supported")
        if full[t.batch_axis] != (0, 0):
            raise self.fail(node, "pads the batch axis")
        del full[t.batch_axis]
        out = L.pad(self.g, self.uid(node.name or "pad"), t.name, full, mode, value)
        self.set_out(node, out, t.batch_axis)

    def op_Slice(self, node) -> None:
        t = self.dyn(node)
        rank = len(self.g.shape(t.name)) + 1
        if self.opset < 10:
            a = self.attrs(node)
            starts, ends = list(a["starts"]), list(a["ends"])
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = [int(v) for v in self.const(node, 1).reshape(-1)]
            ends = [int(v) for v in self.const(node, 2).reshape(-1)]
            c = self.const(node, 3, required=False)
            axes = list(range(len(starts))) if c is None else [int(v) for v in c.reshape(-1)]
            c = self.const(node, 4, required=False)
            steps = [1] * len(starts) if c is None else [int(v) for v in c.reshape(-1)]
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise self.fail(node, "starts, ends, axes and steps differ in length")
        if 0 in steps:
            raise self.fail(node, "a step of 0")
        full = [(None, None, None)] * rank
        for ax, s, e, st in zip(self.axes_of(node, t, axes), starts, ends, steps, strict=True):
            full[ax] = (s, e, st)
        if full[t.batch_axis] != (None, None, None):
            s, e, st = full[t.batch_axis]
            if st != 1 or s not in (0, None) or e < 2**31 - 1:
                raise self.fail(node, "slices the batch axis")
        del full[t.batch_axis]
        out = L.slice_(self.g, self.uid(node.name or "slice"), t.name, full)
        self.set_out(node, out, t.batch_axis)

    def op_Split(self, node) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        axis = self.ps_axis(node, t, a.get("axis", 0))
        size = self.g.shape(t.name)[axis]
        n = len(node.output)
        if self.opset < 13:
            split = list(a.get("split", []))
            if not split and len(node.input) > 1 and node.input[1]:
                split = [int(v) for v in self.const(node, 1).reshape(-1)]
        else:
            c = self.const(node, 1, required=False)
            split = [] if c is None else [int(v) for v in c.reshape(-1)]
        if not split:
            if "num_outputs" in a:
                n = int(a["num_outputs"])
                chunk = -(-size // n)
                split = [min(chunk, size - k * chunk) for k in range(n)]
            elif size % n:
                raise self.fail(node, f"cannot split {size} into {n} equal parts")
            else:
                split = [size // n] * n
        if len(split) != len(node.output) or sum(split) != size or min(split) < 0:
            raise self.fail(node, f"split {split} does not fit {size} into {n} outputs")
        start = 0
        for k, (part, out_name) in enumerate(zip(split, node.output, strict=True)):
            sl = [(None, None, None)] * len(self.g.shape(t.name))
            sl[axis] = (start, start + part, 1)
            start += part
            if out_name:
                out = L.slice_(self.g, self.uid(f"{node.name or 'split'}_{k}"), t.name, sl)
                self.tensors[out_name] = type(t)(out, t.batch_axis)

    def op_Gather(self, node) -> None:
        axis = int(self.attrs(node).get("axis", 0))
        name = self.uid(node.name or "gather")
        if node.input[0] in self.consts:  # a constant table read with run-time indices
            table = self.consts[node.input[0]]
            t = self.dyn(node, 1)
            axis = axis + table.ndim if axis < 0 else axis
            out = L.embedding(self.g, name, t.name, table, axis)
            self.set_out(node, out, axis + t.batch_axis)
            return
        t = self.dyn(node)
        idx = np.asarray(self.const(node, 1), dtype=np.int64)
        ps = self.ps_axis(node, t, axis)
        out = L.take(self.g, name, t.name, ps, idx)
        full_axis = ps if ps < t.batch_axis else ps + 1
        ba = t.batch_axis + (idx.ndim - 1 if full_axis < t.batch_axis else 0)
        self.set_out(node, out, ba)

    # -- reductions -------------------------------------------------------------------------
    def reduce(self, node, fn: str) -> None:
        t = self.dyn(node)
        a = self.attrs(node)
        rank = len(self.g.shape(t.name)) + 1
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in self.const(node, 1).reshape(-1)]
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                self.tensors[node.output[0]] = t
                return
            axes = range(rank)
        axes = self.axes_of(node, t, axes)
        if t.batch_axis in axes:
            raise self.fail(node, "reduces over the batch axis")
        keep = bool(a.get("keepdims", 1))
        ps = [x if x < t.batch_axis else x - 1 for x in axes]
        out = L.reduce(self.g, self.uid(node.name or node.op_type), t.name, fn, ps, keep)
        ba = t.batch_axis if keep else t.batch_axis - sum(x < t.batch_axis for x in axes)
        self.set_out(node, out, ba)

    def op_ReduceMean(self, node) -> None:
        self.reduce(node, "mean")

    def op_ReduceSum(self, node) -> None:
        self.reduce(node, "sum")

    def op_ReduceMax(self, node) -> None:
        self.reduce(node, "max")

    def op_ReduceMin(self, node) -> None:
        self.reduce(node, "min")

    def op_Cast(self, node) -> None:
        from onnx import TensorProto

        to = self.attrs(node).get("to")
        t = self.dyn(node)
        if to in (TensorProto.FLOAT, TensorProto.DOUBLE):
            self.tensors[node.output[0]] = t
        elif to == TensorProto.FLOAT16:
            out = L.act(self.g, self.uid(node.name or "cast"), t.name, "fp16")
            self.set_out(node, out, t.batch_axis)
        else:
            name = TensorProto.DataType.Name(to) if to in TensorProto.DataType.values() else to
            raise self.fail(
                node,
                f"Cast to {name} is not supported: archsim computes in float32 "
                "(only FLOAT, FLOAT16 and DOUBLE)",
            )

    def op_Dropout(self, node) -> None:
        """Inference: the identity (as onnxruntime runs opset < 7 `is_test` graphs). Training mode
        (a random mask) is refused."""
        if len(node.input) > 2 and node.input[2]:
            mode = self.const(node, 2)
            if mode.size != 1 or bool(mode.reshape(())):
                raise self.fail(node, "training_mode is set; archsim runs inference only")
        if len(node.input) > 1 and node.input[1]:
            self.const(node, 1)  # the ratio: constant, unused in inference
        self.tensors[node.output[0]] = self.dyn(node)
