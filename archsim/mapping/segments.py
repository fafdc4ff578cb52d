"""Networks larger than the chip: segments that fit, run one after another with reloads.

When the chip's mapping policy allows weight reloads, a workload whose blocks exceed the cores
is cut, in topological order of its analog layers, into segments whose blocks fit. Each segment
is a workload of its own: tensors it reads from earlier segments become its inputs (they come
back through the off-chip interface) and tensors later segments read become its outputs. A
batch of samples runs through segment 1, the crossbars are reprogrammed with segment 2, and so
on. A single layer larger than the whole chip still raises `MappingError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archsim.errors import MappingError
from archsim.mapping.lowering import lower
from archsim.mapping.mapper import Mapping, map_workload
from archsim.spec import ChipSpec
from archsim.workload import ir
from archsim.workload.ir import GraphBuilder, Workload


@dataclass(frozen=True, slots=True)
class Reload:
    """Cost of programming one segment's weights from off-chip memory."""

    time_ns: float
    """Weights streamed in, then every core programs its block (cores in parallel)."""
    energy_pj: float
    devices: int
    weight_bytes: int


def split_workload(
    workload: Workload, chip: ChipSpec, max_cores: int | None = None
) -> list[Workload]:
    """Cut `workload` into segments whose crossbar blocks fit on `chip` (one block per core)."""
    cores = max_cores or chip.cores.count
    rows, cols = chip.crossbar.rows, chip.crossbar.cols
    need = {m.layer: math.ceil(m.k / rows) * math.ceil(m.n / cols) * m.groups
            for m in lower(workload)}  # fmt: skip
    for layer, n in need.items():
        if n > cores:
            raise MappingError(f"{workload.name}: layer {layer} alone needs {n} cores "
                               f"({rows}x{cols} blocks) but {chip.name} has {cores}")  # fmt: skip
    segment: dict[str, int] = {}
    current, used = 0, 0
    for op in workload.ops():
        if isinstance(op, ir.Input):
            continue
        here = max((segment.get(s, 0) for s in op.inputs), default=0)
        if op.name in need:
            if used + need[op.name] > cores or here > current:
                current, used = max(current + (used > 0), here), 0
            used += need[op.name]
            here = current
        segment[op.name] = here
    parts = []
    for s in range(max(segment.values(), default=0) + 1):
        parts.append(_segment(workload, segment, s))
    return [p for p in parts if p is not None]


def _segment(workload: Workload, segment: dict[str, int], s: int) -> Workload | None:
    ops = [op for op in workload.ops() if segment.get(op.name) == s]
    if not ops:
        return None
    g = GraphBuilder(f"{workload.name}[{s + 1}]", workload.source)
    for op in ops:
        for src in op.inputs:
            if not g.has(src) and segment.get(src) != s:
                g.add(ir.Input(src, (), workload.op(src).shape))
        g.add(op)
    for op in ops:
        later = any(segment.get(c, s) > s for c in workload.graph.successors(op.name))
        if later or op.name in workload.outputs:
            g.output(op.name)
    return g.build()


def map_segments(workload: Workload, chip: ChipSpec, **kwargs) -> list[Mapping]:
    """Mappings of the segments of `workload` (see `split_workload`)."""
    return [map_workload(part, chip, **kwargs) for part in split_workload(workload, chip)]


def reload_cost(mapping: Mapping) -> Reload:
    """Programming a mapped segment: its weights (8-bit) come through the off-chip interface,
    then every core programs its block row by row, all cores at once."""
    chip = mapping.chip
    xb, mem = chip.crossbar, chip.memory
    weights = sum(m.weights * lm.replicas for lm in mapping.layers for m in [lm.matrix])
    devices = weights * xb.devices_per_weight
    rows = max(b.rows for lm in mapping.layers for b in lm.blocks)
    time = weights / mem.offchip_bandwidth_bytes_per_ns + rows * xb.program_ns_per_row
    energy = devices * xb.program_energy_pj_per_device + weights * mem.offchip_energy_pj_per_byte
    return Reload(time, energy, devices, weights)


def merged_mapping(workload: Workload, parts: list[Mapping]) -> Mapping:
    """One mapping of the whole workload listing every segment's layers (cores are reused
    between segments), for the functional run."""
    layers = tuple(lm for p in parts for lm in p.layers)
    edges = tuple(e for p in parts for e in p.edges)
    first = parts[0]
    return Mapping(first.chip, workload, layers, edges, first.placement, first.replication,
                   sum(p.bytes_hops_per_sample for p in parts), segments=len(parts))  # fmt: skip
