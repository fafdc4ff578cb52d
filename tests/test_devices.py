"""Device models against their equations (aihwkit's noise models of NAN19, WAN22 and FAL25; the
numbers below are derived [D] from their published constants).

Each statistical check uses enough samples that its tolerance (5 standard errors) is tight
compared with the effect it checks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.conductance import to_targets, to_weights
from archsim.config import load_device
from archsim.devices import ProgrammedDevices
from archsim.errors import DeviceModelError

N = 200_000


def _std_ok(sample: np.ndarray, sigma: float) -> bool:
    """Sample std within 5 standard errors of sigma."""
    n = sample.size
    return abs(sample.std(ddof=1) - sigma) < 5 * sigma / np.sqrt(2 * (n - 1))


def _mean_ok(sample: np.ndarray, mean: float, sigma: float) -> bool:
    return abs(sample.mean() - mean) < 5 * sigma / np.sqrt(sample.size)


@pytest.fixture(scope="module")
def pcm_model():
    return load_device("pcm").model


@pytest.fixture(scope="module")
def cmo_model():
    return load_device("cmo-hfox").model


@pytest.mark.parametrize(("x", "sigma"), [(1.0, 1.055), (0.5, 0.953), (0.1, 0.448)])
def test_pcm_programming_noise(pcm_model, rng, x, sigma):
    """sigma_prog(x) of the PCM-like model at g_max 25 uS: 1.055 uS at x=1 [D: NAN19, aihwkit]."""
    g_t = np.full(N, 25.0 * x)
    g = pcm_model.program(g_t, rng).g_us.astype(np.float64)
    assert abs(pcm_model.prog_sigma_us(np.array(25.0 * x)) - sigma) < 2e-3
    d = g - g_t
    assert _mean_ok(d, 0.0, sigma)
    assert _std_ok(d, sigma)


def _folded_normal_mean(mu: float, sd: float) -> float:
    from math import erf, exp, pi, sqrt

    return sd * sqrt(2 / pi) * exp(-(mu**2) / (2 * sd**2)) + mu * erf(mu / sqrt(2 * sd**2))


@pytest.mark.parametrize(("x", "mu", "sd"), [(1.0, 0.049, 0.008), (0.1, 0.0601, 0.0229)])
def test_pcm_drift_exponent(pcm_model, rng, x, mu, sd):
    """nu = |mu + sd xi| with mu, sd from the target ([D: NAN19 via aihwkit] ~0.049 at x = 1)."""
    nu = pcm_model.program(np.full(N, 25.0 * x), rng).drift_exponent.astype(np.float64)
    m, s = pcm_model.drift_moments(np.array(25.0 * x))
    assert abs(m - mu) < 5e-4 and abs(s - sd) < 5e-4
    assert _mean_ok(nu, _folded_normal_mean(mu, sd), sd)


def test_pcm_drift_factor_at_one_hour(pcm_model):
    """With nu = 0.049 and read noise off, g(1 h) / g_prog = (3620 / 20)^-0.049 = 0.775."""
    model = dataclasses.replace(pcm_model, read_noise_scale=0.0)
    prog = ProgrammedDevices(np.full(10, 20.0, np.float32), np.full(10, 0.049, np.float32))
    g = model.at_time(prog, 3600.0, np.random.default_rng(0))
    np.testing.assert_allclose(g / 20.0, 0.775, atol=1e-3)


def test_pcm_read_noise_grows_with_time(pcm_model, rng):
    """Relative read noise = Q * sqrt(ln((t + t0 + t_read) / (2 t_read))), Q = 0.0088 at x = 1."""
    prog = ProgrammedDevices(np.full(N, 25.0, np.float32), np.zeros(N, np.float32))
    for t, factor in ((0.0, 4.18), (3600.0, 4.77), (86400.0, 5.09)):
        g = pcm_model.at_time(prog, t, rng).astype(np.float64)
        rel = g / 25.0 - 1.0
        sigma = float(pcm_model.read_sigma(np.array(25.0), t))
        assert abs(sigma - 0.0088 * factor) < 3e-4
        assert _std_ok(rel, sigma)


def test_cmo_programming_noise_at_g_min(cmo_model, rng):
    """0.2% acceptance: sigma_prog(9 uS) = 10.4 nS [D: FAL25 via aihwkit]."""
    assert abs(float(cmo_model.prog_sigma_us(np.array(9.0))) - 0.0104) < 1e-4
    g = cmo_model.program(np.full(N, 9.0), rng).g_us.astype(np.float64) - 9.0
    assert _std_ok(g, 0.0104)


def test_cmo_relaxation_after_ten_years(cmo_model, rng):
    """Mean shift -1.74 uS and spread 1.234 uS at 10 years [D: FAL25, aihwkit]."""
    t = 315_360_000.0
    mean, sigma = cmo_model.relax_moments_us(t)
    assert abs(mean + 1.74) < 0.01 and abs(sigma - 1.234) < 1e-3
    model = dataclasses.replace(cmo_model, read_noise_scale=0.0)
    prog = ProgrammedDevices(np.full(N, 50.0, np.float32), None)
    d = model.at_time(prog, t, rng).astype(np.float64) - 50.0
    assert _mean_ok(d, mean, sigma)
    assert _std_ok(d, sigma)


def test_cmo_read_noise_at_50_us(cmo_model):
    """sigma_read(50 uS) = 0.171, 0.218, 0.269 uS at 1 s, 1 h, 10 years (FAL25, aihwkit)."""
    for t, want in ((1.0, 0.171), (3600.0, 0.218), (315_360_000.0, 0.269)):
        assert abs(float(cmo_model.read_sigma_us(np.array(50.0), t)) - want) < 2e-3


def test_cmo_is_exact_at_t0_and_refuses_unfitted_times(cmo_model, rng):
    prog = cmo_model.program(np.full(5, 30.0), rng)
    np.testing.assert_array_equal(cmo_model.at_time(prog, 0.0, rng), prog.g_us)
    with pytest.raises(DeviceModelError, match="t >= 1 s"):
        cmo_model.at_time(prog, 0.5, rng)


def test_wan2022_spread_and_time_range(rng):
    """sigma(x) at 1 s: 2.26 uS at x = 0.25, 2.02 at 0.5 (WAN22, aihwkit); interpolated in ln t
    between fitted times; no data outside them."""
    model = load_device("reram-wan2022").model
    g_max = model.g_max_us
    for x, want in ((0.0, 0.348), (0.25, 2.26), (0.5, 2.02), (1.0, 1.10)):
        assert abs(float(model.sigma_us(np.array(x * g_max), 1.0)) - want) < 0.01
    mid = float(model.sigma_us(np.array(0.5 * g_max), np.sqrt(86400.0)))
    ends = [float(model.sigma_us(np.array(0.5 * g_max), t)) for t in (1.0, 86400.0)]
    assert abs(mid - sum(ends) / 2) < 1e-9
    prog = model.program(np.full(N, 0.5 * g_max), rng)
    d = model.at_time(prog, 86400.0, rng).astype(np.float64) - 0.5 * g_max
    assert _std_ok(d, float(model.sigma_us(np.array(0.5 * g_max), 86400.0)))
    with pytest.raises(DeviceModelError, match="fitted for 1 s <= t <= 172800 s"):
        model.at_time(prog, 3.15e7, rng)


def test_ideal_device_is_exact(rng):
    model = load_device("ideal").model
    g = np.linspace(0, 25, 11)
    prog = model.program(g, rng)
    np.testing.assert_array_equal(model.at_time(prog, 1e9, rng), g.astype(np.float32))


@pytest.mark.parametrize("devices", [1, 2, 4])
def test_conductance_round_trip(rng, devices):
    """Weights -> targets -> weights is the identity within float32, and targets stay in range."""
    w = rng.uniform(-1, 1, size=(7, 5)).astype(np.float32)
    g = to_targets(w, devices, 9.0, 88.2)
    assert g.shape == (devices, 7, 5)
    assert g.min() >= 9.0 - 1e-5 and g.max() <= 88.2 + 1e-4
    np.testing.assert_allclose(to_weights(g, devices, 9.0, 88.2), w, atol=1e-6)


def test_ir_drop_current_is_that_of_the_devices_not_of_the_weight(rng):
    """One device per weight: a zero weight sits mid-range and draws half the full current, so
    the IR drop grows with it; the bit-line current of the model is sum_j G_ij |x_j|."""
    from archsim.crossbar import program_matrix, read_state
    from archsim.mvm import Converters, analog_mvm
    from archsim.spec import CrossbarSpec

    ideal = load_device("ideal")
    rows, r_wire = 64, 2.0
    w = rng.normal(size=(rows, 8))
    w[:, 0] = 0.0
    w[-1, 0] = 1.0  # column 0: all but one weight zero (the one nearest the ADC)
    x = rng.uniform(0, 1, size=(20, rows))
    y = {}
    for d in (1, 2):
        xbar = CrossbarSpec(
            rows=rows, cols=8, devices_per_weight=d, wire_resistance_ohm=r_wire, ir_drop=True
        )
        prog = program_matrix(w, xbar, ideal, rng)
        state = read_state(prog, 0.0, rng)
        y[d] = analog_mvm(x, state, Converters(0, 1.0, 0, None)).y
        wn = w / prog.w_scale
        g = prog.devices.g_us.sum(axis=0) / ideal.g_max_us  # current per full-on polarity
        a = rows * r_wire * ideal.g_max_us * 1e-6 * (np.abs(x) @ g)
        pos = 1 - (1 - np.arange(rows) / rows) ** 2
        want = (x @ wn - a * (0.05 * a**2 - 0.2 * a + 0.5) * ((x * pos) @ wn)) * prog.w_scale
        np.testing.assert_allclose(y[d], want, rtol=1e-4, atol=1e-4)
    exact = x @ w[:, 0]
    drop_single = 1 - y[1][:, 0] / exact
    drop_pair = 1 - y[2][:, 0] / exact
    assert np.all(drop_single > 5 * drop_pair)  # mid-range zeros draw current; idle pairs do not
