"""What the timed run executes: the workload graph folded onto the mapping, in rows.

Every tensor is streamed in rows (images: rows of H; sequences: time steps; anything else: one
row). Ops become nodes:
- analog: an op on crossbars, with the element-wise ops that only it feeds (bias, activation,
  per-channel affine) fused into its LDPU post-processing;
- gdpu: a digital op on a global unit (pooling, residual add, softmax, layer norm, dynamic
  products, LSTM gates are part of the LSTM node);
- shape: reshapes, transposes, concatenations, slices: free, but they need their whole input;
- input: a network input, read through the off-chip interface.
For each consumer and each of its output rows, `rows_needed` gives how many input rows must have
arrived (line-buffer semantics: a convolution row needs the rows of its receptive field; a row
of a product A @ B of two dynamic operands needs its own row of A and all of B).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from archsim.mapping import Mapping
from archsim.mapping.hetero import LSTM_OPS_PER_HIDDEN, classify, gdpu_ops
from archsim.workload import ir


def rows_of(shape: tuple[int, ...]) -> int:
    """Rows a tensor of this per-sample shape streams in."""
    if len(shape) == 3:
        return int(shape[1])
    if len(shape) == 2:
        return int(shape[0])
    return 1


@dataclass(slots=True, eq=False)
class Node:
    """One unit of work of the timed run."""

    name: str
    kind: str
    """"analog", "gdpu", "shape" or "input"."""
    op: ir.Op
    rows: int
    row_bytes: int
    inputs: list[str] = field(default_factory=list)
    """Producer nodes, in argument order."""
    consumers: list[str] = field(default_factory=list)
    fused: list[str] = field(default_factory=list)
    """Element-wise ops folded into this node's LDPU work."""
    positions: int = 1
    """Analog: MVMs per sample (per matrix)."""
    ops_per_row: float = 0.0
    """GDPU: element operations per output row."""
    ldpu_ops_per_col: float = 1.0
    """Analog: LDPU operations per output column and MVM (scale/offset + fused ops); the LDPU
    does them in one pipelined pass, so they cost energy but not time."""

    @property
    def positions_per_row(self) -> int:
        return max(1, self.positions // self.rows)

    @property
    def recurrent(self) -> bool:
        """An LSTM: each time step (row) needs the node's own previous step, and a sample's
        steps stay on one replica."""
        return isinstance(self.op, ir.Lstm)


def rows_needed(consumer: Node, producer: Node, out_row: int) -> int:
    """Input rows of `producer` that must have arrived before `consumer` computes `out_row`."""
    op = consumer.op
    if consumer.kind == "shape":
        return producer.rows
    if isinstance(op, ir.Conv2d | ir.Pool):
        stride = op.stride[0]
        kh = op.kernel[0]
        dil = op.dilation[0] if isinstance(op, ir.Conv2d) else 1
        last = out_row * stride - op.pads[0] + (kh - 1) * dil
        return int(min(producer.rows, max(1, last + 1)))
    if consumer.rows == producer.rows and consumer.rows > 1 and _row_local(consumer, producer):
        return out_row + 1
    if producer.rows == 1:
        return 1
    return producer.rows


def last_reading_row(consumer: Node, producer: Node, in_row: int) -> int:
    """The last output row of `consumer` that reads input row `in_row`."""
    op = consumer.op
    if isinstance(op, ir.Conv2d | ir.Pool):
        return int(min(consumer.rows - 1, (in_row + op.pads[0]) // op.stride[0]))
    if consumer.rows == producer.rows and consumer.rows > 1 and _row_local(consumer, producer):
        return in_row
    return consumer.rows - 1


def first_reading_row(consumer: Node, producer: Node, in_row: int) -> int:
    """The first output row of `consumer` that reads input row `in_row`."""
    op = consumer.op
    if isinstance(op, ir.Conv2d | ir.Pool):
        dil = op.dilation[0] if isinstance(op, ir.Conv2d) else 1
        reach = in_row + op.pads[0] - (op.kernel[0] - 1) * dil
        return int(max(0, -(-reach // op.stride[0])))
    if consumer.rows == producer.rows and consumer.rows > 1 and _row_local(consumer, producer):
        return in_row
    return 0


def _row_local(consumer: Node, producer: Node) -> bool:
    """Output row r of `consumer` reads row r of `producer` only (for equal row counts)."""
    op = consumer.op
    if isinstance(op, ir.MatMul):  # row r of A @ B reads row r of A and all of B
        return consumer.inputs[:1] == [producer.name] and producer.name not in consumer.inputs[1:]
    row_axis = 1 if len(op.shape) == 3 else 0  # the axis `rows_of` streams
    if isinstance(op, ir.Softmax):
        return op.axis != row_axis
    if isinstance(op, ir.LayerNorm):  # normalises over axes op.axis ..
        return op.axis > row_axis
    return isinstance(op, ir.Act | ir.Binary | ir.Affine | ir.Linear | ir.Lstm)


def build_plan(mapping: Mapping, bytes_per_value: int = 1) -> dict[str, Node]:
    """Nodes of the timed run, keyed by name, in topological order."""
    workload = mapping.workload
    analog = {lm.name for lm in mapping.layers}
    kind, owner = classify(workload, analog)
    nodes: dict[str, Node] = {}
    for op in workload.ops():
        if kind[op.name] == "fused":
            src = nodes[owner[op.name]]
            src.fused.append(op.name)
            src.ldpu_ops_per_col += 2.0 if isinstance(op, ir.Affine) else 1.0
            continue
        node = Node(op.name, kind[op.name], op, rows_of(op.shape), 0)
        node.row_bytes = int(np.ceil(op.size / node.rows)) * bytes_per_value
        node.inputs = [owner[p] for p in op.inputs]
        if node.kind == "analog":
            node.positions = mapping.layer(op.name).matrix.mvms_per_sample
            if isinstance(op, ir.Lstm):
                node.ops_per_row = LSTM_OPS_PER_HIDDEN * op.hidden  # gates and cell update
        elif node.kind == "gdpu":
            node.ops_per_row = gdpu_ops(op, workload) / node.rows
        for p in node.inputs:
            nodes[p].consumers.append(node.name)
        nodes[op.name] = node
    for name in workload.outputs:
        nodes[owner[name]].consumers.append("<output>")
    return nodes


def rows_released_before(consumer: Node, producer: Node, out_row: int) -> int:
    """Input rows of `producer` that `consumer` no longer reads once it starts `out_row` (the
    tail of its line buffer)."""
    n = 0
    while n < producer.rows and last_reading_row(consumer, producer, n) < out_row:
        n += 1
    return n


def node_k(node: Node) -> int:
    """Rows (K) of all the node's matrices together (all convolution groups)."""
    w = node.op.weight
    return int(w.shape[0] if w.ndim == 2 else w.shape[1] * w.shape[2] * w.shape[3] * node.op.groups)
