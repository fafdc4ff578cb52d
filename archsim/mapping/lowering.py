"""Lowering: every op with static weights becomes K x N matrices, and the traffic between them.

Conv2d: K = C_in/groups * kh * kw, N = C_out/groups, one matrix per group, one MVM per output
pixel. Linear: K = in, N = out, one MVM per leading position. Lstm: K = in + hidden,
N = 4 * hidden, one MVM per time step. Traffic between analog layers is the activation bytes one
sample sends from a producer layer to each analog layer that (through digital ops) consumes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.workload import ir


@dataclass(frozen=True, slots=True)
class LayerMatrix:
    """The crossbar view of one analog op."""

    layer: str
    kind: str
    """"conv", "linear" or "lstm"."""
    k: int
    """Rows of one matrix (inputs per MVM)."""
    n: int
    """Columns of one matrix (outputs per MVM)."""
    groups: int
    """Independent matrices (convolution groups)."""
    mvms_per_sample: int
    """MVMs each matrix performs per sample (output pixels, positions or time steps)."""

    @property
    def weights(self) -> int:
        return self.k * self.n * self.groups

    @property
    def macs_per_sample(self) -> int:
        return self.weights * self.mvms_per_sample


def lower(workload: ir.Workload, digital: set[str] = frozenset()) -> list[LayerMatrix]:
    """The K x N matrices of every analog op (but the static-weight layers in `digital`, which
    run on digital nodes), in topological order."""
    return [lower_op(op) for op in workload.analog_ops() if op.name not in digital]


def lower_op(op: ir.Op) -> LayerMatrix:
    """The K x N matrix (per group) of one analog op."""
    if isinstance(op, ir.Conv2d):
        kh, kw = op.kernel
        k = op.weight.shape[1] * kh * kw
        return LayerMatrix(op.name, "conv", k, op.shape[0] // op.groups, op.groups, op.positions)
    k, n = op.weight.shape
    return LayerMatrix(
        op.name, "linear" if isinstance(op, ir.Linear) else "lstm", k, n, 1, op.positions
    )


def analog_traffic(
    workload: ir.Workload, bytes_per_value: int = 1, digital: set[str] = frozenset()
) -> dict[tuple[str, str], int]:
    """{(producer layer, consumer layer): bytes per sample} between analog layers (static-weight
    layers in `digital` run on digital nodes and count as digital ops).

    A consumer reads what its producer emits after any digital ops in between (pooling,
    activations, residual adds); the byte count is the size of the consumer's input tensor.
    Network inputs count as producer "input".
    """
    analog = {op.name for op in workload.analog_ops() if op.name not in digital}
    traffic: dict[tuple[str, str], int] = {}
    for op in workload.analog_ops():
        if op.name not in analog:
            continue
        feed = op.inputs[0]
        size = workload.op(feed).size * bytes_per_value
        for src in _analog_sources(workload, feed, analog):
            traffic[(src, op.name)] = traffic.get((src, op.name), 0) + int(size)
    return traffic


def _analog_sources(workload: ir.Workload, name: str, analog: set[str]) -> list[str]:
    """Nearest analog ops (or "input") upstream of tensor `name`, sorted (a set's order
    follows string hashing, which differs between processes)."""
    found, stack, seen = set(), [name], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in analog:
            found.add(n)
        elif isinstance(workload.op(n), ir.Input):
            found.add("input")
        else:
            stack.extend(workload.graph.predecessors(n))
    return sorted(found)
