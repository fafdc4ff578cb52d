"""3D AIMC MoE: system and model presets, routing, tier mapping, the engine and its shortcut."""

from __future__ import annotations

import pytest

from archsim.errors import ConfigError
from archsim.moe.model import TokenStream, load_moe, moe_dir
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
    with pytest.raises(ConfigError, match="unknown 3D system preset 'nope'"):
        load_system("nope")


def test_model_refusals(tmp_path):
    bad = tmp_path / "m.toml"
    text = (moe_dir() / "moe-small.toml").read_text()
    bad.write_text(text.replace("top_k = 2", "top_k = 5"))
    with pytest.raises(ConfigError, match=r"m.toml: model.top_k: expected 1..experts \(4\)"):
        load_moe(bad)
