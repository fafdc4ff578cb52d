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


def _commands() -> dict:
    """{name: subparser} of every archsim command."""
    import argparse

    from archsim.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_help_shows_examples_that_parse(cli):
    """Each command's --help ends with `examples:` and lines `archsim NAME ...` that the parser
    accepts as written (the sweep files they name exist)."""
    import shlex
    from pathlib import Path

    from archsim.cli import _parser

    root = Path(__file__).parents[1]
    code, out, _err = cli("--help")
    assert code == 0 and "examples:\n  archsim run" in out
    for name in _commands():
        code, out, err = cli(name, "--help")
        assert code == 0 and err == "", name
        examples = out.split("examples:\n", 1)[1].splitlines()
        assert examples and all(e.startswith(f"  archsim {name}") for e in examples), out
        for line in examples:
            argv = shlex.split(line)[1:]
            _parser().parse_args(argv)
            assert all((root / a).is_file() for a in argv if a.endswith(".toml")), line


def test_every_option_has_help():
    """No option is left to guess (`simulate --mode` had none)."""
    for name, parser in _commands().items():
        for action in parser._actions:
            assert action.help, f"{name} {'/'.join(action.option_strings) or action.dest}"


def test_seed_means_the_same_in_every_command():
    """One help text for --seed wherever it appears: the seed of the whole run."""
    helps = {
        name: a.help
        for name, p in _commands().items()
        for a in p._actions
        if "--seed" in a.option_strings
    }
    assert set(helps) >= {"run", "simulate", "evaluate", "map", "device-error"}
    assert len(set(helps.values())) == 1 and "whole run" in next(iter(helps.values()))


def test_version_prints_the_package_version(cli):
    """`archsim --version` prints the version pyproject.toml declares, and exits 0."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    code, out, err = cli("--version")
    assert (code, out, err) == (0, f"archsim {declared}\n", "")


def test_map_out_is_a_report_directory(cli):
    """`map --out DIR` writes mapping.png, mapping.csv (one row per analog layer: the zoo's mlp
    is 784-256-128-10, three linear layers) and map.json; running again replaces it."""
    import csv
    import json

    for _ in range(2):
        code, _out, err = cli("map", "--workload", "mlp", "--out", "m", "--seed", "3")
        assert code == 0, err
    out_dir = cli.workdir / "m"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "map.json",
        "mapping.csv",
        "mapping.png",
        "nodes.csv",
    ]
    with (out_dir / "mapping.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 3
    settings = json.loads((out_dir / "map.json").read_text())
    assert settings["chip"] == "hermes" and settings["workload"] == "mlp" and settings["seed"] == 3


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # hermes: 256x256 unit cells of 4 PCM devices, 8-bit PWM input and 8-bit ADC
        (["--device", "pcm"], ((256, 256), 8, 8, 4)),
        # neurram: 256x256 of differential ReRAM pairs, 4-bit inputs, 6-bit ADC
        (["--chip", "neurram", "--device", "pcm"], ((256, 256), 4, 6, 2)),
        # hermes-pcm is fitted for 4 devices per weight, whatever the chip
        (["--chip", "neurram", "--device", "hermes-pcm"], ((256, 256), 4, 6, 4)),
        (["--device", "pcm", "--size", "8x8", "--adc-bits", "0"], ((8, 8), 8, 0, 4)),
    ],
)
def test_device_error_defaults_come_from_the_chip(cli, monkeypatch, argv, expected):
    """--size, --input-bits, --adc-bits and --devices-per-weight default to --chip's preset
    (hermes), the device's fitted count first."""
    import archsim.device_error

    seen = []

    def fake(device, setup, times, **kw):
        seen.append(((setup.rows, setup.cols), setup.input_bits, setup.adc_bits))
        seen.append(setup.devices_per_weight)
        return []

    monkeypatch.setattr(archsim.device_error, "device_error", fake)
    monkeypatch.setattr(archsim.device_error, "format_table", lambda rows: "")
    code, _out, err = cli("device-error", *argv, "--times", "1", "--seeds", "1")
    assert code == 0, err
    assert (*seen[0], seen[1]) == expected
