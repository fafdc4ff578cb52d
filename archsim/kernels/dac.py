"""Input DAC: clip each input to the DAC range and quantize it to a signed code."""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def quantize_inputs(x, scale, qmax, quantize, block_rows, codes, sqnorm):
    """Turn inputs into DAC codes and per-block squared code norms.

    code = clip(x * scale, -qmax, qmax), rounded half-to-even when `quantize`.

    Args:
        x: (B, K) float32 inputs.
        scale: codes per input unit (qmax / input range).
        qmax: largest code magnitude (2**(bits-1) - 1, or 1.0 when not quantizing).
        quantize: round to integer codes.
        block_rows: crossbar rows; row block k covers columns [k*block_rows, (k+1)*block_rows).
        codes: (B, K) float32 output.
        sqnorm: (B, n_blocks) float32 output, sum of code**2 per row block.

    Returns:
        Number of inputs whose code differs from an unbounded DAC's (clipped).
    """
    n_rows, k = x.shape
    n_blocks = sqnorm.shape[1]
    # an input counts as clipped when its code differs from an unbounded DAC's code
    over = qmax + np.float32(0.5) if quantize else qmax * np.float32(1.000001)
    clipped = 0
    for b in range(n_rows):
        for blk in range(n_blocks):
            lo = blk * block_rows
            hi = min(k, lo + block_rows)
            # row slices start at index 0, which keeps the loops free of wrap-around checks
            xs = x[b, lo:hi]
            cs = codes[b, lo:hi]
            acc = np.float32(0.0)
            if quantize:
                for j in range(xs.shape[0]):
                    v = xs[j] * scale
                    clipped += abs(v) > over
                    v = np.rint(min(max(v, -qmax), qmax))
                    cs[j] = v
                    acc += v * v
            else:
                for j in range(xs.shape[0]):
                    v = xs[j] * scale
                    clipped += abs(v) > over
                    v = min(max(v, -qmax), qmax)
                    cs[j] = v
                    acc += v * v
            sqnorm[b, blk] = acc
    return clipped
