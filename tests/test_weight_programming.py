"""The weight-programming benchmark's loop (archsim.train.pulsed.programming)."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.errors import SpecError
from archsim.train.pulsed.programming import (
    ProgrammingSetup,
    program_to_target,
    target_and_inputs,
    weight_error,
)


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
    target, draw = target_and_inputs(setup, np.random.default_rng(1))
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
