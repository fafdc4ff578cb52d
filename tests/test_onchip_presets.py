"""The device-specific on-chip presets (`models/onchip/<method>-<device>.toml`, aihwkit's
algorithm presets): each loads, is what the CLI picks for its device, and each method learns a
small regression on a shipped training device with its shipped preset.

The problem: an (8, 4) tile programmed to zero learns y = x @ target (target uniform in +-0.5,
std 0.28) from 12,000 samples x uniform in [-1, 1], mini-batches of 32, d = (y - x @ target) / 32
(a mean-reduced loss), at lr 1.0, with the preset's periphery (DAC, ADC, noise) on.
"""

from __future__ import annotations

import numpy as np
import pytest

from archsim.cli_onchip import onchip_settings
from archsim.config import load_device
from archsim.train.pulsed.settings import load_onchip, onchip_presets
from archsim.train.pulsed.tile import AnalogTile

DEVICES = ("reram-sb", "ecram", "capacitor", "constant-step")
"""The training devices with aihwkit algorithm presets (ReRamSB, EcRam, Capacitor, Idealized)."""


def learn(preset: str, device: str, samples: int = 12000) -> tuple[float, float]:
    """(initial, final) std of the tile's weights minus the target (module docstring)."""
    k, n = 8, 4
    tile = AnalogTile(
        (k, n), load_onchip(preset), load_device(device).update, np.random.default_rng(0)
    )
    target = np.random.default_rng(1).uniform(-0.5, 0.5, (k, n)).astype(np.float32)
    tile.program(np.zeros((k, n), np.float32))
    before = float(np.std(tile.weights() - target))
    xs = np.random.default_rng(2).uniform(-1, 1, (samples, k)).astype(np.float32)
    for i in range(0, samples, 32):
        x = xs[i : i + 32]
        tile.update(x, (tile.forward(x) - x @ target) / len(x), 1.0)
    return before, float(np.std(tile.weights() - target))


@pytest.mark.parametrize("method", ["ttv2", "cttv2", "agad"])
@pytest.mark.parametrize("device", DEVICES)
def test_device_presets_load_and_are_the_cli_default(method, device):
    s = load_onchip(f"{method}-{device}")
    assert s.method == method and s.auto_scale and s.transfer_bl == 1
    assert "aihwkit" in s.source and s.io.out_bound == 20.0
    assert onchip_settings(method, device, None).name == f"{method}-{device}"
    assert s.in_chop_prob == 0.0 if method == "ttv2" else s.in_chop_prob > 0


def test_device_presets_carry_aihwkit_constants():
    # facts: AGADReRamSBPreset 0.5 / 1000 / 0.02 / 5 / BL 31; ChoppedTTv2EcRamPreset keeps
    # fast_lr 1.0; AGADEcRamPreset 0.1 / 750 / 0.005 / 50 / BL 31; TTv2IdealizedPreset BL 100
    a = load_onchip("agad-reram-sb")
    assert (a.fast_lr, a.auto_granularity, a.in_chop_prob, a.tail_weightening) == (
        0.5,
        1000.0,
        0.02,
        5.0,
    )
    assert a.pulse.desired_bl == 31 and not a.in_chop_random
    assert load_onchip("cttv2-ecram").fast_lr == 1.0
    e = load_onchip("agad-ecram")
    assert (e.fast_lr, e.auto_granularity, e.in_chop_prob, e.tail_weightening) == (
        0.1,
        750.0,
        0.005,
        50.0,
    )
    assert load_onchip("ttv2-constant-step").pulse.desired_bl == 100
    assert set(onchip_presets()) >= {f"{m}-{d}" for m in ("ttv2", "cttv2", "agad") for d in DEVICES}


@pytest.mark.parametrize(
    "preset, device, limit",
    [
        # measured (seed 0, 20,000 samples): 0.014, 0.048, 0.025, 0.016, 0.048, 0.042, 0.049, 0.065;
        # mp at 12,000 samples: 0.136 (at most 31 pulses of 2e-4 per device and mini-batch)
        ("analog-sgd", "constant-step", 0.05),
        ("mp", "constant-step", 0.2),
        ("ttv2-ecram", "ecram", 0.1),
        ("cttv2-ecram", "ecram", 0.1),
        ("agad-ecram", "ecram", 0.12),
        ("agad-reram-sb", "reram-sb", 0.12),
        ("ttv2-reram-sb", "reram-sb", 0.12),
        ("cttv2-reram-sb", "reram-sb", 0.14),
    ],
)
def test_each_method_learns_on_a_shipped_device_with_its_preset(preset, device, limit):
    before, after = learn(preset, device)
    assert before > 0.25
    assert after < limit, f"{preset} on {device}: weight error {before:.3f} -> {after:.3f}"


def test_presets_lists_training_presets_and_trainable_devices(cli):
    code, out, _ = cli("presets")
    assert code == 0
    lines = out.splitlines()
    assert any(line.split()[0] == "agad-cmo-hfox" for line in lines if line.startswith("  "))
    assert any(line.split()[0] == "hermes-lstm" for line in lines if line.startswith("  "))
    trainable = {line.split()[0] for line in lines if line.endswith("[update]")}
    assert {"cmo-hfox", "cmo-hfox-sym", "reram-sb", "ecram", "capacitor"} <= trainable
    assert "pcm" not in trainable and "hermes-pcm" not in trainable
