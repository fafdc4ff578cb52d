"""ReRAM device models: Wan et al. 2022 (NeuRRAM) and CMO/HfOx (Falcone et al. 2025).

Both follow the equations of aihwkit's `ReRamWan2022NoiseModel` and `ReRamCMONoiseModel`
(aihwkit; WAN22, FAL25), with every fitted constant taken from the preset file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archsim.bounds import RELATIVE_NOISE
from archsim.checks import non_negative, positive
from archsim.devices.base import ProgrammedDevices, check_range, check_time, normal
from archsim.errors import DeviceModelError, SpecError


@dataclass(frozen=True, slots=True)
class ReramWan2022Device:
    """Conductance spread fitted at a few times after programming (Wan et al., Nature 2022).

    At time t the conductance is max(0, g_target + sigma(x, t) xi), drawn afresh from the target
    (the spread does not accumulate), with sigma a polynomial in x = g_target / g_max fitted at
    `fit_times_s`. Between fitted times sigma is interpolated linearly in ln t; outside them the
    model has no data and raises. The fitted sigma is in microsiemens at g_max = g_ref_us and is
    scaled by g_max / g_ref_us (aihwkit intends this scaling; its snapshot at commit 4545f11
    skips it).
    """

    g_max_us: float
    """Conductance of the largest weight magnitude."""
    g_ref_us: float
    """g_max at which the sigma polynomials were fitted."""
    fit_times_s: tuple[float, ...]
    """Times after programming at which the spread was fitted, increasing."""
    sigma_coeff: tuple[tuple[float, ...], ...]
    """Per fitted time, polynomial coefficients c0..cn of sigma(x) in microsiemens."""
    g_min_us: float = 0.0
    """Conductance of the zero weight."""
    noise_scale: float = 1.0
    """Multiplier of the spread."""

    def __post_init__(self) -> None:
        check_range(self.g_min_us, self.g_max_us)
        positive("g_ref_us", self.g_ref_us)
        if len(self.fit_times_s) < 1 or len(self.fit_times_s) != len(self.sigma_coeff):
            raise SpecError("sigma_coeff", "expected one coefficient list per fitted time")
        if any(b <= a for a, b in zip(self.fit_times_s, self.fit_times_s[1:], strict=False)):
            raise SpecError("fit_times_s", f"expected increasing times, got {self.fit_times_s}")
        positive("fit_times_s", self.fit_times_s[0])
        non_negative("noise_scale", self.noise_scale)

    @property
    def earliest_s(self) -> float:
        """The first fitted time: the model has no data before it."""
        return self.fit_times_s[0]

    @property
    def latest_s(self) -> float:
        """The last fitted time: the model has no data after it."""
        return self.fit_times_s[-1]

    def sigma_us(self, g_target_us: np.ndarray, t_s: float) -> np.ndarray:
        """Spread of the conductance at t_s for each target conductance."""
        times = self.fit_times_s
        if not times[0] <= t_s <= times[-1]:
            raise DeviceModelError(
                f"device model reram_wan2022 is fitted for {times[0]:g} s <= t <= {times[-1]:g} s "
                f"after programming; got t = {t_s:g} s"
            )
        x = np.asarray(g_target_us, np.float64) / self.g_max_us
        sigmas = [np.polynomial.polynomial.polyval(x, c) for c in self.sigma_coeff]
        if len(times) == 1:
            sigma = sigmas[0]
        else:
            i = min(int(np.searchsorted(times, t_s, side="right")) - 1, len(times) - 2)
            w = (np.log(t_s) - np.log(times[i])) / (np.log(times[i + 1]) - np.log(times[i]))
            sigma = (1 - w) * sigmas[i] + w * sigmas[i + 1]
        return sigma * (self.g_max_us / self.g_ref_us)

    def program(self, g_target_us: np.ndarray, rng: np.random.Generator) -> ProgrammedDevices:
        # The fitted spread already contains the programming error: keep the target.
        return ProgrammedDevices(np.asarray(g_target_us, dtype=np.float32).copy(), None)

    def at_time(
        self, programmed: ProgrammedDevices, t_s: float, rng: np.random.Generator
    ) -> np.ndarray:
        check_time(t_s)
        g_t = programmed.g_us
        sigma = self.noise_scale * self.sigma_us(g_t, t_s)
        return np.maximum(g_t + sigma * normal(rng, g_t.shape), 0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ReramCmoDevice:
    """CMO/HfOx ReRAM: program-and-verify error, log-time relaxation, growing read noise.

    - programming: g_prog = g_target + (p0 + p1 g_target) xi (p0, p1 for one acceptance range);
    - relaxation at t >= 1 s: g_relax = g_prog + (m ln t) s + (r1 ln t + r0) s xi, s = relax_scale;
    - read noise (Lombardo et al., DRC 2024): sigma = k log10(g_relax) sqrt(ln((t + t_read) /
      (2 t_read))), g = clip(g_relax + sigma xi, g_min, g_max).
    The relaxation fit covers t >= 1 s (`earliest_s`); at t = 0 the programmed conductance is
    returned, for code that inspects the chip right after programming.
    """

    g_max_us: float
    """Conductance of the largest weight."""
    g_min_us: float
    """Conductance of the smallest weight (the array cannot go below it)."""
    prog_sigma_offset_us: float
    """p0 of the programming-noise line."""
    prog_sigma_slope: float
    """p1 of the programming-noise line (microsiemens per microsiemens)."""
    relax_mean_us_per_ln_s: float
    """m: mean conductance change per unit of ln(t / 1 s)."""
    relax_sigma_us_per_ln_s: float
    """r1: growth of the relaxation spread per unit of ln(t / 1 s)."""
    relax_sigma_us: float
    """r0: relaxation spread at t = 1 s."""
    read_noise_k: float
    """k of the read-noise law."""
    t_read_s: float
    """Duration of one read; > 0."""
    prog_noise_scale: float = 1.0
    """Multiplier of the programming noise."""
    relax_scale: float = 1.0
    """Multiplier of the relaxation (mean and spread)."""
    read_noise_scale: float = 1.0
    """Multiplier of the read noise."""

    def __post_init__(self) -> None:
        check_range(self.g_min_us, self.g_max_us)
        non_negative("prog_sigma_offset_us", self.prog_sigma_offset_us)
        non_negative("relax_sigma_us", self.relax_sigma_us)
        positive("t_read_s", self.t_read_s)
        non_negative("read_noise_k", self.read_noise_k)
        RELATIVE_NOISE.check("read_noise_k", self.read_noise_k)
        for name in ("prog_noise_scale", "relax_scale", "read_noise_scale"):
            non_negative(name, getattr(self, name))

    earliest_s = 1.0
    """Start of the relaxation fit (ln t is referenced to 1 s)."""
    latest_s = float("inf")
    """A log-time law: defined at every later time (Falcone et al. extrapolate to 10 years)."""

    def prog_sigma_us(self, g_target_us: np.ndarray) -> np.ndarray:
        """Programming-noise std for each target conductance."""
        return self.prog_sigma_offset_us + self.prog_sigma_slope * np.asarray(g_target_us)

    def relax_moments_us(self, t_s: float) -> tuple[float, float]:
        """Mean shift and spread of the relaxation at t_s >= 1 s."""
        ln_t = np.log(t_s)
        mean = self.relax_mean_us_per_ln_s * ln_t
        sigma = self.relax_sigma_us_per_ln_s * ln_t + self.relax_sigma_us
        return float(mean * self.relax_scale), float(sigma * self.relax_scale)

    def read_sigma_us(self, g_us: np.ndarray, t_s: float) -> np.ndarray:
        """Read-noise std at t_s for conductances g_us."""
        factor = np.sqrt(np.log((t_s + self.t_read_s) / (2 * self.t_read_s)))
        return self.read_noise_k * np.log10(np.maximum(np.abs(g_us), 1e-6)) * factor

    def program(self, g_target_us: np.ndarray, rng: np.random.Generator) -> ProgrammedDevices:
        g_t = np.asarray(g_target_us, dtype=np.float32)
        sigma = np.float32(self.prog_noise_scale) * self.prog_sigma_us(g_t).astype(np.float32)
        return ProgrammedDevices((g_t + sigma * normal(rng, g_t.shape)).astype(np.float32), None)

    def at_time(
        self, programmed: ProgrammedDevices, t_s: float, rng: np.random.Generator
    ) -> np.ndarray:
        check_time(t_s)
        if t_s == 0:
            return programmed.g_us.copy()
        if t_s < 1:
            raise DeviceModelError(
                f"device model reram_cmo: relaxation is fitted for t >= 1 s (or t = 0, right after "
                f"programming); got t = {t_s:g} s"
            )
        g = programmed.g_us
        mean, sigma = self.relax_moments_us(t_s)
        g_relax = g + np.float32(mean) + np.float32(sigma) * normal(rng, g.shape)
        read = self.read_noise_scale * self.read_sigma_us(g_relax, t_s)
        g_read = g_relax + read.astype(np.float32) * normal(rng, g.shape)
        return np.clip(g_read, self.g_min_us, self.g_max_us).astype(np.float32)
