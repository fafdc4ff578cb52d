"""Issue 12 acceptance (slow): seed 001's weight-programming trends and AGAD's level (RA24 Fig. 4),
and seed 003's MNIST network trained with AGAD on the CMO/HfOx device (FAL25) to >= 96 % with
its time and energy per training sample printed, plus the symmetric-device ablation.

Run: pytest -m slow tests/test_onchip_acceptance.py (about 25 minutes on 2 idle cores)."""

from __future__ import annotations

import re

import pytest

from archsim.train.pulsed.programming import programming_cell

pytestmark = pytest.mark.slow

MNIST_EPOCHS = "20"
"""Epochs of the AGAD MNIST runs, with a cosine learning-rate schedule from FAL25's lr 1e-2 to 0
(FAL25 gives neither epochs nor schedule; a constant 1e-2 leaves the accuracy noisy, the decay
lets it settle). Measured at 20 epochs: 97.27 % on cmo-hfox, 97.70 % on cmo-hfox-sym."""


def _cell(method: str, states: int, sigma_r: float) -> float:
    return programming_cell(method, states, sigma_r, seeds=3).mean


@pytest.mark.parametrize(("states", "expected"), [(20, 0.045), (100, 0.012)])
def test_agad_programs_flat_in_sigma_r_within_30_percent_of_ra24(states, expected):
    errors = [_cell("agad", states, s) for s in (0.0, 0.5)]
    for e in errors:
        assert expected * 0.7 <= e <= expected * 1.3, errors
    assert max(errors) < 1.3 * min(errors)  # flat in sigma_r


def test_ttv2_degrades_with_sigma_r_where_cttv2_holds():
    ttv2 = [_cell("ttv2", 20, s) for s in (0.0, 0.3)]
    cttv2 = [_cell("cttv2", 20, s) for s in (0.0, 0.3)]
    assert ttv2[1] > 2 * ttv2[0], ttv2
    assert cttv2[1] < 1.3 * cttv2[0], cttv2


def _agad_mnist(cli, device: str, out: str) -> tuple[float, str]:
    code, stdout, err = cli(
        "train",
        "--workload",
        "mnist-fc",
        "--method",
        "agad",
        "--device",
        device,
        "--onchip",
        "agad-cmo-hfox",
        "--epochs",
        MNIST_EPOCHS,
        "--schedule",
        "cosine",
        "--drift-samples",
        "0",
        "--out",
        out,
    )
    assert code == 0, err
    acc = float(re.search(r"test accuracy ([0-9.]+) %", stdout)[1])
    return acc, stdout


def test_agad_trains_mnist_fc_on_cmo_hfox_to_96_percent_and_prints_its_cost(cli):
    acc, out = _agad_mnist(cli, "cmo-hfox", "agad")
    assert acc >= 96.0
    assert re.search(r"per training sample on \S+: [0-9.]+ ns, [0-9.]+ pJ", out)


def test_the_symmetric_device_trains_mnist_fc_near_97_6_percent(cli):
    acc, _ = _agad_mnist(cli, "cmo-hfox-sym", "agad-sym")
    assert acc >= 96.6  # FAL25: 97.6 %, one point of slack; measured 97.70 %
