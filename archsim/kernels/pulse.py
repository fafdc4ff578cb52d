"""Stochastic pulsed updates of device arrays (Gokmen & Vlasov 2016, GV16; aihwkit's
UpdateParameters and its STOCHASTIC_COMPRESSED pulse type).

Per sample (x: K input lines, d: N output lines), with epsilon the device granularity:
  k = |lr| x_m d_m / epsilon,  x_m = max|x|,  d_m = um_grad_scale max|d|
  BL = min(ceil(k), desired_bl) with BL management (else desired_bl), A = B = sqrt(|lr| /
  (epsilon BL)); update management (forced on with BL management) clips d_m to d_m BL / k when
  k > BL and rescales A <- A sqrt(x_m / d_m), B <- B sqrt(d_m / x_m) (A B unchanged).
  Each input line j fires in each of the BL slots with probability min(B |x_j|, 1), each
  output line i with min(A |d_i|, 1), all independent; every coincidence (j, i) in a slot is
  one update-once of device (j, i) with sign s = sign(x_j) sign(d_i) sign(lr) (c_in[j]
  c_out[i]): s > 0 is a down pulse. So E[pulses] = |lr x_j d_i| / epsilon when nothing clips
  and E[dw] = -lr x_j d_i on a symmetric constant-step device.

Cost: the Bernoulli trials of a line are drawn by geometric skipping (one uniform per fired slot
when p is small), bucketed per slot, and the coincidences are visited slot by slot: time grows
with the fired bits plus the coincidences, not with BL K N. All randomness comes from the
device's counter-RNG stream (archsim.kernels.counter_rng): same key and counter, same bits.

`update_sample` and `pulses_row` take `DeviceArray.arrays()` (order: device_array.ARRAY_FIELDS)
and are njit, so a caller's own Numba loop can run a whole mini-batch without Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from archsim.checks import positive
from archsim.errors import ArchsimError, SpecError
from archsim.kernels.counter_rng import hash32, uniform_at
from archsim.kernels.options import JIT_OPTIONS

if TYPE_CHECKING:
    from archsim.train.pulsed.device_array import DeviceArray

_DIRECT_P = 0.25
"""Above this firing probability a line draws one uniform per slot instead of skipping."""


@dataclass(frozen=True, slots=True)
class PulseSettings:
    """How a gradient becomes pulse trains (aihwkit UpdateParameters defaults)."""

    desired_bl: int = 31
    """Longest pulse train (slots per sample)."""
    fixed_bl: bool = True
    """Without BL management, always use desired_bl slots."""
    bl_management: bool = True
    """Shorten the train to ceil(k) slots when fewer suffice."""
    update_management: bool = True
    """Balance the x and d probabilities (forced on with bl_management)."""
    um_grad_scale: float = 1.0
    """Scale of max|d| in update management."""

    def __post_init__(self) -> None:
        if isinstance(self.desired_bl, bool) or not isinstance(self.desired_bl, int):
            raise SpecError("desired_bl", f"expected an integer, got {self.desired_bl!r}")
        if not self.desired_bl >= 1:
            raise SpecError("desired_bl", f"expected >= 1, got {self.desired_bl}")
        positive("um_grad_scale", self.um_grad_scale)


@numba.njit(**JIT_OPTIONS)
def bl_and_scales(x_m, d_m, lr_abs, eps, desired_bl, fixed_bl, bl_management, update_management):
    """(BL, A, B) for one sample: line i of d fires with A |d_i|, line j of x with B |x_j|.
    d_m already includes um_grad_scale. BL 0 means no update."""
    if x_m <= 0 or d_m <= 0 or lr_abs <= 0:
        return 0, 0.0, 0.0
    bl = desired_bl
    if not fixed_bl and not bl_management and eps * desired_bl < lr_abs:
        bl = math.ceil(lr_abs / eps)
        a = 1.0
    else:
        a = math.sqrt(lr_abs / (eps * desired_bl))
    k = lr_abs * x_m * d_m / eps
    if bl_management:
        bl = max(min(math.ceil(k), desired_bl), 1)
        a = math.sqrt(lr_abs / (eps * bl))
    b = a
    if bl_management or update_management:
        dm = d_m * bl / k if k > bl else d_m
        a *= math.sqrt(x_m / dm)
        b *= math.sqrt(dm / x_m)
    return bl, a, b


@numba.njit(**JIT_OPTIONS)
def _fire(v, scale, bl, k0, k1, ctr, hit_slot, hit_line):
    """Bits of every line with v != 0 in bl slots (p = min(scale |v|, 1)), appended as
    (slot, line) to hit_*; returns (number of hits, counter)."""
    n = 0
    for j in range(v.shape[0]):
        x = v[j]
        if x == 0:
            continue
        p = scale * abs(x)
        if p >= 1.0:
            for t in range(bl):
                hit_slot[n] = t
                hit_line[n] = j
                n += 1
        elif p > _DIRECT_P:
            for t in range(bl):
                u = uniform_at(ctr, k0, k1)
                ctr += 1
                if u < p:
                    hit_slot[n] = t
                    hit_line[n] = j
                    n += 1
        else:
            lg = math.log1p(-p)
            t = math.log(uniform_at(ctr, k0, k1)) / lg
            ctr += 1
            while t < bl:
                hit_slot[n] = int(t)
                hit_line[n] = j
                n += 1
                t = math.floor(t) + 1.0 + math.log(uniform_at(ctr, k0, k1)) / lg
                ctr += 1
    return n, ctr


@numba.njit(**JIT_OPTIONS)
def _bucket(n, bl, hit_slot, hit_line, ptr, idx):
    """Counting sort of the hits by slot: lines of slot t are idx[ptr[t]:ptr[t+1]], ascending."""
    ptr[:] = 0
    for h in range(n):
        ptr[hit_slot[h] + 1] += 1
    for t in range(bl):
        ptr[t + 1] += ptr[t]
    pos = ptr[:bl].copy()
    for h in range(n):
        t = hit_slot[h]
        idx[pos[t]] = hit_line[h]
        pos[t] += 1


@numba.njit(**JIT_OPTIONS)
def _step(v, hi, lo, alpha, shape, up, nz, prm):
    """The hidden weight after one update-once from v (rule of prm, bounds hi/lo, step alpha,
    shape = slope or exponent of the pulse's direction, noise nz = sigma xi), clipped.

    Scalars only: the callers index the arrays themselves, so the hot loops pass no arrays per
    coincidence (passing the 9 arrays of a device per call cost about 250 ns of reference
    counting per coincidence, 100x the arithmetic). A pow exponent of exactly 1 skips pow()
    (about 19 ns of the 32 a coincidence took on cmo-hfox, whose exponents are all 1)."""
    rule = int(prm[0])
    if up:
        if rule <= 2:
            f = 1.0 - shape * v
        elif rule == 3:
            z = 2.0 * prm[8] * v / (hi - lo) + prm[9]
            f = max(1.0 - prm[4] * math.exp(prm[6] * z), 0.0)
        else:
            om = (hi - v) / (hi - lo)
            f = (om if shape == 1.0 else om**shape) if om > 0 else 0.0
        v += alpha * (f * (1.0 + nz) if prm[2] != 0 else f + nz)
    else:
        if rule <= 2:
            f = 1.0 - shape * v
        elif rule == 3:
            z = 2.0 * prm[8] * v / (hi - lo) + prm[9]
            f = max(1.0 - prm[5] * math.exp(-prm[7] * z), 0.0)
        else:
            om = (hi - v) / (hi - lo)
            f = ((1.0 - om) if shape == 1.0 else (1.0 - om) ** shape) if om < 1 else 0.0
        v -= alpha * (f * (1.0 + nz) if prm[2] != 0 else f + nz)
    return min(max(v, lo), hi)


@numba.njit(**JIT_OPTIONS)
def update_sample(
    arrays,
    x_row,
    d_row,
    lr,
    desired_bl,
    fixed_bl,
    bl_management,
    update_management,
    um_grad_scale,
    c_in,
    c_out,
):
    """One sample's pulsed update (module docstring) of the device arrays `arrays`
    (DeviceArray.arrays()); c_in (K,) / c_out (N,) int8 +-1 choppers, or empty arrays for none.
    Returns the number of coincidences."""
    prm, rng, table = arrays[8], arrays[9], arrays[10]
    x_m = 0.0
    for j in range(x_row.shape[0]):
        x_m = max(x_m, abs(x_row[j]))
    d_m = 0.0
    for i in range(d_row.shape[0]):
        d_m = max(d_m, abs(d_row[i]))
    bl, a, b = bl_and_scales(
        x_m,
        d_m * um_grad_scale,
        abs(lr),
        prm[3],
        desired_bl,
        fixed_bl,
        bl_management,
        update_management,
    )
    if bl == 0:
        return 0
    k0, k1, ctr = rng[0], rng[1], rng[2]
    nx, nd = x_row.shape[0], d_row.shape[0]
    xs_slot = np.empty(bl * nx, dtype=np.int32)
    xs_line = np.empty(bl * nx, dtype=np.int32)
    ds_slot = np.empty(bl * nd, dtype=np.int32)
    ds_line = np.empty(bl * nd, dtype=np.int32)
    hx, ctr = _fire(x_row, b, bl, k0, k1, ctr, xs_slot, xs_line)
    hd, ctr = _fire(d_row, a, bl, k0, k1, ctr, ds_slot, ds_line)
    xptr = np.empty(bl + 1, dtype=np.int64)
    dptr = np.empty(bl + 1, dtype=np.int64)
    x_idx = np.empty(hx, dtype=np.int32)
    d_idx = np.empty(hd, dtype=np.int32)
    _bucket(hx, bl, xs_slot, xs_line, xptr, x_idx)
    _bucket(hd, bl, ds_slot, ds_line, dptr, d_idx)
    x_sign = np.empty(nx, dtype=np.int8)
    d_sign = np.empty(nd, dtype=np.int8)
    sgn_lr = 1 if lr > 0 else -1
    for j in range(nx):
        x_sign[j] = (1 if x_row[j] > 0 else -1) * sgn_lr * (c_in[j] if c_in.shape[0] else 1)
    for i in range(nd):
        d_sign[i] = (1 if d_row[i] > 0 else -1) * (c_out[i] if c_out.shape[0] else 1)
    w, a_up, a_dn, s_up, s_dn, b_max, b_min, pulses = arrays[:8]
    sigma = prm[1]
    count = 0
    for t in range(bl):
        for p in range(xptr[t], xptr[t + 1]):
            j = x_idx[p]
            sj = x_sign[j]
            for q in range(dptr[t], dptr[t + 1]):
                i = d_idx[q]
                nz = 0.0
                if sigma > 0:
                    nz = sigma * table[hash32(np.uint64(ctr), k0, k1) >> 20]
                    ctr += 1
                up = sj * d_sign[i] < 0
                w[j, i] = _step(
                    np.float64(w[j, i]),
                    np.float64(b_max[j, i]),
                    np.float64(b_min[j, i]),
                    a_up[j, i] if up else a_dn[j, i],
                    s_up[j, i] if up else s_dn[j, i],
                    up,
                    nz,
                    prm,
                )
                pulses[j, i] += 1
                count += 1
    rng[2] = ctr
    return count


@numba.njit(**JIT_OPTIONS)
def pulses_row(arrays, k, n_row):
    """Apply n_row[i] (int, signed) pulses to device (k, i) for every i: +n = n up pulses,
    each an update-once with the rule and its noise, clipped; counts pulses."""
    prm, rng, table = arrays[8], arrays[9], arrays[10]
    k0, k1, ctr = rng[0], rng[1], rng[2]
    w, a_up, a_dn, s_up, s_dn, b_max, b_min, pulses = arrays[:8]
    sigma = prm[1]
    for i in range(n_row.shape[0]):
        n = n_row[i]
        for _ in range(abs(n)):
            nz = 0.0
            if sigma > 0:
                nz = sigma * table[hash32(np.uint64(ctr), k0, k1) >> 20]
                ctr += 1
            up = n > 0
            w[k, i] = _step(
                np.float64(w[k, i]),
                np.float64(b_max[k, i]),
                np.float64(b_min[k, i]),
                a_up[k, i] if up else a_dn[k, i],
                s_up[k, i] if up else s_dn[k, i],
                up,
                nz,
                prm,
            )
            pulses[k, i] += 1
    rng[2] = ctr


@numba.njit(**JIT_OPTIONS)
def _update_batch(arrays, x, d, lr, desired_bl, fixed_bl, blm, um, um_scale, c_in, c_out):
    total = 0
    for r in range(x.shape[0]):
        total += update_sample(
            arrays, x[r], d[r], lr, desired_bl, fixed_bl, blm, um, um_scale, c_in, c_out
        )
    return total


_NO_CHOPPER = np.ones(0, dtype=np.int8)


def _chopper(c: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if c is None:
        return _NO_CHOPPER
    c = np.ascontiguousarray(c, dtype=np.int8)
    if c.shape != (n,) or not np.all(np.abs(c) == 1):
        raise ArchsimError(f"pulsed_update: {name} must be ({n},) of +-1, got shape {c.shape}")
    return c


def pulsed_update(
    dev: DeviceArray,
    x: np.ndarray,
    d: np.ndarray,
    lr: float,
    settings: PulseSettings,
    c_in: np.ndarray | None = None,
    c_out: np.ndarray | None = None,
) -> int:
    """Per row of x (m, K) / d (m, N), in order, one sample's pulsed update of `dev` (module
    docstring; epsilon = dev.model.granularity). Returns the number of coincidences."""
    x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float32)
    d = np.ascontiguousarray(np.atleast_2d(d), dtype=np.float32)
    k, n = dev.w.shape
    if x.shape[1] != k or d.shape[1] != n or x.shape[0] != d.shape[0]:
        raise ArchsimError(
            f"pulsed_update: x {x.shape} and d {d.shape} do not match the ({k}, {n}) devices"
        )
    s = settings
    return int(
        _update_batch(
            dev.arrays(),
            x,
            d,
            float(lr),
            s.desired_bl,
            s.fixed_bl,
            s.bl_management,
            s.update_management,
            float(s.um_grad_scale),
            _chopper(c_in, k, "c_in"),
            _chopper(c_out, n, "c_out"),
        )
    )


def apply_pulses_row(dev: DeviceArray, k: int, n: np.ndarray) -> None:
    """n (N,) int32 signed pulse counts for row k: +n = n up pulses (w increases), each an
    update-once with the rule and its noise, clipped; counts dev.pulses."""
    n = np.ascontiguousarray(n, dtype=np.int32)
    if n.shape != (dev.w.shape[1],) or not 0 <= k < dev.w.shape[0]:
        raise ArchsimError(f"apply_pulses_row: row {k}, counts {n.shape} for devices {dev.w.shape}")
    pulses_row(dev.arrays(), int(k), n)
