"""Activation SRAM sizing before a timed run: grow the buffers that cannot hold what the
pipeline must keep, so it cannot deadlock.

A copy of an analog layer needs, per producer, the input rows of one output row's receptive
field (the line buffer's window) plus one row per copy in flight and one arriving; each block
holds its share of a row (its input rows over the layer's K). A lane's lead keeps the outputs
of one row's positions plus two in its output SRAM. Layers sharing a core add their needs.
Simplifications: the sizes are these static bounds, not a search for the smallest that runs.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from archsim.sim.core import Core
from archsim.sim.plan import Node, node_k, rows_needed, rows_released_before
from archsim.sim.replicas import Replica


def grow_buffers(
    plan: dict[str, Node], replicas: dict[str, list[Replica]], bytes_per_value: int
) -> list[str]:
    """Grow the SRAM of cores whose blocks cannot hold one output row's receptive field (or a
    whole input a layer needs at once); returns one line per growth."""
    grown: list[str] = []
    claimed_in: dict[Core, int] = defaultdict(int)  # by layers sharing the core before
    claimed_out: dict[Core, int] = defaultdict(int)
    for node in plan.values():
        if node.kind != "analog":
            continue
        reps = replicas[node.name]
        mine: dict[Core, int] = defaultdict(int)
        for p in node.inputs:
            prod = plan[p]
            window = max(
                rows_needed(node, prod, r) - (0 if r == 0 else rows_released_before(node, prod, r))
                for r in range(node.rows)
            )
            buffered_rows = window + len(reps) + 1
            for rep in reps:
                for core, rows, _ in rep.blocks:
                    mine[core] += int(np.ceil(buffered_rows * prod.row_bytes * rows / node_k(node)))
        for core, required in mine.items():
            required += claimed_in[core]
            claimed_in[core] = required
            if required > core.inbuf.capacity:
                core.grow_sram(input_bytes=required)
                grown.append(f"{core.name} input SRAM for {node.name}: {required} B")
        outs: dict[Core, int] = defaultdict(int)
        for rep in reps:
            for lane in rep.lanes:
                outs[lane.lead] += (node.positions_per_row + 2) * lane.cols * bytes_per_value
        for core, cap in outs.items():
            cap += claimed_out[core]
            claimed_out[core] = cap
            if cap > core.outbuf.capacity:
                core.grow_sram(output_bytes=cap)
                grown.append(f"{core.name} output SRAM for {node.name}: {cap} B")
    return grown
