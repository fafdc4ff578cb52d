"""How many tiles a MoE model needs on a 3D system: the tier count of every weight matrix
(ceil-tiling into tier-shaped chunks, `Tile3dSpec.tiers_for`) over the tiers per tile."""

from __future__ import annotations

import dataclasses

from archsim.moe.model import MoeModel
from archsim.moe.spec import Tile3dSpec


def tiers_needed(model: MoeModel, system: Tile3dSpec) -> int:
    """Tiers holding every matrix of `model` on `system`'s tier shape."""
    return sum(system.tiers_for(m.rows, m.cols) for m in model.matrices())


def fewest_tiles(model: MoeModel, system: Tile3dSpec) -> int:
    """The fewest tiles of `system.tiers` tiers that hold `model` (every chunk takes one tier
    anywhere, so ceil(tiers needed / tiers per tile) always suffice)."""
    return -(-tiers_needed(model, system) // system.tiers)


def sized_to_fit(model: MoeModel, system: Tile3dSpec) -> Tile3dSpec:
    """`system` with the fewest tiles that hold `model`."""
    return dataclasses.replace(system, tiles=fewest_tiles(model, system))
