"""The periphery of one analog read of a tile: y = x @ w through noise management, the input DAC,
output noise, the output ADC and bound management (aihwkit's forward/backward IO, aihwkit
`PresetIOParameters`; the backward pass reads the transposed array, d @ w.T, through the same
periphery).

Per input row b (aihwkit's order):
1. noise management (ABS_MAX): s_b = max_k |x_bk| (rows of zeros read 0); x_b / s_b;
2. DAC: round to steps of 2 / dac_steps, clip to [-1, 1];
3. the analog MVM with the array's weights, plus out_noise * xi per output;
4. bound management (ITERATIVE): a row with an output at or beyond +-out_bound is read again
   with its inputs halved (fresh noise), up to max_bm_iters times;
5. ADC: round to steps of 2 out_bound / adc_steps, clip to +-out_bound; times s_b * 2**iters.

Noise comes from the counter-based normals (archsim.kernels.counter_rng) under the tile's key,
at a counter the caller advances (returned), so a read is a pure function of its inputs.
"""

from __future__ import annotations

import numpy as np

from archsim.kernels.counter_rng import normal_table, split_key, standard_normals
from archsim.train.pulsed.settings import IoSettings


def _normals(key: int, counter: int, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Counter-based standard normals of `shape` (float32) and the next counter."""
    n = shape[0] * shape[1]
    out = np.empty(n, dtype=np.float32)
    k0, k1 = split_key(key)
    standard_normals(np.uint64(counter), k0, k1, normal_table(), out)
    return out.reshape(shape), counter + (n + 1) // 2


def _dac(x: np.ndarray, steps: int) -> np.ndarray:
    if not steps:
        return np.clip(x, -1.0, 1.0)
    half = np.float32(steps / 2)
    return np.clip(np.rint(x * half) / half, -1.0, 1.0).astype(np.float32)


def _adc(y: np.ndarray, io: IoSettings) -> np.ndarray:
    if io.adc_steps:
        lsb = np.float32(2 * io.out_bound / io.adc_steps)
        y = np.rint(y / lsb) * lsb
    if io.out_bound:
        y = np.clip(y, -io.out_bound, io.out_bound)
    return y.astype(np.float32, copy=False)


def analog_read(
    x: np.ndarray, w: np.ndarray, io: IoSettings, key: int, counter: int
) -> tuple[np.ndarray, int]:
    """x (m, K) @ w (K, N) through the periphery `io` -> (y (m, N) float32, next counter).

    With `io.enable` False the result is exactly `x @ w` in float32 (counter unchanged)."""
    x = np.asarray(x, dtype=np.float32)
    if not io.enable:
        return x @ w, counter
    if io.noise_management:
        scale = np.max(np.abs(x), axis=1, keepdims=True)
        scale[scale == 0] = 1.0
    else:
        scale = np.ones((x.shape[0], 1), dtype=np.float32)
    xn = x / scale
    y = _dac(xn, io.dac_steps) @ w
    if io.out_noise:
        z, counter = _normals(key, counter, y.shape)
        y += np.float32(io.out_noise) * z
    if io.bound_management and io.out_bound:
        factor = np.ones_like(scale)
        rows = np.flatnonzero(np.any(np.abs(y) >= io.out_bound, axis=1))
        for _ in range(io.max_bm_iters):
            if not len(rows):
                break
            factor[rows] *= 2
            yr = _dac(xn[rows] / factor[rows], io.dac_steps) @ w
            if io.out_noise:
                z, counter = _normals(key, counter, yr.shape)
                yr += np.float32(io.out_noise) * z
            y[rows] = yr
            rows = rows[np.any(np.abs(yr) >= io.out_bound, axis=1)]
        scale = scale * factor
    return _adc(y, io) * scale, counter
