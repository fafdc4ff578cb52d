"""The weight-programming benchmark's loop (archsim.train.pulsed.programming)."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.errors import SpecError
from archsim.train.pulsed.programming import (
    ProgrammingSetup,
    benchmark_device,
    benchmark_settings,
    program_to_target,
    programming_cell,
    target_and_inputs,
    weight_error,
)
from archsim.train.pulsed.tile import AnalogTile


class FloatTile:
    """Exact SGD on a float matrix: w -= lr x^T d."""

    def __init__(self, k: int, n: int) -> None:
        self.w = np.zeros((k, n), np.float64)

    def forward(self, x):
        return x @ self.w

    def update(self, x, d, lr):
        self.w -= lr * x.T.astype(np.float64) @ d

    def weights(self):
        return self.w.astype(np.float32)


def test_exact_sgd_drives_the_tile_onto_the_target():
    setup = ProgrammingSetup(rows=6, cols=4, iterations=3000, record_every=50)
    target, draw = target_and_inputs(setup, 1)
    start = weight_error(np.zeros((6, 4)), target)  # the target's SD, about 0.5 / sqrt(3)
    assert 0.15 < start < 0.45
    run = program_to_target(FloatTile(6, 4), target, draw, 0.02, setup)
    assert start > run.error[0] > 0.02 and run.final < 1e-4
    assert run.steps[-1] == 3000 and len(run.steps) == 60


def test_error_is_the_sd_of_the_difference_and_the_tail_mean():
    setup = ProgrammingSetup(rows=3, cols=3, iterations=10, record_every=1, tail=0.3)
    target = np.zeros((3, 3), np.float32)
    assert weight_error(target + 0.2, target) == pytest.approx(0.0, abs=1e-12)  # SD: offset free
    assert weight_error(np.diag([1.0, -1.0, 0.0]), target) == pytest.approx(
        np.std([1, -1] + [0] * 7)
    )

    class Stuck(FloatTile):
        def update(self, x, d, lr):
            self.w[0, 0] += 1.0

    run = program_to_target(Stuck(3, 3), target, lambda: np.ones((1, 3), np.float32), 0.1, setup)
    expect = np.mean([np.std([k] + [0] * 8) for k in (8, 9, 10)])
    assert run.final == pytest.approx(expect)


def test_the_setup_refuses_bad_values():
    with pytest.raises(SpecError, match="tail"):
        ProgrammingSetup(tail=0.0)
    with pytest.raises(SpecError, match="iterations"):
        ProgrammingSetup(iterations=0)


def test_the_soft_bounds_benchmark_device_has_the_asked_states():
    for states in (20, 100):
        dev = benchmark_device(states)
        assert dev.n_states == pytest.approx(states)
        assert dev.w_max_dtod == 0 and dev.up_down_dtod == 0.1  # sigma_b 0, sigma_+- 0.1


def test_sigma_r_goes_to_the_gradient_array_only():
    tile = AnalogTile((20, 20), benchmark_settings("ttv2", 0.5), benchmark_device(20), rng0())
    # W's references are its devices' symmetry points alone: SP = r / g with r ~ 0.1 xi
    assert 0.05 < np.std(tile.W.reference) < 0.2
    assert 0.45 < np.std(tile.A.reference) < 0.6  # sqrt(0.5^2 + SP spread^2)


def rng0():
    return np.random.default_rng(0)


def test_agad_beats_analog_sgd_on_a_short_run():
    setup = ProgrammingSetup(rows=8, cols=8, iterations=4000, record_every=200)
    sgd = programming_cell("analog-sgd", 20, 0.0, seeds=1, setup=setup, lr=0.01)
    agad = programming_cell("agad", 20, 0.0, seeds=1, setup=setup, lr=0.01)
    assert agad.mean < 0.07 < 0.1 < sgd.mean  # measured 0.051 and 0.124


def test_the_command_writes_its_table_and_refuses_bad_options(cli):
    code, out, _ = cli(
        "weight-programming",
        "--methods",
        "agad",
        "--states",
        "20",
        "--sigma-r",
        "0",
        "--seeds",
        "1",
        "--iterations-per-state",
        "20",
        "--out",
        "wp",
    )
    assert code == 0 and "| agad | 20 |" in out
    assert {"wp/table.md", "wp/table.csv", "wp/errors.png"} <= set(cli.files())
    assert (cli.workdir / "wp/table.csv").read_text().startswith("method,n_states,sigma_r")
    cli.refused("weight-programming", "--methods", "sgd", match="--methods")
    cli.refused("weight-programming", "--states", "1", match="--states")
    cli.refused("weight-programming", "--sigma-r", "-0.1", match="--sigma-r")
    cli.refused("weight-programming", "--lr", "0", "--out", "x", match="--lr")
