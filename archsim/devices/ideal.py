"""The ideal device: programs exactly and never changes. The exact baseline of every test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archsim.devices.base import ProgrammedDevices, check_range, check_time


@dataclass(frozen=True, slots=True)
class IdealDevice:
    """Conductance equals target at every time."""

    g_max_us: float
    """Largest programmable conductance."""
    g_min_us: float = 0.0
    """Smallest programmable conductance."""

    def __post_init__(self) -> None:
        check_range(self.g_min_us, self.g_max_us)

    earliest_s = 0.0
    """Exact at every time."""
    latest_s = float("inf")

    def program(self, g_target_us: np.ndarray, rng: np.random.Generator) -> ProgrammedDevices:
        return ProgrammedDevices(np.asarray(g_target_us, dtype=np.float32).copy(), None)

    def at_time(
        self, programmed: ProgrammedDevices, t_s: float, rng: np.random.Generator
    ) -> np.ndarray:
        check_time(t_s)
        return programmed.g_us.copy()
