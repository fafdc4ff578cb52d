"""3D AIMC MoE: system and model presets, routing, tier mapping, the engine and its shortcut."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from archsim.errors import ConfigError, MappingError
from archsim.moe.api import simulate_moe
from archsim.moe.engine import build_engine
from archsim.moe.mapping import map_tiers
from archsim.moe.model import MoeModel, TokenStream, load_moe, moe_dir
from archsim.moe.router import route
from archsim.moe.spec import load_system, systems_dir


def test_bue25_preset_area_and_tier_shape():
    """100 tiles x 1 mm² + 4 DPUs x 1.25 mm² + 1 MHA x 5 mm² = 110 mm² (3DSIM README example)."""
    s = load_system("bue25-3d")
    assert s.area_mm2 == pytest.approx(110.0)
    assert (s.tier_rows, s.tier_cols, s.tier_mvm_ns, s.tier_mvm_energy_pj) == (512, 512, 100, 1e4)
    assert s.tiers_for(768, 768) == 4 and s.tiers_for(512, 512) == 1


def test_largest_model_weights_by_hand():
    """bue25-largest: experts 2 x 1024 x 4096 x 128 x 48 = 51,539,607,552 weights; per block
    4 d² = 4,194,304 projections and 1024 x 128 router weights; embedding and head 2 x 50257 x
    1024."""
    m = load_moe("bue25-largest")
    assert m.expert_weights == 51_539_607_552
    per_block = 4 * 1024**2 + 1024 * 128 + 128 * 2 * 1024 * 4096
    assert m.weights_total == 48 * per_block + 2 * 50257 * 1024
    active = 48 * (4 * 1024**2 + 1024 * 128 + 2 * 2 * 1024 * 4096) + 50257 * 1024 + 1024
    assert m.weights_active_per_token == active
    # attention at context 10: QK^T and A.V, 10 x 1024 MACs each per block
    assert m.macs_per_token(10) == active - 1024 + 48 * 2 * 10 * 1024


def test_token_stream():
    s = TokenStream(sequences=3, tokens_per_sequence=5, prompt_tokens=7)
    assert s.tokens == 15 and s.context(0) == 8 and s.context(4) == 12


def test_system_refusals(tmp_path):
    text = (systems_dir() / "bue25-3d.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("tiers = 1024", "tiers = 0"))
    with pytest.raises(ConfigError, match=r"bad.toml: system.tiers: expected an integer >= 1"):
        load_system(bad)
    bad.write_text(text.replace("dpus = 4", "dpus = 4\nwarp = 2"))
    with pytest.raises(ConfigError, match=r"system.warp: unknown key"):
        load_system(bad)
    bad.write_text(text.replace("comm_ns = 24.0", "comm_ns = -1.0"))
    with pytest.raises(ConfigError, match=r"system.comm_ns: expected >= 0, got -1.0"):
        load_system(bad)
    with pytest.raises(ConfigError, match="unknown 3D system preset 'nope'"):
        load_system("nope")


def test_model_refusals(tmp_path):
    bad = tmp_path / "m.toml"
    text = (moe_dir() / "moe-small.toml").read_text()
    bad.write_text(text.replace("top_k = 2", "top_k = 5"))
    with pytest.raises(ConfigError, match=r"m.toml: model.top_k: expected 1..experts \(4\)"):
        load_moe(bad)


# -- routing ----------------------------------------------------------------------------------


def test_router_gives_k_distinct_experts_uniformly():
    """Without skew each expert is chosen n k / E times on average; every count lies within 5
    standard deviations sqrt(n k / E (1 - k / E)) of it."""
    m = dataclasses.replace(load_moe("moe-12x32"), d_model=256, heads=1)  # cheaper draws
    n = 4000
    choices = route(m, n, np.random.default_rng(3))
    assert choices.shape == (m.moe_layers, n, 2)
    assert (choices[:, :, 0] != choices[:, :, 1]).all()
    assert choices.min() >= 0 and choices.max() < m.experts
    mean = n * 2 / m.experts
    sd = np.sqrt(mean * (1 - 2 / m.experts))
    for layer in choices:
        counts = np.bincount(layer.ravel(), minlength=m.experts)
        assert np.abs(counts - mean).max() < 5 * sd


def test_router_is_seeded_and_skew_prefers_low_experts():
    m = load_moe("moe-small")
    a = route(m, 500, np.random.default_rng(7))
    assert np.array_equal(a, route(m, 500, np.random.default_rng(7)))
    assert not np.array_equal(a, route(m, 500, np.random.default_rng(8)))
    skewed = np.bincount(route(m, 2000, np.random.default_rng(7), skew=2.0).ravel(), minlength=4)
    assert skewed[0] > skewed[3] * 2


# -- mapping ----------------------------------------------------------------------------------


def test_ceil_tiling_and_greedy_spread():
    """moe-12x32 (d 768, d_ff 3072): Q is 768x768 -> 2 x 2 = 4 tiers on 4 different tiles;
    an expert's FFN-in is 2 x 6 = 12 tiers; 9828 tiers in all, the least-used tile rule keeps
    every tile within one tier of the others."""
    s, m = load_system("bue25-3d"), load_moe("moe-12x32")
    mp = map_tiers(m, s)
    idx = mp.index()
    assert len(mp.chunk_tiles[idx["L0.q"]]) == 4
    assert len(set(mp.chunk_tiles[idx["L0.q"]])) == 4
    assert len(mp.chunk_tiles[idx["L3.e5.ffn_in"]]) == 12
    assert mp.tiers_used == 9828 and mp.tiles_used == 100
    assert max(mp.tile_tiers) - min(mp.tile_tiers) <= 1
    places = {
        (t, r)
        for ts, rs in zip(mp.chunk_tiles, mp.chunk_tiers, strict=True)
        for t, r in zip(ts, rs, strict=True)
    }
    assert len(places) == mp.tiers_used  # no tier holds two chunks


def test_layer_spread_spreads_each_block():
    """layer-spread: the tiers of every block are spread over the tiles within one tier."""
    s, m = load_system("bue25-3d", tiles=40), load_moe("moe-small")
    mp = map_tiers(m, s, "layer-spread")
    for layer in range(m.layers):
        tiles = [
            t
            for mat, ts in zip(mp.matrices, mp.chunk_tiles, strict=True)
            if mat.layer == layer
            for t in ts
        ]
        counts = np.bincount(tiles, minlength=s.tiles)
        assert counts.max() - counts.min() <= 1


def test_mapping_refused_when_tiers_run_out():
    with pytest.raises(MappingError, match=r"needs 197868 tiers .* = 102400 \(needs >= 194 tiles"):
        map_tiers(load_moe("bue25-largest"), load_system("bue25-3d"))


# -- engine -----------------------------------------------------------------------------------


def _tiny(tiles: int):
    """One block, d 512, 2 experts (top-2), d_ff 512, vocabulary 512: every matrix is one tier
    (embed, Q, K, V, O, router, 2 x FFN-in, 2 x FFN-out, head: 11). Costs: tier MVM 100 ns,
    transfer 10, LayerNorm 5, GeLU 7, add 3, attention of one token at context 1: 81920 / 64^2
    = 20 ns; the KV read at context 1 is empty."""
    system = dataclasses.replace(
        load_system("bue25-3d", tiles=tiles, tiers=16),
        comm_ns=10.0,
        layernorm_ns_per_chunk=5.0,
        gelu_ns_base=7.0,
        gelu_ns_per_element=0.0,
        add_ns_base=3.0,
        add_ns_per_element=0.0,
        mha_ns_per_d2=0.0,
        mha_ns_base=81920.0,
        passive_power_w=0.0,
    )
    model = MoeModel(d_model=512, layers=1, experts=2, top_k=2, d_ff=512, heads=1, vocab=512)
    return system, model


@pytest.mark.parametrize("granularity", ["tier", "matrix"])
def test_tiny_case_exact_time_shared_tile_vs_spread(granularity):
    """One token. On ONE tile every tier MVM waits for the previous one (OTT):
    embed 100+10 = 110; LN 115; Q, K, V 3 x 100 + 10 -> 425; MHA 445; O 555; add 558; LN 563;
    router 673; 2 FFN-in 200 + 10 -> 883; 2 GeLU in parallel on the DPUs 890; 2 FFN-out 1100;
    2 adds 1103; LN 1108; head 1218 ns.
    On 16 tiles the greedy mapping puts every tier on its own tile, so Q, K, V and the two
    experts run in parallel: 1218 - 200 (QKV) - 100 (FFN-in) - 100 (FFN-out) = 818 ns.
    Energy of the tier MVMs: 11 x 10 nJ whatever the tiles."""
    stream = TokenStream(1, 1)
    for tiles, makespan in ((1, 1218.0), (16, 818.0)):
        system, model = _tiny(tiles)
        run = simulate_moe(system, model, stream, granularity=granularity)
        assert run.makespan_ns == pytest.approx(makespan)
        assert run.tier_mvms == 11
        assert run.energy_breakdown_j["tier_mvm"] == pytest.approx(11 * 10e-9)


def test_every_tier_mvm_counted_once():
    """moe-small per token: embedding row 1 tier; per block Q, K, V, O 4, router 1, 2 experts x
    (FFN-in 1 x 2 + FFN-out 2 x 1) 8 -> 13; head 256 x 1024 -> 2: 1 + 2 x 13 + 2 = 29 tier MVMs,
    each with one transfer and 10 nJ."""
    s, m = load_system("bue25-3d", tiles=5), load_moe("moe-small")
    stream = TokenStream(3, 4)
    for granularity in ("tier", "matrix"):
        run = simulate_moe(s, m, stream, granularity=granularity)
        assert run.tier_mvms == 29 * 12 == sum(run.tile_tier_mvms)
        assert run.op_counts["comm"] == run.tier_mvms
        assert run.energy_breakdown_j["tier_mvm"] == pytest.approx(run.tier_mvms * 1e-8)
        assert run.op_counts["mha"] == 12 * m.layers
        assert sum(run.tile_busy_ns) == pytest.approx(run.tier_mvms * 100.0)
        parts = run.energy_breakdown_j
        assert run.energy_j == pytest.approx(sum(parts.values()))
        assert parts["passive"] == pytest.approx(5.0 * run.makespan_ns * 1e-9)


@pytest.mark.parametrize("granularity", ["tier", "matrix"])
def test_one_tier_at_a_time_never_violated(granularity):
    """The recorded busy intervals of every tile never overlap (2 tiles: heavy contention)."""
    s, m = load_system("bue25-3d", tiles=2), load_moe("moe-small")
    engine = build_engine(
        s,
        m,
        TokenStream(6, 5),
        seed=0,
        granularity=granularity,
        strategy="greedy",
        skew=0.0,
        record=True,
    )
    engine.run()
    by_tile: dict[int, list] = {}
    for tile, start, end in engine.tiles.intervals:
        by_tile.setdefault(tile, []).append((start, end))
    assert set(by_tile) == {0, 1}
    for spans in by_tile.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(spans))


def test_deterministic():
    s, m, stream = load_system("bue25-3d", tiles=4), load_moe("moe-small"), TokenStream(4, 6)
    a, b = (simulate_moe(s, m, stream, seed=5, granularity="tier") for _ in range(2))
    assert dataclasses.replace(a, wall_s=0.0) == dataclasses.replace(b, wall_s=0.0)


def test_matrix_granularity_error_under_2_percent():
    """The shortcut against the exact run on a contended small case (moe-small on 2 tiles and on
    the 100-tile preset, 8 sequences x 16 tokens): tokens/s and energy/token within 2 %, with
    fewer events."""
    m, stream = load_moe("moe-small"), TokenStream(8, 16)
    for tiles in (2, 100):
        s = load_system("bue25-3d", tiles=tiles)
        exact = simulate_moe(s, m, stream, granularity="tier")
        fast = simulate_moe(s, m, stream, granularity="matrix")
        assert fast.tokens_per_s == pytest.approx(exact.tokens_per_s, rel=0.02)
        assert fast.energy_per_token_j == pytest.approx(exact.energy_per_token_j, rel=0.02)
        assert fast.events < exact.events


def test_mha_decode_cost_is_the_table_over_l():
    """At L = 128, d = 1024 the whole-sequence fit is 4 x (0.063 x 1024^2 + 130) = 264,760 ns
    (table 264,711); one decode token pays 1/128 of it: 2,068.4 ns, and 0.02229 x 128 x 1024 pJ."""
    s = load_system("bue25-3d")
    assert s.mha_decode_ns(128, 1024) == pytest.approx(4 * (0.063 * 1024**2 + 130) / 128)
    assert s.mha_decode_energy_pj(128, 1024) == pytest.approx(0.02229 * 128 * 1024)


# -- command line -----------------------------------------------------------------------------


def test_cli_moe_writes_report(cli, tmp_path):
    code, out, _ = cli(
        "moe", "--model", "moe-small", "--sequences", "2", "--tokens", "3", "--out", "r"
    )
    assert code == 0 and "tokens/s" in out
    files = sorted(p.name for p in (cli.workdir / "r").iterdir())
    assert files == ["run.json", "summary.md", "tiles.csv", "tiles.png"]
    doc = json.loads((cli.workdir / "r" / "run.json").read_text())
    assert doc["run"]["tokens"] == 6 and doc["run"]["tier_mvms"] == 6 * 29


def test_cli_moe_grows_a_system_too_small_for_the_model_and_says_so(cli, tmp_path):
    """bue25-largest needs 197,868 tiers = 194 tiles of 1024 (bue25-3d has 100): without
    --tiles the run uses 194 and says so on stderr."""
    code, out, err = cli(
        "moe",
        "--model",
        "bue25-largest",
        "--sequences",
        "1",
        "--tokens",
        "1",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    assert "needs 194 tiles of 1024 tiers; bue25-3d has 100, so 194 are simulated" in err
    assert "194 tiles x 1024 tiers" in out
    assert "194" in (tmp_path / "r" / "summary.md").read_text()


def test_cli_moe_refusals(cli):
    cli.refused("moe", "--model", "bue25-largest", "--tiles", "100", match="needs 197868 tiers")
    cli.refused("moe", "--tiles", "fits", match="--tiles")
    cli.refused("moe", "--model", "nope", match="unknown MoE model preset 'nope'")
    cli.refused("moe", "--tiles", "0", match="--tiles")
    cli.refused("moe", "--granularity", "token", match="--granularity")
    cli.refused("moe", "--skew", "-1", match="--skew: expected >= 0, got -1.0")
    cli.refused("moe", "--skew", "nan", match="--skew: expected >= 0")
