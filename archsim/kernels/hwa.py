"""Element-wise passes of the hardware-aware training product (archsim.train.hwa), fused.

Each pass reads an array once where NumPy would take four to six passes (clamp, divide, round,
multiply, compare, sum). The kernels are serial: these passes are memory-bound, and on the shared
2-core machine a `prange` version took ~12 ms of thread start-up per call against 0.5 ms of work
for a (36864, 64) block output (OpenMP threads competing with BLAS's).
"""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels.counter_rng import table_indices
from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def clamp_quantize(x, starts, beta, qmax, out):
    """Clamp each row block to +-beta and quantise it to qmax levels per polarity.

    out[:, b] = rint(clip(x, -beta_b, beta_b) / step_b) * step_b, step_b = beta_b / qmax;
    qmax = 0 clamps without quantising.

    Args:
        x: (rows, K) float inputs.
        starts: (n_blocks + 1,) int64 block edges along K (starts[-1] = K).
        beta: (n_blocks,) input ranges, > 0, of x's dtype.
        qmax: largest DAC code (2**(bits-1) - 1), or 0 for no quantisation, of x's dtype.
        out: (rows, K) output, same dtype as x.
    """
    n_blocks = beta.shape[0]
    for r in range(x.shape[0]):
        for b in range(n_blocks):
            hi = beta[b]
            lo = -hi
            # 1-D slices from index 0 keep the loops free of wrap-around checks (they vectorise)
            xs = x[r, starts[b] : starts[b + 1]]
            os = out[r, starts[b] : starts[b + 1]]
            if qmax > 0:
                step = hi / qmax
                inv = qmax / hi
                for j in range(xs.shape[0]):
                    v = xs[j]
                    v = v if v < hi else hi
                    v = v if v > lo else lo
                    os[j] = np.rint(v * inv) * step
            else:
                for j in range(xs.shape[0]):
                    v = xs[j]
                    v = v if v < hi else hi
                    os[j] = v if v > lo else lo


@numba.njit(**JIT_OPTIONS)
def input_grad(x, g, starts, beta, sums):
    """Zero the gradient of clipped inputs in place and sum what the input ranges need.

    For block b: sums[b, 0] = sum of min(g, 0) where x >= beta_b, sums[b, 1] = sum of
    max(g, 0) where x <= -beta_b, sums[b, 2] = count of those inputs. g is set to 0 where
    |x| > beta_b (an input exactly at the range keeps its gradient, as in BU24's code).

    Args:
        x: (rows, K) inputs before clamping.
        g: (rows, K) gradient with respect to the clamped inputs; overwritten with dL/dx.
        starts: (n_blocks + 1,) block edges along K.
        beta: (n_blocks,) input ranges.
        sums: (n_blocks, 3) float64 output.
    """
    n_blocks = beta.shape[0]
    sums[:] = 0.0
    for r in range(x.shape[0]):
        for b in range(n_blocks):
            hi = beta[b]
            xs = x[r, starts[b] : starts[b + 1]]
            gs = g[r, starts[b] : starts[b + 1]]
            zero = hi - hi  # in the inputs' dtype: the loop stays in one float width
            up = zero
            low = zero
            count = 0
            for j in range(xs.shape[0]):  # branch-free: speed does not depend on the data
                v = xs[j]
                gj = gs[j]
                over = v >= hi
                under = v <= -hi
                up += min(gj, zero) * over
                low += max(gj, zero) * under
                count += over | under
                gs[j] = zero if (v > hi) | (v < -hi) else gj
            sums[b, 0] += up
            sums[b, 1] += low
            sums[b, 2] += count


@numba.njit(**JIT_OPTIONS)
def output_stage(part, noise_std, key0, key1, start, table, bound, step, acc, first, keep):
    """Output noise, ADC quantisation and bound of one block's partial sums, added to `acc`.

    acc += clip(rint((part + noise_std * xi) / step) * step, -bound, bound) per element (with
    `first`: acc = that, so acc needs no zeroing and may be `part` itself), xi a
    counter-based normal (archsim.kernels.counter_rng): row r takes the ceil(N / 2) counters
    from start + r * ceil(N / 2), two normals each. noise_std 0 skips the noise, step 0 the
    quantisation; bound is inf for no clamp.

    Args:
        part: (rows, N) block product.
        noise_std, bound, step: (N,) per column (a per-block scalar broadcast by the caller),
            of part's dtype.
        key0, key1, start: counter-RNG key words (uint64, `split_key`) and first counter (int).
        table: counter_rng.normal_table().
        acc: (rows, N) running digital sum of the blocks.
        first: overwrite acc (the first block) instead of adding to it.
        keep: (rows, N) bool output: True where the output did not saturate (gradient passes).

    Returns:
        Number of saturated outputs.
    """
    rows, n = part.shape
    half = (n + 1) // 2
    noisy = noise_std.max() > 0
    quantize = step.max() > 0
    inv = np.zeros_like(step)
    for j in range(n):
        if step[j] > 0:
            inv[j] = 1 / step[j]
    idx = np.empty(2 * half, dtype=np.uint32)
    v = np.empty(n, dtype=part.dtype)
    saturated = 0
    for r in range(rows):
        pr = part[r]
        ar = acc[r]
        kr = keep[r]
        for j in range(n):
            v[j] = pr[j]
        if noisy:
            table_indices(start + r * half, key0, key1, idx)
            for j in range(n):
                v[j] += noise_std[j] * table[idx[j]]
        if quantize:
            for j in range(n):
                v[j] = np.rint(v[j] * inv[j]) * step[j]
        for j in range(n):
            u = v[j]
            u = u if u < bound[j] else bound[j]
            u = u if u > -bound[j] else -bound[j]
            ok = u == v[j]
            kr[j] = ok
            saturated += 0 if ok else 1
            ar[j] = u if first else ar[j] + u
    return saturated


@numba.njit(**JIT_OPTIONS)
def noisy_weights(w, starts, scale, key0, key1, table, out):
    """Weights with fresh Gaussian noise scaled per block (and column): one pass, no draw array.

    out[k, j] = w[k, j] + scale[b, j or 0] * xi[k, j] for row k in block b, xi a counter-based
    normal (archsim.kernels.counter_rng): row k takes the ceil(N / 2) counters from
    k * ceil(N / 2), two normals each. Replaces a NumPy normal draw of the whole matrix (8 ns per
    normal) and three passes (scale, multiply, add): on the MNIST CNN's fc1 (3136 x 128) 0.5 ms
    against 4.5 ms.

    Args:
        w: (K, N) weights.
        starts: (n_blocks + 1,) int64 block edges along K.
        scale: (n_blocks, 1) per block or (n_blocks, N) per column, noise std in weight units.
        key0, key1: counter-RNG key words (uint64, `split_key`).
        table: counter_rng.normal_table().
        out: (K, N) output, same dtype as w.
    """
    n = w.shape[1]
    half = (n + 1) // 2
    idx = np.empty(2 * half, dtype=np.uint32)
    per_column = scale.shape[1] > 1
    for b in range(starts.shape[0] - 1):
        s = scale[b]
        s0 = s[0]
        for k in range(starts[b], starts[b + 1]):
            table_indices(k * half, key0, key1, idx)
            wr = w[k]
            orow = out[k]
            if per_column:
                for j in range(n):
                    orow[j] = wr[j] + s[j] * table[idx[j]]
            else:
                for j in range(n):
                    orow[j] = wr[j] + s0 * table[idx[j]]
