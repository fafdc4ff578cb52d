"""The copies (replicas) of an analog layer in the timed run and which one computes what.

A layer mapped with R copies runs one process per copy. Each copy is a set of crossbar blocks
on their own cores that integrate in lockstep; its column lanes (the blocks of one column
slice: all K-split row blocks) convert, gather partial sums at the lane's first block and
post-process there. MVM position g = sample x P + p of a layer with P positions per sample goes
to copy g mod R; a recurrent layer keeps every step of a sample on copy sample mod R (each step
needs the previous one).
A copy whose blocks sit in several weight sets of one core's array runs them one after another
on that array (one pass per set and position, `Core.integrate`).
Simplifications: a lane's partial sums are timed as one packet from its farthest block.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from archsim.mapping import LayerMapping
from archsim.sim.core import Core
from archsim.sim.fabric import Fabric
from archsim.sim.plan import Node, first_reading_row, last_reading_row


@dataclass(slots=True, eq=False)
class Lane:
    """The blocks of one column slice of one copy (all its K-split row blocks)."""

    lead: Core
    """Row block 0: converts, gathers the partial sums, post-processes."""
    far: Core
    """The row block farthest from the lead (its packet times the reduction)."""
    row_blocks: int
    cols: int
    """Outputs per position."""
    passes: int = 1
    """MVMs per position one after another (packed groups: one per diagonal)."""


@dataclass(slots=True, eq=False)
class Replica:
    """One copy of an analog layer."""

    index: int
    lanes: list[Lane]
    blocks: list[tuple[Core, int, int]]
    """(core, inputs read, outputs made) per position of every block of this copy."""
    passes: int = 1
    """Array passes per position (the most MVMs a block of the copy does one after another)."""
    mvms: int = 1
    """Crossbar MVMs of the whole copy per position."""
    hold: list[Core] = field(default_factory=list)
    """Other cores whose array the copy shares with other layers' blocks: held with its own
    array while it integrates."""
    sets: list[tuple[Core, tuple[int, ...], int]] = field(default_factory=list)
    """On a chip with several weight sets per array: per core of the copy, the sets its blocks
    there use (in slot order) and the array passes they take per position; empty otherwise."""

    @property
    def array(self) -> Core:
        """The core whose array times the copy's lockstep integration."""
        return self.lanes[0].lead

    @property
    def cols(self) -> int:
        return sum(lane.cols for lane in self.lanes)


def build_replicas(
    layers: list[LayerMapping], cores: list[Core], fabric: Fabric, weight_sets: int = 1
) -> dict[str, list[Replica]]:
    """The copies of every mapped layer, by layer name; copies with a block on a crossbar that
    other copies use too (side by side, or in another weight set) hold that crossbar's array
    while they integrate (they take turns). With `weight_sets` > 1 each copy lists the sets it
    uses per core (`Replica.sets`), so its integration switches the arrays to them."""
    replicas = {lm.name: _copies(lm, cores, fabric, weight_sets > 1) for lm in layers}
    users: dict[Core, set] = defaultdict(set)
    for name, reps in replicas.items():
        for rep in reps:
            for core, _, _ in rep.blocks:
                users[core].add((name, rep.index))
    for reps in replicas.values():
        for rep in reps:
            shared = {c for c, _, _ in rep.blocks if len(users[c]) > 1} - {rep.array}
            rep.hold = sorted(shared, key=lambda c: c.index)
    return replicas


def _copies(lm: LayerMapping, cores: list[Core], fabric: Fabric, sets: bool) -> list[Replica]:
    reps = []
    for r in range(lm.replicas):
        blocks = [b for b in lm.blocks if b.replica == r]
        lanes = []
        for lead in (b for b in blocks if b.row_block == 0):  # packed groups: one lane
            lane = [b for b in blocks if (b.group, b.col_block) == (lead.group, lead.col_block)]
            far = max(lane, key=lambda b, lead=lead: len(fabric.route(b.core, lead.core)))
            lanes.append(
                Lane(cores[lead.core], cores[far.core], len(lane), _outputs(lm, lead), lead.mvms)
            )
        used = [(cores[b.core], _inputs(lm, b), _outputs(lm, b)) for b in blocks]
        # per core: one array pass per weight set it uses, as many as its blocks there need
        passes: dict[int, dict[int, int]] = defaultdict(dict)
        for b in blocks:
            passes[b.core][b.slot] = max(passes[b.core].get(b.slot, 0), b.mvms)
        slots = [(cores[c], tuple(sorted(p)), sum(p.values())) for c, p in sorted(passes.items())]
        reps.append(
            Replica(
                r,
                lanes,
                used,
                max(n for _, _, n in slots),
                sum(b.mvms for b in blocks),
                sets=slots if sets else [],
            )
        )
    return reps


def _inputs(lm: LayerMapping, block) -> int:
    """Input values one position drives into a block (all its packed groups' rows)."""
    return block.groups * lm.matrix.k if block.groups > 1 else block.rows


def _outputs(lm: LayerMapping, block) -> int:
    """Output values one position takes from a block (all its packed groups' columns)."""
    return block.groups * lm.matrix.n if block.groups > 1 else block.cols


def owner(node: Node, copies: int, sample: int, position: int) -> int:
    """The copy (of `copies`) that computes `position` of `sample`."""
    if node.recurrent:
        return sample % copies
    return (sample * node.positions + position) % copies


def positions_of(node: Node, copies: int, copy: int, sample: int) -> list[int]:
    """The positions of `sample` that copy `copy` computes, in order."""
    if node.recurrent:
        return list(range(node.positions)) if sample % copies == copy else []
    start = (copy - sample * node.positions) % copies
    return list(range(start, node.positions, copies))


def chunks(positions: list[int], per_row: int, chunk: int) -> list[tuple[int, int]]:
    """(output row, k) per chunk: up to `chunk` consecutive `positions` of one output row
    (`per_row` positions per row) grouped into one event."""
    out: list[tuple[int, int]] = []
    for pos in positions:
        row = pos // per_row
        if out and out[-1][0] == row and out[-1][1] < chunk:
            out[-1] = (row, out[-1][1] + 1)
        else:
            out.append((row, 1))
    return out


def reads_row(node: Node, copies: int, copy: int, sample: int, producer: Node, in_row: int) -> bool:
    """Does copy `copy` read row `in_row` of `producer` for `sample`?"""
    if node.recurrent:
        return sample % copies == copy
    ppr = node.positions_per_row
    lo = first_reading_row(node, producer, in_row) * ppr
    hi = min(node.positions, (last_reading_row(node, producer, in_row) + 1) * ppr)
    start = (copy - sample * node.positions) % copies
    return lo < hi and lo + (start - lo) % copies < hi
