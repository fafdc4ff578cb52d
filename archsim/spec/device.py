"""Device spec: which device model, its fitted constants, and the noise of every single read."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archsim.bounds import RELATIVE_NOISE
from archsim.checks import non_negative, one_of
from archsim.devices.base import DeviceModel
from archsim.errors import DeviceModelError

if TYPE_CHECKING:
    from archsim.train.pulsed.update_model import UpdateModel

MvmNoiseKind = Literal["none", "output", "conductance"]


@dataclass(frozen=True, slots=True)
class MvmNoiseSpec:
    """Fresh noise drawn on every MVM (short-term read noise), on top of the device state.

    "output": y_i += std * ||u|| * xi_i with u the inputs as fractions of the DAC range: as if
    every weight carried an independent N(0, std^2) error (in units of the largest weight)
    redrawn on each read; cheap (aihwkit's ADDITIVE_CONSTANT weight noise).
    "conductance": y_i += std * sqrt(sum_j |w_ij| u_j^2) * xi_i with w normalised to the largest
    weight: the per-device variance grows with its conductance (aihwkit's PCM_READ); one extra
    matrix product per MVM.
    """

    kind: MvmNoiseKind = "none"
    """"none", "output" or "conductance"."""
    std: float = 0.0
    """Noise strength in units of the largest weight; >= 0."""

    def __post_init__(self) -> None:
        one_of("kind", self.kind, ("none", "output", "conductance"))
        non_negative("std", self.std)
        RELATIVE_NOISE.check("std", self.std)

    @property
    def active(self) -> bool:
        """True when the spec adds any noise."""
        return self.kind != "none" and self.std > 0


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A memory device: its model with fitted constants, drift compensation and read noise."""

    name: str
    """Preset name, e.g. "pcm"."""
    description: str
    """One line on what the preset models."""
    model: DeviceModel
    """The device model (a frozen dataclass from `archsim.devices.DEVICE_MODELS`)."""
    drift_compensation: bool = False
    """Rescale each crossbar's outputs by its summed-current ratio to right after programming
    (global drift compensation, aihwkit `GlobalDriftCompensation`)."""
    mvm_noise: MvmNoiseSpec = MvmNoiseSpec()
    """Fresh noise on every MVM."""
    update: UpdateModel | None = None
    """How pulses change the device in on-chip training (the preset's optional `[update]`
    table); None: the preset has no training model."""

    def check_times(self, times_s: Iterable[float], key: str = "--times") -> None:
        """Raise DeviceModelError naming `key` unless every time lies in the model's defined
        range [model.earliest_s, model.latest_s] (seconds after programming)."""
        lo, hi = self.model.earliest_s, self.model.latest_s
        span = f"{lo:g} s <= t <= {hi:g} s" if math.isfinite(hi) else f"t >= {lo:g} s"
        for t in times_s:
            if not lo <= t <= hi:
                raise DeviceModelError(
                    f"{key}: device {self.name!r} is modelled for {span} after programming; "
                    f"got t = {t:g} s"
                )

    @property
    def g_max_us(self) -> float:
        """Largest conductance a weight maps to."""
        return self.model.g_max_us

    @property
    def g_min_us(self) -> float:
        """Conductance of the zero (differential) or most negative (single device) weight."""
        return self.model.g_min_us
