"""On-chip training (issue 12 items 3-4): AnalogTile's algorithms, its periphery, OnChipProduct
in the training loop (checkpoints, resume, the optimiser's hands off the analog weights), the
presets and the CLI's refusals.

The device of most tests is a soft-bounds device with 100 states and 10 % cycle-to-cycle noise
(no device-to-device spread, no reference offset) so that a few thousand samples suffice.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.errors import ConfigError
from archsim.train.pulsed.io import analog_read
from archsim.train.pulsed.settings import (
    METHODS,
    IoSettings,
    load_onchip,
    onchip_from_table,
    onchip_presets,
)
from archsim.train.pulsed.tile import AnalogTile
from archsim.train.pulsed.update_model import UpdateModel

DEVICE = UpdateModel(rule="soft_bounds", dw_min=0.02, w_max=1.0, w_min=-1.0, dw_min_std=0.1)
IO_OFF = IoSettings(enable=False)


def settings(method: str, **kw):
    return dataclasses.replace(load_onchip(method), **kw)


def drive_to_target(method: str, io: IoSettings, samples: int = 20000, seed: int = 0):
    """A (8, 8) tile learning y = x @ target by its own forward and update: (initial, final)
    std of weights - target."""
    k = n = 8
    tile = AnalogTile((k, n), settings(method, io=io), DEVICE, np.random.default_rng(seed))
    target = np.random.default_rng(1).uniform(-0.5, 0.5, (k, n)).astype(np.float32)
    tile.program(np.zeros((k, n), np.float32))
    before = float(np.std(tile.weights() - target))
    xs = np.random.default_rng(2).uniform(-1, 1, (samples, k)).astype(np.float32)
    for i in range(0, samples, 10):
        x = xs[i : i + 10]
        tile.update(x, tile.forward(x) - x @ target, 0.01)
    return before, float(np.std(tile.weights() - target)), tile


@pytest.mark.parametrize(
    "method, io, limit",
    [
        # measured (seed 0): 0.024, 0.006, 0.015, 0.041, 0.009 with IO off; 0.032 AGAD with IO
        ("analog-sgd", IO_OFF, 0.05),
        ("mp", IO_OFF, 0.02),
        ("ttv2", IO_OFF, 0.04),
        ("cttv2", IO_OFF, 0.08),
        ("agad", IO_OFF, 0.03),
        ("agad", IoSettings(), 0.07),
    ],
)
def test_each_algorithm_drives_a_tile_to_its_target(method, io, limit):
    before, after, tile = drive_to_target(method, io)
    assert before > 0.25
    assert after < limit, f"{method}: weight error {before:.3f} -> {after:.3f}"
    counts = tile.pulse_counts()
    assert set(counts) == ({"A", "W"} if method in ("ttv2", "cttv2", "agad") else {"W"})
    assert counts["W"].sum() > 0


def test_transfer_family_pulses_a_far_more_than_w():
    *_, tile = drive_to_target("agad", IO_OFF)
    counts = tile.pulse_counts()
    assert counts["A"].mean() > 20 * counts["W"].mean()
    stats = tile.stats()
    assert stats["samples"] == 20000 and stats["reads"] == pytest.approx(1.0)
    # auto_scale aims k = fast_lr BL = 0.5 pulses at the EMA maxima: mostly 1-slot trains
    assert 1 <= stats["pulse_slots"] < 2


def test_forward_with_io_off_equals_x_at_weights_and_backward_is_the_transposed_read():
    rng = np.random.default_rng(3)
    tile = AnalogTile((12, 7), settings("agad", io=IO_OFF), DEVICE, rng)
    w = rng.uniform(-0.5, 0.5, (12, 7)).astype(np.float32)
    tile.program(w)
    np.testing.assert_allclose(tile.weights(), w, atol=1e-7)
    x = rng.standard_normal((5, 12)).astype(np.float32)
    d = rng.standard_normal((5, 7)).astype(np.float32)
    np.testing.assert_array_equal(tile.forward(x), x @ tile.weights())
    np.testing.assert_array_equal(tile.backward(d), d @ tile.weights().T)


def test_periphery_quantises_adds_noise_and_manages_bounds():
    rng = np.random.default_rng(4)
    w = rng.uniform(-1, 1, (64, 16)).astype(np.float32)
    x = rng.uniform(-1, 1, (200, 64)).astype(np.float32)
    exact = x @ w
    quiet = IoSettings(out_noise=0.0, bound_management=False, out_bound=1000.0)
    y, counter = analog_read(x, w, quiet, 5, 0)
    assert counter == 0  # no noise drawn
    # 7-bit DAC: each input off by <= 1/126 of max |x|; 9-bit ADC over +-1000 is coarse: 3.9
    dac = np.abs(x).max(axis=1, keepdims=True) / 126 * np.abs(w).sum(axis=0)
    assert np.all(np.abs(y - exact) <= dac + 2000 / 510 / 2 * np.abs(x).max(axis=1)[:, None])
    pure = dataclasses.replace(quiet, adc_steps=0, dac_steps=0, out_noise=0.1)
    noisy, counter = analog_read(x, w, pure, 5, 0)
    assert counter == 200 * 16 // 2
    err = (noisy - exact) / np.abs(x).max(axis=1, keepdims=True)  # noise is input-scaled
    assert np.std(err) == pytest.approx(0.1, rel=0.05)
    # outputs of +-20 saturate; bound management re-reads with halved inputs instead
    big = np.full((3, 64), 1.0, np.float32)
    ones = np.full((64, 2), 0.5, np.float32)  # y = 32 > out_bound 20
    clipped, _ = analog_read(big, ones, IoSettings(out_noise=0, bound_management=False), 5, 0)
    assert np.all(clipped == 20.0)
    managed, _ = analog_read(big, ones, IoSettings(out_noise=0), 5, 0)
    # read at half the input: the DAC step of the halved input (1/126 of 1, x 64 x 0.5) doubles
    np.testing.assert_allclose(managed, 32.0, atol=2 * 64 * 0.5 / 126 + 40 / 510)


def test_same_seed_same_bits_and_state_round_trip():
    def run(seed, steps, tile=None):
        rng = np.random.default_rng(seed)
        tile = tile or AnalogTile((10, 6), settings("cttv2"), DEVICE, rng)
        data = np.random.default_rng(9)
        for _ in range(steps):
            x = data.uniform(-1, 1, (4, 10)).astype(np.float32)
            tile.update(x, tile.forward(x) - 0.1, 0.05)
        return tile

    a, b = run(0, 30), run(0, 30)
    np.testing.assert_array_equal(a.A.w, b.A.w)
    np.testing.assert_array_equal(a.weights(), b.weights())
    assert not np.array_equal(run(1, 30).A.w, a.A.w)
    # continue a copy restored from a state: the same bits as continuing the original
    first = run(0, 10)
    state = {k: np.array(v, copy=True) for k, v in first.state().items()}
    fresh = AnalogTile((10, 6), settings("cttv2"), DEVICE, np.random.default_rng(0))
    fresh.load_state(state)
    data = np.random.default_rng(11)
    for tile in (first, fresh):
        data = np.random.default_rng(11)
        for _ in range(20):
            x = data.uniform(-1, 1, (4, 10)).astype(np.float32)
            tile.update(x, tile.forward(x) - 0.1, 0.05)
    np.testing.assert_array_equal(first.A.w, fresh.A.w)
    np.testing.assert_array_equal(first.h, fresh.h)
    np.testing.assert_array_equal(first.weights(), fresh.weights())


def test_reference_spread_of_a_is_settable_per_run():
    rng = np.random.default_rng(0)
    spread = AnalogTile((30, 30), settings("ttv2", a_reference_std=0.3), DEVICE, rng)
    assert np.std(spread.A.reference) == pytest.approx(0.3, rel=0.1)
    assert np.std(spread.W.reference) == 0.0


def test_shipped_presets_load_and_name_their_method():
    names = onchip_presets()
    assert {*METHODS, "agad-cmo-hfox"} <= set(names)
    for name in names:
        s = load_onchip(name)
        assert s.source and s.method in METHODS
    fal = load_onchip("agad-cmo-hfox")
    assert (fal.lr, fal.fast_lr, fal.transfer_every, fal.batch_size) == (0.01, 0.1, 3, 32)


@pytest.mark.parametrize(
    "table, match",
    [
        ({"onchip": {"method": "agad", "fast_lrr": 1, "source": "x"}}, "onchip.fast_lrr: unknown"),
        ({"onchip": {"method": "sgd", "source": "x"}}, "method: expected one of analog-sgd"),
        ({"onchip": {"method": "agad"}}, "onchip.source"),
        ({"onchip": {"method": "agad", "source": "x", "io": {"out_noise": -1}}}, "out_noise"),
    ],
)
def test_bad_preset_tables_name_the_key(table, match):
    with pytest.raises(Exception, match=match):
        onchip_from_table(table)


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown on-chip training preset 'nope'"):
        load_onchip("nope")


# ---------------------------------------------------------------- OnChipProduct in the loop


def _blob_data():
    from tests.test_train_loop import blobs

    return blobs(n_train=240, n_test=60)


def _workload():
    from tests.test_train_loop import regression_workload

    return regression_workload()


def _product(method: str = "agad", seed: int = 0, block=(3, 2)):
    from archsim.train.loop import product_rng
    from archsim.train.pulsed.product import OnChipProduct

    return OnChipProduct(settings(method), DEVICE, block, product_rng(seed))


def _train(tmp, epochs, product, **kw):
    from archsim.train.loop import TrainSettings, train

    s = TrainSettings(epochs=epochs, batch_size=16, lr=0.1, momentum=0.9, **kw)
    return train(_workload(), _blob_data(), s, seed=0, out_dir=tmp, product=product)


@pytest.mark.parametrize("method", ["agad", "mp"])
def test_resume_from_a_checkpoint_is_bit_identical(tmp_path, method):
    straight = _train(tmp_path / "a", 2, _product(method))
    _train(tmp_path / "b", 1, _product(method))
    resumed_product = _product(method)
    resumed = _train(tmp_path / "b", 2, resumed_product)
    assert resumed.resumed_from == 1
    for key, value in straight.params.items():
        np.testing.assert_array_equal(resumed.params[key], value, err_msg=key)
    assert straight.history[-1]["test_loss"] == resumed.history[-1]["test_loss"]


def test_training_learns_and_the_optimiser_leaves_analog_weights_alone(tmp_path):
    """fc (4 x 3) on tiles of 3 x 2 (4 tiles): the loss falls, the bias (digital) moves, and
    the weights equal the tiles' visible weights although the optimiser has momentum and a
    weight decay that would have shrunk them."""
    product = _product("agad")
    result = _train(tmp_path, 5, product, weight_decay=0.5)
    h = result.history
    # seeds 0-3: last/first loss 0.44-0.78, test accuracy 82-97 % (chance: 33 %)
    assert h[-1]["loss"] < 0.85 * h[0]["loss"] and h[-1]["test_accuracy"] > 75
    assert np.any(result.params["fc.bias"] != 0)
    assert len(product.tiles[("fc", 0)]) == 4
    np.testing.assert_array_equal(result.params["fc.weight"], product.matrix(("fc", 0)))
    # backward: the transposed read for dx, a zero weight gradient for the optimiser
    x = np.ones((2, 4), np.float32)
    _, ctx = product.forward(_workload().op("fc"), 0, x, result.params["fc.weight"], {})
    product.eval = True
    dx, dw, own = product.backward(ctx, np.ones((2, 3), np.float32))
    assert not np.any(dw) and own == {} and dx.shape == (2, 4)
    # nothing needs the first layer's dx: its transposed reads are skipped
    counter = product.tiles[("fc", 0)][0].tile.counter
    assert product.backward(ctx, np.ones((2, 3), np.float32), input_grad=False)[0] is None
    assert product.tiles[("fc", 0)][0].tile.counter == counter


def test_conv_groups_map_back_to_the_weight_layout():
    from archsim.train.pulsed.product import _put_matrix
    from archsim.workload import ir

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    op = ir.Conv2d(name="c", inputs=["x"], shape=(6, 4, 4), weight=weight, groups=2)
    out = np.zeros_like(weight)
    for g, mat in enumerate(ir.matrices(op)):
        _put_matrix(op, g, mat, out)
    np.testing.assert_array_equal(out, weight)


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    "options, match",
    [
        ("--method agad", "--device: required for --method agad"),
        ("--method agad --device pcm", "--device pcm: has no [update] table"),
        ("--method ttv2 --device cmo-hfox --onchip agad", "is a preset for --method agad"),
        ("--method agad --device cmo-hfox --onchip nope", "unknown on-chip training preset"),
        ("--method float --onchip agad", "--onchip: for on-chip methods"),
        ("--method agad --device cmo-hfox --training hermes", "--training: an HWA preset"),
        ("--method agad --device cmo-hfox --chip neurram", "--chip neurram: has no [training]"),
        ("--method agad --device cmo-hfox --times 0.5", "modelled for t >= 1 s"),
        ("--method sgd2", "invalid choice: 'sgd2'"),
    ],
)
def test_onchip_cli_refusals(cli, options, match):
    cli.refused("train", "--workload", "mnist-fc", *options.split(), match=match)


def test_onchip_cli_trains_reports_pulses_ages_and_costs(cli, monkeypatch):
    """With the stand-in network (fc 4 x 3) and data: progress, report sections, train.json
    with pulses per device of A and W, aging at 1 s .. 10 y, time and energy per sample."""
    import json

    import archsim.cli_train as cli_train

    monkeypatch.setattr(cli_train, "_workload", lambda args: _workload())
    monkeypatch.setattr(cli_train, "_data", lambda name, seed, workload: _blob_data())
    monkeypatch.setattr(cli_train, "_export", lambda w, params, path: path)
    argv = "train --workload mnist-fc --method agad --device cmo-hfox --epochs 2 --lr 0.1"
    argv = (*argv.split(), "--drift-samples", "60", "--out", "run")
    code, out, err = cli(*argv)
    assert code == 0, err
    assert "epoch 2/2" in err and "after 10 y: test accuracy" in out
    assert "per training sample on hermes:" in out
    record = json.loads((cli.workdir / "run" / "train.json").read_text())
    assert record["onchip"] == "agad-cmo-hfox" and record["batch_size"] == 32
    pulses = record["pulses_per_device"]
    assert pulses["A"]["mean"] > pulses["W"]["mean"] > 0
    assert [r["t_s"] for r in record["aging"]] == [1.0, 3600.0, 86400.0, 31536000.0, 315360000.0]
    assert [r["t_s"] for r in record["aging_reference_column"]] == [
        r["t_s"] for r in record["aging"]
    ]
    assert "(aged reference column: test accuracy" in out
    assert record["cost"]["latency_ns_per_sample"] > 0
    assert (
        "s pulsed updates" in out and 0 < record["wall_s"]["update_s"] < record["wall_s"]["train_s"]
    )
    summary = (cli.workdir / "run" / "summary.md").read_text()
    assert "## Pulses per device" in summary and "## Time and energy per training sample" in summary
    # the same command again: nothing to train, the same report from the checkpoint's tiles
    code, out, err = cli(*argv)
    assert code == 0 and "already holds 2 finished epochs" in err
    again = json.loads((cli.workdir / "run" / "train.json").read_text())
    assert again["pulses_per_device"] == pulses and again["aging"] == record["aging"]


def test_resume_refuses_another_device(tmp_path):
    from archsim.errors import ArchsimError
    from archsim.train.loop import product_rng
    from archsim.train.pulsed.product import OnChipProduct

    _train(tmp_path, 1, _product())
    other = dataclasses.replace(DEVICE, dw_min=0.01)
    product = OnChipProduct(settings("agad"), other, (3, 2), product_rng(0))
    with pytest.raises(ArchsimError, match=r"product\.device\.dw_min=0\.02"):
        _train(tmp_path, 2, product)


def test_threads_do_not_change_the_bits(tmp_path):
    from archsim.train.loop import product_rng
    from archsim.train.pulsed.product import OnChipProduct

    runs = [
        _train(
            tmp_path / str(t),
            1,
            OnChipProduct(settings("agad"), DEVICE, (2, 2), product_rng(0), threads=t),
        )
        for t in (1, 3)
    ]
    for key, value in runs[0].params.items():
        np.testing.assert_array_equal(runs[1].params[key], value, err_msg=key)


def _conv_and_lstm_workloads():
    from archsim.workload import layers as L
    from archsim.workload.ir import GraphBuilder

    rng = np.random.default_rng(0)
    g = GraphBuilder("conv-net")
    x = L.input_(g, "x", (2, 5, 5))
    c = L.conv2d(g, "c", x, rng.uniform(-0.3, 0.3, (4, 1, 3, 3)), np.zeros(4), groups=2)
    L.linear(g, "fc", L.flatten(g, "f", c), rng.uniform(-0.1, 0.1, (36, 3)), np.zeros(3))
    conv = g.build()
    g = GraphBuilder("lstm-net")
    x = L.input_(g, "x", (4, 3))
    L.lstm(g, "l", x, rng.uniform(-0.3, 0.3, (8, 3)), rng.uniform(-0.3, 0.3, (8, 2)))
    return conv, g.build(), rng


def test_conv_groups_and_lstm_steps_train_on_tiles():
    """Every static-weight op works on tiles: a grouped convolution (im2col, one tile set per
    group) and an LSTM (all time steps' (x, d) pairs update its tiles after the step); the
    parameters then hold the tiles' weights in the ops' layouts."""
    from archsim.train.grad import value_and_grad
    from archsim.train.loop import product_rng
    from archsim.train.params import params_of, with_params
    from archsim.train.pulsed.product import OnChipProduct
    from archsim.workload import ir

    conv, lstm, rng = _conv_and_lstm_workloads()
    for workload, x, target in (
        (conv, rng.standard_normal((8, 2, 5, 5)), rng.standard_normal((8, 3))),
        (lstm, rng.standard_normal((8, 4, 3)), 0.5 * rng.standard_normal((8, 4, 2))),
    ):
        product = OnChipProduct(settings("analog-sgd", io=IO_OFF), DEVICE, (4, 4), product_rng(0))
        params = params_of(workload)
        x, target = x.astype(np.float32), target.astype(np.float32)
        losses = []
        for _ in range(30):
            product.set_lr(0.2 if workload is conv else 3.0)
            loss, _, _ = value_and_grad(workload, params, x, target, loss="mse", product=product)
            product.post_step(params)
            losses.append(loss)
        # measured: conv 0.02 of the first loss, LSTM 0.925 (a random target it fits little of)
        assert losses[-1] < (0.1 if workload is conv else 0.95) * losses[0], workload.name
        bound = with_params(workload, params)
        for (name, group), _ in product.tiles.items():
            mats = ir.matrices(bound.op(name))
            np.testing.assert_array_equal(mats[group], product.matrix((name, group)))
        samples = [b.tile.stats()["samples"] for b in product.tiles[next(iter(product.tiles))]]
        per_step = 8 * (9 if workload is conv else 4)  # im2col positions / time steps
        assert samples[0] == 30 * per_step


def test_aged_reference_column_cancels_a_state_independent_relaxation():
    """cmo-hfox with only its mean relaxation (spreads and read noise zeroed): against the
    digital mid-reference every weight moves by the same m ln(t) / span * 2; against the aged
    reference column the trained weights come back (to float32 rounding)."""
    from archsim.config import load_device
    from archsim.train.pulsed.aging import age_and_evaluate

    spec = load_device("cmo-hfox")
    model = dataclasses.replace(
        spec.model, relax_sigma_us_per_ln_s=0.0, relax_sigma_us=0.0, read_noise_scale=0.0
    )
    spec = dataclasses.replace(spec, model=model)
    from archsim.train.params import params_of

    product = _product("analog-sgd", block=(3, 2))
    product.build(_workload(), params_of(_workload()))
    tiles = [b.tile for blocks in product.tiles.values() for b in blocks]
    rng = np.random.default_rng(3)
    for t in tiles:
        t.W.w[...] = rng.uniform(-0.5, 0.5, t.W.w.shape).astype(np.float32)
    trained = [t.W.w.copy() for t in tiles]
    t_s = 3.15e8
    shift = model.relax_mean_us_per_ln_s * np.log(t_s) / (spec.g_max_us - spec.g_min_us) * 2
    seen = {}

    def snapshot():
        seen["w"] = [t.W.w.copy() for t in tiles]
        return {"x": 0.0}

    for ref in ("digital", "column"):
        age_and_evaluate(product, spec, [t_s], snapshot, np.random.default_rng(0), reference=ref)
        for w, w0 in zip(seen["w"], trained, strict=True):
            expected = w0 + (shift if ref == "digital" else 0.0)
            np.testing.assert_allclose(w, expected, atol=2e-6)
    for t, w0 in zip(tiles, trained, strict=True):
        assert np.array_equal(t.W.w, w0)  # the trained state is put back


@pytest.mark.parametrize("method", ["analog-sgd", "ttv2"])
def test_leaky_devices_decay_once_per_mini_batch(method):
    """A capacitor-like device (lifetime tau per device): with zero gradients, each update call
    moves every weight towards its reset bias by the factor (1 - 1/tau), on W and on A."""
    device = UpdateModel(
        rule="constant", dw_min=0.01, w_max=1.0, w_min=-1.0, lifetime=100.0, lifetime_dtod=0.2
    )
    tile = AnalogTile((4, 3), settings(method, io=IO_OFF), device, np.random.default_rng(0))
    tile.program(np.full((4, 3), 0.5, np.float32))
    arrays = [a for a in (tile.W, tile.A) if a is not None]
    for a in arrays:
        a.w[...] = 0.5
    start = [(a.w - a.reset_bias).copy() for a in arrays]
    x, d = np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32)
    for _ in range(3):
        tile.update(x, d, 0.01)
    for a, s in zip(arrays, start, strict=True):
        assert np.ptp(a.decay_factor) > 0  # per-device lifetimes
        np.testing.assert_allclose(a.w - a.reset_bias, s * a.decay_factor**3, rtol=1e-5)
    assert (tile.A is not None) == (method == "ttv2")
