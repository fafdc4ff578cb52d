"""Put a workload on a chip: tile every matrix into crossbar blocks, replicate, place.

Each core holds one crossbar, so one block (a rows x cols slice of one matrix, all of its
devices) occupies one core. Convolution groups whose K_g x N_g matrix fits a crossbar are packed
(`packing`): the crossbar is a grid of K_g x N_g slots, one group per slot, the cells outside
the slots left unprogrammed (zero weight: no current, not counted as weights). Groups on a
diagonal of slots (no shared rows or columns) are computed by one MVM, block-diagonal; the
diagonals run one after another, driving only their groups' rows and converting only their
columns. So the crossbar MVMs per position stay those of a block-diagonal packing, while the
crossbars needed shrink to the slots' worth. A layer's copy is all of its blocks; replicas are
further copies that share the layer's MVMs. Placement assigns blocks to cores of the fabric grid.

With `share`, a network whose blocks need more cores than there are puts blocks of different
layers on one crossbar (`archsim.mapping.sharing`), one copy of each layer. On a chip whose
arrays hold several weight sets, such a network is always packed that way and the packed
crossbars go into (core, weight set) places (`archsim.mapping.slots`, `Block.slot`).

Simplifications: a crossbar holds blocks of one layer only unless `share` is asked or weight
sets are needed; traffic
between two layers is spread evenly over their block pairs; K-split partial sums (16-bit) go to
the block holding the first row slice of the same columns; network inputs and outputs are not
placed (they enter and leave through the off-chip interface).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from archsim.errors import MappingError
from archsim.mapping.hetero import DigitalPlacement, check_digital_layers, place_digital
from archsim.mapping.lowering import LayerMatrix, analog_traffic, lower
from archsim.mapping.policies import PLACEMENT, REPLICATION, hops, total_cost
from archsim.mapping.sharing import shelf_pack
from archsim.mapping.slots import assign_slots, group_links
from archsim.spec import ChipSpec
from archsim.workload.ir import Workload

PARTIAL_SUM_BYTES = 2
"""Bytes per partial sum sent between the blocks of a K-split (FP16 in the LDPUs)."""


@dataclass(frozen=True, slots=True)
class Block:
    """One crossbar's worth of one matrix: rows [r0, r0 + rows) x cols [c0, c0 + cols), or, for
    packed convolution groups, groups [group, group + groups) on the crossbar's diagonal (rows
    and cols are then the diagonal's extent: groups x K_g and groups x N_g)."""

    layer: str
    replica: int
    group: int
    row_block: int
    col_block: int
    rows: int
    cols: int
    core: int
    groups: int = 1
    """Convolution groups on this crossbar (packed when > 1)."""
    mvms: int = 1
    """MVMs per position, one after another (packed groups: one per diagonal of slots)."""
    row0: int = 0
    """First crossbar row the block occupies (0 unless layers share the crossbar)."""
    col0: int = 0
    """First crossbar column the block occupies (0 unless layers share the crossbar)."""
    slot: int = 0
    """Weight set of the core's array that holds the block (0 unless the chip's crossbars
    hold several weight sets and the network needs them, `archsim.mapping.slots`)."""


@dataclass(frozen=True, slots=True)
class LayerMapping:
    """How one analog layer sits on the chip."""

    matrix: LayerMatrix
    row_blocks: int
    col_blocks: int
    replicas: int
    blocks: tuple[Block, ...]
    """All blocks of all replicas."""
    groups_per_crossbar: int = 1
    """Convolution groups packed on one crossbar; 1: one crossbar per group."""
    groups_per_mvm: int = 1
    """Packed groups one MVM computes (a diagonal of the crossbar's slots)."""
    parts: int = 1
    """Pieces the layer was cut into to run over several segments (weight reloads)."""

    @property
    def name(self) -> str:
        return self.matrix.layer

    @property
    def blocks_per_replica(self) -> int:
        """Crossbars of one copy."""
        return len(self.blocks) // self.replicas

    @property
    def mvms_per_position(self) -> int:
        """Crossbar MVMs of one copy per position (packed groups: one per diagonal)."""
        return sum(b.mvms for b in self.blocks) // self.replicas

    @property
    def cores(self) -> tuple[int, ...]:
        return tuple(b.core for b in self.blocks)

    def utilisation(self, rows: int, cols: int) -> float:
        """Fraction of the occupied crossbar cells that hold a weight."""
        return self.matrix.weights * self.replicas / (len(self.blocks) * rows * cols)

    @property
    def mvms_per_sample_per_replica(self) -> float:
        """Stage work: MVMs each block of one copy does per sample."""
        return self.matrix.mvms_per_sample / self.replicas


@dataclass(frozen=True, slots=True)
class TrafficEdge:
    """Bytes per sample between two layers and the mean hops they travel."""

    src: str
    dst: str
    bytes_per_sample: int
    mean_hops: float


@dataclass(frozen=True, slots=True)
class Mapping:
    """A workload placed on a chip."""

    chip: ChipSpec
    workload: Workload
    layers: tuple[LayerMapping, ...]
    edges: tuple[TrafficEdge, ...]
    placement: str
    replication: str
    bytes_hops_per_sample: float
    """Placement objective: bytes x hops per sample over all block pairs that talk
    (layer-to-layer activations and K-split partial sums)."""
    segments: int = 1
    """Segments run one after another with weight reloads (1: everything resident)."""
    part_of: dict[str, str] = dataclasses.field(default_factory=dict)
    """Layer parts -> the workload layer each is a piece of (layers split over segments)."""
    digital: DigitalPlacement | None = None
    """The digital unit of every digital op (None: chosen by the chip's default policy when
    the run starts, `digital_placement`)."""

    def digital_placement(self) -> DigitalPlacement:
        """`digital`, or the chip's default digital placement for these analog layers."""
        if self.digital is not None:
            return self.digital
        return place_digital(self.workload, self.chip, {lm.name for lm in self.layers})

    @property
    def cores_used(self) -> int:
        """Cores holding blocks (with segments: block placements over all segments)."""
        if self.segments > 1:
            return sum(len(lm.blocks) for lm in self.layers)
        return len({b.core for lm in self.layers for b in lm.blocks})

    @property
    def slots_used(self) -> int:
        """(core, weight set) places holding blocks (with segments: block placements over all
        segments); equals `cores_used` on a chip with one weight set."""
        if self.segments > 1:
            return self.cores_used
        return len({(b.core, b.slot) for lm in self.layers for b in lm.blocks})

    @property
    def slots_available(self) -> int:
        """Cores x weight sets of the chip."""
        return self.chip.cores.count * self.chip.crossbar.weight_sets

    def layer(self, name: str) -> LayerMapping:
        return next(lm for lm in self.layers if lm.name == name)

    def core_blocks(self) -> dict[int, Block]:
        """Core index -> the (first) block it holds."""
        out: dict[int, Block] = {}
        for lm in self.layers:
            for b in lm.blocks:
                out.setdefault(b.core, b)
        return out


def map_workload(
    workload: Workload,
    chip: ChipSpec,
    *,
    placement: str | None = None,
    replication: str | None = None,
    max_cores: int | None = None,
    pack: bool = True,
    share: bool = False,
    digital_policy: str | None = None,
    digital_layers: tuple[str, ...] | None = None,
) -> Mapping:
    """Tile, replicate and place `workload` on `chip`.

    Args:
        placement: "sequential" or "greedy" (default: the chip preset's).
        replication: "none" or "balanced" (default: the chip preset's).
        max_cores: core budget (default: all cores of the chip).
        pack: pack convolution groups block-diagonally (else one crossbar per group).
        share: when the blocks need more cores than the budget, let blocks of different
            layers share crossbars (`archsim.mapping.sharing`; one copy of every layer).
            Implied when the chip's crossbars hold several weight sets.
        digital_policy: which digital unit runs each digital op (`archsim.mapping.hetero`;
            default: the chip preset's).
        digital_layers: static-weight linear layers to run on digital nodes instead of AIMC
            (default: the chip preset's).

    Raises:
        MappingError: more blocks than cores (with weight sets: than cores x sets), an unknown
            policy or digital layer, or a digital op no digital unit can run.
    """
    digital_layers = chip.mapping.digital_layers if digital_layers is None else digital_layers
    check_digital_layers(workload, digital_layers)
    placement = placement or chip.mapping.placement
    replication = replication or chip.mapping.replication
    if placement not in PLACEMENT:
        raise MappingError(f"placement: expected one of {', '.join(PLACEMENT)}, got {placement!r}")
    if replication not in REPLICATION:
        raise MappingError(
            f"replication: expected one of {', '.join(REPLICATION)}, got {replication!r}"
        )
    cores = chip.cores.count if max_cores is None else max_cores
    if not 1 <= cores <= chip.cores.count:
        raise MappingError(f"max_cores: expected 1..{chip.cores.count}, got {max_cores}")
    rows, cols = chip.crossbar.rows, chip.crossbar.cols
    matrices = lower(workload, set(digital_layers))
    if not matrices:
        raise MappingError(f"{workload.name}: no layer with static weights to map")
    shape = {m.layer: (math.ceil(m.k / rows), math.ceil(m.n / cols)) for m in matrices}
    packs = {m.layer: packing(m, rows, cols) if pack else (1, 1) for m in matrices}
    blocks = {m.layer: crossbars(m, rows, cols, packs[m.layer][0]) for m in matrices}
    need = sum(blocks.values())
    sets = chip.crossbar.weight_sets
    spot = None  # block key -> (shared crossbar, first row, first column)
    slot: dict = {}  # shared crossbar -> (core group, weight slot) with weight sets
    if need > cores and (share or sets > 1):
        reps = {m.layer: 1 for m in matrices}
        units = _units(matrices, shape, reps, rows, cols, packs)
        spot = shelf_pack([(key, r, c) for key, r, c, _ in units], rows, cols)
        shared = 1 + max(x for x, _, _ in spot.values())
        if shared > cores * sets:
            why = f"{cores} available"
            if sets > 1:
                why = f"{cores} cores x {sets} weight sets = {cores * sets} slots available"
            raise MappingError(
                f"{workload.name} needs {need} cores (one {rows}x{cols} crossbar block per "
                f"core), {shared} with layers sharing crossbars, but {chip.name} has {why}"
            )
        if sets > 1:
            slot = _slots(workload, matrices, packs, units, spot, shared, cores, sets)
        replication = "none"
    elif need > cores:
        raise MappingError(
            f"{workload.name} needs {need} cores (one {rows}x{cols} crossbar block per core) "
            f"but {chip.name} has {cores} available"
        )
    else:
        # a stage's time counts the MVMs its packed crossbars do one after another
        paced = [
            dataclasses.replace(m, mvms_per_sample=m.mvms_per_sample * _passes(m, packs[m.layer]))
            for m in matrices
        ]
        reps = REPLICATION[replication](paced, blocks, cores)
        units = _units(matrices, shape, reps, rows, cols, packs)
    links = _links(workload, matrices, units, shape, reps, set(digital_layers))
    if spot is None:
        where = PLACEMENT[placement]([u[0] for u in units], links, chip.cores.grid, cores)
        cost = total_cost(where, links, chip.cores.grid)
    else:  # place the shared crossbars (or their cores); a block sits where its crossbar does
        bins = {key: slot[spot[key][0]][0] if slot else spot[key][0] for key, *_ in units}
        bin_links = group_links(bins, links)
        order = sorted(set(bins.values()))
        at = PLACEMENT[placement](order, bin_links, chip.cores.grid, cores)
        where = {key: at[x] for key, x in bins.items()}
        cost = total_cost(at, bin_links, chip.cores.grid)
    layer_maps = []
    for m in matrices:
        per_mvm = packs[m.layer][1]
        bl = tuple(
            Block(
                *key,
                rows=r,
                cols=c,
                core=where[key],
                groups=n,
                mvms=math.ceil(n / per_mvm),
                row0=spot[key][1] if spot else 0,
                col0=spot[key][2] if spot else 0,
                slot=slot[spot[key][0]][1] if slot else 0,
            )
            for key, r, c, n in units
            if key[0] == m.layer
        )
        rb, cb = shape[m.layer]
        layer_maps.append(LayerMapping(m, rb, cb, reps[m.layer], bl, *packs[m.layer]))
    edges = _edges(workload, layer_maps, chip.cores.grid, set(digital_layers))
    digital = place_digital(
        workload, chip, {m.layer for m in matrices}, digital_policy, tuple(digital_layers)
    )
    return Mapping(
        chip, workload, tuple(layer_maps), edges, placement, replication, cost, digital=digital
    )


def packing(m: LayerMatrix, rows: int, cols: int) -> tuple[int, int]:
    """(groups per crossbar, groups per MVM) for the convolution groups of `m`.

    A crossbar has (rows // K_g) x (cols // N_g) slots of one group's K_g x N_g matrix; groups
    in slots of different slot-rows and slot-columns (a diagonal) are computed by one MVM, the
    diagonals one after another (the other groups' rows are not driven and their columns not
    converted). The groups are spread evenly over the crossbars they need. (1, 1) when a
    group's matrix does not fit one crossbar, or for a single group.
    """
    if m.groups == 1 or m.k > rows or m.n > cols:
        return 1, 1
    r, c = rows // m.k, cols // m.n
    per_mvm = min(r, c, m.groups)
    per_crossbar = math.ceil(m.groups / math.ceil(m.groups / min(r * c, m.groups)))
    return per_crossbar, per_mvm


def crossbars(m: LayerMatrix, rows: int, cols: int, per_crossbar: int = 1) -> int:
    """Crossbars one copy of `m` occupies with `per_crossbar` groups packed on each."""
    if per_crossbar > 1:
        return math.ceil(m.groups / per_crossbar)
    return math.ceil(m.k / rows) * math.ceil(m.n / cols) * m.groups


def _passes(m: LayerMatrix, pack: tuple[int, int]) -> int:
    """MVMs a crossbar of `m` does one after another per position (its diagonals)."""
    return math.ceil(pack[0] / pack[1])


def _slots_used(n: int, r: int, c: int) -> tuple[int, int]:
    """Slot rows x slot columns that n groups use on a crossbar of r x c slots: along the
    shorter side, d = min(n, side) slots, and along the longer max(d, ceil(n / d)), so that
    the ceil(n / d) diagonals of d groups each fit (cyclic shifts of the first)."""
    if r <= c:
        a = min(n, r)
        return a, min(c, max(a, math.ceil(n / a)))
    b = min(n, c)
    return min(r, max(b, math.ceil(n / b))), b


def _units(matrices, shape, reps, rows, cols, packs):
    """[(block key, rows used, cols used, groups)] in layer order; key = (layer, rep, group,
    rb, cb), group being the first of a packed block's groups."""
    units = []
    for m in matrices:
        rb_n, cb_n = shape[m.layer]
        p = packs[m.layer][0]
        for rep in range(reps[m.layer]):
            if p > 1:
                for g in range(0, m.groups, p):
                    n = min(p, m.groups - g)
                    a, b = _slots_used(n, rows // m.k, cols // m.n)
                    units.append(((m.layer, rep, g, 0, 0), a * m.k, b * m.n, n))
                continue
            for g in range(m.groups):
                for rb in range(rb_n):
                    for cb in range(cb_n):
                        r = min(rows, m.k - rb * rows)
                        c = min(cols, m.n - cb * cols)
                        units.append(((m.layer, rep, g, rb, cb), r, c, 1))
    return units


def _slots(workload, matrices, packs, units, spot, shared, cores, sets) -> dict:
    """Shared crossbar -> (core group, weight slot): `archsim.mapping.slots.assign_slots` with
    each crossbar's layers, its work (MVMs per sample, per array pass) and the layers that run
    beside each (producers, consumers and layers reading the same tensor)."""
    work = {m.layer: m.mvms_per_sample * _passes(m, packs[m.layer]) for m in matrices}
    names: list[set[str]] = [set() for _ in range(shared)]
    for key, *_ in units:
        names[spot[key][0]].add(key[0])
    near: dict[str, set[str]] = {}
    readers: dict[str, set[str]] = {}
    for src, dst in analog_traffic(workload):
        readers.setdefault(src, set()).add(dst)
        if src != "input":
            near.setdefault(src, set()).add(dst)
            near.setdefault(dst, set()).add(src)
    for group in readers.values():
        for n in group:
            near.setdefault(n, set()).update(group - {n})
    order = {m.layer: i for i, m in enumerate(matrices)}
    xbars = [(frozenset(n), float(sum(work[x] for x in n))) for n in names]
    return dict(enumerate(assign_slots(xbars, order, near, cores, sets)))


def _links(workload, matrices, units, shape, reps, digital: set[str]) -> dict:
    """Bytes per sample between block keys (symmetric)."""
    by_layer: dict[str, list] = {}
    for key, _, c, _ in units:
        by_layer.setdefault(key[0], []).append((key, c))
    links: dict = {}

    def add(a, b, value):
        links.setdefault(a, {})[b] = links.setdefault(a, {}).get(b, 0.0) + value
        links.setdefault(b, {})[a] = links.setdefault(b, {}).get(a, 0.0) + value

    for (src, dst), nbytes in analog_traffic(workload, digital=digital).items():
        if src == "input":
            continue
        pairs = len(by_layer[src]) * len(by_layer[dst])
        for a, _ in by_layer[src]:
            for b, _ in by_layer[dst]:
                add(a, b, nbytes / pairs)
    mvms = {m.layer: m.mvms_per_sample for m in matrices}
    for items in by_layer.values():
        for (lay, rep, g, rb, cb), c in items:
            if rb > 0:
                psum = mvms[lay] / reps[lay] * c * PARTIAL_SUM_BYTES
                add((lay, rep, g, rb, cb), (lay, rep, g, 0, cb), psum)
    return links


def _edges(workload, layer_maps, grid, digital: set[str]) -> tuple[TrafficEdge, ...]:
    cores = {lm.name: lm.cores for lm in layer_maps}
    edges = []
    for (src, dst), nbytes in sorted(analog_traffic(workload, digital=digital).items()):
        if src == "input":
            continue
        pairs = [(a, b) for a in cores[src] for b in cores[dst]]
        mean = sum(hops(a, b, grid) for a, b in pairs) / len(pairs)
        edges.append(TrafficEdge(src, dst, nbytes, mean))
    return tuple(edges)
