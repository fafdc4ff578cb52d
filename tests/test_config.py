"""Presets as data: the shipped files load, carry sources, and bad files fail clearly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from archsim.cli import main
from archsim.config import chip_presets, device_presets, load_chip, load_device, models_dir
from archsim.errors import ConfigError

HERMES = (models_dir() / "hermes.toml").read_text()


def test_hermes_preset_values(hermes):
    """The HERMES figures of LG23 and KA22 (docs/sources.md)."""
    assert hermes.cores.count == 64 and hermes.cores.grid == (8, 8)
    assert (hermes.crossbar.rows, hermes.crossbar.cols) == (256, 256)
    assert hermes.crossbar.devices_per_weight == 4
    assert hermes.input.encoding == "pwm" and hermes.input.bits == 8
    assert hermes.input.ns_per_lsb == 1.0
    assert {m.name: m.phases for m in hermes.input.read_modes} == {"1-phase": 1, "4-phase": 4}
    assert hermes.adc.count == 256 and hermes.cols_per_adc == 1
    assert hermes.die_area_mm2 == 144.0 and hermes.cores.area_mm2 == pytest.approx(0.634)
    assert hermes.gdpu.count >= 1 and hermes.fabric.dims == (8, 8)
    assert hermes.device.name == "hermes-pcm" and hermes.device.g_max_us == 10.35


@pytest.mark.parametrize("name", chip_presets())
def test_every_chip_preset_loads(name):
    assert load_chip(name).name == name


@pytest.mark.parametrize("name", device_presets())
def test_every_device_preset_loads(name):
    assert load_device(name).name == name


def _tables_with_numbers(table: dict, path: str = ""):
    """Yield (path, table) for every table that holds a number directly."""
    has_number = any(
        (isinstance(v, int | float) and not isinstance(v, bool))
        or (isinstance(v, list) and v and not isinstance(v[0], dict))
        for v in table.values()
    )
    if has_number:
        yield path or "<top>", table
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _tables_with_numbers(value, f"{path}.{key}" if path else key)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                yield from _tables_with_numbers(item, f"{path}.{key}[{i}]")


@pytest.mark.parametrize(
    "path",
    sorted(models_dir().glob("*.toml")) + sorted(models_dir().glob("devices/*.toml")),
    ids=lambda p: p.name,
)
def test_every_number_in_a_preset_has_a_source(path):
    raw = tomllib.loads(path.read_text())
    for where, table in _tables_with_numbers(raw):
        source = table.get("source", "")
        assert isinstance(source, str) and source.strip(), f"{path.name}: [{where}] has no source"


def test_chip_device_overrides_are_applied(tmp_path):
    text = HERMES.replace(
        'preset = "hermes-pcm"',
        'preset = "hermes-pcm"\ng_max_us = 20.0\n[device.params]\nt0_s = 30.0',
    )
    path = tmp_path / "chip.toml"
    path.write_text(text)
    chip = load_chip(path)
    assert chip.device.g_max_us == 20.0 and chip.device.model.t0_s == 30.0
    assert chip.device.model.prog_coeff == load_device("hermes-pcm").model.prog_coeff


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


BAD_EDITS = [
    ("rows = 256", "rowz = 256", r"crossbar\.rowz: unknown key"),
    ("rows = 256", 'rows = "256"', r"crossbar\.rows: expected an integer, got '256'"),
    ("bits = 8\nconversion_ns", "bits = -1\nconversion_ns", r"adc\.bits: expected 0 .*got -1"),
    ("count = 64", "count = 0", r"cores\.count: expected >= 1, got 0"),
    ('preset = "hermes-pcm"', 'preset = "nosuch"', r"device\.preset: no device preset 'nosuch'"),
    ('preset = "hermes-pcm"', 'preset = "pcm"\nt0_s = 3', r"device\.t0_s: unknown key"),
    (
        'preset = "hermes-pcm"',
        'preset = "pcm"\n[device.params]\nt0_s = -3.0',
        r"device\.params\.t0_s: expected > 0",
    ),
    (
        'read_mode = "1-phase"',
        'read_mode = "2-phase"',
        r"input\.read_mode: expected one of '1-phase', '4-phase'",
    ),
    ("ns_per_lsb = 1.0\n", "", r"input\.ns_per_lsb: missing required key \(a number\)"),
    ("grid = [8, 8]", "grid = [4, 4]", r"cores\.grid: 4x4 grid has fewer places than 64 cores"),
    # item 2 of issue 10: values no model reads are refused with the reason, not ignored
    (
        'precision = "fp16"',
        'precision = "int8"',
        r"ldpu\.precision: expected one of 'fp16', 'fp32', got 'int8' \(integer digital",
    ),
    (
        "count = 64",
        "count = 64\nclock_ghz = 1.0",
        r"cores\.clock_ghz: not modelled, remove the key",
    ),
    (
        "count = 8\n",
        'count = 8\nprecision = "fp16"\n',
        r"gdpu\.precision: not modelled.*ldpu\.precision",
    ),
    (
        "sram_bytes_per_core = 16384",
        "sram_bytes_per_core = 16384\nsram_bandwidth_bytes_per_ns = 32.0",
        r"memory\.sram_bandwidth_bytes_per_ns: not modelled, remove the key \(SRAM traffic",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_EDITS)
def test_bad_chip_presets_name_file_and_key(tmp_path, old, new, message):
    assert old in HERMES
    with pytest.raises(ConfigError, match=r"bad\.toml: " + message):
        load_chip(_write(tmp_path, HERMES.replace(old, new, 1)))


def test_malformed_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"bad\.toml: malformed TOML: .*line 2"):
        load_chip(_write(tmp_path, "name = 'x'\n[cores\ncount = 1\n"))


def test_unknown_preset_names_the_available_ones():
    with pytest.raises(ConfigError, match=r"unknown device preset 'nope'.*available: .*pcm"):
        load_device("nope")
    with pytest.raises(ConfigError, match=r"unknown chip preset 'nope'.*available: .*hermes"):
        load_chip("nope")


def test_bad_device_model_name(tmp_path):
    text = (models_dir() / "devices" / "pcm.toml").read_text().replace('"pcm_like"', '"pcm-ish"')
    with pytest.raises(ConfigError, match=r"bad\.toml: model: expected one of 'ideal', 'pcm_like'"):
        load_device(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--chip", "{bad}"], "malformed TOML"),
        (["run", "--chip", "{unknown}"], "crossbar.rowz: unknown key"),
        (["run", "--chip", "{negative}"], "adc.bits: expected 0 (ideal"),
        (["device-error", "--device", "nope"], "unknown device preset 'nope'"),
        (["device-error", "--device", "pcm", "--input-bits", "-1"], "--input-bits: expected 0"),
        (["device-error", "--device", "pcm", "--size", "64by64"], "--size: expected ROWSxCOLS"),
        (
            ["device-error", "--device", "reram-wan2022", "--size", "8x8", "--seeds", "1"],
            "--times: device 'reram-wan2022' is modelled for 1 s <= t <= 172800 s",
        ),
        (["simulate", "--workload", "mlp", "--stream", "0"], "--stream: expected >= 1, got 0"),
        (
            ["evaluate", "--workload", "digits-cnn", "--samples", "100000"],
            "has 450 samples, got 100000",
        ),
        (
            ["evaluate", "--workload", "digits-cnn", "--adc-percentile", "0"],
            "--adc-percentile: expected 0 < p <= 100",
        ),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys, argv, message):
    files = {
        "{bad}": "name = [1,\n",
        "{unknown}": HERMES.replace("rows = 256", "rowz = 256"),
        "{negative}": HERMES.replace("bits = 8\nconversion_ns", "bits = -1\nconversion_ns"),
    }
    for i, arg in enumerate(argv):
        if arg in files:
            argv[i] = str(_write(tmp_path, files[arg]))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("archsim: error: ") and message in err
    assert "Traceback" not in err


def test_fabric_must_match_the_core_grid(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(HERMES.replace("dims = [8, 8]", "dims = [4, 16]"))
    with pytest.raises(ConfigError, match=r"fabric\.dims: expected the core grid \[8, 8\]"):
        load_chip(path)
