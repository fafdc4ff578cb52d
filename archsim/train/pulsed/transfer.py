"""The Tiki-Taka family's per-sample loop over one mini-batch, in one Numba call: TTv2, c-TTv2
and AGAD (RA24; aihwkit `ChoppedTransferCompound` and
`DynamicTransferCompound`).

Orientation: a tile holds (K, N) arrays with y = x @ w; aihwkit's "column j" of A (A e_j) is our
row k, A[k, :]. Per sample b, in order:
1. pulsed update of A with x_b, d_b at count_lr, every coincidence's sign times c_in[k] c_out[n]
   (`pulse.update_sample`);
2. every n_s samples one row k of A is read (rows in turn, wrapping): v = A[k] - r[k] plus
   out_noise * xi, through the transfer ADC (noise and bound management off, aihwkit's
   transfer_forward); c = c_in[k] c_out[n] undoes the chopper;
   - TTv2 / c-TTv2: H[k] += c v lr_scale;
   - AGAD: P_ref[k] <- P[k] if c_in[k] flipped at the previous read of row k;
     H[k] += c (v - P_ref[k]) lr_scale; P[k] <- (1 - beta) P[k] + beta v; no H update and no
     write during the warm-up (the first n_cp sweeps);
   where |H| >= 1: n = clip(trunc(H), +-transfer_bl); H <- momentum H (forget_buffer) or
   H - (1 - momentum) n; n pulses (signed, up = W increases) go to row k of W
   (`pulse.pulses_row`);
3. c_in[k] flips with probability in_chop_prob (random) or every n_cp reads of row k; after the
   last row every c_out[n] flips with probability out_chop_prob and the sweep counter advances.

TTv2 is c-TTv2 with in_chop_prob = 0 (aihwkit's TTv2 presets); its reference R is the reference
offset of A's devices (reference_std, RA24 sigma_r). Random chopper flips use the counter-based
hash under the tile's key. Simplification: the transfer read draws no write noise of A.
"""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels import pulse
from archsim.kernels.counter_rng import hash32
from archsim.kernels.options import JIT_OPTIONS

# int64 state slots (`ints` below)
COUNT, ROW, SWEEPS, RNG_COUNTER = 0, 1, 2, 3
# float64 parameter slots (`par` below)
LR_SCALE, T_NOISE, T_LSB, T_BOUND, MOMENTUM, BETA, IN_CHOP, OUT_CHOP, UM_SCALE = range(9)


@numba.njit(**JIT_OPTIONS)
def _uniform(ints, k0, k1):
    """A uniform in [0, 1) from the counter hash; advances the counter slot."""
    h = hash32(np.uint64(ints[RNG_COUNTER]), k0, k1)
    ints[RNG_COUNTER] += 1
    return h * (1.0 / 4294967296.0)


@numba.njit(**JIT_OPTIONS)
def transfer_batch(
    a_arrays,
    w_arrays,
    a_w,
    a_ref,
    x,
    d,
    count_lr,
    bl,
    c_in,
    c_out,
    h,
    p,
    p_ref,
    flipped,
    row_reads,
    ints,
    par,
    every,
    transfer_bl,
    forget,
    agad,
    n_cp,
    chop_random,
    noise,
    k0,
    k1,
):
    """One mini-batch of the family's updates (module docstring), sample b onto A at
    count_lr[b]. `bl` is the update's (desired_bl, fixed_bl, bl_management, update_management)
    as int64, um_grad_scale is par[UM_SCALE]; `noise` (reads, N) float32 holds the normals of
    this batch's transfer reads, one row per read. Returns (coincidences on A, reads, W
    pulses)."""
    m = x.shape[0]
    kk, nn = h.shape
    n_row = np.zeros(nn, dtype=np.int32)
    v = np.empty(nn, dtype=np.float32)
    coinc = 0
    reads = 0
    w_pulses = 0
    for b in range(m):
        coinc += pulse.update_sample(
            a_arrays,
            x[b],
            d[b],
            count_lr[b],
            bl[0],
            bl[1] != 0,
            bl[2] != 0,
            bl[3] != 0,
            par[UM_SCALE],
            c_in,
            c_out,
        )
        ints[COUNT] += 1
        if ints[COUNT] % every != 0:
            continue
        k = ints[ROW]
        ints[ROW] = (k + 1) % kk
        lsb = par[T_LSB]
        bound = par[T_BOUND]
        for n in range(nn):
            val = a_w[k, n] - a_ref[k, n] + par[T_NOISE] * noise[reads, n]
            if lsb > 0:
                val = np.rint(val / lsb) * lsb
            if bound > 0:
                val = min(max(val, -bound), bound)
            v[n] = val
        reads += 1
        warm = agad and ints[SWEEPS] < n_cp
        if agad and flipped[k]:
            for n in range(nn):
                p_ref[k, n] = p[k, n]
            flipped[k] = False
        any_pulse = False
        for n in range(nn):
            n_row[n] = 0
            c = c_in[k] * c_out[n]
            if agad:
                if not warm:
                    h[k, n] += c * (v[n] - p_ref[k, n]) * par[LR_SCALE]
                p[k, n] = (1.0 - par[BETA]) * p[k, n] + par[BETA] * v[n]
            else:
                h[k, n] += c * v[n] * par[LR_SCALE]
            hv = h[k, n]
            if not warm and abs(hv) >= 1.0:
                cnt = min(max(int(hv), -transfer_bl), transfer_bl)
                if forget:
                    h[k, n] = par[MOMENTUM] * hv
                else:
                    h[k, n] = hv - (1.0 - par[MOMENTUM]) * cnt
                n_row[n] = cnt
                w_pulses += abs(cnt)
                any_pulse = True
        if any_pulse:
            pulse.pulses_row(w_arrays, k, n_row)
        if par[IN_CHOP] > 0:
            flip = False
            if chop_random:
                flip = _uniform(ints, k0, k1) < par[IN_CHOP]
            else:
                row_reads[k] += 1
                flip = row_reads[k] % n_cp == 0
            if flip:
                c_in[k] = -c_in[k]
                flipped[k] = True
        if ints[ROW] == 0:
            ints[SWEEPS] += 1
            if par[OUT_CHOP] > 0:
                for n in range(nn):
                    if _uniform(ints, k0, k1) < par[OUT_CHOP]:
                        c_out[n] = -c_out[n]
    return coinc, reads, w_pulses
