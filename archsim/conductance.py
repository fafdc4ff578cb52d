"""Weights to device conductances and back.

A weight matrix is first normalised by a digital scale (its largest magnitude, per matrix or per
column), so normalised weights lie in [-1, 1]. Then:

- differential (devices_per_weight = 2m): the m devices of the weight's sign side are programmed
  to g_min + |w| (g_max - g_min), the m devices of the other side to g_min; the read-out weight
  is (sum G+ - sum G-) / (m (g_max - g_min));
- single device (devices_per_weight = 1): w in [-1, 1] maps linearly onto [g_min, g_max] and the
  current of a reference device programmed to g_mid (a reference column per crossbar block, aged
  like the weights; `archsim.crossbar`) is subtracted: w = (G - G_ref) / ((g_max - g_min) / 2).
  Without a reference read (`g_ref_us` None) the nominal g_mid is subtracted, exact only for a
  device that does not drift.

Device axis layout: index d < m holds the positive side, d >= m the negative side.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

WeightScaling = Literal["matrix", "column"]


def weight_scales(weights: np.ndarray, scaling: WeightScaling) -> np.ndarray:
    """Digital scale per column (float32, shape (N,)): max |w| of the matrix or of each column.

    An all-zero matrix or column gets scale 1 (any scale represents it exactly).
    """
    mag = np.abs(weights)
    if scaling == "matrix":
        scale = np.full(weights.shape[1], mag.max() if mag.size else 0.0, dtype=np.float64)
    elif scaling == "column":
        scale = mag.max(axis=0).astype(np.float64)
    else:
        raise ValueError(f"weight scaling must be 'matrix' or 'column', got {scaling!r}")
    scale[scale == 0] = 1.0
    return scale.astype(np.float32)


def to_targets(
    w_norm: np.ndarray, devices_per_weight: int, g_min_us: float, g_max_us: float
) -> np.ndarray:
    """Target conductances, shape (devices_per_weight, K, N), for normalised weights in [-1, 1]."""
    w = np.asarray(w_norm, dtype=np.float32)
    span = np.float32(g_max_us - g_min_us)
    g_min = np.float32(g_min_us)
    if devices_per_weight == 1:
        return (g_min + (w + 1) * (span / 2))[None]
    m = devices_per_weight // 2
    pos = g_min + np.maximum(w, 0) * span
    neg = g_min + np.maximum(-w, 0) * span
    return np.concatenate(
        [np.broadcast_to(pos, (m, *w.shape)), np.broadcast_to(neg, (m, *w.shape))]
    )


def to_weights(
    g_us: np.ndarray,
    devices_per_weight: int,
    g_min_us: float,
    g_max_us: float,
    g_ref_us: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised weights (float32, shape (K, N)) read from device conductances (D, K, N).

    Args:
        g_ref_us: single device only: the read conductance of the reference device each weight's
            mid-range current is taken from, broadcastable to (K, N); None = the nominal g_mid.
    """
    span = g_max_us - g_min_us
    if devices_per_weight == 1:
        mid = np.float32((g_min_us + g_max_us) / 2) if g_ref_us is None else g_ref_us
        return ((g_us[0] - mid) / np.float32(span / 2)).astype(np.float32)
    m = devices_per_weight // 2
    diff = g_us[:m].sum(axis=0, dtype=np.float32) - g_us[m:].sum(axis=0, dtype=np.float32)
    return (diff / np.float32(m * span)).astype(np.float32)


def conductance_load(
    g_us: np.ndarray, devices_per_weight: int, g_min_us: float, g_max_us: float
) -> np.ndarray:
    """Summed conductance of each weight's devices in units of one full-scale weight (K, N).

    The per-weight variance factor of conductance-dependent read noise: |w| for a differential
    weight whose idle side sits at zero conductance.
    """
    span = g_max_us - g_min_us
    per_weight = span / 2 if devices_per_weight == 1 else (devices_per_weight // 2) * span
    return (g_us.sum(axis=0, dtype=np.float32) / np.float32(per_weight)).astype(np.float32)
