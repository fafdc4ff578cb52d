"""Weights on crossbars: program a matrix once, then read it at an inference time.

A K x N weight matrix is normalised by a digital scale, converted to device conductances
(`archsim.conductance`), programmed with the device model's noise, and later read at
`t_inference_s` with drift and the read noise integrated up to then, drawn once per read-out (as
aihwkit does). The read-out, a `MatrixState`, is what every MVM (`archsim.mvm`) uses. Global
drift compensation rescales each crossbar block by the ratio of its summed |weights| right after
programming to now (a periodic summed-current read of the block on the chip).

A single-device weight (devices_per_weight = 1) is read against a reference column in each
crossbar block: one device per row, programmed to mid-range conductance g_mid with the same noise
and drift law as the weights, driven by the same inputs; its current is subtracted from every
weight column's current of the block. Subtracting the undrifted g_mid instead would shift every
weight negative as the devices drift. Simplification: the reference column adds no area, energy
or ADC conversion; its error is common to the block's columns, row by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from archsim.conductance import (
    WeightScaling,
    conductance_load,
    to_targets,
    to_weights,
    weight_scales,
)
from archsim.devices.base import ProgrammedDevices
from archsim.errors import ArchsimError
from archsim.spec import CrossbarSpec, DeviceSpec


@dataclass(frozen=True, slots=True, eq=False)
class ProgrammedMatrix:
    """A K x N weight matrix programmed onto crossbar blocks (the chip right after programming)."""

    crossbar: CrossbarSpec
    """Block size, devices per weight and IR-drop parameters."""
    device: DeviceSpec
    """Device the weights are stored in."""
    w_scale: np.ndarray
    """(N,) float32 digital scale: the weight value of a normalised weight of 1, per column."""
    devices: ProgrammedDevices
    """Programmed conductances, shape (devices_per_weight, K, N)."""
    reference_abs: np.ndarray
    """(row blocks, col blocks) sum of |normalised weight| per block right after programming,
    the reference of global drift compensation."""
    reference: ProgrammedDevices | None = None
    """Single-device weights only: the reference columns programmed to g_mid, shape
    (1, K, column blocks), one device per row of each crossbar block; None when differential."""
    polarity_seed: int | None = None
    """Seed of the devices' read-polarity ratios (`bipolar_read`), or None when the device has
    no polarity asymmetry or the weight is not differential."""

    @property
    def shape(self) -> tuple[int, int]:
        """(K, N) of the weight matrix."""
        return self.devices.g_us.shape[1], self.devices.g_us.shape[2]

    @property
    def n_row_blocks(self) -> int:
        """Crossbar blocks along K (the K-split)."""
        return math.ceil(self.shape[0] / self.crossbar.rows)


@dataclass(frozen=True, slots=True, eq=False)
class MatrixState:
    """A programmed matrix as read at `t_s` seconds after programming: what each MVM uses."""

    programmed: ProgrammedMatrix
    t_s: float
    """Time since programming (s)."""
    w_eff: np.ndarray
    """(K, N) float32 normalised weights the devices represent at t_s (C-contiguous)."""
    alpha: np.ndarray
    """(row blocks, col blocks) float32 digital drift-compensation factor (1 when off)."""
    read_load: np.ndarray | None
    """(K, N) float32 conductance load per weight (for conductance-dependent read noise)."""
    derived: dict = field(default_factory=dict, compare=False, repr=False)
    """Per-converter constants `archsim.mvm` derives once (not part of the state's value)."""
    w_eff_neg: np.ndarray | None = None
    """(K, N) float32 weights that negative inputs see when they differ from `w_eff` (a
    bipolar, one-phase read of devices with a read-polarity asymmetry); None = `w_eff`."""
    current_load: np.ndarray | None = None
    """(K, N) float32 summed conductance of each weight's devices over the conductance of one
    fully-on cell polarity (g_max x devices per polarity): the current a full-scale input
    draws through the weight, for the IR-drop model (None when IR drop is off)."""


def program_matrix(
    weights: np.ndarray,
    crossbar: CrossbarSpec,
    device: DeviceSpec,
    rng: np.random.Generator,
    *,
    weight_scaling: WeightScaling = "matrix",
) -> ProgrammedMatrix:
    """Program a K x N weight matrix onto crossbar blocks, once.

    Args:
        weights: (K, N) real weights (any float dtype; finite).
        crossbar: block size and devices per weight.
        device: device preset (model, range).
        rng: source of the programming noise and drift parameters.
        weight_scaling: digital scale per "matrix" or per "column" (LDPU per-column scale).

    Raises:
        ArchsimError: weights are not a finite 2-D array.
    """
    w = np.asarray(weights)
    if w.ndim != 2 or w.size == 0:
        raise ArchsimError(f"weights: expected a non-empty 2-D (K, N) array, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ArchsimError("weights: contain NaN or Inf")
    fitted = getattr(device.model, "devices_per_weight", None)
    if fitted is not None and fitted != crossbar.devices_per_weight:
        raise ArchsimError(
            f"device {device.name!r} is fitted for {fitted} devices per weight; the crossbar "
            f"stores {crossbar.devices_per_weight}"
        )
    w_scale = weight_scales(w, weight_scaling)
    w_norm = (w / w_scale).astype(np.float32)
    g_min, g_max = device.g_min_us, device.g_max_us
    targets = to_targets(w_norm, crossbar.devices_per_weight, g_min, g_max)
    devices = device.model.program(targets, rng)
    seed = None
    if _polarity_asymmetry(device) is not None and crossbar.differential:
        seed = int(rng.integers(0, 2**63 - 1))  # drawn in every read mode: same chip in each
    ref_devices = None
    if not crossbar.differential and crossbar.mid_reference == "column":
        mid = np.float32((g_min + g_max) / 2)
        nb = math.ceil(w.shape[1] / crossbar.cols)
        ref_devices = device.model.program(np.full((1, w.shape[0], nb), mid, np.float32), rng)
    g_ref = (
        None if ref_devices is None else _per_column(ref_devices.g_us[0], crossbar.cols, w.shape[1])
    )
    w_prog = to_weights(devices.g_us, crossbar.devices_per_weight, g_min, g_max, g_ref)
    reference_abs = _block_abs_sums(w_prog, crossbar.rows, crossbar.cols)
    return ProgrammedMatrix(crossbar, device, w_scale, devices, reference_abs, ref_devices, seed)


def read_state(
    programmed: ProgrammedMatrix,
    t_s: float,
    rng: np.random.Generator,
    *,
    compensation: bool | None = None,
    bipolar_read: bool = False,
) -> MatrixState:
    """The matrix as read t_s seconds after programming (drift and integrated read noise).

    Args:
        programmed: the programmed matrix.
        t_s: time since programming in seconds (>= 0).
        rng: source of the read-out noise (drawn once for this state).
        compensation: global drift compensation per block; None = the device preset's choice.
        bipolar_read: inputs of both signs are applied in one phase with read voltages of both
            polarities (HERMES' one-phase mode, LG23 Extended Data Fig. 4): a positive input
            reads the negative-polarity devices at V+, a negative input the positive-polarity
            devices, and a device read at V+ conducts `1 + a` times its V- conductance (the
            device's `polarity_asymmetry` a, drawn per device). False: one read polarity (V-)
            for all devices (the four-phase mode), the conductances as programmed.
    """
    xb, dev = programmed.crossbar, programmed.device
    g = dev.model.at_time(programmed.devices, float(t_s), rng)
    d = xb.devices_per_weight
    g_ref = None
    if programmed.reference is not None:
        g_ref_blocks = dev.model.at_time(programmed.reference, float(t_s), rng)[0]
        g_ref = _per_column(g_ref_blocks, xb.cols, programmed.shape[1])
    w_eff = np.ascontiguousarray(to_weights(g, d, dev.g_min_us, dev.g_max_us, g_ref))
    w_eff_neg = None
    w_pos = w_eff
    if bipolar_read and programmed.polarity_seed is not None:
        ratio = _polarity_ratio(programmed, g.shape)
        m = d // 2
        g_pos, g_neg = g.copy(), g.copy()
        g_pos[m:] *= ratio[m:]  # positive inputs: negative-polarity devices at V+
        g_neg[:m] *= ratio[:m]  # negative inputs: positive-polarity devices at V+
        w_pos = np.ascontiguousarray(to_weights(g_pos, d, dev.g_min_us, dev.g_max_us))
        w_eff_neg = np.ascontiguousarray(to_weights(g_neg, d, dev.g_min_us, dev.g_max_us))
    use_comp = dev.drift_compensation if compensation is None else compensation
    if use_comp:
        now = _block_abs_sums(w_eff, xb.rows, xb.cols)
        alpha = programmed.reference_abs / np.maximum(now, 1e-12)
        alpha[programmed.reference_abs == 0] = 1.0
    else:
        alpha = np.ones_like(programmed.reference_abs)
    load = None
    if dev.mvm_noise.kind == "conductance" and dev.mvm_noise.std > 0:
        load = conductance_load(g, xb.devices_per_weight, dev.g_min_us, dev.g_max_us)
    current = None
    if xb.ir_drop:
        cell_g_max = np.float32(dev.g_max_us * xb.devices_per_polarity)
        current = np.ascontiguousarray(g.sum(axis=0, dtype=np.float32) / cell_g_max)
    return MatrixState(
        programmed,
        float(t_s),
        w_pos,
        alpha.astype(np.float32),
        load,
        w_eff_neg=w_eff_neg,
        current_load=current,
    )


def _polarity_asymmetry(device: DeviceSpec) -> tuple[float, float] | None:
    """(mean, spread) of the device's relative V+/V- read-conductance difference, or None."""
    mean = getattr(device.model, "polarity_asymmetry", 0.0)
    std = getattr(device.model, "polarity_asymmetry_std", 0.0)
    return (mean, std) if mean or std else None


def _polarity_ratio(programmed: ProgrammedMatrix, shape: tuple[int, ...]) -> np.ndarray:
    """Per-device V+/V- conductance ratio 1 + a, a ~ N(mean, spread), fixed per programmed chip."""
    mean, std = _polarity_asymmetry(programmed.device)
    rng = np.random.default_rng(programmed.polarity_seed)
    a = mean + std * rng.standard_normal(shape, dtype=np.float32)
    return np.maximum(1.0 + a, 0.0).astype(np.float32)


def _per_column(per_block: np.ndarray, cols: int, n: int) -> np.ndarray:
    """(K, column blocks) reference conductances, repeated to the (K, N) weights they serve."""
    return np.repeat(per_block, cols, axis=1)[:, :n]


def _block_abs_sums(w: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sum of |w| over each (rows x cols) block, shape (row blocks, col blocks), float64."""
    k, n = w.shape
    kb, nb = math.ceil(k / rows), math.ceil(n / cols)
    padded = np.zeros((kb * rows, nb * cols), dtype=np.float64)
    padded[:k, :n] = np.abs(w)
    return padded.reshape(kb, rows, nb, cols).sum(axis=(1, 3))
