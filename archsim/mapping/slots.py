"""Weight sets (slots): several crossbars' worth of weights on one core's array.

An array with `weight_sets` sets stores that many rows x cols weight matrices, each on devices
of its own, of which one is active per MVM. When one copy of every layer needs more crossbars
than there are cores, the mapper packs: the blocks are shelf-packed into virtual crossbars
(small blocks of different layers co-packed, `archsim.mapping.sharing`), then every virtual
crossbar gets a (core, slot) place. Layers that run at the same time should sit on different
cores, so their MVMs do not take turns on one array: virtual crossbars are assigned heaviest
first (MVMs per sample of the layers on them), each to the core with a free slot that holds
the fewest blocks of the same layers, then the least work, then the fewest blocks of layers
that feed them, are fed by them or read the same tensor (they overlap in the pipeline), then
the lowest index. A core's slots are numbered in the layer order of the crossbars they hold.

Simplifications: the load of a virtual crossbar is the sum over its layers of MVMs per sample
(one array pass each); one copy of every layer (no replication when slots are needed).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from archsim.errors import MappingError


def assign_slots(
    crossbars: Sequence[tuple[frozenset[str], float]],
    order: Mapping[str, int],
    neighbours: Mapping[str, set[str]],
    cores: int,
    sets: int,
) -> list[tuple[int, int]]:
    """(core group, slot) of each virtual crossbar.

    Args:
        crossbars: per virtual crossbar, the layers with blocks on it and its work (MVMs per
            sample of those layers).
        order: position of every layer in the workload (slots are numbered in it).
        neighbours: layer -> the layers it feeds or reads from.
        cores: core groups available (cores of the chip); groups are numbered 0.. in the order
            they are first used and placed on the fabric afterwards.
        sets: slots per core.

    Raises:
        MappingError: more virtual crossbars than cores x sets.
    """
    if len(crossbars) > cores * sets:
        raise MappingError(
            f"needs {len(crossbars)} weight slots, {cores} cores x {sets} sets = "
            f"{cores * sets} available"
        )
    groups = min(cores, len(crossbars))
    held: list[list[int]] = [[] for _ in range(groups)]
    load = [0.0] * groups
    layers_on: list[dict[str, int]] = [{} for _ in range(groups)]
    heaviest = sorted(range(len(crossbars)), key=lambda i: (-crossbars[i][1], i))
    for i in heaviest:
        names, work = crossbars[i]
        near = set().union(*(neighbours.get(n, set()) for n in names)) - names

        def rank(g: int, names=names, near=near) -> tuple:
            same = sum(layers_on[g].get(n, 0) for n in names)
            adjacent = sum(layers_on[g].get(n, 0) for n in near)
            return (same, load[g], adjacent, g)

        g = min((g for g in range(groups) if len(held[g]) < sets), key=rank)
        held[g].append(i)
        load[g] += work
        for n in names:
            layers_on[g][n] = layers_on[g].get(n, 0) + 1
    place: list[tuple[int, int]] = [(0, 0)] * len(crossbars)
    for g, mine in enumerate(held):
        first = sorted(mine, key=lambda i: (min(order[n] for n in crossbars[i][0]), i))
        for slot, i in enumerate(first):
            place[i] = (g, slot)
    return place


def group_links(bins: Mapping[Hashable, int], links: Mapping) -> dict:
    """Bytes per sample between groups (`bins`: block key -> group) from the links between
    block keys, without the traffic inside a group."""
    out: dict = {}
    for a, partners in links.items():
        for b, v in partners.items():
            if bins[a] != bins[b]:
                row = out.setdefault(bins[a], {})
                row[bins[b]] = row.get(bins[b], 0.0) + v
    return out
