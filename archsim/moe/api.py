"""`simulate_moe`: a token stream through a MoE model on a 3D AIMC system, as one MoeRun.

Pipeline: route every token (archsim.moe.router), place every weight matrix on (tile, tier)
(archsim.moe.mapping), then run the SimPy engine (archsim.moe.engine) at the chosen
granularity: "tier" (one event per tier MVM, exact under the model) or "matrix" (the tiers of
one matrix on one tile as one hold; the shortcut, error measured in tests/test_moe3d.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from archsim.moe.engine import GRANULARITIES, build_engine
from archsim.moe.model import MoeModel, TokenStream
from archsim.moe.results import MoeRun, make_run
from archsim.moe.spec import Tile3dSpec

__all__ = ["GRANULARITIES", "MoeRun", "simulate_moe"]


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
) -> MoeRun:
    """Route, map and time `stream` through `model` on `system`.

    Args:
        seed: seeds the router (hidden states, router weights) and the token ids.
        granularity: "tier" (exact) or "matrix" (coarser, faster).
        strategy: tier-mapping strategy (archsim.moe.mapping.STRATEGIES).
        skew: expert-popularity skew of the router (0: uniform).
        progress: called with a status line about twice a second.

    Raises:
        SpecError: an unknown granularity or strategy, a bad skew.
        MappingError: the model needs more tiers than the system has.
    """
    engine = build_engine(
        system,
        model,
        stream,
        seed=seed,
        granularity=granularity,
        strategy=strategy,
        skew=skew,
    )
    t0 = time.perf_counter()
    events = engine.run(progress)
    return make_run(engine, events, time.perf_counter() - t0, granularity=granularity, seed=seed)
