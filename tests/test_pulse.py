"""Pulsed-update kernels: bit-length and update management (GV16), expectation, signs, choppers,
reproducibility and pulse counting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsim.errors import ArchsimError, SpecError
from archsim.kernels.pulse import (
    PulseSettings,
    apply_pulses_row,
    bl_and_scales,
    pulsed_update,
    pulses_row,
    update_sample,
)
from archsim.train.pulsed import UpdateModel

IDEAL = UpdateModel(rule="constant", dw_min=0.001, w_max=1.0, w_min=-1.0)
"""Symmetric constant step, no spreads, no noise: E[dw] = -lr x d exactly."""


def _dev(model=IDEAL, shape=(6, 5), seed=0):
    return model.sample(shape, np.random.default_rng(seed))


def test_bl_management_takes_the_fewest_slots_that_suffice():
    eps, lr = 0.001, 0.01
    # k = lr x_m d_m / eps = 0.01 * 1 * 0.05 / 0.001 = 0.5 -> BL 1
    bl, a, b = bl_and_scales(1.0, 0.05, lr, eps, 31, True, True, True)
    assert bl == 1
    # both largest probabilities are sqrt(lr x_m d_m / (eps BL)) = sqrt(0.5)
    assert a * 0.05 == pytest.approx(math.sqrt(0.5)) and b * 1.0 == pytest.approx(math.sqrt(0.5))
    # k = 0.01 * 2 * 0.8 / 0.001 = 16 -> BL 16
    bl, a, b = bl_and_scales(2.0, 0.8, lr, eps, 31, True, True, True)
    assert bl == 16 and a * b == pytest.approx(lr / (eps * 16))
    assert max(a * 0.8, b * 2.0) <= 1.0 + 1e-12


def test_k_above_desired_bl_is_clipped_on_the_d_side():
    eps, lr = 0.001, 0.1
    bl, a, b = bl_and_scales(1.0, 1.0, lr, eps, 31, True, True, True)  # k = 100
    assert bl == 31
    assert b * 1.0 == pytest.approx(1.0)  # x side: largest probability exactly 1
    assert a * 1.0 == pytest.approx(100 / 31)  # d side clipped at 1 by the kernel
    # the largest update per call is about BL eps
    dev = _dev(shape=(1, 1))
    n = pulsed_update(dev, np.ones((1, 1)), np.ones((1, 1)), lr, PulseSettings())
    assert n == 31 and dev.w[0, 0] == pytest.approx(-31 * 0.001)


def test_fixed_bl_without_management_uses_desired_bl():
    bl, a, b = bl_and_scales(1.0, 0.05, 0.01, 0.001, 31, True, False, False)
    assert bl == 31 and a == pytest.approx(b) and a == pytest.approx(math.sqrt(0.01 / 0.031))


def test_zero_input_or_gradient_gives_no_update():
    dev = _dev()
    assert pulsed_update(dev, np.zeros((1, 6)), np.ones((1, 5)), 0.1, PulseSettings()) == 0
    assert pulsed_update(dev, np.ones((1, 6)), np.zeros((1, 5)), 0.1, PulseSettings()) == 0
    assert not dev.pulses.any() and dev.counter == 0


@pytest.mark.parametrize(
    ("settings", "lr", "x_scale"),
    [
        (PulseSettings(), 0.02, 1.0),  # BL management: BL 10, one uniform per slot
        # fixed BL 31, unmanaged, small inputs: p_x < 0.1, trains drawn by geometric skipping
        (PulseSettings(bl_management=False, update_management=False), 0.01, 0.15),
        (PulseSettings(desired_bl=100), 0.2, 1.0),  # k = BL = 85: two 64-bit words per train
    ],
    ids=["managed", "geometric", "two-words"],
)
def test_expected_update_is_minus_lr_x_d(settings, lr, x_scale):
    """Mean over 3000 repeats from w = 0; per-element tolerance 4 standard errors."""
    rng = np.random.default_rng(1)
    x = (x_scale * rng.uniform(-1, 1, (1, 6))).astype(np.float32)
    d = rng.uniform(-0.5, 0.5, (1, 5)).astype(np.float32)
    reps = 3000
    dev = _dev()
    total = np.zeros((6, 5))
    sq = np.zeros((6, 5))
    for _ in range(reps):
        dev.program(np.zeros((6, 5)))
        pulsed_update(dev, x, d, lr, settings)
        total += dev.w
        sq += dev.w.astype(np.float64) ** 2
    mean = total / reps
    se = np.sqrt(np.maximum(sq / reps - mean**2, 1e-12) / reps)
    want = -lr * x.T @ d
    assert np.all(np.abs(mean - want) <= 4 * se + 1e-7), np.max(np.abs(mean - want) / se)


def test_pulse_counts_equal_coincidences_and_signs_follow_sgd():
    dev = _dev(shape=(30, 20))
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (8, 30))
    d = rng.uniform(-1, 1, (8, 20))
    total = 0
    for r in range(8):
        before = dev.w.copy()
        total += pulsed_update(dev, x[r : r + 1], d[r : r + 1], 0.05, PulseSettings())
        moved = dev.w != before
        # every moved device moved against sign(x_j d_i) (constant step, no noise, far from bounds)
        s = np.sign(np.outer(x[r], d[r]))
        assert np.all(np.sign(dev.w - before)[moved] == -s[moved])
    assert total > 0 and dev.pulses.sum() == total


def test_negative_lr_and_choppers_flip_the_sign():
    x, d = np.ones((1, 6)), np.ones((1, 5))
    base = _dev(seed=3)
    pulsed_update(base, x, d, 0.01, PulseSettings())
    neg = _dev(seed=3)
    pulsed_update(neg, x, d, -0.01, PulseSettings())
    assert np.array_equal(neg.w, -base.w) and base.w.min() < 0
    chopped = _dev(seed=3)
    c_in = np.array([1, -1, 1, -1, 1, -1], dtype=np.int8)
    c_out = np.array([-1, -1, 1, 1, 1], dtype=np.int8)
    pulsed_update(chopped, x, d, 0.01, PulseSettings(), c_in, c_out)
    assert np.array_equal(chopped.w, base.w * np.outer(c_in, c_out))


def test_same_key_same_bits_and_counter_advances():
    rng = np.random.default_rng(4)
    x, d = rng.normal(size=(5, 6)), rng.normal(size=(5, 5))
    a, b = _dev(seed=9), _dev(seed=9)
    pulsed_update(a, x, d, 0.03, PulseSettings())
    pulsed_update(b, x, d, 0.03, PulseSettings())
    assert np.array_equal(a.w, b.w) and a.counter == b.counter > 0
    c = _dev(seed=10)
    pulsed_update(c, x, d, 0.03, PulseSettings())
    assert not np.array_equal(a.w, c.w)


def test_njit_cores_match_the_wrappers():
    rng = np.random.default_rng(5)
    x, d = rng.normal(size=(1, 6)).astype(np.float32), rng.normal(size=(1, 5)).astype(np.float32)
    a, b = _dev(seed=1), _dev(seed=1)
    none = np.ones(0, dtype=np.int8)
    n = update_sample(a.arrays(), x[0], d[0], 0.02, 31, True, True, True, 1.0, none, none)
    assert n == pulsed_update(b, x, d, 0.02, PulseSettings())
    assert np.array_equal(a.w, b.w)
    counts = np.array([3, -2, 0, 1, -5], dtype=np.int32)
    pulses_row(a.arrays(), 2, counts)
    apply_pulses_row(b, 2, counts)
    assert np.array_equal(a.w, b.w) and np.array_equal(a.pulses, b.pulses)


def test_apply_pulses_row_steps_and_counts():
    dev = _dev()
    apply_pulses_row(dev, 1, np.array([3, -2, 0, 1, -5], dtype=np.int32))
    assert np.allclose(dev.w[1], [0.003, -0.002, 0, 0.001, -0.005], atol=1e-7)
    assert dev.pulses[1].tolist() == [3, 2, 0, 1, 5] and dev.pulses.sum() == 11


def test_bad_input_is_refused():
    dev = _dev()
    with pytest.raises(ArchsimError, match="do not match"):
        pulsed_update(dev, np.ones((1, 5)), np.ones((1, 5)), 0.1, PulseSettings())
    with pytest.raises(ArchsimError, match="c_in"):
        pulsed_update(dev, np.ones((1, 6)), np.ones((1, 5)), 0.1, PulseSettings(), np.zeros(6))
    with pytest.raises(SpecError, match="desired_bl"):
        PulseSettings(desired_bl=0)


def test_counter_uniforms_are_uniform_and_match_the_reference_hash():
    from archsim.kernels.counter_rng import hash32_py, uniform_at

    k0, k1 = np.uint64(12345), np.uint64(678)
    u = np.array([uniform_at(c, k0, k1) for c in range(20000)])
    assert np.all((u > 0) & (u < 1))
    assert u.mean() == pytest.approx(0.5, abs=0.006) and u.var() == pytest.approx(1 / 12, rel=0.03)
    assert u[7] == (hash32_py(7, 12345, 678) + 0.5) / 2**32
