"""The tiled functional MVM: exactness, quantization error, per-MVM noise, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.crossbar import program_matrix, read_state
from archsim.errors import ArchsimError
from archsim.mvm import Converters, analog_mvm, calibrate
from archsim.spec import CrossbarSpec, MvmNoiseSpec
from tests import reference as ref


def _ideal_state(w, xbar, device, rng):
    return read_state(program_matrix(w, xbar, device, rng), 0.0, rng)


@pytest.mark.parametrize("shape", [(1, 1), (32, 16), (70, 45), (100, 3)])
def test_ideal_without_quantization_is_exact(rng, ideal, small_xbar, shape):
    """Ideal device, no DAC/ADC quantization: x @ W to float32 tolerance, any tiling."""
    w = rng.normal(size=shape)
    x = rng.uniform(-2, 2, size=(17, shape[0]))
    state = _ideal_state(w, small_xbar, ideal, rng)
    conv = Converters(0, float(np.abs(x).max()), 0, None)
    res = analog_mvm(x, state, conv)
    np.testing.assert_allclose(res.y, x @ w, rtol=1e-5, atol=1e-5 * np.abs(x @ w).max())
    assert res.inputs_clipped == 0 and res.outputs_clipped == 0
    assert res.conversions == 17 * shape[1] * -(-shape[0] // small_xbar.rows)


@pytest.mark.parametrize("scaling", ["matrix", "column"])
def test_quantized_tiling_matches_reference(rng, ideal, small_xbar, scaling):
    """K-split partial sums are ADC-quantized per block, then added: same as the reference."""
    w = rng.normal(size=(70, 20)) * np.linspace(0.1, 3, 20)
    x = rng.uniform(-1, 1, size=(50, 70))
    prog = program_matrix(w, small_xbar, ideal, rng, weight_scaling=scaling)
    state = read_state(prog, 0.0, rng)
    conv = calibrate(state, x, input_bits=6, adc_bits=5)
    res = analog_mvm(x, state, conv)
    want = ref.tiled_mvm(
        x, state.w_eff, prog.w_scale, small_xbar.rows, conv.input_range, 6, 5, conv.adc_bound
    )
    step = (conv.adc_bound.max() / ref.qmax(5)) * prog.w_scale.max() * conv.input_range
    diff = np.abs(res.y - want)
    # BLAS and the reference may sum in another order: a value on a rounding edge may flip by
    # one ADC step, nothing more, and rarely
    assert diff.max() <= step * 1.001 + 1e-4
    assert np.mean(diff > 1e-3 * step) < 0.01


def test_dac_quantization_error_matches_analysis(rng, ideal):
    """Inputs spread over many DAC steps: output error variance = sum_j w_j^2 * step^2 / 12."""
    xbar = CrossbarSpec(rows=64, cols=64, devices_per_weight=2)
    w = rng.normal(size=(64, 64))
    x = rng.uniform(-1, 1, size=(4000, 64))
    state = _ideal_state(w, xbar, ideal, rng)
    bits = 5
    conv = Converters(bits, 1.0, 0, None)
    err = analog_mvm(x, state, conv).y - x @ w
    step = 1.0 / ref.qmax(bits)
    predicted = (w**2).sum(axis=0) * step**2 / 12
    ratio = err.var(axis=0) / predicted
    assert abs(ratio.mean() - 1) < 0.05


def test_adc_quantization_error_matches_analysis(rng, ideal, small_xbar):
    """ADC only, per K-block: error variance = n_blocks * (weight-unit step)^2 / 12."""
    w = rng.normal(size=(96, 16))
    x = rng.uniform(-1, 1, size=(6000, 96))
    state = _ideal_state(w, small_xbar, ideal, rng)
    bound = np.full((3, 1), 12.0, np.float32)
    conv = Converters(0, 1.0, 7, bound)
    res = analog_mvm(x, state, conv)
    assert res.outputs_clipped < 0.001 * res.conversions
    err = res.y - x @ w
    step = 12.0 / ref.qmax(7) * float(np.abs(w).max())
    predicted = 3 * step**2 / 12
    assert abs(err.var() / predicted - 1) < 0.05


def test_output_referred_noise_statistics(rng, ideal):
    """Fresh output noise: residual std = std * ||u|| in weight units, mean 0."""
    xbar = CrossbarSpec(rows=128, cols=128, devices_per_weight=2)
    sigma = 0.03
    device = dataclasses.replace(ideal, mvm_noise=MvmNoiseSpec("output", sigma))
    w = rng.normal(size=(128, 100))
    x = rng.uniform(-1, 1, size=(2000, 128))
    state = _ideal_state(w, xbar, device, rng)
    res = analog_mvm(x, state, Converters(0, 1.0, 0, None), key=11)
    scale = float(np.abs(w).max())
    z = (res.y - x @ w) / (sigma * scale * np.linalg.norm(x, axis=1, keepdims=True))
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * n)


def test_conductance_dependent_noise_statistics(rng, ideal):
    """Variance = std^2 * sum_j |w_j| u_j^2 (normalised weights): larger weights, more noise."""
    xbar = CrossbarSpec(rows=64, cols=64, devices_per_weight=2)
    sigma = 0.05
    device = dataclasses.replace(ideal, mvm_noise=MvmNoiseSpec("conductance", sigma))
    w = rng.normal(size=(64, 64)) * np.linspace(0.05, 1, 64)
    x = rng.uniform(-1, 1, size=(3000, 64))
    prog = program_matrix(w, xbar, device, rng)
    state = read_state(prog, 0.0, rng)
    res = analog_mvm(x, state, Converters(0, 1.0, 0, None), key=2)
    scale = float(prog.w_scale[0])
    var = sigma**2 * (x**2 @ np.abs(w / scale)) * scale**2
    z = (res.y - x @ w) / np.sqrt(var)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * z.size)
    resid = res.y - x @ w
    assert resid[:, -8:].std() > 2 * resid[:, :8].std()


def _noisy(pcm):
    """PCM with fresh conductance-dependent noise on every MVM (the preset itself adds none)."""
    return dataclasses.replace(pcm, mvm_noise=MvmNoiseSpec("conductance", 0.0175))


def test_same_key_same_bits_other_key_other_bits(rng, pcm):
    pcm = _noisy(pcm)
    xbar = CrossbarSpec(rows=64, cols=32, devices_per_weight=4)
    w = rng.normal(size=(150, 40))
    x = rng.uniform(-1, 1, size=(30, 150))
    state = read_state(program_matrix(w, xbar, pcm, rng), 3600.0, rng)
    conv = calibrate(state, x, input_bits=8, adc_bits=8)
    a = analog_mvm(x, state, conv, key=1).y
    b = analog_mvm(x, state, conv, key=1).y
    c = analog_mvm(x, state, conv, key=2).y
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.5


def test_batch_pieces_give_the_same_bits(rng, pcm):
    """A batch run in two pieces (with row_offset) equals the whole batch, bit for bit."""
    pcm = _noisy(pcm)
    xbar = CrossbarSpec(rows=64, cols=32, devices_per_weight=2)
    w = rng.normal(size=(100, 30))
    x = rng.uniform(-1, 1, size=(40, 100))
    state = read_state(program_matrix(w, xbar, pcm, rng), 60.0, rng)
    conv = calibrate(state, x, input_bits=8, adc_bits=8)
    whole = analog_mvm(x, state, conv, key=9).y
    top = analog_mvm(x[:13], state, conv, key=9).y
    rest = analog_mvm(x[13:], state, conv, key=9, row_offset=13).y
    np.testing.assert_array_equal(whole, np.vstack([top, rest]))


def test_programming_is_deterministic_per_seed(pcm, small_xbar):
    w = np.random.default_rng(0).normal(size=(40, 20))

    def weights(seed):
        rng = np.random.default_rng(seed)
        return read_state(program_matrix(w, small_xbar, pcm, rng), 86400.0, rng).w_eff

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.array_equal(weights(1), weights(2))


def test_clipping_is_counted(rng, ideal, small_xbar):
    w = rng.normal(size=(32, 16))
    state = _ideal_state(w, small_xbar, ideal, rng)
    x = rng.uniform(-1, 1, size=(10, 32))
    conv = calibrate(state, x, input_bits=8, adc_bits=8)
    assert analog_mvm(x, state, conv).outputs_clipped == 0
    res = analog_mvm(3 * x, state, conv)
    over = conv.input_range * (1 + 0.5 / 127)
    assert res.inputs_clipped == int(np.sum(np.abs(3 * x) > over))
    assert res.outputs_clipped > 0


def test_drift_compensation_restores_scale(rng, pcm, small_xbar):
    """PCM after a year: compensated outputs keep their scale, uncompensated ones shrink."""
    w = rng.normal(size=(64, 32))
    x = rng.uniform(-1, 1, size=(200, 64))
    prog = program_matrix(w, small_xbar, pcm, rng)
    conv = Converters(0, 1.0, 0, None)
    on = analog_mvm(x, read_state(prog, 3.15e7, rng, compensation=True), conv).y
    off = analog_mvm(x, read_state(prog, 3.15e7, rng, compensation=False), conv).y
    exact = x @ w
    gain_on = np.sum(on * exact) / np.sum(exact**2)
    gain_off = np.sum(off * exact) / np.sum(exact**2)
    assert 0.9 < gain_on < 1.1
    assert gain_off < 0.8


def test_ir_drop_follows_reference_model(rng, ideal):
    """With IR drop on, the ideal output loses c(a) * sum_j w x'_j per column (aihwkit model)."""
    xbar = CrossbarSpec(
        rows=64, cols=64, devices_per_weight=2, wire_resistance_ohm=2.0, ir_drop=True
    )
    w = rng.normal(size=(64, 8))
    x = rng.uniform(-1, 1, size=(20, 64))
    prog = program_matrix(w, xbar, ideal, rng)
    state = read_state(prog, 0.0, rng)
    y = analog_mvm(x, state, Converters(0, 1.0, 0, None)).y
    wn = w / prog.w_scale
    g_ratio = 1.0 / (2.0 * ideal.g_max_us * 1e-6)
    a = 64 / g_ratio * (np.abs(x) @ np.abs(wn))
    pos = 1 - (1 - np.arange(64) / 64) ** 2
    want = (x @ wn - a * (0.05 * a**2 - 0.2 * a + 0.5) * ((x * pos) @ wn)) * prog.w_scale
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    assert np.mean(np.abs(y)) < np.mean(np.abs(x @ w))


def test_bad_inputs_raise_clear_errors(rng, ideal, small_xbar):
    w = rng.normal(size=(10, 5))
    state = _ideal_state(w, small_xbar, ideal, rng)
    conv = Converters(0, 1.0, 0, None)
    with pytest.raises(ArchsimError, match=r"inputs: expected shape \(B, 10\)"):
        analog_mvm(np.ones((3, 11)), state, conv)
    with pytest.raises(ArchsimError, match="NaN or Inf"):
        program_matrix(np.full((2, 2), np.nan), small_xbar, ideal, rng)
    with pytest.raises(ArchsimError, match=r"input_bits: expected 0 \(ideal.* or 2\.\.16"):
        Converters(-1, 1.0, 0, None)
    with pytest.raises(ArchsimError, match="needs a range"):
        Converters(8, 1.0, 8, None)
    with pytest.raises(ArchsimError, match="adc_bound: expected shape"):
        analog_mvm(np.ones((1, 10)), state, Converters(0, 1.0, 8, np.ones((2, 5), np.float32)))


def test_same_bits_whatever_the_blas_thread_count():
    """The noisy MVM of a fixed seed hashes the same with 1 and 2 OpenBLAS threads."""
    import os
    import subprocess
    import sys

    script = (
        "import hashlib, numpy as np\n"
        "from archsim.config import load_chip\n"
        "from archsim.crossbar import program_matrix, read_state\n"
        "from archsim.mvm import analog_mvm, calibrate\n"
        "chip = load_chip('hermes'); rng = np.random.default_rng(3)\n"
        "w = rng.normal(size=(700, 300)); x = rng.uniform(-1, 1, (500, 700))\n"
        "s = read_state(program_matrix(w, chip.crossbar, chip.device, rng), 3600, rng)\n"
        "c = calibrate(s, x, input_bits=8, adc_bits=8)\n"
        "print(hashlib.sha256(analog_mvm(x, s, c, key=7).y.tobytes()).hexdigest())\n"
    )
    hashes = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1
