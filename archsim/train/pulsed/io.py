"""The periphery of one analog read of a tile: y = x @ w through noise management, the input DAC,
output noise, the output ADC and bound management (aihwkit's forward/backward IO,
`PresetIOParameters`; the backward pass reads the transposed array, d @ w.T, through the same
periphery).

Per input row b (aihwkit's order):
1. noise management (ABS_MAX): s_b = max_k |x_bk| (rows of zeros read 0); x_b / s_b;
2. DAC: round to steps of 2 / dac_steps, clip to [-1, 1];
3. the analog MVM with the array's weights, plus out_noise * xi per output;
4. bound management (ITERATIVE, forward reads only): a row with an output at or beyond
   +-out_bound is read again with its inputs halved (fresh noise), up to max_bm_iters times;
5. ADC: round to steps of 2 out_bound / adc_steps, clip to +-out_bound; times s_b * 2**iters.

Noise comes from the counter-based normals (archsim.kernels.counter_rng) under the tile's key,
at a counter the caller advances (returned), so a read is a pure function of its inputs. The
element-wise steps run in Numba around the BLAS product (archsim.kernels.dac and adc quantise
with one scale per call or column; here every row has its own noise-management scale).
"""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels.counter_rng import normal_table, split_key, standard_normals
from archsim.kernels.options import JIT_OPTIONS
from archsim.train.pulsed.settings import IoSettings


@numba.njit(**JIT_OPTIONS)
def _dac_rows(x, manage, half, factor, out, scale):
    """out = DAC(x / (s_b factor_b)) per row b; scale[b] = s_b (max |x_b|, or 1)."""
    m, k = x.shape
    for b in range(m):
        s = np.float32(1.0)
        if manage:
            mx = np.float32(0.0)
            for j in range(k):
                mx = max(mx, abs(x[b, j]))
            if mx > 0:
                s = mx
        scale[b] = s
        inv = np.float32(1.0) / (s * factor[b])
        for j in range(k):
            v = x[b, j] * inv
            if half > 0:
                v = np.rint(v * half) / half
            out[b, j] = min(max(v, np.float32(-1.0)), np.float32(1.0))


@numba.njit(**JIT_OPTIONS)
def _add_noise(y, sd, start, k0, k1, table, bound, saturated):
    """y += sd * (counter normals from `start`); saturated[b] = any |y_b| >= bound (bound > 0).
    Returns the next counter."""
    m, n = y.shape
    z = np.empty(m * n, dtype=np.float32)
    if sd > 0:
        standard_normals(start, k0, k1, table, z)
        start += (m * n + 1) // 2
    for b in range(m):
        hit = False
        for c in range(n):
            v = y[b, c]
            if sd > 0:
                v += sd * z[b * n + c]
                y[b, c] = v
            if bound > 0 and abs(v) >= bound:
                hit = True
        saturated[b] = hit
    return start


@numba.njit(**JIT_OPTIONS)
def _adc_rows(y, lsb, bound, scale, factor):
    """y = ADC(y) * scale_b * factor_b in place."""
    m, n = y.shape
    for b in range(m):
        g = scale[b] * factor[b]
        for c in range(n):
            v = y[b, c]
            if lsb > 0:
                v = np.rint(v / lsb) * lsb
            if bound > 0:
                v = min(max(v, -bound), bound)
            y[b, c] = v * g


def analog_read(
    x: np.ndarray, w: np.ndarray, io: IoSettings, key: int, counter: int
) -> tuple[np.ndarray, int]:
    """x (m, K) @ w (K, N) through the periphery `io` -> (y (m, N) float32, next counter).

    With `io.enable` False the result is exactly `x @ w` in float32 (counter unchanged)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not io.enable:
        return x @ w, counter
    m = x.shape[0]
    half = np.float32(io.dac_steps / 2)
    bound = np.float32(io.out_bound)
    sd = np.float32(io.out_noise)
    k0, k1 = split_key(key)
    table = normal_table()
    factor = np.ones(m, dtype=np.float32)
    scale = np.empty(m, dtype=np.float32)
    xq = np.empty_like(x)
    _dac_rows(x, io.noise_management, half, factor, xq, scale)
    y = xq @ w
    saturated = np.zeros(m, dtype=np.bool_)
    check = bound if io.bound_management else np.float32(0.0)
    counter = int(_add_noise(y, sd, np.uint64(counter), k0, k1, table, check, saturated))
    rows = np.flatnonzero(saturated)
    for _ in range(io.max_bm_iters if io.bound_management else 0):
        if not len(rows):
            break
        factor[rows] *= 2
        part = np.empty((len(rows), x.shape[1]), dtype=np.float32)
        _dac_rows(x[rows], io.noise_management, half, factor[rows], part, scale[rows])
        yr = part @ w
        hit = np.zeros(len(rows), dtype=np.bool_)
        counter = int(_add_noise(yr, sd, np.uint64(counter), k0, k1, table, check, hit))
        y[rows] = yr
        rows = rows[hit]
    lsb = np.float32(2 * io.out_bound / io.adc_steps) if io.adc_steps else np.float32(0.0)
    _adc_rows(y, lsb, bound, scale, factor)
    return y, counter


def normals(key: int, counter: int, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Counter-based standard normals of `shape` (float32) under `key` and the next counter."""
    n = shape[0] * shape[1]
    out = np.empty(n, dtype=np.float32)
    k0, k1 = split_key(key)
    standard_normals(np.uint64(counter), k0, k1, normal_table(), out)
    return out.reshape(shape), counter + (n + 1) // 2
