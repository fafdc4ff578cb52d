"""Backward passes of the sliding-window ops for training (archsim.train): col2im, the adjoint
of a convolution's im2col, and max pooling's gradient routing. One pass each, on NCHW arrays.

NumPy puts a patch gradient back with one strided add per kernel offset (9 passes over the
whole patch matrix for a 3 x 3 kernel) on a padded channels-last buffer that is transposed at the
end, and routes a max-pool gradient with a compare, a mask and a multiply per offset. These
kernels touch every element once, one sample at a time, so the sample's slice stays in cache:
on the MNIST CNN's second convolution (batch 64, 32 x 14 x 14, 3 x 3, padding 1) col2im took
8.0 ms against NumPy's 11.3 ms with the 2 cores shared (5.9 against 8.6 ms with less load).

Both only copy and add, in the NumPy versions' order: each input element sums its contributions
in kernel-offset order (i, then j), so the results are the same bits.
"""

from __future__ import annotations

import numba

from archsim.kernels.options import JIT_OPTIONS


@numba.njit(**JIT_OPTIONS)
def col2im(cols, c0, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, dx):
    """The adjoint of im2col (`archsim.workload.execute.im2col`): adds every patch gradient to
    dx[:, c0:c0 + C] where im2col took it.

    dx[b, c0 + c, oy*sh + i*dh - pt, ox*sw + j*dw - pl] += cols[(b*ho + oy)*wo + ox,
    (c*kh + i)*kw + j]; terms that fall on padding are dropped.

    Args:
        cols: (B * ho * wo, C * kh * kw) patch gradients of one convolution group.
        c0: first channel of the group.
        kh, kw, sh, sw, dh, dw, pt, pl: kernel, stride, dilation, top and left padding.
        ho, wo: output height and width.
        dx: (B, C_total, H, W) gradient of the input, added to (zeros at first).
    """
    b_n, _, h, w = dx.shape
    c_n = cols.shape[1] // (kh * kw)
    for b in range(b_n):
        for c in range(c_n):
            plane = dx[b, c0 + c]
            for i in range(kh):
                for j in range(kw):
                    col = (c * kh + i) * kw + j
                    for oy in range(ho):
                        y = oy * sh + i * dh - pt
                        if y < 0 or y >= h:
                            continue
                        base = (b * ho + oy) * wo
                        for ox in range(wo):
                            xx = ox * sw + j * dw - pl
                            if 0 <= xx < w:
                                plane[y, xx] += cols[base + ox, col]


@numba.njit(**JIT_OPTIONS)
def max_pool_backward(x, y, dy, kh, kw, sh, sw, pt, pl, dx):
    """Adds each window's output gradient to its first maximum (row-major in the window).

    Windows are visited from the last to the first, so an input that is the maximum of several
    overlapping windows sums their gradients in kernel-offset order; positions in the padding
    are never a maximum.

    Args:
        x: (B, C, H, W) pooling inputs.
        y: (B, C, Ho, Wo) pooling outputs (the window maxima).
        dy: (B, C, Ho, Wo) gradient of the outputs.
        kh, kw, sh, sw, pt, pl: kernel, stride, top and left padding.
        dx: (B, C, H, W) gradient of the inputs, added to (zeros at first).
    """
    b_n, c_n, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for b in range(b_n):
        for c in range(c_n):
            xs, ys, ds, out = x[b, c], y[b, c], dy[b, c], dx[b, c]
            for oy in range(ho - 1, -1, -1):
                for ox in range(wo - 1, -1, -1):
                    top = ys[oy, ox]
                    done = False
                    for i in range(kh):
                        yy = oy * sh + i - pt
                        if done or yy < 0 or yy >= h:
                            continue
                        for j in range(kw):
                            xx = ox * sw + j - pl
                            if not done and 0 <= xx < w and xs[yy, xx] == top:
                                out[yy, xx] += ds[oy, ox]
                                done = True
