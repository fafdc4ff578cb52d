"""PCM-like device: programming noise, per-device power-law drift, 1/f read noise growing with t.

The model of Nandakumar et al. (ICECS 2019), calibrated on ~1 M PCM devices (Joshi et al., Nat.
Commun. 2020), in the form of aihwkit's `PCMLikeNoiseModel` (NAN19):

- programming: sigma_prog = (c0 + c1 x + c2 x^2) * g_max / g_ref with x = g_target / g_max,
  g_prog = max(0, g_target + sigma_prog * xi);
- drift exponent per device, drawn at programming from the target:
  mu = clip(a_mu ln x + b_mu, mu_min, mu_max), sd = clip(a_sd ln x + b_sd, sd_min, sd_max),
  nu = |mu + sd * xi|, x floored at 1e-7;
- at t_inf after programming, with t = t_inf + t0: g_drift = g_prog (t / t0)^-nu,
  Q = min(q_coeff / max((|g_prog| / g_max)^q_exp, q_floor), q_max),
  sigma_read = Q sqrt(ln((t + t_read) / (2 t_read))), g = max(0, g_drift + |g_drift| sigma_read xi).

Simplification: the read noise is drawn once per read-out of the chip (integrated over [0, t]),
not per MVM; fresh per-MVM noise is separate (`DeviceSpec.mvm_noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archsim.bounds import RELATIVE_NOISE
from archsim.checks import in_range, non_negative, positive
from archsim.devices.base import ProgrammedDevices, check_range, check_time, normal
from archsim.errors import SpecError


class PowerLawDrift:
    """Programming and reading of PCM whose conductance drifts as a power law of time,
    g(t) = g_prog ((t + t0) / t0)^-nu, with programming and read noise. A device model mixes it
    in and supplies `prog_sigma_us`, `drift_moments`, `read_sigma` and the scales
    (`prog_noise_scale`, `drift_scale`, `read_noise_scale`) and `t0_s`."""

    __slots__ = ()

    def program(self, g_target_us: np.ndarray, rng: np.random.Generator) -> ProgrammedDevices:
        g_t = np.asarray(g_target_us, dtype=np.float32)
        sigma = self.prog_sigma_us(g_t).astype(np.float32)
        g = np.maximum(g_t + np.float32(self.prog_noise_scale) * sigma * normal(rng, g_t.shape), 0)
        mu, sd = self.drift_moments(g_t)
        nu = np.abs(mu + sd * normal(rng, g_t.shape)) * self.drift_scale
        return ProgrammedDevices(g.astype(np.float32), nu.astype(np.float32))

    def at_time(
        self, programmed: ProgrammedDevices, t_s: float, rng: np.random.Generator
    ) -> np.ndarray:
        check_time(t_s)
        g_prog = programmed.g_us
        factor = ((t_s + self.t0_s) / self.t0_s) ** (-programmed.drift_exponent.astype(np.float64))
        g_drift = g_prog * factor
        sigma = self.read_noise_scale * self.read_sigma(g_prog, t_s)
        g = g_drift + np.abs(g_drift) * sigma * normal(rng, g_prog.shape)
        return np.maximum(g, 0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class PcmLikeDevice(PowerLawDrift):
    """PCM with programming noise, drift and growing read noise (fitted constants from preset)."""

    g_max_us: float
    """Conductance that the largest weight magnitude maps to."""
    prog_coeff: tuple[float, float, float]
    """Polynomial c0, c1, c2 of sigma_prog in x = g/g_max, microsiemens at g_max = prog_g_ref_us."""
    prog_g_ref_us: float
    """g_max at which prog_coeff was fitted; sigma_prog scales with g_max / prog_g_ref_us."""
    nu_mean: tuple[float, float]
    """(slope, offset) of the drift-exponent mean in ln x."""
    nu_mean_clip: tuple[float, float]
    """(min, max) of the drift-exponent mean."""
    nu_std: tuple[float, float]
    """(slope, offset) of the drift-exponent spread in ln x."""
    nu_std_clip: tuple[float, float]
    """(min, max) of the drift-exponent spread."""
    t0_s: float
    """Reference time of the drift law (end of programming to first read); > 0."""
    t_read_s: float
    """Duration of one read, lower cut-off of the 1/f noise integral; > 0."""
    read_q_coeff: float
    """Q numerator of the 1/f read-noise amplitude."""
    read_q_exp: float
    """Exponent of the normalised conductance in the Q denominator."""
    read_q_floor: float
    """Floor of the Q denominator."""
    read_q_max: float
    """Ceiling of Q."""
    g_min_us: float = 0.0
    """Smallest target conductance (the zero weight); 0 for PCM."""
    prog_noise_scale: float = 1.0
    """Multiplier of the programming noise (0 turns it off)."""
    drift_scale: float = 1.0
    """Multiplier of the drift exponent (0 turns drift off)."""
    read_noise_scale: float = 1.0
    """Multiplier of the integrated read noise (0 turns it off)."""

    def __post_init__(self) -> None:
        check_range(self.g_min_us, self.g_max_us)
        positive("prog_g_ref_us", self.prog_g_ref_us)
        positive("t0_s", self.t0_s)
        positive("t_read_s", self.t_read_s)
        for name in ("nu_mean_clip", "nu_std_clip"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise SpecError(name, f"expected 0 <= min <= max, got [{lo}, {hi}]")
        positive("read_q_floor", self.read_q_floor)
        for name in ("read_q_coeff", "read_q_max"):
            non_negative(name, getattr(self, name))
            RELATIVE_NOISE.check(name, getattr(self, name))
        in_range("read_q_exp", self.read_q_exp, 0, 10)
        for name in ("prog_noise_scale", "drift_scale", "read_noise_scale"):
            non_negative(name, getattr(self, name))

    earliest_s = 0.0
    """The drift law is referenced to t0_s after programming; t = 0 is its first read."""
    latest_s = float("inf")
    """A power law: defined at every later time (aihwkit extrapolates it to years as well)."""

    def prog_sigma_us(self, g_target_us: np.ndarray) -> np.ndarray:
        """Programming-noise std for each target conductance."""
        x = np.asarray(g_target_us, dtype=np.float64) / self.g_max_us
        c0, c1, c2 = self.prog_coeff
        return (c0 + c1 * x + c2 * x * x) * (self.g_max_us / self.prog_g_ref_us)

    def drift_moments(self, g_target_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread of the drift exponent for each target conductance."""
        lnx = np.log(np.maximum(np.asarray(g_target_us, np.float64) / self.g_max_us, 1e-7))
        mu = np.clip(self.nu_mean[0] * lnx + self.nu_mean[1], *self.nu_mean_clip)
        sd = np.clip(self.nu_std[0] * lnx + self.nu_std[1], *self.nu_std_clip)
        return mu, sd

    def read_sigma(self, g_prog_us: np.ndarray, t_s: float) -> np.ndarray:
        """Relative std of the read noise integrated up to t_s after programming."""
        x = np.abs(np.asarray(g_prog_us, np.float64)) / self.g_max_us
        q = np.minimum(
            self.read_q_coeff / np.maximum(x**self.read_q_exp, self.read_q_floor), self.read_q_max
        )
        t = t_s + self.t0_s
        return q * np.sqrt(np.log((t + self.t_read_s) / (2 * self.t_read_s)))
