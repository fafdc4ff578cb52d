"""Steady-state IR drop along the bit lines (the aihwkit/RPUCuda model).

With a_i = (n / g_ratio) * sum_j |w_ij| |x_j| the normalised column current and
c_i = a_i (0.05 a_i^2 - 0.2 a_i + 0.5), the output loses ir * c_i * sum_j w_ij x'_j, where
x'_j = x_j (1 - (1 - j/n)^2) weights the rows by their distance from the column's end
(row 0 is the farthest). Simplifications: a polynomial fit, not a circuit solve; wire resistance
equal on every segment; word-line drops are ignored.
"""

from __future__ import annotations

import numba

from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def apply_ir_drop(part, abs_current, weighted, a_scale, ir_scale):
    """part[b, c] -= ir_scale * c(a) * weighted[b, c], with a = a_scale * abs_current[b, c].

    Args:
        part: (B, N) float32 partial sums, changed in place.
        abs_current: (B, N) float32 sum_j |w_ij| |x_j| of the block (code units).
        weighted: (B, N) float32 sum_j w_ij x'_j of the block (code units).
        a_scale: n / g_ratio divided by the input code scale.
        ir_scale: strength of the effect (1 = the fitted model).
    """
    n_rows, n_cols = part.shape
    for b in range(n_rows):
        for c in range(n_cols):
            a = abs_current[b, c] * a_scale
            drop = a * (0.05 * a * a - 0.2 * a + 0.5)
            part[b, c] -= ir_scale * drop * weighted[b, c]
