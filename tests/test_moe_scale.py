"""Issue 13's scale acceptance: the large MoE case (12 blocks, 32 experts, top-2, 1,024 tokens)
decodes at the coarse granularity in well under 10 minutes on 2 cores, and agrees with the exact
tier-by-tier run. Slow (about 10 s here; benchmarks/bench_moe.py prints the measurements)."""

from __future__ import annotations

import time

import pytest

from archsim.moe.api import simulate_moe
from archsim.moe.model import TokenStream, load_moe
from archsim.moe.sizing import fewest_tiles
from archsim.moe.spec import load_system


@pytest.mark.slow
def test_the_large_moe_case_runs_in_under_ten_minutes_within_2_percent_of_exact():
    model, stream = load_moe("moe-12x32"), TokenStream(16, 64)
    assert (model.layers, model.experts, model.top_k, stream.tokens) == (12, 32, 2, 1024)
    system = load_system("bue25-3d")
    system = load_system("bue25-3d", tiles=fewest_tiles(model, system))  # every tile contended
    t0 = time.perf_counter()
    fast = simulate_moe(system, model, stream, granularity="matrix")
    wall = time.perf_counter() - t0
    assert wall < 600
    assert fast.tokens == 1024 and fast.tier_mvms > 0
    exact = simulate_moe(system, model, stream, granularity="tier")
    assert fast.events < exact.events
    assert fast.tokens_per_s == pytest.approx(exact.tokens_per_s, rel=0.02)
    assert fast.energy_per_token_j == pytest.approx(exact.energy_per_token_j, rel=0.02)
