"""Tier mapping: every weight matrix of a MoE model -> the (tile, tier) places of its chunks.

A rows x cols matrix is cut into ceil(rows/R) x ceil(cols/C) chunks of at most R x C (the tier
shape; 3DSIM `num_tiles_for_shape`), in row-major chunk order; each chunk takes one tier.
Strategies (a dict registry, keyed by the name the CLI takes):

- "greedy": matrices in model order, each chunk to the least-used tile (fewest tiers taken;
  ties to the lowest index), as 3DSIM's GREEDY_IN_ORDER. Consecutive chunks land on different
  tiles, so the chunks of one matrix run in parallel, and experts stack over the tiers of
  shared tiles.
- "layer-spread": each chunk to the tile holding the fewest tiers of the same block, then the
  least used: the experts of one block are spread over as many different tiles as possible, so
  a token's top-k experts (and different tokens' experts) collide on a tile as rarely as the
  tile count allows.

A model needing more tiers than tiles x tiers is refused (MappingError: needed vs available).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from archsim.checks import one_of
from archsim.errors import MappingError
from archsim.moe.model import Matrix, MoeModel
from archsim.moe.spec import Tile3dSpec


@dataclass(frozen=True, slots=True)
class TierMapping:
    """Where every chunk of every matrix sits."""

    strategy: str
    matrices: tuple[Matrix, ...]
    """The model's matrices, in placement order."""
    chunk_tiles: tuple[tuple[int, ...], ...]
    """Per matrix, the tile of each chunk (row-major chunk order)."""
    chunk_tiers: tuple[tuple[int, ...], ...]
    """Per matrix, the tier (within its tile) of each chunk."""
    col_chunks: tuple[int, ...]
    """Per matrix, ceil(cols / tier_cols)."""
    tile_tiers: tuple[int, ...]
    """Tiers taken on every tile."""

    @property
    def tiles_used(self) -> int:
        return sum(1 for n in self.tile_tiers if n)

    @property
    def tiers_used(self) -> int:
        return sum(self.tile_tiers)

    def index(self) -> dict[str, int]:
        """Matrix name -> position in `matrices`."""
        return {m.name: i for i, m in enumerate(self.matrices)}


Placer = Callable[[list[Matrix], list[int], Tile3dSpec], tuple[list[int], list[int]]]


def _greedy(matrices: list[Matrix], counts: list[int], system: Tile3dSpec):
    heap = [(0, t) for t in range(system.tiles)]
    tiles, tiers = [], []
    for n in counts:
        for _ in range(n):
            used, t = heapq.heappop(heap)
            tiles.append(t)
            tiers.append(used)
            heapq.heappush(heap, (used + 1, t))
    return tiles, tiers


def _layer_spread(matrices: list[Matrix], counts: list[int], system: Tile3dSpec):
    usage = np.zeros(system.tiles, dtype=np.int64)
    per_layer = np.zeros(system.tiles, dtype=np.int64)
    scale = system.tiers + 1  # usage < scale: the block count dominates the key
    tiles, tiers, layer = [], [], None
    for m, n in zip(matrices, counts, strict=True):
        if m.layer != layer:
            layer = m.layer
            per_layer[:] = 0
        for _ in range(n):
            key = per_layer * scale + usage
            key[usage >= system.tiers] = np.iinfo(np.int64).max
            t = int(np.argmin(key))
            tiles.append(t)
            tiers.append(int(usage[t]))
            usage[t] += 1
            per_layer[t] += 1
    return tiles, tiers


STRATEGIES: dict[str, Placer] = {"greedy": _greedy, "layer-spread": _layer_spread}
"""Mapping strategies by name."""


def map_tiers(model: MoeModel, system: Tile3dSpec, strategy: str = "greedy") -> TierMapping:
    """Place every chunk of every matrix of `model` on a (tile, tier) of `system`.

    Raises:
        SpecError: unknown strategy.
        MappingError: the model needs more tiers than the system has.
    """
    one_of("strategy", strategy, tuple(STRATEGIES))
    matrices = model.matrices()
    counts = [system.tiers_for(m.rows, m.cols) for m in matrices]
    needed, available = sum(counts), system.tiers_total
    if needed > available:
        tiles_needed = -(-needed // system.tiers)
        raise MappingError(
            f"{model.name} needs {needed} tiers of {system.tier_rows}x{system.tier_cols}; "
            f"{system.name} has {system.tiles} tiles x {system.tiers} tiers = {available} "
            f"(needs >= {tiles_needed} tiles at {system.tiers} tiers, or more tiers per tile)"
        )
    tiles, tiers = STRATEGIES[strategy](matrices, counts, system)
    if max(tiers) >= system.tiers:
        raise MappingError(f"strategy {strategy!r} overfilled a tile (internal limit)")
    chunk_tiles, chunk_tiers, start = [], [], 0
    for n in counts:
        chunk_tiles.append(tuple(tiles[start : start + n]))
        chunk_tiers.append(tuple(tiers[start : start + n]))
        start += n
    tile_tiers = np.bincount(np.asarray(tiles), minlength=system.tiles)
    return TierMapping(
        strategy=strategy,
        matrices=tuple(matrices),
        chunk_tiles=tuple(chunk_tiles),
        chunk_tiers=tuple(chunk_tiers),
        col_chunks=tuple(-(-m.cols // system.tier_cols) for m in matrices),
        tile_tiers=tuple(int(n) for n in tile_tiers),
    )
