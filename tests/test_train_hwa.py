"""Hardware-aware training product (archsim.train.hwa) and its settings (archsim.train.settings).

Statistics are checked against closed forms with tolerances from the sample size; gradients
against hand-computed examples and central finite differences (BU24's forward, as Lightning's
code computes it).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.errors import ConfigError, WorkloadError
from archsim.train.hwa import HwaProduct, range_key
from archsim.train.settings import HwaSettings, InputRangeSettings, load_training
from archsim.workload import ir

EXACT = HwaSettings(
    weight_noise=0.0,
    output_noise=0.0,
    dac_bits=0,
    adc_bits=0,
    out_bound=0.0,
    clip_sigma=0.0,
)
"""Nothing injected: ranges learned but wide, no converters, no noise."""


def _op(k: int, n: int) -> ir.Linear:
    return ir.Linear("fc", ("x",), (n,), weight=np.zeros((k, n), dtype=np.float32))


def _ranges(values) -> dict[str, np.ndarray]:
    return {"fc.input_range": np.array([values], dtype=np.float32)}


def _product(settings: HwaSettings, tile_rows: int, seed: int = 7) -> HwaProduct:
    return HwaProduct(settings, tile_rows, np.random.default_rng(seed))


# -- noise ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["tensor", "column"])
def test_weight_noise_std_matches_closed_form(rng, scope):
    """y - x @ w = sigma max|w| (xi @-summed over K) per output: std = sigma * m_j * ||x||_2,
    m_j = max|w| of the block (tensor) or of column j (column). 400 draws x 256 columns."""
    k, n, sigma, draws = 64, 256, 0.05, 400
    s = dataclasses.replace(EXACT, weight_noise=sigma, weight_noise_scope=scope)
    hwa = _product(s, tile_rows=k)
    x = rng.uniform(-1, 1, (1, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) * np.linspace(0.2, 1.0, n)).astype(np.float32)
    exact = x @ w
    d = np.stack(
        [hwa.forward(_op(k, n), 0, x, w, _ranges([10.0]))[0] - exact for _ in range(draws)]
    )
    m = np.abs(w).max(axis=0) if scope == "column" else np.full(n, np.abs(w).max())
    z = d[:, 0, :] / (sigma * m * np.linalg.norm(x))  # unit normals if the closed form holds
    assert abs(z.std() - 1) < 0.05
    assert abs(z.mean()) < 5 / np.sqrt(z.size)


def test_output_noise_std_sums_over_blocks(rng):
    """Each block adds sigma * beta_b * max|w_b| xi: std of y - y_exact =
    sigma * sqrt(sum_b (beta_b m_b)^2) = 0.1 * sqrt((2 * 0.5)^2 + (4 * 1.0)^2) = 0.1 * sqrt(17)."""
    k, n, draws = 64, 128, 300
    s = dataclasses.replace(EXACT, output_noise=0.1)
    hwa = _product(s, tile_rows=32)
    x = rng.uniform(-1, 1, (4, k)).astype(np.float32)
    w = np.empty((k, n), dtype=np.float32)
    w[:32] = rng.uniform(-0.5, 0.5, (32, n))
    w[:32, 0] = 0.5
    w[32:] = rng.uniform(-1.0, 1.0, (32, n))
    w[32, 0] = 1.0
    exact = x @ w
    d = np.stack(
        [hwa.forward(_op(k, n), 0, x, w, _ranges([2.0, 4.0]))[0] - exact for _ in range(draws)]
    )
    want = 0.1 * np.sqrt(17.0)
    assert abs(d.std() / want - 1) < 0.05
    assert abs(d.mean()) < 5 * want / np.sqrt(d.size)


def test_noise_is_fresh_every_forward_and_off_in_eval(rng):
    """Two forwards draw independent noise (correlation within 5 standard errors of 0); with
    `eval` set the output is the noise-free product, bit for bit on every call."""
    k, n = 64, 256
    s = dataclasses.replace(EXACT, weight_noise=0.05, output_noise=0.05)
    hwa = _product(s, tile_rows=32)
    x = rng.uniform(-1, 1, (8, k)).astype(np.float32)
    w = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    params = _ranges([2.0, 2.0])
    exact = x @ w
    a = (hwa.forward(_op(k, n), 0, x, w, params)[0] - exact).ravel()
    b = (hwa.forward(_op(k, n), 0, x, w, params)[0] - exact).ravel()
    assert a.std() > 0 and abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(a.size)
    hwa.eval = True
    y1 = hwa.forward(_op(k, n), 0, x, w, params)[0]
    y2 = hwa.forward(_op(k, n), 0, x, w, params)[0]
    assert np.array_equal(y1, y2)
    np.testing.assert_allclose(y1, exact, rtol=1e-5, atol=1e-5)


def test_same_seed_same_noise(rng):
    k, n = 40, 16
    s = dataclasses.replace(EXACT, weight_noise=0.05, output_noise=0.05)
    x = rng.uniform(-1, 1, (5, k)).astype(np.float32)
    w = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    ys = [_product(s, 16, seed=3).forward(_op(k, n), 0, x, w, _ranges([2, 2, 2]))[0]]
    ys.append(_product(s, 16, seed=3).forward(_op(k, n), 0, x, w, _ranges([2, 2, 2]))[0])
    assert np.array_equal(*ys)


# -- blocks, quantisers and straight-through gradients ---------------------------------------


def test_block_split_equals_one_product_when_nothing_clips(rng):
    """K = 300 over 128-row blocks (128, 128, 44) with wide ranges and an ADC bound that is
    never reached: the digital sum of the blocks is x @ w."""
    k, n = 300, 24
    s = dataclasses.replace(EXACT, out_bound=1000.0)
    hwa = _product(s, tile_rows=128)
    x = rng.uniform(-1, 1, (10, k)).astype(np.float32)
    w = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    y, ctx = hwa.forward(_op(k, n), 0, x, w, _ranges([5.0, 5.0, 5.0]))
    np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-4)
    assert len(ctx.beta) == 3 == hwa.blocks(k)


def test_ste_gradients_equal_the_exact_products(rng):
    """Noise off, nothing clipped: without converters dx = dy @ w.T and dw = x.T @ dy exactly
    as the exact product; with 8-bit DAC and ADC the straight-through dx is still dy @ w.T and
    dw = x_q.T @ dy, x_q within half a DAC step (beta / 127 / 2) of x."""
    k, n = 100, 12
    x = rng.uniform(-1, 1, (6, k)).astype(np.float32)
    w = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    dy = rng.standard_normal((6, n)).astype(np.float32)
    for settings in (EXACT, dataclasses.replace(EXACT, dac_bits=8, adc_bits=8, out_bound=50.0)):
        hwa = _product(settings, tile_rows=64)
        _, ctx = hwa.forward(_op(k, n), 0, x, w, _ranges([2.0, 2.0]))
        dx, dw, _ = hwa.backward(ctx, dy)
        np.testing.assert_allclose(dx, dy @ w.T, rtol=1e-5, atol=1e-5)
        if settings.dac_bits:
            assert np.abs(ctx.xq - x).max() <= 2.0 / 127 / 2 * (1 + 1e-5)
            np.testing.assert_allclose(dw, ctx.xq.T @ dy, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(dw, x.T @ dy, atol=6 * 2.0 / 127 / 2 * np.abs(dy).max())
        else:
            np.testing.assert_allclose(dw, x.T @ dy, rtol=1e-5, atol=1e-5)


def test_dac_and_adc_land_on_their_grids_and_the_adc_saturates(rng):
    """DAC: x_q are multiples of beta / 127 (8 bits), clipped at +-beta. ADC with out_bound 2,
    beta 1, max|w| 1: outputs are multiples of 2 / 127, within +-2; saturated outputs pass no
    gradient."""
    k, n = 16, 8
    s = dataclasses.replace(EXACT, dac_bits=8, adc_bits=8, out_bound=2.0)
    hwa = _product(s, tile_rows=k)
    x = rng.uniform(-1.5, 1.5, (50, k)).astype(np.float32)
    w = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    w[0, 0] = 1.0
    y, ctx = hwa.forward(_op(k, n), 0, x, w, _ranges([1.0]))
    codes = ctx.xq * 127
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-3)
    assert np.abs(ctx.xq).max() <= 1.0
    out_codes = y / (2.0 / 127)
    np.testing.assert_allclose(out_codes, np.rint(out_codes), atol=1e-3)
    assert np.abs(y).max() <= 2.0 + 1e-6
    saturated = np.abs(np.clip(x, -1, 1) @ w) > 2.0 + 2.0 / 127
    assert saturated.any()
    _, dw, _ = hwa.backward(ctx, np.ones_like(y))
    np.testing.assert_allclose(dw, ctx.xq.T @ (~saturated).astype(np.float32), rtol=1e-5)


def test_input_range_gradient_hand_computed():
    """One row, w = I (so the gradient at the clamped input is dy), beta = 2, decay 0.001:
    x  = [3.0, -5.0, 0.5, 6.0], dy = [-1, 2, 5, 3]
    x >= beta at 0 and 3: sum of min(g, 0) = -1 + 0 = -1; x <= -beta at 1: sum of max(g, 0) = 2;
    d beta = beta * (-1 - 2) = -6; 1 of 4 inputs unclipped (0.25 < 0.95): no decay term.
    dx = dy with clipped inputs zeroed = [0, 0, 5, 0].
    All four inside with beta = 10: d beta = decay * beta = 0.001 * 10 = 0.01, dx = dy."""
    s = dataclasses.replace(EXACT, input_range=InputRangeSettings(decay=0.001))
    hwa = _product(s, tile_rows=4)
    x = np.array([[3.0, -5.0, 0.5, 6.0]], dtype=np.float32)
    dy = np.array([[-1.0, 2.0, 5.0, 3.0]], dtype=np.float32)
    w = np.eye(4, dtype=np.float32)
    _, ctx = hwa.forward(_op(4, 4), 0, x, w, _ranges([2.0]))
    dx, _, grads = hwa.backward(ctx, dy)
    np.testing.assert_allclose(dx, [[0.0, 0.0, 5.0, 0.0]])
    np.testing.assert_allclose(grads["fc.input_range"], [[-6.0]])
    _, ctx = hwa.forward(_op(4, 4), 0, x, w, _ranges([10.0]))
    dx, _, grads = hwa.backward(ctx, dy)
    np.testing.assert_allclose(dx, dy)
    np.testing.assert_allclose(grads["fc.input_range"], [[0.01]], rtol=1e-6)


def test_input_range_gradient_lands_in_its_group_row(rng):
    """A grouped conv's call for group 1 fills row 1 of its (groups, blocks) gradient only."""
    conv = ir.Conv2d("c", ("x",), (4, 3, 3), weight=np.zeros((4, 2, 1, 1), np.float32), groups=2)
    hwa = _product(EXACT, tile_rows=2)
    x = rng.uniform(-3, 3, (9, 2)).astype(np.float32)
    params = {"c.input_range": np.ones((2, 1), dtype=np.float32)}
    _, ctx = hwa.forward(conv, 1, x, np.eye(2, dtype=np.float32), params)
    _, _, grads = hwa.backward(ctx, np.ones((9, 2), np.float32))
    assert grads["c.input_range"].shape == (2, 1)
    assert grads["c.input_range"][0, 0] == 0 and grads["c.input_range"][1, 0] != 0


def test_finite_differences_of_dx_and_dw():
    """Noise and converters off, float64, some inputs clipped: dL/dx and dL/dw of
    L = sum(r * y) match central differences (h = 1e-6) to relative error < 1e-4."""
    rng = np.random.default_rng(5)
    k, n, rows = 20, 6, 5
    hwa = _product(EXACT, tile_rows=8)
    x = rng.uniform(-2, 2, (rows, k))
    x[np.abs(np.abs(x) - 1.5) < 0.01] = 0.0  # keep every input away from the clip edge
    w = rng.standard_normal((k, n))
    r = rng.standard_normal((rows, n))
    params = _ranges([1.5, 1.5, 1.5])

    def loss(xx, ww):
        return float((r * hwa.forward(_op(k, n), 0, xx, ww, params)[0]).sum())

    _, ctx = hwa.forward(_op(k, n), 0, x, w, params)
    dx, dw, _ = hwa.backward(ctx, r)
    h = 1e-6
    for got, arr in ((dx, x), (dw, w)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            up = loss(x, w)
            arr[i] = old - h
            down = loss(x, w)
            arr[i] = old
            num[i] = (up - down) / (2 * h)
        assert np.abs(got - num).max() / np.abs(num).max() < 1e-4
    assert (dx == 0).any()  # clipped inputs were exercised


# -- hooks ----------------------------------------------------------------------------------


def _mlp(k: int, n: int, w: np.ndarray) -> ir.Workload:
    g = ir.GraphBuilder("t")
    g.add(ir.Input("x", (), (k,)))
    g.add(ir.Linear("fc", ("x",), (n,), weight=w))
    return g.build()


def test_init_params_sets_ranges_to_the_mean_of_alpha_std(rng):
    """Two batches into a 2-block layer: beta_b = (3 std(batch1_b) + 3 std(batch2_b)) / 2 per
    block (init_std_alpha 3, running mean over init_from_data = 100 calls)."""
    k, n = 16, 4
    hwa = _product(EXACT, tile_rows=8)
    w = rng.standard_normal((k, n)).astype(np.float32)
    batches = [rng.normal(0, 1, (32, k)).astype(np.float32) for _ in range(2)]
    batches[1][:, 8:] *= 4
    params = hwa.init_params(_mlp(k, n, w), {"fc.weight": w}, batches)
    want = [np.mean([3 * b[:, sl].std() for b in batches]) for sl in (slice(0, 8), slice(8, 16))]
    np.testing.assert_allclose(params[range_key(_op(k, n))], [want], rtol=1e-5)
    assert params["fc.weight"] is w


def test_init_params_stops_after_init_from_data_calls(rng):
    """init_from_data = 1: only the first batch counts: beta = 3 std(batch 1)."""
    k = 8
    s = dataclasses.replace(EXACT, input_range=InputRangeSettings(init_from_data=1))
    hwa = _product(s, tile_rows=8)
    w = np.eye(k, dtype=np.float32)
    batches = [rng.normal(0, sd, (64, k)).astype(np.float32) for sd in (1.0, 10.0)]
    params = hwa.init_params(_mlp(k, k, w), {}, batches)
    np.testing.assert_allclose(params["fc.input_range"], [[3 * batches[0].std()]], rtol=1e-5)


def test_post_step_clips_weights_per_tensor_and_per_column():
    """Per tensor, alpha 1: w = [-4, -1, 0, 1, 4] has std sqrt(34 / 5) = 2.6077 -> the 4s
    become +-2.6077. Per column of a conv weight (C_out first): channel 0 = [-4, -1, 0, 1, 4]
    clips as above, channel 1 = [0, 0, 0, 0, 5] (std 2, alpha 1) clips 5 to 2. Negative input
    ranges come back positive."""
    s = dataclasses.replace(EXACT, clip_sigma=1.0)
    lin = np.array([[-4.0], [-1.0], [0.0], [1.0], [4.0]])
    params = {"fc.weight": lin.copy(), "fc.input_range": np.array([[-2.0, 0.0]])}
    _product(s, 4).post_step(params)
    c = np.sqrt(34 / 5)
    np.testing.assert_allclose(params["fc.weight"].ravel(), [-c, -1, 0, 1, c])
    assert params["fc.input_range"][0, 0] == 2.0 and params["fc.input_range"][0, 1] > 0
    conv = np.array([[-4.0, -1, 0, 1, 4], [0, 0, 0, 0, 5]]).reshape(2, 5, 1, 1)
    params = {"c.weight": conv}
    _product(dataclasses.replace(s, clip_scope="column"), 4).post_step(params)
    np.testing.assert_allclose(params["c.weight"][0].ravel(), [-c, -1, 0, 1, c])
    np.testing.assert_allclose(params["c.weight"][1].ravel(), [0, 0, 0, 0, 2.0])


def test_forward_without_ranges_asks_for_init_params():
    hwa = _product(EXACT, 4)
    with pytest.raises(WorkloadError, match=r"fc\.input_range: no input range; run"):
        hwa.forward(_op(4, 2), 0, np.ones((1, 4)), np.ones((4, 2)), {})


# -- settings -------------------------------------------------------------------------------


def test_shipped_presets_load_with_sources():
    """The noisier device's preset injects more weight noise than HERMES's."""
    hermes, reram = load_training("hermes"), load_training("reram-wan2022")
    assert reram.weight_noise > hermes.weight_noise > 0
    for s in (hermes, reram):
        assert {t for t, _ in s.sources} == {"training", "training.input_range"}
        assert s.input_range.enable and s.tile_rows is None


def test_rows_follow_the_chip_unless_set(hermes):
    assert HwaSettings().rows_for(hermes) == hermes.crossbar.rows == 256
    assert HwaSettings(tile_rows=512).rows_for(hermes) == 512


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[training]\ndac_bits = 20", r"training\.dac_bits: expected 0 .* or 2\.\.16"),
        ("[training]\nweight_noise = -0.1", r"training\.weight_noise: expected >= 0"),
        ("[training]\nweight_noise = 'a'", r"training\.weight_noise: expected a number"),
        ("[training]\nadc_bits = 8\nout_bound = 0.0", r"training\.out_bound: expected > 0"),
        ("[training]\nclip_scope = 'row'", r"training\.clip_scope: expected one of"),
        ("[training]\nnoise = 0.1", r"training\.noise: unknown key \(allowed: .*weight_noise"),
        ("[training.input_range]\ndecay = -1.0", r"training\.input_range\.decay: expected >= 0"),
        ("[training.input_range]\nspeed = 1", r"training\.input_range\.speed: unknown key"),
        ("[trainig]\nweight_noise = 0.1", r"trainig: unknown key \(allowed: training\)"),
        ("name = 'x'", r"name: unknown key"),
        ("[training]\nsource = ''", r"training\.source: expected a non-empty string"),
    ],
)
def test_settings_errors_name_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=f"bad.toml: {match}"):
        load_training(path)


def test_overrides_replace_preset_values_and_are_checked():
    s = load_training("hermes", {"training.weight_noise": 0.0, "training.input_range.decay": 0})
    assert s.weight_noise == 0.0 and s.input_range.decay == 0.0
    assert s.output_noise == load_training("hermes").output_noise
    with pytest.raises(
        ConfigError,
        match=r"hermes.toml: training.dac_bits: expected .* \(with training.dac_bits = 1\)",
    ):
        load_training("hermes", {"training.dac_bits": 1})


def test_missing_training_table_and_unknown_preset(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"empty.toml: training: missing table \[training\]"):
        load_training(path)
    with pytest.raises(ConfigError, match=r"unknown training preset 'nope'.*available: hermes"):
        load_training("nope")
