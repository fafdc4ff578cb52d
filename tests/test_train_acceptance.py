"""Issue 11 acceptance: an HWA-trained network exported to ONNX runs on the chip, and on a noisier
device than hermes' (one PCM device per weight, `hermes-pcm-1dev`) HWA fine-tuning keeps the
MNIST CNN's accuracy over a year of drift where the float-trained network loses more than a point.
"""

from __future__ import annotations

import re

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
