"""ONNX models into the workload graph.

Static weights may be initializers, graph inputs that have initializers (older opsets) or the
outputs of constant subgraphs (Shape/Gather/Concat/... chains), which are folded with
`onnx.reference`. Batch norms after a convolution or linear layer are folded into its weights,
constant adds after a linear layer into its bias. Every tensor keeps track of where its batch
axis is (axis 0, except around LSTMs, whose inputs are (seq, batch, features)), and ONNX axis
attributes are translated to per-sample axes. An op we do not model raises a `WorkloadError`
naming the op type, the node and the file; nothing is skipped silently.

Exact float32 semantics or a refusal: an operand that sets an op's meaning (weight, bias, axes,
shape, bounds) must be constant, and is refused when present but computed at run time; two
run-time operands broadcast only when ONNX's right alignment puts their batch axes together;
non-float tensors (archsim computes in float32), training modes and reads of optional outputs
archsim does not compute are refused; Cast to FLOAT16 rounds. Integer graph inputs are accepted
only as the indices of Gathers on constant tables (token ids). Symbolic input dimensions other
than the batch are set by name with `dims` (`--dim NAME=SIZE`).
The operator test cases of the onnx package check this: tests/test_onnx_conformance.py.

Simplifications: 2-D convolutions and pools only (no dilated pools, no auto_pad other than
NOTSET, VALID, SAME_UPPER/LOWER); single-direction LSTMs without sequence lengths, peepholes or
initial states; Shape of a dynamic tensor folds with batch size 1.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import ir
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder, Workload
from archsim.workload.onnx_layers import LayerOps
from archsim.workload.onnx_ops import UNARY, ElementOps
from archsim.workload.onnx_shapes import ShapeOps

NO_OPS = {"Identity"}
FLOAT_TYPES = (1, 10, 11)
"""FLOAT, FLOAT16, DOUBLE: computed in float32."""
ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "Erf": "erf"}
BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


class _Tensor:
    """A dynamic ONNX tensor: the IR op producing it and the position of its batch axis."""

    __slots__ = ("batch_axis", "name")

    def __init__(self, name: str, batch_axis: int) -> None:
        self.name = name
        self.batch_axis = batch_axis


def load_onnx(
    path: str | Path, name: str | None = None, dims: dict[str, int] | None = None
) -> Workload:
    """Import an ONNX file; `dims` sets symbolic input dimensions by name (as onnxruntime's
    free-dimension overrides do), e.g. {"seq": 128}.

    Raises:
        WorkloadError: unreadable file, unsupported op or attribute, symbolic shapes.
    """
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError, OSError, ...
        raise WorkloadError(f"{path}: cannot read ONNX model ({e})") from None
    return import_model(model, path, name, dims)


def import_model(
    model, path: str | Path, name: str | None = None, dims: dict[str, int] | None = None
) -> Workload:
    """Import an ONNX `ModelProto`; `path` names it in errors."""
    from onnx import numpy_helper

    path = Path(path)
    graph = model.graph
    imp = _Importer(path, model, name or path.stem, dims or {})
    for init in graph.initializer:
        imp.consts[init.name] = numpy_helper.to_array(init)
    for vi in graph.input:
        if vi.name not in imp.consts:
            try:
                imp.add_input(vi)
            except WorkloadError as e:  # raised where it is read: an op may say more
                imp.unusable[vi.name] = e
    imp.check_dims()
    for node in graph.node:
        imp.convert(node)
    imp.check_batch_sizes()  # after the ops, whose errors say more (a weight given as input)
    for out in graph.output:
        imp.check_float(out, "output")
        t = imp.tensors.get(out.name)
        if t is None:
            if out.name in imp.unusable:
                raise imp.unusable[out.name]
            if out.name in imp.unproduced:
                raise imp.unproduced_error(out.name)
            raise WorkloadError(
                f"{path}: output {out.name!r} is a constant (it does not depend "
                "on any graph input); nothing to run"
            )
        imp.g.output(t.name, t.batch_axis)
    return imp.g.build()


class _Importer(ShapeOps, ElementOps, LayerOps):
    def __init__(self, path: Path, model, name: str, dims: dict[str, int]) -> None:
        self.path = path
        self.dims = dims
        self.symbolic: set[str] = set()
        """Names of the symbolic input dimensions seen."""
        self.model = model
        self.g = GraphBuilder(name, str(path))
        self.consts: dict[str, np.ndarray] = {}
        self.tensors: dict[str, _Tensor] = {}
        self.unusable: dict[str, WorkloadError] = {}
        """Graph inputs that cannot be run (type, shape), with the reason."""
        self.unproduced: dict[str, tuple] = {}
        """Optional outputs archsim does not compute: tensor -> (node, output index)."""
        self.graph_inputs = {vi.name for vi in model.graph.input}
        self.batch_sizes: dict[str, int | None] = {}
        self.opset = max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13
        )
        self.readers: dict[str, int] = {}
        for node in model.graph.node:
            for i in node.input:
                self.readers[i] = self.readers.get(i, 0) + 1
        for out in model.graph.output:
            self.readers[out.name] = self.readers.get(out.name, 0) + 1

    # -- helpers ----------------------------------------------------------------------------
    def fail(self, node, message: str) -> WorkloadError:
        return WorkloadError(
            f"{self.path}: node {node.name or node.output[0]!r} ({node.op_type}): {message}"
        )

    def uid(self, base: str) -> str:
        name = base.replace("/", "_").replace(":", "_") or "t"
        k = 1
        cand = name
        while self.g.has(cand):
            k += 1
            cand = f"{name}_{k}"
        return cand

    def const(self, node, i: int, required: bool = True) -> np.ndarray | None:
        """Operand i as a constant; None when an optional operand is absent. A present operand
        that is not constant is refused, never dropped."""
        if i >= len(node.input) or not node.input[i]:
            if required:
                raise self.fail(node, f"input {i} is missing")
            return None
        name = node.input[i]
        if name not in self.consts:
            if name in self.graph_inputs:
                raise self.fail(
                    node,
                    f"input {i} ({name!r}) is a graph input without an "
                    "initializer; archsim needs it constant (stored in the model, "
                    "e.g. as a weight)",
                )
            raise self.fail(
                node, f"input {i} ({name!r}) is computed at run time; archsim needs it constant"
            )
        return self.consts[name]

    def dyn(self, node, i: int = 0) -> _Tensor:
        return self.tensor(node, node.input[i])

    def tensor(self, node, name: str) -> _Tensor:
        if name in self.unusable:
            raise self.unusable[name]
        if name not in self.tensors:
            if name in self.unproduced:
                raise self.unproduced_error(name)
            raise self.fail(node, f"input {name!r} is not a known tensor")
        return self.tensors[name]

    def unproduced_error(self, name: str) -> WorkloadError:
        node, k = self.unproduced[name]
        return self.fail(
            node,
            f"output {k} ({name!r}) is not computed by archsim (only the "
            "main output is); it cannot be read or be a graph output",
        )

    def check_float(self, vi, what: str) -> None:
        """Refuse graph inputs and outputs that are not float tensors: archsim computes in
        float32 and would silently change integer arithmetic (division, overflow). An output
        declared without a type passes (its producer decides)."""
        from onnx import TensorProto

        kind = vi.type.WhichOneof("value")
        if kind is None and what == "output":
            return
        if kind != "tensor_type":
            kind = (kind or "untyped").replace("_type", "")
            raise WorkloadError(
                f"{self.path}: {what} {vi.name!r} is {kind}, not a tensor; not supported"
            )
        tt = vi.type.tensor_type
        if tt.elem_type == TensorProto.UNDEFINED and what == "output":
            return
        if tt.elem_type not in FLOAT_TYPES:
            type_name = TensorProto.DataType.Name(tt.elem_type)
            raise WorkloadError(
                f"{self.path}: {what} {vi.name!r} has element type {type_name}; "
                "archsim computes in float32 and supports only FLOAT, "
                "FLOAT16 and DOUBLE tensors"
            )

    def only_gather_indices(self, name: str) -> bool:
        """Read only as the indices of Gathers on constant tables (token ids into an
        embedding): integer values that archsim can hold exactly as floats."""
        constant = set(self.consts) | {
            o for n in self.model.graph.node if n.op_type == "Constant" for o in n.output
        }
        uses = [(n, k) for n in self.model.graph.node for k, i in enumerate(n.input) if i == name]
        return bool(uses) and all(
            n.op_type == "Gather" and k == 1 and n.input[0] in constant for n, k in uses
        )

    def check_dims(self) -> None:
        """Every dimension given by name exists among the inputs' symbolic dimensions."""
        unknown = sorted(set(self.dims) - self.symbolic)
        if unknown:
            have = ", ".join(sorted(self.symbolic)) or "none"
            raise WorkloadError(
                f"{self.path}: --dim {unknown[0]}: no input dimension is named "
                f"{unknown[0]!r} (symbolic dimensions: {have})"
            )

    def check_batch_sizes(self) -> None:
        """All dynamic graph inputs run with one batch: fixed batch sizes must agree."""
        fixed = {n: b for n, b in self.batch_sizes.items() if b is not None}
        if len(set(fixed.values())) > 1:
            listed = ", ".join(f"{n!r}: {b}" for n, b in fixed.items())
            raise WorkloadError(
                f"{self.path}: graph inputs have different batch sizes ({listed})"
                "; archsim runs every input with one batch (give the others "
                "as initializers)"
            )

    def full_shape(self, t: _Tensor) -> tuple[int, ...]:
        s = list(self.g.shape(t.name))
        s.insert(t.batch_axis, 1)
        return tuple(s)

    def ps_axis(self, node, t: _Tensor, axis: int) -> int:
        rank = len(self.g.shape(t.name)) + 1
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise self.fail(node, f"axis {axis} out of range for rank {rank}")
        if a == t.batch_axis:
            raise self.fail(node, "operates along the batch axis")
        return a if a < t.batch_axis else a - 1

    def set_out(self, node, ir_name: str, batch_axis: int = 0, k: int = 0) -> None:
        self.tensors[node.output[k]] = _Tensor(ir_name, batch_axis)

    def attrs(self, node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def add_input(self, vi) -> None:
        if not self.only_gather_indices(vi.name):
            self.check_float(vi, "input")
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            raise WorkloadError(
                f"{self.path}: input {vi.name!r} has no shape information; "
                "export the model with shapes"
            )
        if any(d.HasField("dim_value") and d.dim_value == 0 for d in tt.shape.dim):
            raise WorkloadError(f"{self.path}: input {vi.name!r} has a dimension of size 0")
        dims: list[int | str | None] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif d.HasField("dim_param") and d.dim_param:
                self.symbolic.add(d.dim_param)
                dims.append(self.dims.get(d.dim_param, d.dim_param))
            else:
                dims.append(None)
        if not dims:
            raise WorkloadError(
                f"{self.path}: input {vi.name!r} is a scalar; a graph input needs "
                "a batch axis (give a scalar as an initializer)"
            )
        ba = 0
        for node in self.model.graph.node:
            if node.op_type == "LSTM" and node.input and node.input[0] == vi.name:
                layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
                ba = 1 if layout == 0 else 0
        per_sample = dims[:ba] + dims[ba + 1 :]
        if any(not isinstance(d, int) for d in per_sample):
            shown = ", ".join("?" if d is None else str(d) for d in dims)
            named = [d for d in per_sample if isinstance(d, str)]
            how = (
                f"set {', '.join(named)} with --dim NAME=SIZE"
                if named
                else "export the model with fixed shapes"
            )
            raise WorkloadError(
                f"{self.path}: input {vi.name!r} of shape ({shown}) has unknown "
                f"dimensions besides the batch; {how}"
            )
        self.batch_sizes[vi.name] = dims[ba] if isinstance(dims[ba], int) else None
        ir_name = L.input_(self.g, self.uid(vi.name), tuple(per_sample), ba)
        self.tensors[vi.name] = _Tensor(ir_name, ba)

    # -- conversion -------------------------------------------------------------------------
    def convert(self, node) -> None:
        op = node.op_type
        dynamic = [i for i in node.input if i and i not in self.consts]
        if op == "Constant":
            self.fold(node)
            return
        if op == "Shape" and dynamic:
            t = self.dyn(node)
            self.consts[node.output[0]] = np.array(self.full_shape(t), dtype=np.int64)
            return
        if not dynamic:
            self.fold(node)
            return
        try:
            self.convert_dynamic(node)
        except WorkloadError as e:  # from a shape-checked constructor: say which node, file
            text = str(e)
            if text.startswith(f"{self.path}:"):
                raise
            detail = re.sub(r"^.*?: op '[^']*': |^[^:]*: ", "", text, count=1)
            raise self.fail(node, detail) from None
        for k, out in enumerate(node.output):
            if out and out not in self.tensors and out not in self.consts:
                self.unproduced[out] = (node, k)

    def convert_dynamic(self, node) -> None:
        op = node.op_type
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            if op in NO_OPS:
                self.tensors[node.output[0]] = self.dyn(node)
                return
            if op in UNARY:
                self.unary(node, UNARY[op])
                return
            if op in ACTIVATIONS or op == "LeakyRelu":
                t = self.dyn(node)
                fn = ACTIVATIONS.get(op, "leaky_relu")
                approx = self.attrs(node).get("approximate", b"none")
                if op == "Gelu" and approx in (b"tanh", "tanh"):
                    fn = "gelu_tanh"
                alpha = self.attrs(node).get("alpha", 0.01)
                self.set_out(
                    node, L.act(self.g, self.uid(node.name or op), t.name, fn, alpha), t.batch_axis
                )
                return
            if op in BINARY:
                self.binary(node, BINARY[op])
                return
            raise self.fail(node, f"unsupported ONNX op {op!r}")
        handler(node)

    def fold(self, node) -> None:
        """Evaluate a node whose inputs are all constant."""
        import onnx
        from onnx import helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx"):
            # a filled tensor (the "light" models' weights): a broadcast view, no 400 MB fill
            value = self.attrs(node).get("value")
            value = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value)
            shape = tuple(int(d) for d in self.consts[node.input[0]])
            self.consts[node.output[0]] = np.broadcast_to(value.reshape(()), shape)
            return
        inits = [numpy_helper.from_array(np.asarray(self.consts[i]), i) for i in node.input if i]
        outs = [
            helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output
        ]
        g = helper.make_graph([node], "fold", [], outs, initializer=inits)
        m = helper.make_model(g, opset_imports=list(self.model.opset_import))
        try:
            results = ReferenceEvaluator(m).run(None, {})
        except Exception as e:
            raise self.fail(node, f"cannot fold constant node ({e})") from None
        for name, value in zip(node.output, results, strict=False):
            self.consts[name] = np.asarray(value)

    def binary(
        self, node, fn: str, a: str | None = None, b: str | None = None, out_name: str | None = None
    ) -> None:
        """`out_name` = a (fn) b under ONNX broadcasting; by default the node's first two
        inputs and its first output."""
        a = node.input[0] if a is None else a
        b = node.input[1] if b is None else b
        out_name = node.output[0] if out_name is None else out_name
        a_dyn = a not in self.consts
        b_dyn = b not in self.consts
        name = self.uid(node.name or node.op_type)
        legacy = self.opset < 7 and self.attrs(node).get("broadcast", 0)
        if a_dyn and b_dyn:
            ta, tb = self.tensor(node, a), self.tensor(node, b)
            ra, rb = (len(self.g.shape(t.name)) + 1 for t in (ta, tb))
            if legacy and self.full_shape(ta) != self.full_shape(tb):
                raise self.fail(node, "opset < 7 broadcasting of two tensors is not supported")
            # ONNX aligns shapes on the right: the batch axes must meet
            if ra - ta.batch_axis != rb - tb.batch_axis:
                raise self.fail(
                    node,
                    f"operands of rank {ra} and {rb} would broadcast the batch "
                    "axis against another axis; not supported",
                )
            out = L.binary(self.g, name, fn, ta.name, tb.name)
            self.tensors[out_name] = _Tensor(out, max(ra, rb) - ra + ta.batch_axis)
            return
        t = self.tensor(node, a if a_dyn else b)
        c = np.asarray(self.consts[b if a_dyn else a], dtype=np.float32)
        rank = len(self.g.shape(t.name)) + 1
        if legacy:
            if not a_dyn:
                raise self.fail(node, "opset < 7 broadcasting of a constant A is not supported")
            axis = self.attrs(node).get("axis", rank - c.ndim)
            axis = axis + rank if axis < 0 else axis
            if not 0 <= axis <= rank - c.ndim:
                raise self.fail(node, f"axis {axis} does not fit B of shape {c.shape}")
            c = c.reshape(c.shape + (1,) * (rank - axis - c.ndim))
        if rank - t.batch_axis <= c.ndim < rank:  # reaches the batch axis from the right
            c = c.reshape((1,) * (rank - c.ndim) + c.shape)
        if c.ndim == rank:
            if c.shape[t.batch_axis] != 1:
                raise self.fail(node, f"constant {c.shape} varies along the batch axis")
            c = np.squeeze(c, axis=t.batch_axis)
        elif c.ndim > rank:
            raise self.fail(node, f"constant {c.shape} has more axes than the tensor")
        if fn == "add" and a_dyn and self.fold_bias(t, c):
            self.tensors[out_name] = t
            return
        out = L.binary(self.g, name, fn, t.name, const=c, const_first=not a_dyn)
        self.tensors[out_name] = _Tensor(out, t.batch_axis)

    def fold_bias(self, t: _Tensor, c: np.ndarray) -> bool:
        """Fold `+ c` into the linear layer producing t, when nothing else reads t."""
        op = self.g.get(t.name)
        if not isinstance(op, ir.Linear) or self.readers_of_ir(t) > 1:
            return False
        n = op.shape[-1]
        if c.size == 1:
            bias = np.full(n, c.reshape(()), dtype=np.float32)
        elif c.size == n and c.shape[-1] == n:
            bias = c.reshape(n).astype(np.float32)
        else:
            return False
        if op.bias is not None:
            bias = bias + op.bias
        self.g.replace(replace(op, bias=bias))
        return True

    def readers_of_ir(self, t: _Tensor) -> int:
        names = [k for k, v in self.tensors.items() if v.name == t.name]
        return sum(self.readers.get(k, 0) for k in names)


def supported_ops() -> frozenset[str]:
    """ONNX op types the importer turns into workload ops (any op folds when its inputs are all
    constant)."""
    handled = {m[3:] for m in dir(_Importer) if m.startswith("op_")}
    return frozenset(handled | NO_OPS | set(ACTIVATIONS) | set(BINARY) | set(UNARY) | {"LeakyRelu"})
