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

Cost: a line's train is a bit mask (one uint64 per 64 slots), drawn by geometric skipping
(one uniform per fired slot) when p is small; device (j, i) gets popcount(mask_j & mask_i)
pulses, all of one sign, applied in a row when its row j is visited (each device touched once
per sample, in memory order). Time: BL (K + N) hashes at most, one popcount per pair of lines
that fire at all, and one update-once (with a hash for its noise) per coincidence. All
randomness comes from the device's counter-RNG stream (archsim.kernels.counter_rng): same key
and counter, same bits.

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
from archsim.kernels.counter_rng import hash32, normal_table, uniform_at
from archsim.kernels.options import JIT_OPTIONS

if TYPE_CHECKING:
    from archsim.train.pulsed.device_array import DeviceArray

_DIRECT_P = 0.1
"""Above this firing probability, or for trains of at most _DIRECT_BL slots, a line draws one
uniform per slot instead of skipping (two logarithms per fired slot cost more)."""
_DIRECT_BL = 16

_TABLE = normal_table()
"""The counter-RNG normal table as a compile-time constant of the kernels."""


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
def _popcount(v):
    """Set bits of a uint64 (SWAR; LLVM turns it into one popcnt where the CPU has it)."""
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (v * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(inline="always", **JIT_OPTIONS)
def _coincidences(x_masks, d_masks, p, nd, counts, hits):
    """Coincidences of x line p with each of the nd firing d lines, compacted without
    branches (which would mispredict): the m lines with any are hits[:m], with counts[:m]."""
    m = 0
    if x_masks.shape[1] == 1:
        xm = x_masks[p, 0]
        for q in range(nd):
            c = _popcount(xm & d_masks[q, 0])
            counts[m] = c
            hits[m] = q
            m += c != 0
    else:
        for q in range(nd):
            c = np.uint64(0)
            for r in range(x_masks.shape[1]):
                c += _popcount(x_masks[p, r] & d_masks[q, r])
            counts[m] = c
            hits[m] = q
            m += c != 0
    return m


@numba.njit(**JIT_OPTIONS)
def _fire(v, scale, bl, k0, k1, ctr, masks, lines):
    """The pulse train of every line with v != 0 (bit t of masks[a] set: fires in slot t, with
    probability min(scale |v|, 1) each); lines that fire at least once are listed in lines[a]
    (ascending) with their masks in masks[a]. Returns (number of such lines, counter)."""
    nw = masks.shape[1]
    na = 0
    for j in range(v.shape[0]):
        x = v[j]
        if x == 0:
            continue
        for q in range(nw):
            masks[na, q] = 0
        p = scale * abs(x)
        if p >= 1.0:
            for t in range(bl):
                masks[na, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
        elif p > _DIRECT_P or bl <= _DIRECT_BL:
            thr = p * 4294967296.0 - 0.5
            for t in range(bl):
                if np.float64(hash32(np.uint64(ctr + t), k0, k1)) < thr:
                    masks[na, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
            ctr += bl
        else:
            lg = math.log1p(-p)
            t = math.log(uniform_at(ctr, k0, k1)) / lg
            ctr += 1
            while t < bl:
                ti = int(t)
                masks[na, ti >> 6] |= np.uint64(1) << np.uint64(ti & 63)
                t = math.floor(t) + 1.0 + math.log(uniform_at(ctr, k0, k1)) / lg
                ctr += 1
        fired = False
        for q in range(nw):
            fired = fired or masks[na, q] != 0
        if fired:
            lines[na] = j
            na += 1
    return na, ctr


@numba.njit(inline="always", **JIT_OPTIONS)
def _step(v, up, rule, a, s, hi, lo, isp, nz, mult, ea_up, ea_dn, eg_up, eg_dn, e_a, e_b):
    """One update-once from hidden weight v (up or down; a, s: the device's step and shape
    parameter for that direction; isp = 1 / (hi - lo); nz = sigma xi), clipped to [lo, hi].
    Written with selects rather than branches on `up`: pulse signs are random, branches on them
    mispredict."""
    sg = 1.0 if up else -1.0
    if rule <= 2:
        f = 1.0 - s * v
    elif rule == 3:
        ea = ea_up if up else ea_dn
        eg = eg_up if up else -eg_dn
        f = max(1.0 - ea * math.exp(eg * (2.0 * e_a * v * isp + e_b)), 0.0)
    else:
        om = (hi - v) * isp
        om = om if up else 1.0 - om
        if s == 1.0:
            f = max(om, 0.0)
        else:
            f = max(om, 0.0) ** s
    step = a * (f * (1.0 + nz) if mult else f + nz)
    return min(max(v + sg * step, lo), hi)


@numba.njit(inline="always", **JIT_OPTIONS)
def _pulses(v, n, up, a, s, hi, lo, rs, ctr, k0, k1):
    """n update-onces from hidden weight v in one direction (a, s: the device's step and shape
    parameter for it; rs: _rule_scalars(prm)); returns (v, counter).
    Scalars only: passing arrays to a jitted callee costs reference counting per call."""
    rule, sigma, mult, ea_up, ea_dn, eg_up, eg_dn, e_a, e_b = rs
    isp = 1.0 / (np.float64(hi) - lo)
    for _ in range(n):
        nz = 0.0
        if sigma > 0:
            nz = sigma * _TABLE[hash32(np.uint64(ctr), k0, k1) >> 20]
            ctr += 1
        v = _step(v, up, rule, a, s, hi, lo, isp, nz, mult, ea_up, ea_dn, eg_up, eg_dn, e_a, e_b)
    return v, ctr


@numba.njit(**JIT_OPTIONS)
def _rule_scalars(prm):
    """prm as the tuple _pulses takes."""
    return (int(prm[0]), prm[1], prm[2] != 0, prm[4], prm[5], prm[6], prm[7], prm[8], prm[9])


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
    w, a_up, a_dn, s_up, s_dn, b_max, b_min, pulses, prm, rng = arrays[:10]
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
    k0, k1, ctr = rng[0], rng[1], np.int64(rng[2])
    rs = _rule_scalars(prm)
    nw = (bl + 63) // 64
    x_masks = np.empty((x_row.shape[0], nw), dtype=np.uint64)
    d_masks = np.empty((d_row.shape[0], nw), dtype=np.uint64)
    x_lines = np.empty(x_row.shape[0], dtype=np.int64)
    d_lines = np.empty(d_row.shape[0], dtype=np.int64)
    nx, ctr = _fire(x_row, b, bl, k0, k1, ctr, x_masks, x_lines)
    nd, ctr = _fire(d_row, a, bl, k0, k1, ctr, d_masks, d_lines)
    sgn_lr = 1 if lr > 0 else -1
    d_sign = np.empty(nd, dtype=np.int64)
    for q in range(nd):
        i = d_lines[q]
        d_sign[q] = (1 if d_row[i] > 0 else -1) * (c_out[i] if c_out.shape[0] else 1)
    counts = np.empty(nd, dtype=np.int64)
    hits = np.empty(nd, dtype=np.int64)
    total = 0
    for p in range(nx):
        j = x_lines[p]
        sj = (1 if x_row[j] > 0 else -1) * sgn_lr * (c_in[j] if c_in.shape[0] else 1)
        m = _coincidences(x_masks, d_masks, p, nd, counts, hits)
        for h in range(m):
            q, c = hits[h], counts[h]
            i = d_lines[q]
            up = sj * d_sign[q] < 0
            a_u, a_d, s_u, s_d = a_up[j, i], a_dn[j, i], s_up[j, i], s_dn[j, i]
            a_i, s_i = (a_u if up else a_d), (s_u if up else s_d)
            hi, lo = b_max[j, i], b_min[j, i]
            w[j, i], ctr = _pulses(w[j, i], c, up, a_i, s_i, hi, lo, rs, ctr, k0, k1)
            pulses[j, i] += c
            total += c
    rng[2] = np.uint64(ctr)
    return total


@numba.njit(**JIT_OPTIONS)
def pulses_row(arrays, k, n_row):
    """Apply n_row[i] (int, signed) pulses to device (k, i) for every i: +n = n up pulses,
    each an update-once with the rule and its noise, clipped; counts pulses."""
    w, a_up, a_dn, s_up, s_dn, b_max, b_min, pulses, prm, rng = arrays[:10]
    k0, k1, ctr = rng[0], rng[1], np.int64(rng[2])
    rs = _rule_scalars(prm)
    for i in range(n_row.shape[0]):
        n = n_row[i]
        if n != 0:
            up = n > 0
            a_u, a_d, s_u, s_d = a_up[k, i], a_dn[k, i], s_up[k, i], s_dn[k, i]
            a_i, s_i = (a_u if up else a_d), (s_u if up else s_d)
            hi, lo = b_max[k, i], b_min[k, i]
            w[k, i], ctr = _pulses(w[k, i], abs(n), up, a_i, s_i, hi, lo, rs, ctr, k0, k1)
            pulses[k, i] += abs(n)
    rng[2] = np.uint64(ctr)


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
