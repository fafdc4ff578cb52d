"""Networks larger than the chip: segments that fit, run one after another with reloads.

When the chip's mapping policy allows weight reloads, a workload whose crossbars exceed the
cores is cut, in topological order of its analog layers, into segments whose crossbars fit.
Each segment is a workload of its own: tensors it reads from earlier segments become its inputs
(they come back through the off-chip interface) and tensors later segments read become its
outputs. A batch of samples runs through segment 1, the crossbars are reprogrammed with segment
2, and so on.

A single layer larger than the whole chip (a linear layer, or an ungrouped convolution) is cut
into parts along K (at crossbar-row boundaries; convolutions at input-channel boundaries) and N
(at crossbar-column boundaries), as few K cuts as possible. Each part is an op of the same kind
on its slice of the weights; a part of a K cut reads its slice of the input from off-chip
memory, starts a segment after the one that made the input, and writes its partial sums
off-chip; the segment of the layer's last part reads the others back, adds the partial sums of
each column slice on a digital unit and concatenates the column slices into the layer's output
tensor. Simplifications: partial sums travel at the activation width (`bytes_per_value`) rather
than FP16; the functional model computes a split layer as one matrix tiled into crossbar row
blocks, which is the same sum whenever K cuts fall on crossbar-row boundaries (always for
linear layers). LSTMs and grouped convolutions larger than the chip raise `MappingError`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from archsim.errors import MappingError
from archsim.mapping.hetero import check_digital_layers
from archsim.mapping.lowering import lower, lower_op
from archsim.mapping.mapper import LayerMapping, Mapping, crossbars, map_workload, packing
from archsim.spec import ChipSpec
from archsim.workload import ir
from archsim.workload.ir import GraphBuilder, Workload


@dataclass(frozen=True, slots=True)
class Reload:
    """Cost of programming one segment's weights from off-chip memory."""

    time_ns: float
    """Weights streamed in, then every core programs its block (cores in parallel)."""
    devices: int
    """Devices programmed (their energy is counted from the timeline, `metrics`)."""
    weight_bytes: int


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """How a workload is cut into segments."""

    segments: tuple[Workload, ...]
    part_of: dict[str, str]
    """Part op name -> the layer it is a part of (layers larger than the chip only)."""
    slices: dict[str, tuple[str, int, int]]
    """Segment input holding a slice of a tensor -> (tensor, first, end) along its channel
    (convolution) or last (linear) axis."""


def split_workload(
    workload: Workload, chip: ChipSpec, max_cores: int | None = None
) -> list[Workload]:
    """Cut `workload` into segments whose crossbars fit on `chip` (see the module docstring)."""
    return list(plan_segments(workload, chip, max_cores).segments)


def plan_segments(workload: Workload, chip: ChipSpec, max_cores: int | None = None) -> SplitPlan:
    """The segments of `workload` on `chip`, with the parts of layers larger than the chip
    (a segment holds as many crossbars as the cores have weight sets)."""
    cores = (max_cores or chip.cores.count) * chip.crossbar.weight_sets
    room = "cores" if chip.crossbar.weight_sets == 1 else "(core, weight set) places"
    rows, cols = chip.crossbar.rows, chip.crossbar.cols
    need = {m.layer: crossbars(m, rows, cols, packing(m, rows, cols)[0]) for m in lower(workload)}
    ops: list[ir.Op] = []
    part_of: dict[str, str] = {}
    slices: dict[str, tuple[str, int, int]] = {}
    for op in workload.ops():
        if need.get(op.name, 0) <= cores:
            ops.append(op)
            continue
        parts, assembly, cuts = _split(workload, op, rows, cols, cores, room)
        del need[op.name]  # its name now tags the digital op that joins the parts
        for part in parts:
            need[part.name] = crossbars(lower_op(part), rows, cols)
            part_of[part.name] = op.name
        slices.update(cuts)
        ops.extend(parts + assembly)
    by_name = {op.name: op for op in workload.ops()} | {op.name: op for op in ops}
    for name, (src, a, b) in slices.items():
        by_name[name] = ir.Input(name, (), _sliced_shape(by_name[src], a, b))
    segment: dict[str, int] = {}
    current, used = 0, 0
    for op in ops:
        if isinstance(op, ir.Input):
            continue
        here = max(
            (
                segment.get(slices[s][0], -1) + 1 if s in slices else segment.get(s, 0)
                for s in op.inputs
            ),
            default=0,
        )
        if op.name in need:
            if used + need[op.name] > cores or here > current:
                current, used = max(current + (used > 0), here), 0
            used += need[op.name]
            here = current
        segment[op.name] = here
    readers: dict[str, list[str]] = {}
    for op in ops:
        for src in op.inputs:
            readers.setdefault(slices[src][0] if src in slices else src, []).append(op.name)
    parts = []
    for s in range(max(segment.values(), default=0) + 1):
        parts.append(_segment(workload, ops, by_name, readers, segment, s))
    return SplitPlan(tuple(p for p in parts if p is not None), part_of, slices)


def _split(workload: Workload, op: ir.Op, rows: int, cols: int, cores: int, room: str):
    """Parts of a layer larger than the chip, the ops joining their outputs, and the slice
    inputs the parts read: (parts, assembly ops, {slice input: (tensor, first, end)})."""
    if not isinstance(op, ir.Linear | ir.Conv2d) or getattr(op, "groups", 1) > 1:
        kind = type(op).__name__ + (" with groups" if getattr(op, "groups", 1) > 1 else "")
        raise MappingError(
            f"{workload.name}: layer {op.name} alone needs more than the "
            f"{cores} {room} of the chip, and a {kind} cannot be cut into "
            f"parts over segments"
        )
    conv = isinstance(op, ir.Conv2d)
    unit = op.kernel[0] * op.kernel[1] if conv else 1  # K rows per input channel
    k_total = op.weight.shape[1] * unit if conv else op.weight.shape[0]
    n_total = op.shape[0] if conv else op.shape[-1]
    k_cut = n_cut = 0
    for a in range(1, math.ceil(k_total / rows) + 1):
        k_cut = math.ceil(math.ceil(k_total / rows) / a) * rows // unit * unit
        if k_cut >= unit and math.ceil(k_cut / rows) <= cores:
            n_cut = cores // math.ceil(k_cut / rows) * cols
            break
    else:
        raise MappingError(
            f"{workload.name}: layer {op.name}: one input channel's "
            f"{unit} rows do not fit {cores} crossbars of {rows} rows"
        )
    k_ranges = [(k, min(k + k_cut, k_total)) for k in range(0, k_total, k_cut)]
    n_ranges = [(n, min(n + n_cut, n_total)) for n in range(0, n_total, n_cut)]
    src = op.inputs[0]
    parts, cuts, columns = [], {}, []
    for j, (n0, n1) in enumerate(n_ranges):
        col = []
        for i, (k0, k1) in enumerate(k_ranges):
            x = src
            if len(k_ranges) > 1:
                x = f"{op.name}.in{i}"
                cuts[x] = (src, k0 // unit, k1 // unit)
            name = f"{op.name}.k{i}n{j}"
            bias = None if op.bias is None or i > 0 else op.bias[n0:n1]
            if conv:
                w = op.weight[n0:n1, k0 // unit : k1 // unit]
                parts.append(
                    dataclasses.replace(
                        op,
                        name=name,
                        inputs=(x,),
                        weight=w,
                        bias=bias,
                        shape=(n1 - n0, *op.shape[1:]),
                    )
                )
            else:
                parts.append(
                    dataclasses.replace(
                        op,
                        name=name,
                        inputs=(x,),
                        bias=bias,
                        weight=op.weight[k0:k1, n0:n1],
                        shape=(*op.shape[:-1], n1 - n0),
                    )
                )
            col.append(parts[-1])
        columns.append(col)
    assembly = []
    sums = []
    for j, col in enumerate(columns):
        total = col[0]
        for i, part in enumerate(col[1:], start=1):
            last = i == len(col) - 1 and len(columns) == 1
            total = ir.Binary(
                op.name if last else f"{op.name}.sum{j}.{i}",
                (total.name, part.name),
                part.shape,
                "add",
            )
            assembly.append(total)
        sums.append(total.name)
    if len(columns) > 1:
        axis = 0 if conv else len(op.shape) - 1
        assembly.append(ir.Concat(op.name, tuple(sums), op.shape, axis))
    return parts, assembly, cuts


def _sliced_shape(op: ir.Op, first: int, end: int) -> tuple[int, ...]:
    """Shape of channels (C, H, W: axis 0) or features (last axis) first..end of a tensor."""
    if len(op.shape) == 3:
        return (end - first, *op.shape[1:])
    return (*op.shape[:-1], end - first)


def _segment(workload, ops, by_name, readers, segment, s) -> Workload | None:
    mine = [op for op in ops if segment.get(op.name) == s]
    if not mine:
        return None
    g = GraphBuilder(f"{workload.name}[{s + 1}]", workload.source)
    for op in mine:
        for src in op.inputs:
            if not g.has(src) and segment.get(src) != s:
                g.add(ir.Input(src, (), by_name[src].shape))
        g.add(op)
    for op in mine:
        later = any(segment.get(c, s) > s for c in readers.get(op.name, ()))
        if later or op.name in workload.outputs:
            g.output(op.name)
    return g.build()


def map_segments(workload: Workload, chip: ChipSpec, **kwargs) -> list[Mapping]:
    """Mappings of the segments of `workload` (see `plan_segments`); a mapping that holds
    parts of a split layer names them in its `part_of`."""
    plan = plan_segments(workload, chip)
    out = []
    for seg in plan.segments:
        m = map_workload(seg, chip, **kwargs)
        mine = {lm.name: plan.part_of[lm.name] for lm in m.layers if lm.name in plan.part_of}
        out.append(dataclasses.replace(m, part_of=mine))
    return out


def reload_cost(mapping: Mapping) -> Reload:
    """Programming a mapped segment: its weights (8-bit) come through the off-chip interface,
    then every core programs its block row by row, all cores at once (a core with blocks in
    several weight sets programs them one set after another)."""
    chip = mapping.chip
    xb, mem = chip.crossbar, chip.memory
    weights = sum(m.weights * lm.replicas for lm in mapping.layers for m in [lm.matrix])
    devices = weights * xb.devices_per_weight
    per_set: dict[tuple[int, int], int] = {}
    for lm in mapping.layers:
        for b in lm.blocks:
            per_set[(b.core, b.slot)] = max(per_set.get((b.core, b.slot), 0), b.rows)
    per_core: dict[int, int] = {}
    for (core, _), r in per_set.items():
        per_core[core] = per_core.get(core, 0) + r
    rows = max(per_core.values())
    time = weights / mem.offchip_bandwidth_bytes_per_ns + rows * xb.program_ns_per_row
    return Reload(time, devices, weights)


def merged_mapping(workload: Workload, parts: list[Mapping]) -> Mapping:
    """One mapping of the whole workload listing every segment's layers (cores are reused
    between segments), for the functional run and the reports: the parts of a split layer are
    one layer again, with all their blocks and `parts` set."""
    found: dict[str, list[LayerMapping]] = {}
    for p in parts:
        for lm in p.layers:
            found.setdefault(p.part_of.get(lm.name, lm.name), []).append(lm)
    rows, cols = parts[0].chip.crossbar.rows, parts[0].chip.crossbar.cols
    layers = []
    for m in lower(workload):
        lms = found[m.layer]
        if len(lms) == 1 and lms[0].name == m.layer:
            layers.append(lms[0])
            continue
        blocks = tuple(
            dataclasses.replace(b, layer=m.layer, replica=0) for lm in lms for b in lm.blocks
        )
        layers.append(
            LayerMapping(m, math.ceil(m.k / rows), math.ceil(m.n / cols), 1, blocks, parts=len(lms))
        )
    edges = tuple(e for p in parts for e in p.edges)
    first = parts[0]
    part_of = {k: v for p in parts for k, v in p.part_of.items()}
    return Mapping(
        first.chip,
        workload,
        tuple(layers),
        edges,
        first.placement,
        first.replication,
        sum(p.bytes_hops_per_sample for p in parts),
        segments=len(parts),
        part_of=part_of,
    )


def segment_layers(workload: Workload, parts: list[Mapping]) -> Mapping:
    """Every segment's layers as they ran (parts of split layers by their own names), for the
    timed run's metrics."""
    first = parts[0]
    return Mapping(
        first.chip,
        workload,
        tuple(lm for p in parts for lm in p.layers),
        tuple(e for p in parts for e in p.edges),
        first.placement,
        first.replication,
        sum(p.bytes_hops_per_sample for p in parts),
        segments=len(parts),
        part_of={k: v for p in parts for k, v in p.part_of.items()},
    )


def map_or_segment(
    workload: Workload,
    chip: ChipSpec,
    *,
    placement: str | None = None,
    replication: str | None = None,
    share: bool = False,
) -> tuple[Mapping, list[Mapping] | None]:
    """The workload mapped whole; or, when it does not fit and the chip allows weight reloads,
    the mapping merged from its segments (each mapped without replicas: copies would have to be
    reprogrammed for every batch) and the segments themselves (None when it fits).

    Raises:
        MappingError: it does not fit and reloads are off, or one layer cannot be split.
    """
    check_digital_layers(workload, chip.mapping.digital_layers)
    try:
        whole = map_workload(
            workload, chip, placement=placement, replication=replication, share=share
        )
        return whole, None
    except MappingError:
        if not chip.mapping.weight_reload:
            raise
        if chip.mapping.digital_layers:
            raise MappingError(
                f"{workload.name} does not fit {chip.name} and would run in segments with weight "
                "reloads, which do not model static-weight layers on digital nodes "
                f"(digital_layers: {', '.join(chip.mapping.digital_layers)})"
            ) from None
    parts = map_segments(workload, chip, placement=placement, replication="none")
    return merged_mapping(workload, parts), parts
