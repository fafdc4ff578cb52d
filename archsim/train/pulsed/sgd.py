"""Analog SGD (GV16; aihwkit's pulsed update): every sample of a mini-batch updates W
in place with stochastic pulse trains at the optimiser's lr, one Numba call per mini-batch."""

from __future__ import annotations

import numba

from archsim.kernels import pulse
from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def sgd_batch(arrays, x, d, lr, bl, um_grad_scale, c_in, c_out):
    """Per row b of x (m, K), d (m, N), in order: `pulse.update_sample` on `arrays` at `lr` with
    the update's (desired_bl, fixed_bl, bl_management, update_management) in `bl` (int64).
    Returns the number of coincidences."""
    coinc = 0
    for b in range(x.shape[0]):
        coinc += pulse.update_sample(
            arrays,
            x[b],
            d[b],
            lr,
            bl[0],
            bl[1] != 0,
            bl[2] != 0,
            bl[3] != 0,
            um_grad_scale,
            c_in,
            c_out,
        )
    return coinc
