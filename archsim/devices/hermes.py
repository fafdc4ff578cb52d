"""PCM of the IBM HERMES chip, in the form of aihwkit's `HermesNoiseModel`.

The laws are those of the PCM-like model (`archsim.devices.pcm`) with HERMES-fitted shapes:
- programming: sigma_prog = poly3(x) * G / g_ref, x = g_target / g_max (cubic, fitted on chip);
- drift exponent nu = |mu(x) + sd(x) xi| with piecewise laws: a clipped log law below a
  breakpoint, a quadratic above it (one breakpoint for the mean, one for the spread);
- read noise Q(x): a clipped log law below a breakpoint, a cubic above it, integrated as
  sigma_read = Q sqrt(ln((t + t_read) / (2 t_read))) with t = t_inf + t0.

aihwkit fits one set of constants per *polarity*: `fit_devices` devices (2 on HERMES: the
"two-device programming" of Vasilopoulos et al. TED 2023) are fitted as one device of range
G = fit_devices * g_max. archsim keeps the devices separate (a 2+/2- unit cell is 4 devices of
g_max each) and scales each device's draws so that the sum of the `fit_devices` devices of a
polarity has the fitted statistics: the programming std per device is sigma_prog(x) * G / g_ref /
sqrt(m), the drift-exponent spread and the relative read noise per device are sqrt(m) times the
fitted ones (m = fit_devices; sums of m independent draws). Simplification: aihwkit drifts both
devices of a pair alike (its stated caveat); here they drift independently, with the pair-level
spread of the fit. The chip must store `2 * fit_devices` devices per weight (checked when a
matrix is programmed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archsim.bounds import RELATIVE_NOISE
from archsim.checks import non_negative, positive
from archsim.devices.base import check_range
from archsim.devices.pcm import PowerLawDrift
from archsim.errors import SpecError


@dataclass(frozen=True, slots=True)
class HermesPcmDevice(PowerLawDrift):
    """HERMES-fitted PCM: programming noise, drift, read noise (constants from the preset)."""

    g_max_us: float
    """Largest conductance of one device."""
    fit_devices: int
    """Devices per polarity the fit describes as one (2 on HERMES, 1 for one-device mode)."""
    g_ref_us: float
    """Range of the fitted polarity (fit_devices * g_max on the chip the fit comes from)."""
    prog_coeff: tuple[float, float, float, float]
    """Cubic c0..c3 of the polarity's programming std in x, microsiemens at g_ref_us."""
    nu_mean_break: float
    """x below which the drift-exponent mean follows the log law."""
    nu_mean_log: tuple[float, float]
    """(slope, offset) in ln x of the drift-exponent mean below the breakpoint."""
    nu_mean_log_clip: tuple[float, float]
    """(min, max) of the log-law mean."""
    nu_mean_poly: tuple[float, float, float]
    """Quadratic c0, c1, c2 in x of the mean above the breakpoint."""
    nu_std_break: float
    """x below which the drift-exponent spread follows the log law."""
    nu_std_log: tuple[float, float]
    """(slope, offset) in ln x of the spread below the breakpoint."""
    nu_std_log_clip: tuple[float, float]
    """(min, max) of the log-law spread."""
    nu_std_poly: tuple[float, float, float]
    """Quadratic c0, c1, c2 in x of the spread above the breakpoint."""
    read_q_break: float
    """x below which the read-noise Q follows the log law."""
    read_q_log: tuple[float, float]
    """(slope, offset) in ln x of Q below the breakpoint."""
    read_q_log_clip: tuple[float, float]
    """(min, max) of the log-law Q."""
    read_q_poly: tuple[float, float, float, float]
    """Cubic c0..c3 in x of Q above the breakpoint."""
    t0_s: float
    """Reference time of the drift law; > 0."""
    t_read_s: float
    """Duration of one read, lower cut-off of the 1/f integral; > 0."""
    g_min_us: float = 0.0
    """Conductance of the zero weight; 0 for PCM."""
    polarity_asymmetry: float = 0.0
    """Mean relative excess of a device's conductance read at V+ over its V- (programmed)
    conductance: PCM's bipolar current-voltage asymmetry (Le Gallo et al., npj Unconv. Comput.
    2024), seen only in reads that apply both read-voltage polarities at once (one-phase mode)."""
    polarity_asymmetry_std: float = 0.0
    """Device-to-device spread of that relative excess."""
    prog_noise_scale: float = 1.0
    """Multiplier of the programming noise."""
    drift_scale: float = 1.0
    """Multiplier of the drift exponent."""
    read_noise_scale: float = 1.0
    """Multiplier of the integrated read noise."""

    def __post_init__(self) -> None:
        check_range(self.g_min_us, self.g_max_us)
        if self.fit_devices not in (1, 2):
            raise SpecError("fit_devices", f"expected 1 or 2, got {self.fit_devices}")
        for name in (
            "g_ref_us",
            "t0_s",
            "t_read_s",
            "nu_mean_break",
            "nu_std_break",
            "read_q_break",
        ):
            positive(name, getattr(self, name))
        for name in ("nu_mean_log_clip", "nu_std_log_clip", "read_q_log_clip"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise SpecError(name, f"expected 0 <= min <= max, got [{lo}, {hi}]")
        RELATIVE_NOISE.check("read_q_log_clip", self.read_q_log_clip[1])
        for name in ("prog_noise_scale", "drift_scale", "read_noise_scale"):
            non_negative(name, getattr(self, name))
        RELATIVE_NOISE.check("polarity_asymmetry", abs(self.polarity_asymmetry))
        non_negative("polarity_asymmetry_std", self.polarity_asymmetry_std)
        RELATIVE_NOISE.check("polarity_asymmetry_std", self.polarity_asymmetry_std)

    earliest_s = 0.0
    """The drift law is referenced to t0_s after programming; t = 0 is its first read."""
    latest_s = float("inf")
    """A power law: defined at every later time."""

    @property
    def devices_per_weight(self) -> int:
        """Devices per weight the fit assumes: fit_devices per polarity, two polarities."""
        return 2 * self.fit_devices

    def _x(self, g_us: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(g_us, dtype=np.float64)) / self.g_max_us

    def prog_sigma_us(self, g_target_us: np.ndarray) -> np.ndarray:
        """Programming-noise std of one device for each target conductance."""
        x = self._x(g_target_us)
        sigma_polarity = np.polynomial.polynomial.polyval(x, self.prog_coeff)
        g_polarity = self.fit_devices * self.g_max_us
        return sigma_polarity * (g_polarity / self.g_ref_us) / math.sqrt(self.fit_devices)

    def drift_moments(self, g_target_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (per-device) spread of the drift exponent for each target conductance."""
        x = self._x(g_target_us)
        mu = _piecewise(
            x, self.nu_mean_break, self.nu_mean_log, self.nu_mean_log_clip, self.nu_mean_poly
        )
        sd = _piecewise(
            x, self.nu_std_break, self.nu_std_log, self.nu_std_log_clip, self.nu_std_poly
        )
        return mu, sd * math.sqrt(self.fit_devices)

    def read_sigma(self, g_prog_us: np.ndarray, t_s: float) -> np.ndarray:
        """Relative read-noise std of one device integrated up to t_s after programming."""
        q = _piecewise(
            self._x(g_prog_us),
            self.read_q_break,
            self.read_q_log,
            self.read_q_log_clip,
            self.read_q_poly,
        )
        t = t_s + self.t0_s
        growth = np.sqrt(np.log((t + self.t_read_s) / (2 * self.t_read_s)))
        return q * math.sqrt(self.fit_devices) * growth


def _piecewise(x, brk, log_law, clip, poly) -> np.ndarray:
    """clip(a ln x + b) below `brk`, the polynomial `poly` (c0, c1, ...) in x from it on."""
    lnx = np.log(np.maximum(x, 1e-7))
    low = np.clip(log_law[0] * lnx + log_law[1], *clip)
    return np.where(x < brk, low, np.polynomial.polynomial.polyval(x, poly))
