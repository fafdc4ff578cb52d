"""Column ADCs with optional fresh read noise, then the digital rescale and K-split sum.

One call converts the partial sums of one row block (crossbar K-slice) of a batch: add fresh
noise, clip to the block's ADC range, quantize, scale back to weight units and add into the
outputs, as the LDPUs add the partial sums of a layer split over several crossbars.
"""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels.counter_rng import table_indices
from archsim.kernels.options import JIT_OPTIONS

NOISE_NONE = 0
"""No fresh noise."""
NOISE_ROW = 1
"""Noise std per batch row and block (output-referred noise, proportional to the input norm)."""
NOISE_ELEMENT = 2
"""Noise variance per output element and block (conductance-dependent noise)."""


@numba.njit(**JIT_OPTIONS)
def adc_accumulate(
    part,
    acc,
    first,
    inv_step,
    out_scale,
    qmax,
    quantize,
    noise_mode,
    row_sd,
    elem_var,
    elem_std,
    table,
    k0,
    k1,
    counter0,
    counter_row,
):
    """Convert one block's partial sums and add them into the outputs.

    For element (b, c): v = (part[b, c] + sd * z) * inv_step[c]; clipped when |v| > qmax; v is
    clipped to +-qmax and rounded when `quantize`; acc[b, c] (+)= v * out_scale[c].

    Args:
        part: (B, N) float32 analog partial sums of this block (code units).
        acc: (B, N) float32 outputs; overwritten when `first`, added to otherwise.
        first: this is the first block of the K-split.
        inv_step: (N,) float32 ADC codes per partial-sum unit.
        out_scale: (N,) float32 weight-unit value of one ADC code.
        qmax: largest ADC code (np.inf for an ideal ADC that never clips).
        quantize: round to integer codes.
        noise_mode: NOISE_NONE, NOISE_ROW (row_sd used) or NOISE_ELEMENT (elem_var used).
        row_sd: (B,) float32 noise std per row (NOISE_ROW).
        elem_var: (B, N) float32 noise variance per element, in units of elem_std**2
            (NOISE_ELEMENT).
        elem_std: noise std per unit square root of elem_var (NOISE_ELEMENT).
        table, k0, k1: normal table and key words of `archsim.kernels.counter_rng`.
        counter0, counter_row: the normals of row b come from the ceil(N/2) counters starting
            at counter0 + b * counter_row.

    Returns:
        Number of conversions whose code differs from an unbounded ADC's (clipped).
    """
    n_rows, n_cols = part.shape
    idx = np.empty(2 * ((n_cols + 1) // 2), dtype=np.uint32)
    z = np.zeros(n_cols, dtype=np.float32)
    # a conversion counts as clipped when its code differs from an unbounded ADC's code
    over = qmax + np.float32(0.5) if quantize else qmax * np.float32(1.000001)
    clipped = 0
    for b in range(n_rows):
        pr = part[b]
        ar = acc[b]
        if noise_mode != 0:
            table_indices(counter0 + b * counter_row, k0, k1, idx)
            if noise_mode == 1:
                sd = row_sd[b]
                for c in range(n_cols):  # scalar table loads: Zen 4 gathers were slower
                    z[c] = table[idx[c]] * sd
            else:
                vr = elem_var[b]
                for c in range(n_cols):
                    z[c] = table[idx[c]]
                for c in range(n_cols):
                    z[c] *= elem_std * np.sqrt(vr[c])
        if quantize:
            for c in range(n_cols):
                v = (pr[c] + z[c]) * inv_step[c]
                clipped += abs(v) > over
                v = np.rint(min(max(v, -qmax), qmax))
                ar[c] = v * out_scale[c] if first else ar[c] + v * out_scale[c]
        else:
            for c in range(n_cols):
                v = (pr[c] + z[c]) * inv_step[c]
                clipped += abs(v) > over
                v = min(max(v, -qmax), qmax)
                ar[c] = v * out_scale[c] if first else ar[c] + v * out_scale[c]
    return clipped
