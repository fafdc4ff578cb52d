"""Issue 11 acceptance: an HWA-trained network exported to ONNX runs on the chip, and on a noisier
device than hermes' (one PCM device per weight, `hermes-pcm-1dev`) HWA fine-tuning keeps the
MNIST CNN's accuracy over a year of drift where the float-trained network loses more than a point.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

TIMES = (1, 3600, 86400, 31536000)
"""1 s, 1 hour, 1 day, 1 year."""


def accuracy_rows(out: str) -> dict[float, tuple[float, float]]:
    """{t_s: (accuracy, float accuracy)} from the accuracy table `archsim run/evaluate` print."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s+([0-9.e+]+)\s+([01]\.\d{4})\s+([01]\.\d{4})\s", line)
        if m:
            rows[float(m[1])] = (float(m[2]), float(m[3]))
    return rows


def test_hwa_fine_tuned_onnx_runs_on_the_chip(cli):
    """Float training (3 epochs), then one HWA epoch on 512 samples, exported as ONNX: `archsim
    run` maps, times and evaluates the file on hermes and reports its accuracy on the digits test
    split. Chance is 10 %; the fine-tuned network is well above it (>= 70 %), and 1 s after
    programming on hermes' PCM it stays within 5 points of its own float accuracy (the converters
    and noise it was trained with)."""
    quiet = ("--drift-samples", "0")
    code, _, err = cli(
        "train",
        "--workload",
        "digits-cnn",
        "--epochs",
        "3",
        "--lr",
        "0.05",
        *quiet,
        "--out",
        "float",
    )
    assert code == 0, err
    hwa = ("--data", "digits", "--method", "hwa", "--epochs", "1", "--train-samples", "512")
    code, _, err = cli("train", "--workload", "float/digits-cnn.onnx", *hwa, *quiet, "--out", "hwa")
    assert code == 0, err
    assert "hwa" in (cli.workdir / "hwa" / "train.json").read_text()
    code, out, err = cli("run", "--workload", "hwa/digits-cnn.onnx", "--times", "1", "--out", "run")
    assert code == 0, err
    rows = accuracy_rows(out)
    assert list(rows) == [1.0], out
    analog, exact = rows[1.0]
    assert exact >= 0.70
    assert analog >= exact - 0.05
    assert (cli.workdir / "run" / "summary.md").is_file()


NOISY_CHIP = "hermes-pcm-1dev"
SEEDS = range(5)


def normalised_accuracy(cli, onnx: str, reference: float | None = None) -> tuple[np.ndarray, float]:
    """A*(t) = (100 - e(t)) / (100 - e_FP) = accuracy(t) / accuracy_FP over `SEEDS` programming
    seeds (rows) and `TIMES` (columns) on NOISY_CHIP, all 10,000 MNIST test images, with e_FP
    the exact (float) error of `reference` (None: of this network); and that float accuracy."""
    times = ",".join(str(t) for t in TIMES)
    a_star, exact = [], None
    for seed in SEEDS:
        argv = ("evaluate", "--chip", NOISY_CHIP, "--workload", onnx, "--times", times)
        code, out, err = cli(*argv, "--seed", seed)
        assert code == 0, err
        rows = accuracy_rows(out)
        assert list(rows) == [float(t) for t in TIMES], out
        exact = rows[1.0][1]
        a_star.append([rows[float(t)][0] for t in TIMES])
    return np.array(a_star) / (reference or exact), exact


@pytest.mark.slow
def test_hwa_fine_tuning_keeps_a_year_of_single_device_pcm_drift(cli):
    """Issue 11 acceptance on a noisier device than hermes' (one PCM device per weight against a
    reference column, `hermes-pcm-1dev`): the float-trained MNIST CNN (3 epochs, >= 98.5 %) loses
    more than a point at 1 year; four epochs of HWA fine-tuning (SGD, lr 0.01, cosine schedule)
    with the chip's training preset raise A*(1 year) by more than the seed-to-seed spread (the
    larger sample std of the two over 5 seeds), to >= 99 %, with e_FP the float-trained
    network's exact error and also with the HWA network's own. Measured (seed 0, 10,000 test
    images): float 98.56 %; A*(1 y) float-trained 85.6 +- 5.9 %, HWA 99.7 +- 0.1 % (own 99.3 %).
    ~20 min on 2 cores."""
    chip = ("--chip", NOISY_CHIP, "--drift-samples", "0")
    code, _, err = cli("train", "--workload", "mnist-cnn", "--epochs", "3", *chip, "--out", "f")
    assert code == 0, err
    hwa = ("--data", "mnist", "--method", "hwa", "--epochs", "4", "--schedule", "cosine")
    code, _, err = cli("train", "--workload", "f/mnist-cnn.onnx", *hwa, *chip, "--out", "h")
    assert code == 0, err
    a_float, exact = normalised_accuracy(cli, "f/mnist-cnn.onnx")
    a_hwa, exact_hwa = normalised_accuracy(cli, "h/mnist-cnn.onnx", reference=exact)
    year = TIMES.index(31536000)
    spread = max(a_float[:, year].std(ddof=1), a_hwa[:, year].std(ddof=1))
    assert exact >= 0.985
    assert exact * (1 - a_float[:, year].mean()) > 0.01  # more than a point lost at 1 year
    assert a_hwa[:, year].mean() - a_float[:, year].mean() > spread
    assert a_hwa[:, year].mean() >= 0.99
    assert a_hwa[:, year].mean() * exact / exact_hwa >= 0.99
