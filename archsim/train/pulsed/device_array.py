"""One (K, N) array of pulse-updated devices with their per-device sampled parameters.

The hidden weight `w` is what pulses change; a read sees w - reference + write noise, the
noise re-drawn for a device whenever it was touched (pulsed, reset, programmed, decayed) since
the previous read, and otherwise the same (aihwkit's apparent vs persistent weight: write noise
is applied on update, not on read; aihwkit rpu_pulsed_device.h `applyUpdateWriteNoise`).
`arrays()` hands the per-device arrays to the Numba kernels of `archsim.kernels.pulse` (which
change `w`, `pulses` and the counter in place); its order is ARRAY_FIELDS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archsim.errors import ArchsimError
from archsim.kernels.counter_rng import normal_table, split_key, standard_normals
from archsim.train.pulsed.update_model import (
    RULE_IDS,
    UpdateModel,
    bisect_symmetry,
    rule_steps,
    split_up_down,
)

ARRAY_FIELDS = (
    "w",  # float32 (K, N) hidden weights
    "a_up",  # float32 (K, N) up step a+ of each device
    "a_down",  # float32 (K, N) down step a-
    "shape_up",  # float32 (K, N) linear family: slope of the up step in w; pow: exponent p+
    "shape_down",  # float32 (K, N) linear family: slope of the down step; pow: exponent p-
    "b_max",  # float32 (K, N) upper bound
    "b_min",  # float32 (K, N) lower bound
    "pulses",  # int64 (K, N) pulses applied so far
    "prm",  # float64 (PRM_SIZE,) rule scalars, indices PRM_*
    "rng",  # uint64 (3,) counter-RNG key words k0, k1 and the counter (advanced in place)
    "table",  # float32 normal table of archsim.kernels.counter_rng
)
"""The order of the tuple `DeviceArray.arrays()` returns."""

PRM_RULE, PRM_SIGMA, PRM_MULT, PRM_EPS = 0, 1, 2, 3
PRM_EXP_A_UP, PRM_EXP_A_DOWN, PRM_EXP_G_UP, PRM_EXP_G_DOWN, PRM_EXP_A, PRM_EXP_B = 4, 5, 6, 7, 8, 9
PRM_SIZE = 10

_SAMPLED = ("a_up", "a_down", "shape_up", "shape_down", "b_max", "b_min")
_STATE_ARRAYS = ("w", "pulses", "reference", "reset_bias", "decay_factor", *_SAMPLED)


@dataclass(slots=True, eq=False)
class DeviceArray:
    """One (K, N) array of devices with their sampled parameters (build with UpdateModel.sample)."""

    model: UpdateModel
    w: np.ndarray
    """float32 (K, N): hidden device weights (device units)."""
    a_up: np.ndarray
    a_down: np.ndarray
    shape_up: np.ndarray
    shape_down: np.ndarray
    b_max: np.ndarray
    b_min: np.ndarray
    reference: np.ndarray
    """float32 (K, N): what a read subtracts (r_ij, plus the device's SP if subtracted)."""
    reset_bias: np.ndarray
    """float32 (K, N): the weight a reset sets (before its cycle-to-cycle noise)."""
    decay_factor: np.ndarray
    """float32 (K, N): 1 - 1/tau_ij per decay() call (1 without decay)."""
    pulses: np.ndarray
    """int64 (K, N): pulses applied to each device so far (endurance)."""
    key: int
    """Counter-RNG key (drawn from the Generator at sample())."""
    prm: np.ndarray
    rng: np.ndarray
    """uint64 [k0, k1, counter]: the kernels advance the counter in place."""
    write_noise: np.ndarray | None = None
    """float32 (K, N): the write noise reads see (None: none drawn yet, or all devices touched)."""
    noise_pulses: np.ndarray | None = None
    """int64 (K, N): `pulses` when each device's write noise was drawn (-1: touched otherwise)."""

    @property
    def shape(self) -> tuple[int, int]:
        return self.w.shape

    @property
    def counter(self) -> int:
        """Position in the counter-RNG stream (advanced by every draw)."""
        return int(self.rng[2])

    @counter.setter
    def counter(self, value: int) -> None:
        self.rng[2] = np.uint64(value)

    def arrays(self) -> tuple:
        """The per-device arrays and scalars for the Numba kernels, in ARRAY_FIELDS order."""
        return (
            self.w,
            self.a_up,
            self.a_down,
            self.shape_up,
            self.shape_down,
            self.b_max,
            self.b_min,
            self.pulses,
            self.prm,
            self.rng,
            normal_table(),
        )

    def normals(self, n: int) -> np.ndarray:
        """n fresh float32 standard normals from the device's counter stream."""
        out = np.empty(n, dtype=np.float32)
        k0, k1 = split_key(self.key)
        standard_normals(np.uint64(self.counter), k0, k1, normal_table(), out)
        self.counter = self.counter + (n + 1) // 2
        return out

    def read(self) -> np.ndarray:
        """float32 (K, N): w - reference, plus write noise write_noise_std dw_min xi, drawn
        afresh for the devices touched since the previous read (module docstring)."""
        out = self.w - self.reference
        std = np.float32(self.model.write_noise_std * self.model.dw_min)
        if std > 0:
            if self.write_noise is None:
                self.write_noise = std * self.normals(out.size).reshape(out.shape)
                self.noise_pulses = self.pulses.copy()
            else:
                touched = self.noise_pulses != self.pulses
                count = int(np.count_nonzero(touched))
                if count:
                    self.write_noise[touched] = std * self.normals(count)
                    self.noise_pulses[touched] = self.pulses[touched]
            out += self.write_noise
        return out

    def _touched(self, idx=slice(None)) -> None:
        """Mark devices (all, or rows `idx`) as touched other than by pulses."""
        if self.noise_pulses is not None:
            self.noise_pulses[idx] = -1

    def weights(self) -> np.ndarray:
        """float32 (K, N): w - reference without write noise."""
        return self.w - self.reference

    def program(self, target: np.ndarray) -> None:
        """Set w so that a noise-free read gives `target`, clipped to each device's bounds
        (initialisation: no pulses counted)."""
        target = np.asarray(target, dtype=np.float32)
        if target.shape != self.w.shape:
            raise ArchsimError(f"program: expected shape {self.w.shape}, got {target.shape}")
        np.clip(target + self.reference, self.b_min, self.b_max, out=self.w)
        self._touched()

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Reset devices (all, or the rows `rows`) to reset_bias + reset_std xi, clipped."""
        idx = slice(None) if rows is None else np.asarray(rows)
        new = self.reset_bias[idx].copy()
        if self.model.reset_std > 0:
            new += np.float32(self.model.reset_std) * self.normals(new.size).reshape(new.shape)
        self.w[idx] = np.clip(new, self.b_min[idx], self.b_max[idx])
        self._touched(idx)

    def decay(self, steps: int = 1) -> None:
        """`steps` decay steps towards the reset weight (no-op when lifetime is 0)."""
        if self.model.lifetime > 0:
            f = self.decay_factor**steps
            self.w[...] = (self.w - self.reset_bias) * f + self.reset_bias
            self._touched()

    def state(self) -> dict[str, np.ndarray | int]:
        """Everything needed to resume: the arrays, the key and the counter (copies)."""
        out: dict[str, np.ndarray | int] = {k: getattr(self, k).copy() for k in _STATE_ARRAYS}
        out["key"] = self.key
        out["counter"] = self.counter
        if self.write_noise is not None:
            out["write_noise"] = self.write_noise.copy()
            out["noise_pulses"] = self.noise_pulses.copy()
        return out

    def load_state(self, state) -> None:
        """Restore a `state()` of an array of the same shape."""
        for k in _STATE_ARRAYS:
            value = np.asarray(state[k])
            target = getattr(self, k)
            if value.shape != target.shape:
                raise ArchsimError(
                    f"load_state: {k} has shape {value.shape}, expected {target.shape}"
                )
            target[...] = value
        self.key = int(state["key"])
        self.write_noise = self.noise_pulses = None
        if "write_noise" in state:
            self.write_noise = np.array(state["write_noise"], dtype=np.float32)
            self.noise_pulses = np.array(state["noise_pulses"], dtype=np.int64)
        k0, k1 = split_key(self.key)
        self.rng[:] = (k0, k1, np.uint64(int(state["counter"])))


def sample_devices(
    model: UpdateModel, shape: tuple[int, int], rng: np.random.Generator
) -> DeviceArray:
    """Draw every per-device parameter of `model` (one independent xi per parameter)."""
    shape = (int(shape[0]), int(shape[1]))

    def xi() -> np.ndarray:
        return rng.standard_normal(shape)

    b_max = model.w_max * (1 + model.w_max_dtod * xi())
    b_min = model.w_min * (1 + model.w_min_dtod * xi())
    if model.w_max > 0:
        b_max = np.abs(b_max)
    if model.w_min < 0:
        b_min = -np.abs(b_min)
    b_max = np.maximum(b_max, b_min + 1e-6 * (model.w_max - model.w_min))
    g = xi() * model.dw_min_dtod
    g = np.exp(g) if model.dw_min_dtod_log_normal else 1 + g
    a_up, a_dn = split_up_down(g, model.up_down_dtod * xi(), model.up_down, model.dw_min)
    s_up, s_dn = _shapes(model, b_max, b_min, xi(), xi())
    reference = model.reference_mean + model.reference_std * xi()
    reset_bias = model.reset + model.reset_dtod * xi()
    tau = model.lifetime * (1 + model.lifetime_dtod * xi())
    decay = 1 - 1 / np.maximum(tau, 1.0) if model.lifetime > 0 else np.ones(shape)
    key = int(rng.integers(0, 2**62))
    k0, k1 = split_key(key)
    prm = np.zeros(10, dtype=np.float64)
    prm[PRM_RULE] = RULE_IDS[model.rule]
    prm[PRM_SIGMA] = model.dw_min_std
    prm[PRM_MULT] = 1.0 if model.mult_noise else 0.0
    prm[PRM_EPS] = model.granularity
    prm[PRM_EXP_A_UP:] = (
        model.exp_a_up,
        model.exp_a_down,
        model.exp_gamma_up,
        model.exp_gamma_down,
        model.exp_a,
        model.exp_b,
    )

    def f32(a) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float32)

    dev = DeviceArray(
        model=model,
        w=f32(np.clip(reset_bias, b_min, b_max)),
        a_up=f32(np.abs(a_up)),
        a_down=f32(np.abs(a_dn)),
        shape_up=f32(s_up),
        shape_down=f32(s_dn),
        b_max=f32(b_max),
        b_min=f32(b_min),
        reference=f32(reference),
        reset_bias=f32(reset_bias),
        decay_factor=f32(decay),
        pulses=np.zeros(shape, dtype=np.int64),
        key=key,
        prm=prm,
        rng=np.array([k0, k1, 0], dtype=np.uint64),
    )
    if model.subtract_symmetry_point:
        dev.reference += f32(device_symmetry_points(dev))
    return dev


def _shapes(model: UpdateModel, b_max, b_min, xi_up, xi_dn):
    """Per-device shape parameters: slopes (linear, soft_bounds) or exponents (pow)."""
    if model.rule == "linear":
        g_up = np.abs(model.gamma_up + model.gamma_dtod * xi_up)
        g_dn = np.abs(model.gamma_down + model.gamma_dtod * xi_dn)
        return g_up / model.w_max, g_dn / model.w_min
    if model.rule == "soft_bounds":
        return 1 / b_max, 1 / b_min
    if model.rule == "pow":
        p_up, p_dn = split_up_down(
            1 + model.pow_gamma_dtod * xi_up,
            model.pow_up_down_dtod * xi_dn,
            model.pow_up_down,
            model.pow_gamma,
        )
        return np.abs(p_up), np.abs(p_dn)
    return 0.0, 0.0


def device_mean_steps(dev: DeviceArray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Magnitudes of each device's expected up and down steps at hidden weights `w` (K, N)."""
    arrays = (dev.a_up, dev.a_down, dev.shape_up, dev.shape_down, dev.b_max, dev.b_min)
    return rule_steps(dev.model, np.asarray(w, np.float64), *(a.astype(np.float64) for a in arrays))


def device_symmetry_points(dev: DeviceArray) -> np.ndarray:
    """float64 (K, N): each device's symmetry point (UpdateModel.symmetry_point per device)."""
    a_up, a_dn = dev.a_up.astype(np.float64), dev.a_down.astype(np.float64)
    b_max, b_min = dev.b_max.astype(np.float64), dev.b_min.astype(np.float64)
    mid = (b_max + b_min) / 2
    drift = np.where(a_up > a_dn, b_max, np.where(a_up < a_dn, b_min, mid))
    if dev.model.rule == "constant":
        return drift
    if dev.model.rule in ("linear", "soft_bounds"):
        den = a_up * dev.shape_up - a_dn * dev.shape_down.astype(np.float64)
        safe = np.where(den == 0, 1.0, den)
        return np.where(den == 0, drift, np.clip((a_up - a_dn) / safe, b_min, b_max))
    return bisect_symmetry(lambda w: np.subtract(*device_mean_steps(dev, w)), b_min, b_max)
