"""Heterogeneous placement: which digital unit runs each digital op.

A mapped workload has analog layers (static-weight MVMs on AIMC cores) and digital ops:
pooling, residual adds, softmax, norms, products with two dynamic operands (Q.K^T, A.V), an
LSTM's gate arithmetic, and static-weight layers the mapping puts on digital nodes
(`MappingSpec.digital_layers`). Each digital op runs on one of the chip's digital units
(`archsim.spec.digital.digital_units`: GDPUs and digital accelerator nodes); a policy of
`POLICIES` chooses which:
- "spread": a fixed spread by the op's name over the units that can run its class (today's
  assignment; the default on chips without digital nodes, so their results stay as they were);
- "balanced": in topological order, each op to the unit that would finish it earliest given the
  work per sample already assigned and the unit's per-class rate (ties: the first unit); the
  default on chips with digital nodes;
- "rows": data parallel: the rows of each digital op (tokens of a sequence, query rows of an
  attention product) are dealt round-robin over every unit that can run its class, so all
  units share every op; the op's home unit (where its input rows arrive) is the balanced one.
A unit whose rate for a class is 0 is never chosen; an op no unit can run is a MappingError.

Simplifications: the balanced policy looks at work per sample, not at when in the pipeline the
work arrives; a static-weight layer on a digital node also counts its bias adds as free; with
"rows", an op's input rows travel to its home unit only (forwarding a row to the unit that
computes it is not timed) and each unit spills its share of the op as the home unit would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archsim.errors import MappingError
from archsim.spec import ChipSpec
from archsim.spec.digital import DigitalUnitSpec, digital_units
from archsim.workload import ir

FUSABLE = (ir.Act, ir.Affine)
"""Element-wise ops an analog layer's LDPU absorbs when they are its only consumer."""

SHAPE_OPS = (ir.Reshape, ir.Transpose, ir.Concat, ir.SliceLast)
"""Ops that only move values: free, run nowhere."""

LSTM_OPS_PER_HIDDEN = 10.0
"""Element operations of an LSTM's gates and cell update per hidden unit and time step."""


@dataclass(frozen=True, slots=True)
class Work:
    """What one digital op asks of a unit per sample."""

    op_class: str
    """One of `archsim.spec.digital.OP_CLASSES`."""
    ops: float
    """Element operations (a MAC counts once): the work of a GDPU, and the energy basis of
    every class but matmul on a digital node."""
    amount: float
    """Work in the class's own unit on a digital node: MACs (matmul), output elements
    (softmax, norm) or element operations (elementwise)."""


def op_class(op: ir.Op) -> str:
    """The class of digital work an op is: "matmul", "softmax", "norm" or "elementwise"."""
    if isinstance(op, ir.MatMul | ir.Linear):
        return "matmul"
    if isinstance(op, ir.Softmax):
        return "softmax"
    if isinstance(op, ir.LayerNorm | ir.Affine):
        return "norm"
    return "elementwise"


def gdpu_ops(op: ir.Op, workload: ir.Workload) -> float:
    """Element operations of a digital op for one sample (a multiply-add counts once)."""
    n = op.size
    if isinstance(op, ir.Pool):
        return float(n * op.kernel[0] * op.kernel[1])
    if isinstance(op, ir.GlobalPool):
        return float(workload.op(op.inputs[0]).size)
    if isinstance(op, ir.MatMul):
        k = workload.op(op.inputs[0]).shape[-1]
        return float(n * k)
    if isinstance(op, ir.Linear):  # a static-weight layer placed on a digital node
        return float(n * op.weight.shape[0])
    if isinstance(op, ir.Softmax):
        return 3.0 * n
    if isinstance(op, ir.LayerNorm):
        return 5.0 * n
    if isinstance(op, ir.Affine):
        return 2.0 * n
    return float(n)


def op_work(op: ir.Op, workload: ir.Workload) -> Work:
    """The per-sample work of a digital op."""
    cls = op_class(op)
    ops = gdpu_ops(op, workload)
    return Work(cls, ops, float(op.size) if cls in ("softmax", "norm") else ops)


def lstm_work(op: ir.Lstm) -> Work:
    """The gate and cell-update arithmetic of an LSTM layer per sample (element-wise)."""
    ops = LSTM_OPS_PER_HIDDEN * op.hidden * op.positions
    return Work("elementwise", ops, ops)


def unit_ns(unit: DigitalUnitSpec, work: Work, share: float = 1.0) -> float:
    """Time `unit` takes for `share` of `work` (the class must be one it can run)."""
    amount = work.ops if unit.counts_ops else work.amount
    return amount * share / unit.per_ns(work.op_class)


def classify(workload: ir.Workload, analog: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """How the timed run executes each op, given the ops mapped on AIMC cores.

    Returns:
        ({op: kind}, {op: node that computes it}); kind is "input", "analog", "shape",
        "gdpu" (a digital unit) or "fused" (element-wise work in the LDPU of the analog node
        it is fused into: its only producer, or an op already fused into it).
    """
    g = workload.graph
    kind: dict[str, str] = {}
    owner: dict[str, str] = {}
    for op in workload.ops():
        preds = list(op.inputs)
        if isinstance(op, FUSABLE) and len(preds) == 1:
            src = owner[preds[0]]
            if kind[src] == "analog" and g.out_degree(preds[0]) == 1:
                kind[op.name], owner[op.name] = "fused", src
                continue
        if isinstance(op, ir.Input):
            kind[op.name] = "input"
        elif op.name in analog:
            kind[op.name] = "analog"
        elif isinstance(op, SHAPE_OPS):
            kind[op.name] = "shape"
        else:
            kind[op.name] = "gdpu"
        owner[op.name] = op.name
    return kind, owner


@dataclass(frozen=True, slots=True)
class DigitalPlacement:
    """The digital units of a chip and the digital ops each one runs."""

    units: tuple[DigitalUnitSpec, ...]
    policy: str
    """The policy that chose (`POLICIES`)."""
    unit_of: dict[str, int]
    """Digital op (or LSTM layer, for its gates) -> index into `units`."""
    work: dict[str, Work]
    """Per-sample work of each op of `unit_of`."""
    layer_weights: dict[str, int] = field(default_factory=dict)
    """Static-weight layers placed on digital nodes (class matmul) -> their weight count,
    held in the node's SRAM."""
    row_units: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Digital op -> the units that share its rows round-robin (policy "rows"); an op not in
    it runs whole on `unit_of`."""

    def unit(self, name: str) -> DigitalUnitSpec:
        return self.units[self.unit_of[name]]

    def units_of(self, name: str) -> tuple[int, ...]:
        """Indices of the units that compute op `name`'s rows (its unit, or the row sharers)."""
        return self.row_units.get(name) or (self.unit_of[name],)

    def load_ns(self) -> list[float]:
        """Estimated busy time per sample of each unit."""
        load = [0.0] * len(self.units)
        for name in self.unit_of:
            sharers = self.units_of(name)
            for i in sharers:
                load[i] += unit_ns(self.units[i], self.work[name], 1.0 / len(sharers))
        return load

    def weight_bytes(self, index: int, bytes_per_value: int = 1) -> int:
        """Bytes of static weights held in unit `index`'s SRAM (its digital layers)."""
        return sum(
            w * bytes_per_value for n, w in self.layer_weights.items() if self.unit_of[n] == index
        )


Chooser = Callable[[list[tuple[str, Work, list[int]]], tuple[DigitalUnitSpec, ...]], dict[str, int]]


def place_spread(jobs, units) -> dict[str, int]:
    """Each op to a fixed unit by a sum of its name's bytes, among the units that can run it."""
    return {name: able[sum(name.encode()) % len(able)] for name, _, able in jobs}


def place_balanced(jobs, units) -> dict[str, int]:
    """Each op, in order, to the unit that finishes it first given the work already assigned."""
    load = [0.0] * len(units)
    out = {}
    for name, work, able in jobs:
        best = min(able, key=lambda i: (load[i] + unit_ns(units[i], work), i))
        load[best] += unit_ns(units[best], work)
        out[name] = best
    return out


POLICIES: dict[str, Chooser] = {
    "spread": place_spread,
    "balanced": place_balanced,
    "rows": place_balanced,  # the home units; `place_digital` deals the rows out
}
"""Digital placement policies by name (the names `MappingSpec.digital_policy` accepts,
`archsim.spec.digital.DIGITAL_POLICIES`)."""


def place_digital(
    workload: ir.Workload,
    chip: ChipSpec,
    analog: set[str],
    policy: str | None = None,
    digital_layers: tuple[str, ...] = (),
) -> DigitalPlacement:
    """Choose a digital unit for every digital op of `workload` (analog layers: `analog`).

    Raises:
        MappingError: an unknown policy, or an op no unit can run (naming the op and class).
    """
    policy = policy or chip.mapping.digital_policy or default_policy(chip)
    if policy not in POLICIES:
        raise MappingError(f"digital_policy: expected one of {', '.join(POLICIES)}, got {policy!r}")
    units = digital_units(chip)
    kind, _ = classify(workload, analog)
    jobs = []
    forced = set(digital_layers)
    for op in workload.ops():
        if kind[op.name] == "gdpu":
            work = op_work(op, workload)
        elif kind[op.name] == "analog" and isinstance(op, ir.Lstm):
            work = lstm_work(op)
        else:
            continue
        able = [
            i
            for i, u in enumerate(units)
            if u.can_run(work.op_class) and (u.node or op.name not in forced)
        ]
        if not able:
            where = "digital node" if op.name in forced else "digital unit"
            raise MappingError(
                f"{workload.name}: op {op.name!r} ({type(op).__name__}, class {work.op_class}) "
                f"has no {where} on {chip.name} that can run class {work.op_class} "
                f"(units: {', '.join(u.name for u in units)})"
            )
        jobs.append((op.name, work, able))
    unit_of = POLICIES[policy](jobs, units)
    weights = {n: int(workload.op(n).weight.size) for n in digital_layers}
    shared = {}
    if policy == "rows":  # an LSTM's gates stay with its layer
        shared = {n: tuple(able) for n, _, able in jobs if len(able) > 1 and kind[n] == "gdpu"}
    work = {n: w for n, w, _ in jobs}
    return DigitalPlacement(units, policy, unit_of, work, weights, shared)


def default_policy(chip: ChipSpec) -> str:
    """ "balanced" on a chip with digital nodes, else "spread" (today's assignment)."""
    return "balanced" if chip.digital_nodes else "spread"


def check_digital_layers(workload: ir.Workload, names: tuple[str, ...]) -> None:
    """Refuse a digital layer that is not a static-weight Linear layer of `workload`."""
    linear = [op.name for op in workload.analog_ops() if isinstance(op, ir.Linear)]
    for name in names:
        if name not in linear:
            raise MappingError(
                f"digital layer {name!r} (--digital-layer, [mapping] digital_layers): not a "
                f"static-weight linear layer of {workload.name} (linear layers: "
                f"{', '.join(linear) or 'none'})"
            )
