"""The command line refuses bad options and bad input files in one line, before running.

Each case stands for a family: option values (seed, counts, times, sizes, scheduler address),
argparse's own errors (unknown, abbreviated or missing options), and input files that cannot be
read (non-UTF-8 or malformed TOML, corrupt .npz). All go through the `cli` fixture: exit 2, one
`archsim: error:` line naming the option or file, no traceback, nothing written.
"""

from __future__ import annotations

import pytest

from archsim.config import models_dir
from archsim.workload.zoo import workloads_dir


@pytest.fixture
def inputs(tmp_path):
    """A directory for input files, outside the working directory the refusals watch."""
    d = tmp_path / "in"
    d.mkdir()
    return d


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run", "--seed", "-1"], "--seed: expected >= 0, got -1"),
        (["device-error", "--device", "pcm", "--seed", "x"], "--seed: expected an integer"),
        (["simulate", "--workload", "mlp", "--stream", "0"], "--stream: expected >= 1, got 0"),
        (["run", "--chunk", "1.5"], "--chunk: expected an integer >= 1, got '1.5'"),
        (["evaluate", "--workload", "mlp", "--samples", "0"], "--samples: expected >= 1"),
        (["device-error", "--device", "pcm", "--vectors", "-3"], "--vectors: expected >= 1"),
        (["evaluate", "--workload", "digits-cnn", "--times", "1e300"], "--times: expected"),
        (["run", "--times", "1,nan"], "--times: expected times 0 <= t <="),
        (["run", "--times", "inf"], "--times: expected times 0 <= t <="),
        (["run", "--times", "1;2"], "--times: expected a comma list"),
        (
            ["device-error", "--device", "pcm", "--size", "100000x100000"],
            "--size: expected 1..65536, got 100000",
        ),
        (["device-error", "--device", "pcm", "--size", "8by8"], "--size: expected ROWSxCOLS"),
        (["sweep", "s.toml", "--scheduler", "not-an-address"], "--scheduler: expected"),
        (["sweep", "s.toml", "--scheduler", "tcp://10.0.0.5:99999"], "--scheduler: expected"),
        (
            ["sweep", "s.toml", "--scheduler", "tcp://no-such-host.invalid:8786"],
            "--scheduler: cannot resolve host",
        ),
        (["sweep", "s.toml", "--workers", "0"], "--workers: expected >= 1"),
        (["run", "--device", ""], "--device: expected a preset name or a file path, got ''"),
        (
            ["evaluate", "--workload", "mlp", "--samples", "99999999999999999999"],
            "--samples 99999999999999999999 random inputs of shape (784,) needs an estimated",
        ),
        (
            ["device-error", "--device", "pcm", "--vectors", "99999999999", "--size", "4x4"],
            "device-error with --vectors 99999999999",
        ),
        (
            ["device-error", "--device", "pcm", "--seeds", "99999999999", "--size", "4x4"],
            "--seeds 99999999999",
        ),
        (["validate", "--chip", "hermes", "--chip", " "], "--chip: expected a preset name"),
        (["map", "--workload", ""], "--workload: expected a preset name or a file path"),
    ],
)
def test_bad_option_values_are_refused_naming_the_option(cli, argv, match):
    cli.refused(*argv, match=match)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run", "--sample", "10"], "unrecognized arguments: --sample 10"),  # no prefix match
        (["run", "--work", "mlp"], "unrecognized arguments: --work mlp"),
        (["simulate"], "the following arguments are required: --workload"),
        (["simulate", "--workload", "mlp", "--mode", "fast"], "--mode: invalid choice"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_argparse_errors_are_one_line_without_usage(cli, argv, match):
    line = cli.refused(*argv, match=match)
    assert "usage:" not in line


def test_help_still_prints_and_exits_0(cli):
    code, out, err = cli("run", "--help")
    assert code == 0 and "--samples" in out and err == ""


def test_non_utf8_toml_names_file_and_line(cli, inputs):
    text = (models_dir() / "hermes.toml").read_bytes()
    bad = inputs / "latin1.toml"
    bad.write_bytes(text.replace(b"\n", b"\n# caf\xe9\n", 3).replace(b"# caf\xe9\n", b"", 2))
    line_no = bad.read_bytes().count(b"\n", 0, bad.read_bytes().index(b"\xe9")) + 1
    cli.refused(
        "run", "--chip", bad, match=f"latin1.toml: not UTF-8 text (byte 0xe9 at line {line_no})"
    )
    cli.refused("device-error", "--device", bad, match="not UTF-8 text")


@pytest.mark.parametrize("option", ["--chip", "--device", "--workload"])
def test_malformed_toml_names_file_and_line(cli, inputs, option):
    bad = inputs / "broken.toml"
    bad.write_text('name = "x"\n[crossbar\nrows = 4\n')
    argv = ["run", option, bad] if option != "--workload" else ["simulate", "--workload", bad]
    cli.refused(*argv, match="broken.toml: malformed TOML: ")
    assert "line 2" in cli.refused(*argv)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped", "empty", "one-array"])
def test_corrupt_npz_weights_are_one_line(cli, inputs, damage):
    import numpy as np

    good = (workloads_dir() / "digits-cnn.npz").read_bytes()
    npz = inputs / "w.npz"
    if damage == "truncated":
        npz.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        npz.write_bytes(b"not a zip archive\n" * 10)
    elif damage == "flipped":  # a damaged member: only reading it finds the bad CRC
        mid = len(good) // 2
        npz.write_bytes(
            good[:mid] + bytes(b ^ 0xFF for b in good[mid : mid + 64]) + good[mid + 64 :]
        )
    elif damage == "empty":
        npz.write_bytes(b"")
    else:
        with npz.open("wb") as fh:
            np.save(fh, np.zeros(4))
    layers = inputs / "net.toml"
    layers.write_text(
        'weights = "w.npz"\n[[layer]]\nid = "x"\nop = "input"\nshape = [4]\n'
        '[[layer]]\nid = "fc"\nop = "linear"\nout_features = 2\n'
    )
    line = cli.refused("simulate", "--workload", layers, "--mode", "timing", match="w.npz")
    assert "net.toml: weights:" in line


def test_read_mode_option_selects_the_presets_mode(cli):
    """--read-mode 4-phase runs the chip's four-phase mode: the one-MVM network's latency grows
    by three more integration windows (3 x 128 ns on HERMES), and the summary says so."""
    latency = {}
    for mode in ("1-phase", "4-phase"):
        code, out, err = cli(
            "simulate",
            "--workload",
            "mlp",
            "--mode",
            "timing",
            "--stream",
            "1",
            "--read-mode",
            mode,
        )
        assert code == 0, err
        line = next(x for x in out.splitlines() if x.startswith("latency"))
        latency[mode] = float(line.split()[-2].replace(",", ""))
    assert latency["4-phase"] - latency["1-phase"] >= 3 * 128 / 1000  # us
