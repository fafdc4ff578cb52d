"""Write a workload graph as an ONNX model (`onnx.helper`), e.g. a network trained by archsim.

Every IR tensor becomes the ONNX tensor of the same name with the batch axis first and a
symbolic batch dimension "batch"; every node is named after its IR op, so
`archsim.workload.onnx_import.load_onnx` gives the weighted ops back under their names (the
parameter keys of `archsim.train` survive a round trip). Weights are float32 initializers.

Op by op: Conv2d -> Conv (bias, strides, pads, dilations, group); Linear -> Gemm on (batch, in),
else MatMul + Add; Lstm -> Transpose to (seq, batch, in), LSTM (W, R, B from the stacked
[W; R] weight, gate order i, o, f, c as in the IR), Squeeze of the direction axis, Transpose
back; Act -> Relu, Sigmoid, Tanh, LeakyRelu, Identity, Gelu (opset >= 20) and the importer's
unary ops; Binary
(add, sub, mul, div) -> Add, Sub, Mul, Div with a constant initializer where the IR has one;
Affine (a folded batch norm) -> Mul + Add with (C, 1, ...) constants; Pool -> MaxPool or
AveragePool; GlobalPool -> GlobalAveragePool or GlobalMaxPool; Reshape -> Reshape to
(-1, *shape); Transpose, Concat, Softmax / LogSoftmax, LayerNorm -> LayerNormalization,
MatMul (two run-time operands) -> MatMul.

Simplifications: one direction of LSTM, no initial states; two run-time operands of a Binary
must have the same rank (the IR aligns lower ranks after the batch axis, ONNX on the right); any
other op kind is refused with a `WorkloadError` naming it. The importer turns Affine back into
two element-wise ops and an LSTM's layout changes into identity reshapes: the graph differs,
the outputs do not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import ir
from archsim.workload.onnx_import import ACTIVATIONS, BINARY
from archsim.workload.onnx_ops import UNARY

#: Default ONNX opset of the exported model (LayerNormalization needs >= 17).
OPSET = 17
#: IR activation -> ONNX op type without attributes (inverse of the importer's tables).
_ACT_OPS = {fn: op for op, fn in {**ACTIVATIONS, **UNARY}.items() if fn != "gelu"}
_ACT_OPS["identity"] = "Identity"
_BINARY_OPS = {fn: op for op, fn in BINARY.items()}


class _Exporter:
    """Collects nodes and initializers; one method per IR op kind (`op_<class name>`)."""

    def __init__(self, workload: ir.Workload, opset: int) -> None:
        self.workload = workload
        self.opset = opset
        self.nodes: list = []
        self.inits: list = []
        self.names: set[str] = set(workload.graph)

    def const(self, base: str, value: np.ndarray, dtype=np.float32) -> str:
        """Add an initializer with a name unused by any tensor; returns the name."""
        from onnx import numpy_helper

        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str, name: str, **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))

    def temp(self, base: str) -> str:
        """A fresh intermediate tensor name."""
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def axis(self, axis: int) -> int:
        """A per-sample axis as an ONNX axis (batch first); negative axes stay negative."""
        return axis + 1 if axis >= 0 else axis

    # -- ops with weights -------------------------------------------------------------------
    def op_Conv2d(self, op: ir.Conv2d) -> None:
        ins = [op.inputs[0], self.const(f"{op.name}.weight", op.weight)]
        if op.bias is not None:
            ins.append(self.const(f"{op.name}.bias", op.bias))
        self.node(
            "Conv",
            ins,
            op.name,
            op.name,
            kernel_shape=list(op.kernel),
            strides=list(op.stride),
            pads=[op.pads[0], op.pads[1], op.pads[2], op.pads[3]],
            dilations=list(op.dilation),
            group=op.groups,
        )

    def op_Linear(self, op: ir.Linear) -> None:
        w = self.const(f"{op.name}.weight", op.weight)
        if len(op.shape) == 1:
            ins = [op.inputs[0], w]
            if op.bias is not None:
                ins.append(self.const(f"{op.name}.bias", op.bias))
            self.node("Gemm", ins, op.name, op.name)
            return
        if op.bias is None:
            self.node("MatMul", [op.inputs[0], w], op.name, op.name)
            return
        product = self.temp(f"{op.name}_matmul")
        self.node("MatMul", [op.inputs[0], w], product, op.name)
        self.node(
            "Add", [product, self.const(f"{op.name}.bias", op.bias)], op.name, f"{op.name}_bias"
        )

    def op_Lstm(self, op: ir.Lstm) -> None:
        n_in = op.weight.shape[0] - op.hidden
        w = self.const(f"{op.name}.W", op.weight[:n_in].T[None])
        r = self.const(f"{op.name}.R", op.weight[n_in:].T[None])
        bias = np.zeros(4 * op.hidden, np.float32) if op.bias is None else op.bias
        b = self.const(f"{op.name}.B", np.concatenate([bias, np.zeros_like(bias)])[None])
        seq_first = self.temp(f"{op.name}_X")
        self.node("Transpose", [op.inputs[0]], seq_first, f"{op.name}_X", perm=[1, 0, 2])
        y = self.temp(f"{op.name}_Y")
        self.node("LSTM", [seq_first, w, r, b], y, op.name, hidden_size=op.hidden)
        squeezed = self.temp(f"{op.name}_Y_squeezed")
        axes = self.const(f"{op.name}_axes", np.array([1]), np.int64)
        self.node("Squeeze", [y, axes], squeezed, f"{op.name}_squeeze")
        self.node("Transpose", [squeezed], op.name, f"{op.name}_out", perm=[1, 0, 2])

    def op_Affine(self, op: ir.Affine) -> None:
        view = op.view(len(op.shape) + 1)[1:]  # per sample: ONNX broadcasts the batch axis
        scaled = self.temp(f"{op.name}_scaled")
        scale = self.const(f"{op.name}.scale", op.scale.reshape(view))
        self.node("Mul", [op.inputs[0], scale], scaled, f"{op.name}_mul")
        shift = self.const(f"{op.name}.shift", op.shift.reshape(view))
        self.node("Add", [scaled, shift], op.name, op.name)

    def op_LayerNorm(self, op: ir.LayerNorm) -> None:
        feat = op.shape[op.axis :]
        gamma = np.ones(feat, np.float32) if op.gamma is None else op.gamma
        ins = [op.inputs[0], self.const(f"{op.name}.gamma", np.broadcast_to(gamma, feat))]
        if op.beta is not None:
            ins.append(self.const(f"{op.name}.beta", np.broadcast_to(op.beta, feat)))
        axis = self.axis(op.axis)
        self.node("LayerNormalization", ins, op.name, op.name, axis=axis, epsilon=op.eps)

    # -- element-wise -----------------------------------------------------------------------
    def op_Act(self, op: ir.Act) -> None:
        if op.fn == "leaky_relu":
            self.node("LeakyRelu", [op.inputs[0]], op.name, op.name, alpha=op.alpha)
            return
        if op.fn in ("gelu", "gelu_tanh") and self.opset >= 20:
            approximate = "tanh" if op.fn == "gelu_tanh" else "none"
            self.node("Gelu", [op.inputs[0]], op.name, op.name, approximate=approximate)
            return
        if op.fn not in _ACT_OPS:
            need = " below opset 20" if op.fn in ("gelu", "gelu_tanh") else ""
            raise self.refuse(op, f"activation {op.fn!r} has no ONNX export{need}")
        self.node(_ACT_OPS[op.fn], [op.inputs[0]], op.name, op.name)

    def op_Binary(self, op: ir.Binary) -> None:
        if op.fn not in _BINARY_OPS:
            raise self.refuse(op, f"element-wise {op.fn!r} has no ONNX export")
        if op.const is None:
            ranks = {len(self.workload.op(s).shape) for s in op.inputs}
            if len(ranks) != 1:
                raise self.refuse(op, "two operands of different rank are not exported")
            ins = list(op.inputs)
        else:
            c = self.const(f"{op.name}.const", op.const)
            ins = [c, op.inputs[0]] if op.const_first else [op.inputs[0], c]
        self.node(_BINARY_OPS[op.fn], ins, op.name, op.name)

    # -- pooling and layout -----------------------------------------------------------------
    def op_Pool(self, op: ir.Pool) -> None:
        attrs = {
            "kernel_shape": list(op.kernel),
            "strides": list(op.stride),
            "pads": list(op.pads),
        }
        if op.fn == "avg":
            attrs["count_include_pad"] = int(op.count_include_pad)
        kind = "MaxPool" if op.fn == "max" else "AveragePool"
        self.node(kind, [op.inputs[0]], op.name, op.name, **attrs)

    def op_GlobalPool(self, op: ir.GlobalPool) -> None:
        kind = "GlobalAveragePool" if op.fn == "avg" else "GlobalMaxPool"
        self.node(kind, [op.inputs[0]], op.name, op.name)

    def op_Reshape(self, op: ir.Reshape) -> None:
        shape = self.const(f"{op.name}_shape", np.array([-1, *op.shape]), np.int64)
        self.node("Reshape", [op.inputs[0], shape], op.name, op.name)

    def op_Transpose(self, op: ir.Transpose) -> None:
        perm = [0, *(p + 1 for p in op.perm)]
        self.node("Transpose", [op.inputs[0]], op.name, op.name, perm=perm)

    def op_Concat(self, op: ir.Concat) -> None:
        self.node("Concat", list(op.inputs), op.name, op.name, axis=self.axis(op.axis))

    def op_Softmax(self, op: ir.Softmax) -> None:
        kind = "LogSoftmax" if op.log else "Softmax"
        self.node(kind, [op.inputs[0]], op.name, op.name, axis=self.axis(op.axis))

    def op_MatMul(self, op: ir.MatMul) -> None:
        self.node("MatMul", list(op.inputs), op.name, op.name)

    def refuse(self, op: ir.Op, what: str) -> WorkloadError:
        return WorkloadError(
            f"{self.workload.name}: op {op.name!r} ({type(op).__name__}): {what} has no ONNX export"
        )


def export_onnx(workload: ir.Workload, path: str | Path, *, opset: int = OPSET) -> Path:
    """Write `workload` as an ONNX model that `load_onnx` reads back to the same outputs.

    Args:
        workload: The graph with its weights (e.g. `archsim.train.params.with_params`).
        path: The .onnx file to write (its directory must exist).
        opset: ONNX opset of the default domain, >= 17.

    Returns:
        The path written.

    Raises:
        WorkloadError: an op kind or attribute without an export (named), or an opset < 17.
    """
    import onnx
    from onnx import TensorProto, helper

    if opset < OPSET:
        raise WorkloadError(f"export_onnx: opset: expected >= {OPSET}, got {opset}")
    ex = _Exporter(workload, opset)
    inputs = []
    for op in workload.ops():
        if isinstance(op, ir.Input):
            shape = ["batch", *op.shape]
            inputs.append(helper.make_tensor_value_info(op.name, TensorProto.FLOAT, shape))
            continue
        handler = getattr(ex, f"op_{type(op).__name__}", None)
        if handler is None:
            raise ex.refuse(op, "this op kind has no ONNX export")
        handler(op)
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", *workload.op(n).shape])
        for n in workload.outputs
    ]
    graph = helper.make_graph(ex.nodes, workload.name, inputs, outputs, initializer=ex.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="archsim",
        doc_string=f"archsim workload {workload.name!r} ({workload.source})",
    )
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    onnx.save(model, str(path))
    return path
