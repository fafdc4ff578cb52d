"""Naive NumPy references of the functional crossbar model, written for clarity, not speed.

They follow the documented equations step by step so the kernels and the tiled MVM can be
checked against them.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def exact_chip(chip):
    """`chip` with ideal (0-bit) DAC and ADC and FP32 digital units: with an ideal device it
    must reproduce the float network."""
    return dataclasses.replace(
        chip,
        input=dataclasses.replace(chip.input, bits=0),
        adc=dataclasses.replace(chip.adc, bits=0),
        ldpu=dataclasses.replace(chip.ldpu, precision="fp32"),
    )


def qmax(bits: int) -> float:
    """Largest code of a signed converter (1.0 when not quantizing)."""
    return float(2 ** (bits - 1) - 1) if bits > 0 else 1.0


def dac_codes(x: np.ndarray, input_range: float, bits: int) -> tuple[np.ndarray, int]:
    """Codes of x through a DAC with range +-input_range and `bits` (0 = no rounding)."""
    q = qmax(bits)
    v = x.astype(np.float64) * (q / input_range)
    clipped = int(np.sum(np.abs(v) > (q + 0.5 if bits else q * 1.000001)))
    v = np.clip(v, -q, q)
    if bits:
        v = np.rint(v)
    return v, clipped


def adc(p: np.ndarray, bound: np.ndarray | float, bits: int) -> tuple[np.ndarray, int]:
    """ADC of analog values p (units of a full-scale input on a full-scale weight)."""
    q = qmax(bits)
    v = p / bound * q
    clipped = int(np.sum(np.abs(v) > (q + 0.5 if bits else q * 1.000001)))
    v = np.clip(v, -q, q)
    if bits:
        v = np.rint(v)
    return v * bound / q, clipped


def tiled_mvm(
    x: np.ndarray,
    w_eff: np.ndarray,
    w_scale: np.ndarray,
    rows: int,
    input_range: float,
    input_bits: int,
    adc_bits: int,
    adc_bound: np.ndarray | None,
    alpha: np.ndarray | None = None,
    cols: int | None = None,
) -> np.ndarray:
    """y = sum over row blocks k of ADC(u_k @ w_eff_k) * alpha_k * w_scale * input_range."""
    codes, _ = dac_codes(x, input_range, input_bits)
    u = codes / qmax(input_bits)
    k_dim, n_dim = w_eff.shape
    y = np.zeros((x.shape[0], n_dim))
    for k, r0 in enumerate(range(0, k_dim, rows)):
        p = u[:, r0 : r0 + rows] @ w_eff[r0 : r0 + rows].astype(np.float64)
        if adc_bound is not None:
            p, _ = adc(p, np.broadcast_to(adc_bound[k], (n_dim,)), adc_bits)
        a = np.ones(n_dim) if alpha is None else np.repeat(alpha[k], cols)[:n_dim]
        y += p * a
    return y * w_scale * input_range
