"""Seed 000's HWA table (`archsim hwa-table`, archsim.train.table) and perplexity in evaluate."""

from __future__ import annotations

import csv
import re
from dataclasses import replace

import numpy as np
import pytest

from archsim.evaluate import evaluate
from archsim.train.data import one_hot
from archsim.train.grad import value_and_grad
from archsim.train.models import char_lstm
from archsim.train.params import params_of
from archsim.train.report import normalised_accuracy
from archsim.train.table import SEED_ROWS, TIMES_S
from archsim.workload import ir
from archsim.workload.catalog import Dataset


def _sequences(rng, n: int, steps: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.integers(0, vocab, (n, steps + 1))
    return one_hot(ids[:, :-1], vocab), ids[:, 1:]


def test_seed_rows_reproduce_their_published_normalised_accuracy():
    """(100 - e(t)) / (100 - e_FP) reproduces 8 of the 11 published A* (RA23 via LG25)
    rows to within 0.1 (the PTB row included, read as errors); ResNet-32 computes to
    98.7 / 98.4 / 97.1."""
    close = [
        all(
            abs(normalised_accuracy(v, row.fp, "error") - pub) <= 0.1 + 1e-9
            for v, pub in zip(row.values[1:], row.a_star, strict=True)
        )
        for row in SEED_ROWS
    ]
    ptb = [row.network for row in SEED_ROWS].index("LSTM PTB (perplexity)")
    assert sum(close) == 8 and close[ptb]
    resnet = [round(normalised_accuracy(v, 5.80, "error"), 1) for v in (6.99, 7.33, 8.55)]
    assert resnet == [98.7, 98.4, 97.1]


def test_a_star_of_a_perplexity_is_the_ratio():
    """ppl_FP = 4, ppl = 5: A* = 80 %; equal perplexities: 100 %."""
    assert normalised_accuracy(5.0, 4.0, "perplexity") == pytest.approx(80.0)
    assert normalised_accuracy(4.0, 4.0, "perplexity") == pytest.approx(100.0)


@pytest.fixture(scope="module")
def tiny_lstm():
    """The char-LSTM architecture over 6 symbols and 5 steps, fresh weights."""
    return char_lstm(np.random.default_rng(3), vocab=6, seq_len=5)


def test_uniform_output_has_perplexity_vocab(hermes, tiny_lstm):
    """Zero output weights and bias give equal logits: perplexity = V = 6 exactly in float;
    on the chip the outputs stay near 0 (zero conductance), so close to 6."""
    net = tiny_lstm
    for op in net.analog_ops():
        if isinstance(op, ir.Linear):
            zero = replace(op, weight=0 * op.weight, bias=0 * op.bias)
            net.graph.nodes[op.name]["op"] = zero
    x, y = _sequences(np.random.default_rng(0), 24, 5, 6)
    r = evaluate(hermes, net, Dataset("seq", x, y, x[:8]), (1.0,), seed=0)
    assert r.float_perplexity == pytest.approx(6.0, rel=1e-6)
    assert r.points[0].perplexity == pytest.approx(6.0, rel=0.02)
    assert r.float_accuracy is None


def test_perplexity_is_exp_of_the_training_loss(hermes, tiny_lstm):
    """evaluate's float perplexity equals exp of archsim.train.grad's cross-entropy (a separate
    implementation) on the same data; the analog one differs from it by a few % at most
    after 1 s and more after a year of drift, and no point is missing it."""
    x, y = _sequences(np.random.default_rng(1), 40, 5, 6)
    loss, _, _ = value_and_grad(tiny_lstm, params_of(tiny_lstm), x, y)
    r = evaluate(hermes, tiny_lstm, Dataset("seq", x, y, x[:8]), TIMES_S, seed=2)
    assert r.float_perplexity == pytest.approx(np.exp(loss), rel=1e-4)
    ppl = [p.perplexity for p in r.points]
    assert all(p is not None and np.isfinite(p) for p in ppl)
    assert abs(ppl[0] / r.float_perplexity - 1) < 0.05


def test_classifier_has_no_perplexity(hermes):
    """A classifier's outputs (n, classes) with (n,) labels are not a sequence."""
    from archsim.workload.zoo import ZOO

    net = ZOO["mlp"].builder(np.random.default_rng(0))
    shape = net.op(net.inputs[0]).shape
    x = np.random.default_rng(0).standard_normal((20, *shape)).astype(np.float32)
    y = np.zeros(20, np.int64)
    r = evaluate(hermes, net, Dataset("cls", x, y, x[:8]), (1.0,), seed=0)
    assert r.float_perplexity is None and r.points[0].perplexity is None
    assert r.float_accuracy is not None


TINY = (
    "hwa-table",
    "--models",
    "digits-cnn",
    "--float-epochs",
    "digits-cnn=1",
    "--hwa-epochs",
    "digits-cnn=1",
    "--samples",
    "digits-cnn=40",
    "--seeds",
    "2",
    "--out",
    "table",
)


def _md_rows(text: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| digits-cnn")
    ]


def test_hwa_table_writes_a_well_formed_table(cli):
    """Two networks x four times in table.csv; per seed an error is a multiple of 100/40 =
    2.5 %; A* in the CSV and in table.md equals (100 - e) / (100 - e_FP) on the printed
    errors; the HWA row's e_FP is the float row's exact error. A rerun reuses the
    checkpoints and writes the same table."""
    code, out, err = cli(*TINY)
    assert code == 0, err
    assert "digits-cnn float: epoch 1/1" in err and "programming seed 1" in err
    rows = list(csv.DictReader((cli.workdir / "table" / "table.csv").open()))
    assert [(r["training"], float(r["t_s"])) for r in rows] == [
        (t, s) for t in ("float", "hwa") for s in TIMES_S
    ]
    float_exact = float(rows[0]["exact"])
    for r in rows:
        e, lo, hi = float(r["mean"]), float(r["min"]), float(r["max"])
        assert r["metric"] == "error" and r["seeds"] == "2" and r["samples"] == "40"
        assert lo <= e <= hi and float(r["std"]) >= 0
        for v in (lo, hi):
            assert v / 2.5 == pytest.approx(round(v / 2.5), abs=1e-6)
        assert float(r["fp"]) == pytest.approx(float_exact)
        assert float(r["a_star"]) == pytest.approx(100 * (100 - e) / (100 - float_exact), rel=1e-5)
    md = (cli.workdir / "table" / "table.md").read_text()
    assert md in out
    printed = _md_rows(md)
    assert [r[1] for r in printed] == ["float", "hwa"]
    for r in printed:
        fp = float(r[2])
        means = [float(c.split("±")[0]) for c in r[3:7]]
        stars = [float(v) for v in r[7].split("/")]
        for m, s in zip(means[1:], stars, strict=True):  # printed to 0.01 and 0.1
            assert s == pytest.approx(100 * (100 - m) / (100 - fp), abs=0.06)
    assert re.search(r"LSTM PTB \(perplexity\) \| HWA \| 72\.90", md)
    before = (cli.workdir / "table" / "table.csv").read_text()
    code, _, err = cli(*TINY)
    assert code == 0 and "epoch 1/1" not in err  # nothing trained again
    assert (cli.workdir / "table" / "table.csv").read_text() == before


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("--models", "resnet9"), "--models"),
        (("--float-epochs", "lenet=2"), "--float-epochs"),
        (("--hwa-epochs", "digits-cnn=0"), "--hwa-epochs digits-cnn=0"),
        (("--seeds", "0"), "--seeds"),
    ],
)
def test_hwa_table_refuses_bad_options(cli, args, match):
    cli.refused("hwa-table", *args, match=match)


def test_recipe_training_presets_exist_and_apply_to_their_chip():
    """Every (chip, preset) pair of a recipe names a shipped chip and training preset; the
    char-LSTM on hermes trains with noise relative to each column's max |w| (the chip's own
    per-column weight scaling), not with the chip's per-tensor default."""
    from archsim.config import chip_presets
    from archsim.train.settings import load_training, training_presets
    from archsim.train.table import RECIPES

    for recipe in RECIPES.values():
        for chip, preset in recipe.training:
            assert chip in chip_presets() and preset in training_presets()
    lstm = load_training(dict(RECIPES["char-lstm"].training)["hermes"])
    assert lstm.weight_noise_scope == lstm.clip_scope == "column"
    assert load_training("hermes").weight_noise_scope == "tensor"
