"""Device update models for pulsed on-chip training: one device preset's `[update]` table.

Every coincidence of an up or down pulse changes a device's hidden weight w by one
"update-once" step of its rule, with cycle-to-cycle noise sigma*xi (xi ~ N(0, 1) fresh per
pulse, sigma = `dw_min_std`), followed by clipping to the device's own bounds [b_min, b_max]
(aihwkit C++ rpu_*_device.cpp; the equations, not the code, are what archsim takes):

    rule          up pulse                                down pulse
    constant      w += a+ (1 + sigma xi)                  w -= a- (1 + sigma xi)
    linear        w += a+ (1 - g+ w / w_max)(1 + s xi)    w -= a- (1 - g- w / w_min)(1 + s xi)
    soft_bounds   w += a+ (1 - w / b_max)(1 + s xi)       w -= a- (1 - w / b_min)(1 + s xi)
    exp           w += a+ max(1 - A+ e^(G+ z), 0)(...)    w -= a- max(1 - A- e^(-G- z), 0)(...)
                  with z = 2 exp_a w / (b_max - b_min) + exp_b
    pow           w += a+ om^p+ (1 + s xi)                w -= a- (1 - om)^p- (1 + s xi)
                  with om = (b_max - w) / (b_max - b_min)

`mult_noise = False` makes the noise additive, a (f + sigma xi) instead of a f (1 + sigma xi):
aihwkit's SoftBoundsReference and the additive LinearStep (Capacitor).

Per-device parameters are drawn once, at `sample`, with an independent xi per parameter:
b_max = w_max (1 + w_max_dtod xi), b_min = w_min (1 + w_min_dtod xi) (signs enforced);
g = 1 + dw_min_dtod xi (exp(dw_min_dtod xi) if log-normal); r = up_down_dtod xi.

**up_down convention (one-sided, as aihwkit's C++ code, not its docstring):** with u = up_down,
u > 0 gives a+ = (g + r) dw_min and a- = (g - u - r) dw_min; u <= 0 gives a+ = (g + u + r)
dw_min and a- = (g - r) dw_min. So a soft-bounds device with bounds +-1 has its symmetry point
at u / (2 - u) (the docstring's symmetric split would put it at u). The aihwkit presets are
copied with their up_down unchanged; the cmo-hfox preset converts its measured symmetry-point
skew with this convention. The pow rule's exponents split the same way with `pow_up_down`:
p+- = (1 + pow_gamma_dtod xi +- r_p) pow_gamma, one-sided bias as for up_down.

The granularity (epsilon, the mean step the pulse arithmetic assumes) is dw_min for constant,
linear and soft_bounds, dw_min 0.5^pow_gamma for pow (the mean step at mid-range), and for exp
the mean of the mean device's up and down steps at w = 0 (aihwkit uses the down step twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from archsim.checks import non_negative, one_of, positive
from archsim.errors import SpecError

if TYPE_CHECKING:
    from archsim.train.pulsed.device_array import DeviceArray

UPDATE_RULES = ("constant", "linear", "soft_bounds", "exp", "pow")
RULE_IDS = {name: i for i, name in enumerate(UPDATE_RULES)}


@dataclass(frozen=True, slots=True)
class UpdateModel:
    """One device preset's `[update]` table (the fields and equations: module docstring)."""

    rule: str
    """One of UPDATE_RULES."""
    dw_min: float
    """Mean step (in weight units) of the rule's reference point, > 0."""
    w_max: float
    """Mean upper bound of the hidden weight."""
    w_min: float
    """Mean lower bound of the hidden weight (< w_max)."""
    dw_min_dtod: float = 0.0
    """Device-to-device spread of the step size (relative)."""
    dw_min_dtod_log_normal: bool = False
    """Step sizes log-normal across devices: g = exp(dw_min_dtod xi)."""
    dw_min_std: float = 0.0
    """Cycle-to-cycle (per pulse) relative step noise sigma."""
    w_max_dtod: float = 0.0
    """Device-to-device spread of the upper bound (relative)."""
    w_min_dtod: float = 0.0
    """Device-to-device spread of the lower bound (relative)."""
    up_down: float = 0.0
    """Up/down step asymmetry, one-sided convention (module docstring)."""
    up_down_dtod: float = 0.0
    """Device-to-device spread of the asymmetry."""
    write_noise_std: float = 0.0
    """Noise on every read, in units of dw_min, drawn fresh per read."""
    reference_mean: float = 0.0
    """Mean of the reference-device offset r_ij a read subtracts."""
    reference_std: float = 0.0
    """Device-to-device spread of r_ij (absolute)."""
    subtract_symmetry_point: bool = False
    """A read also subtracts each device's own symmetry point (a perfect SP reference)."""
    reset: float = 0.0
    """Mean weight a reset sets."""
    reset_dtod: float = 0.0
    """Device-to-device spread of the reset weight (additive)."""
    reset_std: float = 0.0
    """Cycle-to-cycle noise of a reset (absolute)."""
    mult_noise: bool = True
    """Cycle-to-cycle noise multiplies the step (False: added to the bracket)."""
    gamma_up: float = 0.0
    """linear: slope of the up step (1 at w = w_max makes it zero)."""
    gamma_down: float = 0.0
    """linear: slope of the down step."""
    gamma_dtod: float = 0.0
    """linear: device-to-device spread of both slopes (absolute)."""
    pow_gamma: float = 1.0
    """pow: exponent of the step in the distance to the bound."""
    pow_gamma_dtod: float = 0.0
    """pow: device-to-device spread of the exponent (relative)."""
    pow_up_down: float = 0.0
    """pow: up/down exponent asymmetry (one-sided, as up_down)."""
    pow_up_down_dtod: float = 0.0
    """pow: device-to-device spread of the exponent asymmetry."""
    exp_a_up: float = 0.00081
    """exp: A+ (aihwkit ExpStep default)."""
    exp_a_down: float = 0.36833
    """exp: A-."""
    exp_gamma_up: float = 12.44625
    """exp: G+."""
    exp_gamma_down: float = 12.78785
    """exp: G-."""
    exp_a: float = 0.244
    """exp: a of z."""
    exp_b: float = 0.2425
    """exp: b of z."""
    lifetime: float = 0.0
    """Decay time constant in decay() calls (0: no decay): w <- (w - b)(1 - 1/tau) + b."""
    lifetime_dtod: float = 0.0
    """Device-to-device spread of the lifetime (relative)."""
    source: str = ""
    """Where the constants come from (docs/sources.md keys) or "estimate" with the reasoning."""

    def __post_init__(self) -> None:
        one_of("rule", self.rule, UPDATE_RULES)
        positive("dw_min", self.dw_min)
        for name in ("w_max", "w_min", "up_down", "reference_mean", "reset", "exp_a", "exp_b"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise SpecError(name, f"expected a finite number, got {value}")
        if not self.w_max > self.w_min:
            raise SpecError("w_max", f"expected > w_min ({self.w_min}), got {self.w_max}")
        for name in (
            "dw_min_dtod",
            "dw_min_std",
            "w_max_dtod",
            "w_min_dtod",
            "up_down_dtod",
            "write_noise_std",
            "reference_std",
            "reset_dtod",
            "reset_std",
            "gamma_dtod",
            "pow_gamma_dtod",
            "pow_up_down_dtod",
            "lifetime",
            "lifetime_dtod",
            "gamma_up",
            "gamma_down",
        ):
            non_negative(name, getattr(self, name))
        positive("pow_gamma", self.pow_gamma)
        if not -1.0 < self.up_down < 1.0:
            raise SpecError("up_down", f"expected -1 < up_down < 1, got {self.up_down}")
        if not -1.0 < self.pow_up_down < 1.0:
            raise SpecError("pow_up_down", f"expected -1 < pow_up_down < 1, got {self.pow_up_down}")
        if self.rule in ("linear", "soft_bounds") and not self.w_min < 0 < self.w_max:
            raise SpecError("w_max", f"the {self.rule} rule needs w_min < 0 < w_max")
        if self.lifetime and self.lifetime <= 1.0:
            raise SpecError("lifetime", f"expected 0 (off) or > 1 decay step, got {self.lifetime}")

    @property
    def granularity(self) -> float:
        """Epsilon: the mean step the pulse arithmetic assumes (module docstring)."""
        if self.rule == "pow":
            return self.dw_min * 0.5**self.pow_gamma
        if self.rule == "exp":
            up, down = self.mean_steps(np.zeros(1))
            return float(up[0] + down[0]) / 2.0
        return self.dw_min

    @property
    def n_states(self) -> float:
        """(w_max - w_min) / granularity of the mean device."""
        return (self.w_max - self.w_min) / self.granularity

    def mean_alphas(self) -> tuple[float, float]:
        """(a+, a-) of the mean device (no device-to-device spread)."""
        return split_up_down(1.0, 0.0, self.up_down, self.dw_min)

    def mean_pow_gammas(self) -> tuple[float, float]:
        """(p+, p-) of the mean device (pow rule)."""
        return split_up_down(1.0, 0.0, self.pow_up_down, self.pow_gamma)

    def mean_shapes(self) -> tuple[float, float]:
        """The mean device's shape parameters (up, down): the slopes of the linear family's
        steps in w (0 for constant), the exponents of pow (unused by exp)."""
        if self.rule == "linear":
            return self.gamma_up / self.w_max, self.gamma_down / self.w_min
        if self.rule == "soft_bounds":
            return 1 / self.w_max, 1 / self.w_min
        if self.rule == "pow":
            return self.mean_pow_gammas()
        return 0.0, 0.0

    def mean_steps(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Magnitudes of the mean device's expected up and down steps at hidden weights `w`."""
        w = np.asarray(w, dtype=np.float64)
        return rule_steps(self, w, *self.mean_alphas(), *self.mean_shapes(), self.w_max, self.w_min)

    def symmetry_point(self) -> float:
        """The weight random +-1 pulses drive the mean device to (where its mean up and down
        steps are equal). Closed forms: linear family (a+ - a-) / (a+ g+/w_max - a- g-/w_min);
        pow with equal exponents b_max - (b_max - b_min) q / (1 + q), q = (a-/a+)^(1/p); exp and
        unequal pow exponents by bisection. A constant-step device has no such point: it drifts
        to the bound of its larger step, and a symmetric one random-walks (mean of its
        stationary distribution: mid-range)."""
        a_up, a_dn = self.mean_alphas()
        if self.rule == "constant":
            if a_up == a_dn:
                return (self.w_max + self.w_min) / 2
            return self.w_max if a_up > a_dn else self.w_min
        if self.rule in ("linear", "soft_bounds"):
            g_up, g_dn = (
                (1.0, 1.0) if self.rule == "soft_bounds" else (self.gamma_up, self.gamma_down)
            )
            den = a_up * g_up / self.w_max - a_dn * g_dn / self.w_min
            if den == 0:
                if a_up == a_dn:
                    return (self.w_max + self.w_min) / 2
                return self.w_max if a_up > a_dn else self.w_min
            return float(np.clip((a_up - a_dn) / den, self.w_min, self.w_max))
        if self.rule == "pow":
            p_up, p_dn = self.mean_pow_gammas()
            if p_up == p_dn:
                q = (a_dn / a_up) ** (1 / p_up)
                return self.w_max - (self.w_max - self.w_min) * q / (1 + q)
        lo, hi = np.array([self.w_min]), np.array([self.w_max])
        return float(bisect_symmetry(lambda w: np.subtract(*self.mean_steps(w)), lo, hi)[0])

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> DeviceArray:
        """A (K, N) array of devices with their parameters drawn from `rng`."""
        from archsim.train.pulsed.device_array import sample_devices

        return sample_devices(self, shape, rng)


def split_up_down(g, r, u: float, scale: float):
    """(up, down) of the one-sided asymmetry split: u > 0 biases the down side only, u <= 0 the
    up side only (module docstring). g and r may be arrays (per device)."""
    if u > 0:
        return (g + r) * scale, (g - u - r) * scale
    return (g + u + r) * scale, (g - r) * scale


def bisect_symmetry(diff, lo: np.ndarray, hi: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Elementwise root of diff(w) (mean up minus mean down step, decreasing in w) on [lo, hi]:
    a bound when diff keeps its sign there."""
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        up = diff(mid) > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return (lo + hi) / 2


def rule_steps(model: UpdateModel, w, a_up, a_dn, s_up, s_dn, b_max, b_min):
    """Magnitudes of the expected (noise-free) up and down steps of the rule of `model` at
    hidden weights w, for step sizes a, shape parameters s and bounds b (scalars or arrays)."""
    if model.rule in ("constant", "linear", "soft_bounds"):
        return a_up * (1 - s_up * w), a_dn * (1 - s_dn * w)
    if model.rule == "exp":
        z = 2 * model.exp_a * w / (b_max - b_min) + model.exp_b
        up = a_up * np.maximum(1 - model.exp_a_up * np.exp(model.exp_gamma_up * z), 0)
        return up, a_dn * np.maximum(1 - model.exp_a_down * np.exp(-model.exp_gamma_down * z), 0)
    om = np.clip((b_max - w) / (b_max - b_min), 0.0, 1.0)
    return a_up * om**s_up, a_dn * (1 - om) ** s_dn
