"""Single-device weights (devices_per_weight = 1) read against an aged reference column."""

from __future__ import annotations

import numpy as np

from archsim.crossbar import program_matrix, read_state
from archsim.spec import CrossbarSpec

YEAR_S = 31_536_000.0


def test_zero_weights_still_read_zero_after_a_year_of_drift(pcm, rng):
    """Every zero weight sits at g_mid, as every reference device does: same target, same
    programming noise and drift law, so E[G - G_ref] = 0 at any time. Subtracting the undrifted
    g_mid instead reads E[(t/t0)^-nu] - 1 = exp(-0.049 ln(1.6e6)) - 1 = -0.50 at one year (the
    pcm preset's mean drift exponent at mid range is its floor, 0.049). The mean over K x N
    zero weights is within 5 standard errors of 0; a reference device serves a whole row of a
    block, so the errors are independent across rows and the standard error is that of the
    K row means."""
    k, n = 512, 64
    xb = CrossbarSpec(rows=256, cols=32, devices_per_weight=1)
    prog = program_matrix(np.zeros((k, n)), xb, pcm, rng)
    w = read_state(prog, YEAR_S, rng, compensation=False).w_eff
    row_means = w.mean(axis=1)
    se = row_means.std(ddof=1) / np.sqrt(k)
    assert abs(row_means.mean()) < 5 * se
    assert abs(row_means.mean()) < 0.02


def test_single_device_weights_drift_like_differential_ones(pcm, rng):
    """A weight w drifts to about w (t/t0)^-nu, so after global drift compensation the read
    weights track the programmed ones: the correlation of read and true weights at one year
    stays above 0.9 (the old g_mid subtraction gave every weight the same -0.5 shift, which the
    per-block |w| compensation cannot undo: the correlation survives, but the mean does not)."""
    k, n = 256, 32
    xb = CrossbarSpec(rows=256, cols=32, devices_per_weight=1)
    w_true = rng.uniform(-1, 1, (k, n))
    prog = program_matrix(w_true, xb, pcm, rng)
    state = read_state(prog, YEAR_S, rng, compensation=True)
    w = state.w_eff * state.alpha[0, 0] * prog.w_scale
    assert np.corrcoef(w.ravel(), w_true.ravel())[0, 1] > 0.9
    assert abs(float(np.mean(w - w_true))) < 0.05


def test_digital_mid_reference_shifts_drifted_zero_weights_by_the_drift(pcm, rng):
    """mid_reference = "digital" subtracts the undrifted g_mid (aihwkit's single-device
    converter): a zero weight reads E[(t/t0)^-nu] - 1 at one year, with nu ~ |N(0.049, 0.008)|
    at mid range (the pcm preset's clipped moments): exp(-0.049 L + (0.008 L)^2 / 2) - 1 = -0.49
    for L = ln((1 y + 20 s) / 20 s) = 14.27; 0.02 absorbs the read noise's mean."""
    xb = CrossbarSpec(rows=256, cols=32, devices_per_weight=1, mid_reference="digital")
    prog = program_matrix(np.zeros((256, 64)), xb, pcm, rng)
    assert prog.reference is None
    w = read_state(prog, YEAR_S, rng, compensation=False).w_eff
    big_l = np.log((YEAR_S + 20.0) / 20.0)
    expected = np.exp(-0.049 * big_l + (0.008 * big_l) ** 2 / 2) - 1
    assert abs(float(w.mean()) - expected) < 0.02
