"""Round float32 values to the nearest IEEE half-precision value (ties to even), in place.

The digital units of HERMES compute in FP16; the functional model rounds every digital result
to FP16 and keeps it as float32. NumPy's astype(float16).astype(float32) does the same in two
slow passes; this kernel works on the float32 bit pattern in one vectorised pass.
"""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def _round_fp16(x, bits):
    """x: float32 array, bits: the same memory viewed as uint32; rounded in place."""
    n = x.shape[0]
    for i in range(n):
        b = bits[i]
        sign = b & np.uint32(0x80000000)
        a = b & np.uint32(0x7FFFFFFF)
        # normal FP16 range: keep 10 mantissa bits, round half to even
        lsb = (a >> np.uint32(13)) & np.uint32(1)
        r = (a + np.uint32(0xFFF) + lsb) & np.uint32(0xFFFFE000)
        # beyond the largest FP16 (65504) after rounding: infinity
        r = np.uint32(0x7F800000) if r > np.uint32(0x477FE000) else r
        # NaN and infinity stay
        r = a if a >= np.uint32(0x7F800000) else r
        if a < np.uint32(0x38800000):  # below 2**-14: FP16 subnormals, steps of 2**-24
            x[i] = np.rint(x[i] * np.float32(16777216.0)) * np.float32(5.9604645e-08)
        else:
            bits[i] = sign | r


def round_fp16(x: np.ndarray, in_place: bool = False) -> np.ndarray:
    """`x` rounded to FP16 values as float32: a new array, or x itself when `in_place` and x
    is a C-contiguous float32 array."""
    if in_place and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable:
        out = x
    else:
        out = np.array(x, dtype=np.float32, order="C", copy=True)
    flat = out.reshape(-1)
    _round_fp16(flat, flat.view(np.uint32))
    return out
