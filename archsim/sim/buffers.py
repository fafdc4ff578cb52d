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
    claimed = {"input": defaultdict(int), "output": defaultdict(int)}  # by layers before
    for node in plan.values():
        if node.kind != "analog":
            continue
        reps = replicas[node.name]
        needs: dict[str, dict[Core, int]] = {"input": defaultdict(int), "output": defaultdict(int)}
        for p in node.inputs:
            prod = plan[p]
            window = max(
                rows_needed(node, prod, r) - (0 if r == 0 else rows_released_before(node, prod, r))
                for r in range(node.rows)
            )
            buffered_rows = window + len(reps) + 1
            for rep in reps:
                for core, rows, _ in rep.blocks:
                    needs["input"][core] += int(
                        np.ceil(buffered_rows * prod.row_bytes * rows / node_k(node))
                    )
        for rep in reps:
            for lane in rep.lanes:
                row_outputs = (node.positions_per_row + 2) * lane.cols * bytes_per_value
                needs["output"][lane.lead] += row_outputs
        for buffer, cores in needs.items():
            for core, required in cores.items():
                claimed[buffer][core] += required
                total = claimed[buffer][core]
                if core.grow_sram(buffer, total):
                    grown.append(f"{core.name} {buffer} SRAM for {node.name}: {total} B")
    return grown
