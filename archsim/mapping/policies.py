"""Replication and placement policies, each a plain function in a dict registry.

Replication decides how many copies of each layer's blocks to program so that pipeline stages
take similar time; placement puts every block on a core of the fabric grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from archsim.mapping.lowering import LayerMatrix


def replicate_none(
    layers: Sequence[LayerMatrix], blocks: dict[str, int], cores: int
) -> dict[str, int]:
    """One copy of every layer."""
    return {m.layer: 1 for m in layers}


def replicate_balanced(
    layers: Sequence[LayerMatrix], blocks: dict[str, int], cores: int
) -> dict[str, int]:
    """Copy the slowest stage while its blocks fit in the free cores.

    A layer's stage time is proportional to its MVMs per sample divided by its replicas (the
    blocks of one copy run in parallel). Greedy: give one more copy to the slowest layer that
    still fits, until no copy fits or the slowest layer cannot be copied.
    """
    reps = {m.layer: 1 for m in layers}
    free = cores - sum(blocks[m.layer] for m in layers)
    while True:
        order = sorted(layers, key=lambda m: (-m.mvms_per_sample / reps[m.layer], m.layer))
        slowest = order[0]
        if blocks[slowest.layer] > free or slowest.mvms_per_sample <= reps[slowest.layer]:
            return reps
        reps[slowest.layer] += 1
        free -= blocks[slowest.layer]


REPLICATION: dict[str, Callable] = {"none": replicate_none, "balanced": replicate_balanced}

Placement = Callable[[list[tuple], dict[tuple, dict[tuple, float]], tuple[int, int], int], dict]


def hops(a: int, b: int, grid: tuple[int, int]) -> int:
    """Hops between cores a and b under dimension-ordered (XY) routing on the grid."""
    cols = grid[1]
    return abs(a // cols - b // cols) + abs(a % cols - b % cols)


def place_sequential(units, links, grid, n_cores) -> dict:
    """Units on cores 0, 1, 2, ... in the given (topological) order, row-major on the grid."""
    return {u: i for i, u in enumerate(units)}


def place_greedy(units, links, grid, n_cores) -> dict:
    """Fewest bytes x hops: a greedy start, then the best swap or move while one helps.

    Start: each unit, in order, on the free core with the least bytes x hops to its placed
    partners (`links[u]` maps partners to bytes per sample), or the sequential placement if
    that is cheaper. Then, repeatedly, the single swap of two units or move of a unit to a free
    core that lowers the total most, until none does (a local optimum, never worse than
    `place_sequential`).
    """
    first = _greedy_order(units, links, grid, n_cores)
    seq = place_sequential(units, links, grid, n_cores)
    start = min((first, seq), key=lambda a: total_cost(a, links, grid))
    return _improve(start, units, links, grid, n_cores)


def total_cost(assign: dict, links, grid) -> float:
    """Sum of bytes x hops over all linked unit pairs (each pair once)."""
    return 0.5 * sum(
        b * hops(assign[u], assign[p], grid) for u, ps in links.items() for p, b in ps.items()
    )


def _improve(assign: dict, units, links, grid, n_cores, max_steps: int = 5000) -> dict:
    index = {u: i for i, u in enumerate(units)}
    n = len(units)
    weight = np.zeros((n, n))
    for u, ps in links.items():
        for p, b in ps.items():
            weight[index[u], index[p]] = b
    cores = np.arange(n_cores)
    hop = np.abs(cores[:, None] // grid[1] - cores[None, :] // grid[1]) + np.abs(
        cores[:, None] % grid[1] - cores[None, :] % grid[1]
    )
    where = np.array([assign[u] for u in units])
    cost = weight @ hop[where]  # cost[i, c]: bytes x hops of unit i if it sat on core c
    for _ in range(max_steps):
        own = cost[np.arange(n), where]
        swap = cost[:, where] + cost[:, where].T - own[:, None] - own[None, :]
        swap += 2 * weight * hop[where][:, where]
        free = np.setdiff1d(cores, where)
        move = cost[:, free] - own[:, None] if free.size else np.zeros((n, 0))
        i, j = np.unravel_index(np.argmin(swap), swap.shape)
        best_swap = swap[i, j]
        best_move = move.min() if move.size else 0.0
        if min(best_swap, best_move) > -1e-9:
            break
        if best_move < best_swap:
            i, k = np.unravel_index(np.argmin(move), move.shape)
            cost += np.outer(weight[:, i], hop[free[k]] - hop[where[i]])
            where[i] = free[k]
        else:
            cost += np.outer(weight[:, i], hop[where[j]] - hop[where[i]])
            cost += np.outer(weight[:, j], hop[where[i]] - hop[where[j]])
            where[i], where[j] = where[j], where[i]
    return {u: int(where[index[u]]) for u in units}


def _greedy_order(units, links, grid, n_cores) -> dict:
    placed: dict = {}
    free = set(range(n_cores))
    last = 0
    for u in units:
        partners = [(placed[p], b) for p, b in links.get(u, {}).items() if p in placed]
        core = min(free, key=lambda c, ps=partners, near=last: _cost(c, ps, near, grid))
        placed[u] = core
        free.remove(core)
        last = core
    return placed


def _cost(core: int, partners, near: int, grid) -> tuple[float, int, int]:
    traffic = sum(b * hops(core, pc, grid) for pc, b in partners)
    return (traffic, hops(core, near, grid), core)


PLACEMENT: dict[str, Callable] = {"sequential": place_sequential, "greedy": place_greedy}
