"""What every device model provides: program once, then the state at an inference time.

A device model is a frozen dataclass of its fitted constants (all from the preset file, none
written in code). It sees conductances in microsiemens, element-wise, and draws every random
number from the `numpy.random.Generator` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from archsim.bounds import G_MAX_US
from archsim.errors import SpecError


@dataclass(frozen=True, slots=True)
class ProgrammedDevices:
    """Devices right after programming: what the chip holds at t = 0."""

    g_us: np.ndarray
    """Programmed conductances (float32, any shape)."""
    drift_exponent: np.ndarray | None
    """Per-device drift exponent nu drawn at programming (PCM), or None."""


class DeviceModel(Protocol):
    """The hooks a device model implements."""

    g_max_us: float
    g_min_us: float

    @property
    def earliest_s(self) -> float:
        """Earliest time after programming (s) at which the model is defined by its fit."""
        ...

    @property
    def latest_s(self) -> float:
        """Latest time after programming (s) the model is fitted for (inf: no limit)."""
        ...

    def program(self, g_target_us: np.ndarray, rng: np.random.Generator) -> ProgrammedDevices:
        """Program target conductances once (program-and-verify error, drift parameters)."""
        ...

    def at_time(
        self, programmed: ProgrammedDevices, t_s: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Conductances at `t_s` seconds after programming: drift/relaxation and the read noise
        integrated up to then, drawn once per call (one programmed chip read at one time)."""
        ...


def check_range(g_min_us: float, g_max_us: float) -> None:
    """Raise SpecError unless 0 <= g_min_us < g_max_us <= bounds.G_MAX_US, all finite."""
    if not g_min_us >= 0:
        raise SpecError("g_min_us", f"expected >= 0, got {g_min_us}")
    if not g_max_us > g_min_us:
        raise SpecError("g_max_us", f"expected > g_min_us = {g_min_us}, got {g_max_us}")
    G_MAX_US.check("g_max_us", g_max_us)


def check_time(t_s: float) -> None:
    """Raise SpecError unless t_s is a finite time >= 0."""
    if not (np.isfinite(t_s) and t_s >= 0):
        raise SpecError("t_s", f"expected a time >= 0 s, got {t_s}")


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normals in float32 (the dtype of all device state)."""
    return rng.standard_normal(shape, dtype=np.float32)
