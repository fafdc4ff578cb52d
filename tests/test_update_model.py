"""Device update models: step sizes, symmetry points, n_states, per-device sampling, bounds,
reads, resets, checkpoints and the `[update]` table of device presets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsim.config import load_device
from archsim.errors import ConfigError, SpecError
from archsim.kernels.pulse import PulseSettings, apply_pulses_row, pulsed_update
from archsim.train.pulsed import UPDATE_RULES, UpdateModel

RULE_KW = {
    "constant": {},
    "linear": {"gamma_up": 0.6, "gamma_down": 0.3},
    "soft_bounds": {},
    "exp": {
        "exp_a_up": 0.3,
        "exp_a_down": 0.1,
        "exp_gamma_up": 3.0,
        "exp_gamma_down": 3.0,
        "exp_a": 0.5,
        "exp_b": 0.1,
    },
    "pow": {"pow_gamma": 1.5},
}


def _model(rule, **kw):
    base = {"dw_min": 0.01, "w_max": 1.0, "w_min": -0.8, "up_down": 0.3, **RULE_KW[rule]}
    return UpdateModel(rule=rule, **{**base, **kw})


def _alphas(m):
    """a+, a- of the one-sided up_down convention (update_model docstring)."""
    u = m.up_down
    return (m.dw_min, m.dw_min * (1 - u)) if u > 0 else (m.dw_min * (1 + u), m.dw_min)


def _step_equation(m, w, up):
    """Mean step magnitude of the mean device, written from the rule table."""
    a_up, a_dn = _alphas(m)
    span = m.w_max - m.w_min
    if m.rule == "constant":
        return a_up if up else a_dn
    if m.rule == "linear":
        return (
            a_up * (1 - m.gamma_up * w / m.w_max) if up else a_dn * (1 - m.gamma_down * w / m.w_min)
        )
    if m.rule == "soft_bounds":
        return a_up * (1 - w / m.w_max) if up else a_dn * (1 - w / m.w_min)
    if m.rule == "exp":
        z = 2 * m.exp_a * w / span + m.exp_b
        if up:
            return a_up * max(1 - m.exp_a_up * math.exp(m.exp_gamma_up * z), 0)
        return a_dn * max(1 - m.exp_a_down * math.exp(-m.exp_gamma_down * z), 0)
    om = (m.w_max - w) / span
    p_up, p_dn = m.pow_gamma, m.pow_gamma * (1 - m.pow_up_down)
    return a_up * om**p_up if up else a_dn * (1 - om) ** p_dn


@pytest.mark.parametrize("rule", UPDATE_RULES)
@pytest.mark.parametrize("w0", [-0.5, 0.0, 0.6])
def test_mean_step_matches_the_rule(rule, w0):
    """4000 devices at w0, one up (then one down) pulse each with 30 % cycle-to-cycle noise:
    the mean step is the equation's within 5 standard errors."""
    m = _model(rule, dw_min_std=0.3)
    n = 4000
    for up in (True, False):
        dev = m.sample((1, n), np.random.default_rng(0))
        dev.program(np.full((1, n), w0))
        apply_pulses_row(dev, 0, np.full(n, 1 if up else -1, dtype=np.int32))
        steps = np.abs(dev.w[0].astype(np.float64) - w0)
        want = _step_equation(m, w0, up)
        se = steps.std() / math.sqrt(n)
        assert abs(steps.mean() - want) <= 5 * se + 1e-6, (steps.mean(), want)
        assert m.mean_steps(np.array([w0]))[0 if up else 1][0] == pytest.approx(want)


@pytest.mark.parametrize("rule", UPDATE_RULES)
def test_noise_free_step_is_exact(rule):
    m = _model(rule)
    dev = m.sample((1, 3), np.random.default_rng(0))
    dev.program(np.array([[-0.3, 0.1, 0.4]]))
    apply_pulses_row(dev, 0, np.array([1, -1, 1], dtype=np.int32))
    want = [-0.3 + _step_equation(m, -0.3, True), 0.1 - _step_equation(m, 0.1, False)]
    want.append(0.4 + _step_equation(m, 0.4, True))
    assert np.allclose(dev.w[0], want, atol=1e-6)


def _closed_form_sp(m):
    a_up, a_dn = _alphas(m)
    if m.rule == "linear":
        return (a_up - a_dn) / (a_up * m.gamma_up / m.w_max - a_dn * m.gamma_down / m.w_min)
    if m.rule == "soft_bounds":
        return (a_up - a_dn) / (a_up / m.w_max - a_dn / m.w_min)
    if m.rule == "pow":
        q = (a_dn / a_up) ** (1 / m.pow_gamma)
        return m.w_max - (m.w_max - m.w_min) * q / (1 + q)
    return None


@pytest.mark.parametrize("rule", ["linear", "soft_bounds", "exp", "pow"])
def test_random_pulses_drive_w_to_the_symmetry_point(rule):
    """500 devices, 2000 random +-1 pulses each: the mean weight is the symmetry point within
    0.02 (steps 0.01 x (1 - 0.3))."""
    m = _model(rule, pow_up_down=0.0)
    sp = m.symmetry_point()
    closed = _closed_form_sp(m)
    if closed is not None:
        assert sp == pytest.approx(closed, abs=1e-9)
    else:  # exp: no closed form; the mean up and down steps are equal there
        assert _step_equation(m, sp, True) == pytest.approx(_step_equation(m, sp, False), rel=1e-6)
    assert abs(sp) > 0.05  # up_down 0.3 moves it away from 0: the test can tell
    assert m.w_min + 0.1 < sp < m.w_max - 0.1
    n = 500
    dev = m.sample((1, n), np.random.default_rng(1))
    dev.program(np.linspace(m.w_min, m.w_max, n)[None, :])
    rng = np.random.default_rng(2)
    for _ in range(2000):
        apply_pulses_row(dev, 0, rng.choice(np.array([-1, 1], dtype=np.int32), n))
    assert abs(dev.w.mean() - sp) < 0.02, (dev.w.mean(), sp)


def test_constant_step_has_no_symmetry_point_but_drifts():
    assert _model("constant").symmetry_point() == 1.0  # a+ > a-: drifts to w_max
    assert _model("constant", up_down=-0.3).symmetry_point() == -0.8
    assert _model("constant", up_down=0.0).symmetry_point() == pytest.approx(0.1)  # mid-range
    m = _model("constant", dw_min=0.05)
    dev = m.sample((1, 200), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for _ in range(1500):
        apply_pulses_row(dev, 0, rng.choice(np.array([-1, 1], dtype=np.int32), 200))
    assert dev.w.mean() > 0.8  # reflected drift 0.0075 per pulse: ~0.12 below the bound


@pytest.mark.parametrize("rule", UPDATE_RULES)
def test_n_states_and_granularity(rule):
    m = _model(rule, up_down=0.0)
    span = 1.8
    if rule == "pow":
        assert m.granularity == pytest.approx(0.01 * 0.5**1.5)
        # the mean step at mid-range is the granularity
        assert _step_equation(m, 0.1, True) == pytest.approx(m.granularity)
    elif rule == "exp":
        want = (_step_equation(m, 0.0, True) + _step_equation(m, 0.0, False)) / 2
        assert m.granularity == pytest.approx(want)
    else:
        assert m.granularity == 0.01
    assert m.n_states == pytest.approx(span / m.granularity)


def test_device_to_device_sampling_statistics():
    """200 x 200 devices: sample spreads within 3 % of the model's (standard error ~0.4 %)."""
    m = UpdateModel(
        rule="soft_bounds",
        dw_min=0.01,
        w_max=1.0,
        w_min=-0.8,
        dw_min_dtod=0.2,
        up_down_dtod=0.05,
        w_max_dtod=0.1,
        w_min_dtod=0.15,
        reference_mean=0.1,
        reference_std=0.07,
        reset=0.05,
        reset_dtod=0.02,
    )
    dev = m.sample((200, 200), np.random.default_rng(3))
    a_up, a_dn = dev.a_up / m.dw_min, dev.a_down / m.dw_min
    assert a_up.mean() == pytest.approx(1.0, abs=0.005)
    assert a_up.std() == pytest.approx(math.hypot(0.2, 0.05), rel=0.03)
    assert ((a_up - a_dn) / 2).std() == pytest.approx(0.05, rel=0.03)
    assert (dev.b_max / 1.0).std() == pytest.approx(0.1, rel=0.03)
    assert (dev.b_min / -0.8).std() == pytest.approx(0.15, rel=0.03)
    assert dev.reference.mean() == pytest.approx(0.1, abs=0.002)
    assert dev.reference.std() == pytest.approx(0.07, rel=0.03)
    assert dev.reset_bias.std() == pytest.approx(0.02, rel=0.03)
    log = UpdateModel(
        rule="constant",
        dw_min=0.01,
        w_max=1,
        w_min=-1,
        dw_min_dtod=0.5,
        dw_min_dtod_log_normal=True,
    )
    steps = np.log(log.sample((200, 200), np.random.default_rng(4)).a_up / 0.01)
    assert steps.mean() == pytest.approx(0.0, abs=0.01) and steps.std() == pytest.approx(
        0.5, rel=0.03
    )


def test_pow_exponents_split_one_sided():
    m = _model("pow", pow_gamma=2.0, pow_up_down=0.4, pow_gamma_dtod=0.1)
    assert m.mean_pow_gammas() == pytest.approx((2.0, 1.2))
    dev = m.sample((100, 100), np.random.default_rng(0))
    assert dev.shape_up.mean() == pytest.approx(2.0, abs=0.01)
    assert dev.shape_down.mean() == pytest.approx(1.2, abs=0.01)
    assert dev.shape_up.std() == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize("rule", UPDATE_RULES)
def test_bounds_are_never_exceeded(rule):
    """Large noisy steps and many pulses: every device stays within its own bounds."""
    m = _model(rule, dw_min=0.2, dw_min_std=1.0, w_max_dtod=0.3, w_min_dtod=0.3, dw_min_dtod=0.5)
    dev = m.sample((20, 30), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for _ in range(30):
        x, d = rng.normal(size=(2, 20)), rng.normal(size=(2, 30))
        pulsed_update(dev, x, d, 5.0, PulseSettings())
        assert np.all(dev.w <= dev.b_max) and np.all(dev.w >= dev.b_min)
        apply_pulses_row(dev, 3, rng.integers(-8, 9, 30).astype(np.int32))
        assert np.all(dev.w <= dev.b_max) and np.all(dev.w >= dev.b_min)


def test_reads_subtract_the_reference_and_add_write_noise_redrawn_on_every_touch():
    # aihwkit applies write noise on update (apparent = persistent weight + noise), so reads
    # between two touches of a device see the same noise; a pulse, reset or programming redraws it
    m = UpdateModel(
        rule="constant", dw_min=0.01, w_max=1, w_min=-1, reference_std=0.1, write_noise_std=2.0
    )
    dev = m.sample((100, 100), np.random.default_rng(0))
    target = np.random.default_rng(1).uniform(-0.5, 0.5, (100, 100)).astype(np.float32)
    dev.program(target)
    assert np.allclose(dev.weights(), target, atol=1e-6)
    r1, r2 = dev.read(), dev.read()
    assert (r1 - target).std() == pytest.approx(0.02, rel=0.03)  # write_noise_std * dw_min
    assert np.array_equal(r1, r2) and abs((r1 - target).mean()) < 0.001
    assert not dev.pulses.any()
    n = np.zeros(100, np.int32)
    n[:50] = 1
    apply_pulses_row(dev, 3, n)
    r3 = dev.read()
    changed = r3 != r2
    assert changed[3, :50].all() and changed.sum() == 50
    # the touched devices' new noise: their step plus a fresh draw of the same spread
    assert (r3[3, :50] - dev.weights()[3, :50]).std() == pytest.approx(0.02, rel=0.4)
    state = dev.state()
    dev.program(target)
    r4 = dev.read()
    assert (r4 != r3).mean() > 0.99
    dev.load_state(state)
    assert np.array_equal(dev.read(), r3)  # checkpoints keep the noise reads see


def test_subtracted_symmetry_point_reads_zero_there():
    m = _model("soft_bounds", subtract_symmetry_point=True, up_down_dtod=0.1, dw_min_dtod=0.2)
    dev = m.sample((10, 10), np.random.default_rng(0))
    # each device's own SP: a+ (1 - w / b_max) = a- (1 - w / b_min)
    a, b = dev.a_up.astype(np.float64), dev.a_down.astype(np.float64)
    sp = (a - b) / (a / dev.b_max - b / dev.b_min)
    assert np.allclose(dev.reference, sp, atol=1e-6) and sp.std() > 0.01


def test_reset_and_decay():
    m = UpdateModel(
        rule="linear",
        dw_min=0.01,
        w_max=1,
        w_min=-1,
        reset=0.1,
        reset_dtod=0.05,
        lifetime=10.0,
        lifetime_dtod=0.2,
    )
    dev = m.sample((20, 20), np.random.default_rng(0))
    dev.program(np.full((20, 20), 0.7))
    dev.decay()
    tau = 1 / (1 - dev.decay_factor.astype(np.float64))
    want = (0.7 - dev.reset_bias) * (1 - 1 / tau) + dev.reset_bias
    assert np.allclose(dev.w, want, atol=1e-6) and tau.std() == pytest.approx(2.0, rel=0.3)
    dev.reset(rows=np.array([2, 5]))
    assert np.allclose(dev.w[[2, 5]], dev.reset_bias[[2, 5]]) and dev.w[0, 0] > 0.5


def test_state_round_trip_continues_the_same_bits():
    m = _model("pow", dw_min_std=0.5, dw_min_dtod=0.2)
    a = m.sample((8, 6), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x, d = rng.normal(size=(4, 8)), rng.normal(size=(4, 6))
    pulsed_update(a, x[:2], d[:2], 0.1, PulseSettings())
    saved = a.state()
    b = m.sample((8, 6), np.random.default_rng(99))
    b.load_state(saved)
    pulsed_update(a, x[2:], d[2:], 0.1, PulseSettings())
    pulsed_update(b, x[2:], d[2:], 0.1, PulseSettings())
    assert np.array_equal(a.w, b.w) and np.array_equal(a.pulses, b.pulses)
    assert a.counter == b.counter


def test_bad_models_are_refused():
    with pytest.raises(SpecError, match="rule: expected one of"):
        UpdateModel(rule="step", dw_min=0.1, w_max=1, w_min=-1)
    with pytest.raises(SpecError, match="dw_min: expected > 0"):
        UpdateModel(rule="constant", dw_min=0.0, w_max=1, w_min=-1)
    with pytest.raises(SpecError, match="w_max: expected > w_min"):
        UpdateModel(rule="constant", dw_min=0.1, w_max=-1, w_min=1)
    with pytest.raises(SpecError, match="soft_bounds rule needs w_min < 0 < w_max"):
        UpdateModel(rule="soft_bounds", dw_min=0.1, w_max=1, w_min=0.2)


# -- presets ---------------------------------------------------------------------------------


def test_cmo_hfox_training_model_matches_its_figures_of_merit():
    """FAL25: ~22 states, SP at 61 % of the range, NSR 90 %; the symmetric variant at 50 %."""
    m = load_device("cmo-hfox").update
    assert m.rule == "pow" and m.n_states == pytest.approx(22, rel=0.001)
    skew = (m.symmetry_point() - m.w_min) / (m.w_max - m.w_min)
    assert skew == pytest.approx(0.61, abs=0.001) and m.dw_min_std == 0.9
    sym = load_device("cmo-hfox-sym").update
    assert (sym.symmetry_point() - sym.w_min) / (sym.w_max - sym.w_min) == pytest.approx(0.5)
    import dataclasses

    same = {f.name for f in dataclasses.fields(m)} - {"up_down", "source"}
    assert all(getattr(m, k) == getattr(sym, k) for k in same)
    assert load_device("cmo-hfox-sym").model == load_device("cmo-hfox").model


@pytest.mark.parametrize(
    ("name", "rule", "states"),
    [
        ("reram-sb", "soft_bounds", 1000),
        ("ecram", "linear", 1000),
        ("capacitor", "linear", 400),
        ("constant-step", "constant", 10000),
    ],
)
def test_aihwkit_like_presets(name, rule, states):
    m = load_device(name).update
    assert m.rule == rule and m.n_states == pytest.approx(states) and m.source
    assert m.sample((4, 4), np.random.default_rng(0)).w.shape == (4, 4)


def test_presets_without_update_table_have_none():
    assert load_device("pcm").update is None


def _write(tmp_path, update: str):
    text = (
        'name = "t"\nmodel = "ideal"\ng_max_us = 25.0\ng_min_us = 0.0\nsource = "estimate: test"\n'
        + update
    )
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_update_table_refusals(tmp_path):
    ok = (
        '[update]\nrule = "constant"\ndw_min = 0.01\nw_max = 1.0\nw_min = -1.0\n'
        'source = "estimate: test"\n'
    )
    assert load_device(_write(tmp_path, ok)).update.source == "estimate: test"
    with pytest.raises(ConfigError, match=r"update\.dw_mim: unknown key") as e:
        load_device(_write(tmp_path, ok + "dw_mim = 0.1\n"))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"update\.source: missing required key"):
        load_device(_write(tmp_path, ok.replace('source = "estimate: test"\n', "")))
    with pytest.raises(ConfigError, match=r"update\.rule: expected one of"):
        load_device(_write(tmp_path, ok.replace('"constant"', '"linearr"')))
    with pytest.raises(ConfigError, match=r"update\.dw_min: expected a number"):
        load_device(_write(tmp_path, ok.replace("0.01", '"small"')))
