"""`simulate_moe`: a token stream through a MoE model on a 3D AIMC system, as one MoeRun.

Pipeline: route every token (archsim.moe.router), place every weight matrix on (tile, tier)
(archsim.moe.mapping), then run the SimPy engine (archsim.moe.engine) at the chosen
granularity: "tier" (one event per tier MVM, exact under the model) or "matrix" (the tiers of
one matrix on one tile as one hold; the shortcut, error measured in tests/test_moe3d.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archsim.moe.model import MoeModel, TokenStream
from archsim.moe.spec import Tile3dSpec

GRANULARITIES = ("tier", "matrix")
"""Event granularities of the engine, finest first."""


@dataclass(frozen=True, slots=True)
class MoeRun:
    """What one simulated token stream measured."""

    system: str
    model: str
    granularity: str
    strategy: str
    seed: int
    tokens: int
    """Generated tokens (sequences x tokens per sequence)."""
    makespan_ns: float
    """Time from the first token's start to the last token leaving the head."""
    tokens_per_s: float
    energy_j: float
    """Op energies plus passive power x makespan plus KV-cache DRAM energy."""
    energy_per_token_j: float
    energy_breakdown_j: dict[str, float]
    """Energy by part: tier_mvm, comm, dpu, mha, kv_dram, passive."""
    area_mm2: float
    tokens_per_s_per_mm2: float
    events: int
    """SimPy events processed."""
    wall_s: float
    """Wall-clock time of the engine run."""
    tiles_used: int
    """Tiles holding at least one tier of the model."""
    tier_mvms: int
    """Tier MVMs executed (each counted once in energy)."""
    tiers_used: int = 0
    """Tiers holding weights."""
    macs: int = 0
    """Multiply-accumulates of the stream (weight MVMs and attention)."""
    op_counts: dict[str, int] = field(default_factory=dict)
    """Ops executed by kind: tier_mvm, comm, layernorm, gelu, add, mha, kv."""
    tile_busy_ns: tuple[float, ...] = ()
    """Busy time of every tile (index = tile id)."""
    tile_tier_mvms: tuple[int, ...] = ()
    """Tier MVMs every tile ran."""
    tile_tiers: tuple[int, ...] = ()
    """Tiers every tile holds."""
    unit_busy_ns: dict[str, float] = field(default_factory=dict)
    """Busy time of the DPU pool, the MHA pool (summed over units) and the KV-cache port."""

    @property
    def tile_utilisation(self) -> tuple[float, ...]:
        """Busy fraction of every tile over the makespan."""
        return tuple(b / self.makespan_ns for b in self.tile_busy_ns)


def simulate_moe(
    system: Tile3dSpec,
    model: MoeModel,
    stream: TokenStream,
    *,
    seed: int = 0,
    granularity: str = "matrix",
    strategy: str = "greedy",
    skew: float = 0.0,
    progress: Callable[[str], None] | None = None,
    record: bool = False,
) -> MoeRun:
    """Route, map and time `stream` through `model` on `system`.

    Args:
        seed: seeds the router (hidden states, router weights) and the token ids.
        granularity: "tier" (exact) or "matrix" (coarser, faster).
        strategy: tier-mapping strategy (archsim.moe.mapping.STRATEGIES).
        skew: expert-popularity skew of the router (0: uniform).
        progress: called with a status line about twice a second.
        record: keep every tile interval in the result's engine trace (tests).

    Raises:
        SpecError: an unknown granularity or strategy, a bad skew.
        MappingError: the model needs more tiers than the system has.
    """
    raise NotImplementedError("the MoE engine comes in moe3d milestone 2")
