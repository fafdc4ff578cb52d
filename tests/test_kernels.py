"""Numba kernels against naive NumPy references (also run with NUMBA_DISABLE_JIT=1 in CI)."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.kernels.adc import NOISE_ELEMENT, NOISE_NONE, NOISE_ROW, adc_accumulate
from archsim.kernels.counter_rng import (
    hash32_py,
    normal_table,
    split_key,
    standard_normals,
    table_indices,
)
from archsim.kernels.dac import quantize_inputs
from archsim.kernels.hwa import noisy_weights
from archsim.kernels.irdrop import apply_ir_drop
from tests import reference as ref


def _dac(x, input_range, bits, rows):
    x = np.ascontiguousarray(x, dtype=np.float32)
    q = ref.qmax(bits)
    n_blocks = -(-x.shape[1] // rows)
    codes = np.empty_like(x)
    sq = np.empty((x.shape[0], n_blocks), np.float32)
    clipped = quantize_inputs(
        x, np.float32(q / input_range), np.float32(q), bits > 0, rows, codes, sq
    )
    return codes, sq, clipped


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 70), (4, 64)])
@pytest.mark.parametrize("bits", [0, 2, 8])
def test_dac_matches_reference(rng, shape, bits):
    """Codes, per-block squared norms and clip counts equal the reference; K need not be a
    multiple of the block rows."""
    x = rng.uniform(-1.3, 1.3, size=shape)
    codes, sq, clipped = _dac(x, 1.0, bits, rows=32)
    want, want_clipped = ref.dac_codes(x.astype(np.float32), 1.0, bits)
    np.testing.assert_allclose(codes, want, rtol=1e-6, atol=1e-6)
    assert clipped == want_clipped
    for k in range(sq.shape[1]):
        np.testing.assert_allclose(
            sq[:, k], (want[:, k * 32 : (k + 1) * 32] ** 2).sum(1), rtol=1e-5
        )


def test_dac_zeros_and_saturation():
    """Zero inputs give zero codes, no clipping; saturating inputs give +-qmax, all counted."""
    codes, sq, clipped = _dac(np.zeros((2, 5)), 1.0, 8, rows=4)
    assert not codes.any() and not sq.any() and clipped == 0
    x = np.array([[5.0, -5.0, 1.0, -1.0]])
    codes, _, clipped = _dac(x, 1.0, 8, rows=4)
    np.testing.assert_array_equal(codes, [[127, -127, 127, -127]])
    assert clipped == 2


def _adc(
    part, acc, first, inv, scale, qmax, quantize, mode=NOISE_NONE, row_sd=None, var=None, key=0
):
    k0, k1 = split_key(key)
    b, n = part.shape
    row_sd = np.zeros(b, np.float32) if row_sd is None else row_sd
    var = np.zeros((1, 1), np.float32) if var is None else var
    half = (n + 1) // 2
    return adc_accumulate(
        part,
        acc,
        first,
        inv,
        scale,
        np.float32(qmax),
        quantize,
        mode,
        row_sd,
        var,
        np.float32(1.0),
        normal_table(),
        k0,
        k1,
        0,
        half,
    )


@pytest.mark.parametrize("shape", [(1, 1), (4, 9), (3, 16)])
def test_adc_matches_reference(rng, shape):
    """Without noise: clip, quantize, scale and accumulate exactly as the reference ADC."""
    n = shape[1]
    part = rng.normal(0, 50, size=shape).astype(np.float32)
    bound = rng.uniform(20, 80, size=n).astype(np.float32)
    qmax_in, bits = 127.0, 6
    q = ref.qmax(bits)
    inv = (q / (bound * qmax_in)).astype(np.float32)
    scale = (bound / q * 0.5).astype(np.float32)
    acc = np.full(shape, 3.0, np.float32)
    clipped = _adc(part, acc, False, inv, scale, q, True)
    want, want_clipped = ref.adc(part / qmax_in, bound, bits)
    np.testing.assert_allclose(acc, 3.0 + want * 0.5, rtol=1e-5, atol=1e-5)
    assert clipped == want_clipped
    _adc(part, acc, True, inv, scale, q, True)  # first block overwrites
    np.testing.assert_allclose(acc, want * 0.5, rtol=1e-5, atol=1e-5)


def test_adc_unquantized_unbounded_is_identity(rng):
    """An ideal ADC (no rounding, infinite range) passes partial sums through."""
    part = rng.normal(size=(3, 5)).astype(np.float32)
    acc = np.empty_like(part)
    ones = np.ones(5, np.float32)
    assert _adc(part, acc, True, ones, ones, np.inf, False) == 0
    np.testing.assert_array_equal(acc, part)


def test_adc_row_noise_statistics():
    """Row-mode noise on zero partial sums has mean 0 and std row_sd, within 5 standard errors."""
    b, n = 400, 500
    part = np.zeros((b, n), np.float32)
    acc = np.empty_like(part)
    ones = np.ones(n, np.float32)
    sd = np.linspace(0.5, 2.0, b).astype(np.float32)
    _adc(part, acc, True, ones, ones, np.inf, False, NOISE_ROW, row_sd=sd, key=7)
    z = acc / sd[:, None]
    m = z.size
    assert abs(z.mean()) < 5 / np.sqrt(m)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * m)


def test_adc_element_noise_uses_variance():
    """Element-mode noise has std sqrt(var) per element."""
    b, n = 300, 400
    part = np.zeros((b, n), np.float32)
    acc = np.empty_like(part)
    ones = np.ones(n, np.float32)
    var = np.tile(np.linspace(0.25, 4.0, n, dtype=np.float32), (b, 1))
    _adc(part, acc, True, ones, ones, np.inf, False, NOISE_ELEMENT, var=var, key=3)
    z = acc / np.sqrt(var)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * z.size)
    # the high-variance half really is noisier than the low-variance half
    assert acc[:, n // 2 :].std() > 2 * acc[:, : n // 4].std()


def test_hash_matches_python_reference():
    """The LLVM hash equals the plain-Python one, also for counters beyond 2**32 and for runs of
    counters that carry into the high word (the 64-bit path) or end just below it (32-bit)."""
    k0, k1 = split_key(0x1234_5678_9ABC_DEF0)
    half = 8
    for start in (0, 12345, 2**32 - 3, 2**32 - half, 2**40 + 17, 2**41 - half - 1):
        idx = np.empty(2 * half, np.uint32)
        table_indices(start, k0, k1, idx)
        for j in range(half):
            h = hash32_py(start + j, int(k0), int(k1))
            assert idx[j] == h >> 20
            assert idx[half + j] == (h >> 8) & 0xFFF


def test_counter_normals_moments_and_independence():
    """Mean 0, variance 1, kurtosis near 3; no correlation between neighbours or between keys."""
    n = 200_000
    a = np.empty(n, np.float32)
    b = np.empty(n, np.float32)
    k0, k1 = split_key(99)
    standard_normals(0, k0, k1, normal_table(), a)
    k0, k1 = split_key(100)
    standard_normals(0, k0, k1, normal_table(), b)
    se = 1 / np.sqrt(n)
    assert abs(a.mean()) < 5 * se
    assert abs(a.var() - 1) < 5 * np.sqrt(2) * se
    kurt = np.mean(a**4) / a.var() ** 2
    assert abs(kurt - 3) < 0.1
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 5 * se
    assert abs(np.corrcoef(a[: n // 2], a[n // 2 :])[0, 1]) < 5 * np.sqrt(2) * se
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 * se


def test_counter_normals_are_a_pure_function_of_the_counter():
    """The same counters give the same normals whatever the slice they are drawn in."""
    k0, k1 = split_key(5)
    whole = np.empty(100, np.float32)
    standard_normals(1000, k0, k1, normal_table(), whole)
    again = np.empty(100, np.float32)
    standard_normals(1000, k0, k1, normal_table(), again)
    np.testing.assert_array_equal(whole, again)
    other = np.empty(100, np.float32)
    standard_normals(1050, k0, k1, normal_table(), other)
    assert not np.array_equal(whole, other)


@pytest.mark.parametrize("per_column", [False, True])
def test_noisy_weights_match_counter_normals_row_by_row(per_column):
    """Row k of a (7, 5) matrix in blocks [0, 3) and [3, 7) gets w + scale_b * xi, xi the
    normals of counters 3k .. 3k + 2 (ceil(5 / 2) per row), as standard_normals draws them."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((7, 5)).astype(np.float32)
    starts = np.array([0, 3, 7], dtype=np.int64)
    scale = rng.uniform(0.1, 1.0, (2, 5 if per_column else 1)).astype(np.float32)
    k0, k1 = split_key(12345)
    out = np.empty_like(w)
    noisy_weights(w, starts, scale, k0, k1, normal_table(), out)
    xi = np.empty_like(w)
    for k in range(7):
        standard_normals(3 * k, k0, k1, normal_table(), xi[k])
    want = w + np.repeat(scale, [3, 4], axis=0) * xi
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)  # FMA may round once less


def test_normal_table_is_standardised():
    t = normal_table()
    assert abs(float(np.mean(t))) < 1e-6
    assert abs(float(np.mean(t.astype(np.float64) ** 2)) - 1) < 1e-6
    assert np.all(np.diff(t) > 0)


def test_ir_drop_kernel_matches_formula(rng):
    part = rng.normal(size=(3, 4)).astype(np.float32)
    abs_current = rng.uniform(0, 10, size=(3, 4)).astype(np.float32)
    weighted = rng.normal(size=(3, 4)).astype(np.float32)
    out = part.copy()
    apply_ir_drop(out, abs_current, weighted, np.float32(0.01), np.float32(1.0))
    a = abs_current * 0.01
    want = part - a * (0.05 * a * a - 0.2 * a + 0.5) * weighted
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_fp16_rounding_matches_numpy(rng):
    """Bit-exact with NumPy's float16 cast: ties to even, subnormals, overflow, inf and NaN."""
    from archsim.kernels.fp16 import round_fp16

    wide = rng.standard_normal(20_022) * 10.0 ** rng.uniform(-9, 6, 20_022)
    edges = [
        65504,
        65519,
        65520,
        65536,
        1e9,
        -1e9,
        6.1e-5,
        6.0e-5,
        3e-8,
        2.9e-8,
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        1 + 2**-11,
        1 + 3 * 2**-11,
        2049,
        2051,
    ]
    x = np.concatenate([wide, edges]).astype(np.float32).reshape(-1, 7)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).astype(np.float32)
    got = round_fp16(x)
    assert got.shape == x.shape and got is not x
    np.testing.assert_array_equal(got, want)
