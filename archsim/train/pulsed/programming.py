"""Seed 001's weight-programming benchmark (RA24 Fig. 4): drive a small tile to a fixed target.

A K x N tile starts at zero and is trained in closed loop towards a fixed target matrix W*: each
iteration draws one random input row x, reads the tile's output y = forward(x), takes the error
against the target's output, d = y - x W* (the gradient of 0.5 |y - x W*|^2 with respect to y),
and hands (x, d) to the tile's pulsed update at learning rate `lr`. The error of the result is
the standard deviation over the K N cells of W - W*, where W is the tile's visible weight
(`weights()`, noise-free), in weight units of a device whose range is +-1 (so 0.045 is 4.5 % of
w_max, 2.25 % of the full range). RA24 averages 3 device seeds; so does `programming_table`.

Set-up choices the paper leaves open (RA24 Fig. 3 gives only its own 5 x 5 toy; every one of
these is an estimate, stated again in the command's table.md):
* Target: W* uniform in +-`target_range` (0.5: inside the devices' +-1 so soft bounds shape
  the steps but nothing saturates), drawn once per seed from the seed's generator.
* Inputs: x uniform in +-1 per element, one fresh row per iteration (batch 1, one mat-vec
  update, as the algorithms' per-sample update).
* Final error: the mean of the SD over the last `tail` fraction of the iterations (recorded
  every `record_every` updates), so c-TTv2's transient oscillations do not decide the number
  by where the run happens to stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from archsim.checks import in_range, positive
from archsim.errors import SpecError


class Tile(Protocol):
    """What the benchmark needs of a tile (archsim.train.pulsed.tile.AnalogTile has it)."""

    def forward(self, x: np.ndarray) -> np.ndarray: ...
    def update(self, x: np.ndarray, d: np.ndarray, lr: float) -> None: ...
    def weights(self) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class ProgrammingSetup:
    """The benchmark's loop: sizes, iterations, target and inputs (module docstring)."""

    rows: int = 20
    """K, input lines (RA24-sum: a 20 x 20 matrix)."""
    cols: int = 20
    """N, output lines."""
    iterations: int = 20_000
    """Pulsed updates (one input row each); estimate: long enough that every algorithm's error
    has flattened at both n_states (checked on the traces)."""
    target_range: float = 0.5
    """W* uniform in +-target_range (weight units; device range +-1); estimate."""
    input_range: float = 1.0
    """x uniform in +-input_range per element; estimate (the DAC's full range)."""
    tail: float = 0.1
    """Fraction of the iterations at the end over which the error is averaged."""
    record_every: int = 100
    """Updates between two error records."""

    def __post_init__(self) -> None:
        in_range("rows", self.rows, 1)
        in_range("cols", self.cols, 1)
        in_range("iterations", self.iterations, 1)
        positive("target_range", self.target_range)
        positive("input_range", self.input_range)
        if not 0.0 < self.tail <= 1.0:
            raise SpecError("tail", f"expected a fraction in (0, 1], got {self.tail!r}")
        in_range("record_every", self.record_every, 1)


@dataclass(frozen=True, slots=True, eq=False)
class ProgrammingRun:
    """One tile driven to one target: the error trace and the final error."""

    steps: np.ndarray
    """Update counts at which the error was recorded, int64."""
    error: np.ndarray
    """SD over the cells of W - W* at each of `steps` (weight units)."""
    final: float
    """Mean of `error` over the last `tail` of the run (weight units)."""


def target_and_inputs(
    setup: ProgrammingSetup, rng: np.random.Generator
) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """The fixed target W* (K, N) and a function that draws one input row (1, K), both from
    `rng` (target first)."""
    k, n = setup.rows, setup.cols
    target = rng.uniform(-setup.target_range, setup.target_range, (k, n)).astype(np.float32)

    def draw() -> np.ndarray:
        return rng.uniform(-setup.input_range, setup.input_range, (1, k)).astype(np.float32)

    return target, draw


def weight_error(w: np.ndarray, target: np.ndarray) -> float:
    """SD over the cells of w - target (weight units)."""
    return float(np.std(np.asarray(w, np.float64) - target))


def program_to_target(
    tile: Tile,
    target: np.ndarray,
    draw: Callable[[], np.ndarray],
    lr: float,
    setup: ProgrammingSetup,
) -> ProgrammingRun:
    """Run the closed loop of the module docstring on `tile` (already programmed to its start)."""
    steps, errors = [], []
    target64 = np.asarray(target, np.float64)
    for it in range(1, setup.iterations + 1):
        x = draw()
        d = (tile.forward(x) - x.astype(np.float64) @ target64).astype(np.float32)
        tile.update(x, d, lr)
        if it % setup.record_every == 0 or it == setup.iterations:
            steps.append(it)
            errors.append(weight_error(tile.weights(), target64))
    steps_a, err_a = np.asarray(steps, np.int64), np.asarray(errors)
    tail = steps_a > setup.iterations * (1.0 - setup.tail)
    return ProgrammingRun(steps_a, err_a, float(np.mean(err_a[tail])))
