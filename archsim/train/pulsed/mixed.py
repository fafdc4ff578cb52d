"""Mixed precision (NK20; aihwkit `MixedPrecisionCompound` and its C++
`rpu_mixedprec_device.cpp`): the gradient accumulates digitally in chi (K, N), chi -= lr x^T d
per mini-batch (the sum of the per-sample outer products), and every `transfer_every` mini-
batches each device of W receives n = trunc(chi / eps_W) pulses (clipped to +-BL, 31 in
aihwkit), after which chi -= n eps_W: the thresholded programming of W by pulse trains.

Simplification: the n pulses of a device are applied as n update-once steps (`pulse.pulses_row`)
instead of aihwkit's stochastic trains with x = n and d = one-hot(row) at lr = eps, whose mean
count is the same n; no abs-max binning of x and d (n_x_bins = n_d_bins = 0, aihwkit default).
"""

from __future__ import annotations

import numba
import numpy as np

from archsim.kernels import pulse
from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def program_rows(w_arrays, chi, eps, max_pulses):
    """Write trunc(chi / eps) pulses (clipped to +-max_pulses) to every device of W, row by row,
    and take them out of chi. Returns the number of pulses written."""
    kk, nn = chi.shape
    n_row = np.zeros(nn, dtype=np.int32)
    total = 0
    for k in range(kk):
        any_pulse = False
        for n in range(nn):
            cnt = int(chi[k, n] / eps)
            cnt = min(max(cnt, -max_pulses), max_pulses)
            n_row[n] = cnt
            if cnt != 0:
                chi[k, n] -= cnt * eps
                total += abs(cnt)
                any_pulse = True
        if any_pulse:
            pulse.pulses_row(w_arrays, k, n_row)
    return total
