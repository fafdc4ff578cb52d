"""Inputs that pass type checks but break the maths or the machine are refused in one line.

Families (issue 8, items 4, 5 and 9): converter widths without a magnitude code; values that
are not finite or not physical; sizes whose memory would exceed the machine; times outside a
device model's fitted range. Each family goes through the CLI (`cli.refused`: exit 2, one line,
no traceback, nothing written) and its bounds are unit-tested.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from archsim import bounds, footprint
from archsim.checks import converter_bits, largest_code, require_finite
from archsim.config import device_presets, load_chip, load_device, models_dir
from archsim.errors import ArchsimError, SpecError

HERMES = (models_dir() / "hermes.toml").read_text()
PCM = (models_dir() / "devices" / "pcm.toml").read_text()


def _edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert re.search(old, text, flags=re.M), old
        text = re.sub(old, new, text, count=1, flags=re.M)
    return text


@pytest.fixture
def write(tmp_path):
    """write(name, text): a file outside the CLI's working directory; returns its path."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return _write


# -- converter widths ---------------------------------------------------------------------


@pytest.mark.parametrize("bits", [0, 2, 8, 16])
def test_converter_bits_accepts_ideal_and_2_to_16(bits):
    converter_bits("adc.bits", bits)


@pytest.mark.parametrize("bits", [1, -1, 17, True])
def test_converter_bits_refuses_the_sign_alone_and_out_of_range(bits):
    with pytest.raises(SpecError, match=r"adc\.bits: expected 0 \(ideal.*2\.\.16"):
        converter_bits("adc.bits", bits)


def test_largest_code_is_signed_and_has_no_value_at_one_bit():
    """Signed codes: 2 bits span -1..1, 8 bits -127..127, 16 bits -32767..32767."""
    assert [largest_code(b) for b in (2, 8, 16)] == [1, 127, 32767]
    for bits in (0, 1, 17):
        with pytest.raises(SpecError):
            largest_code(bits)


@pytest.mark.parametrize(
    ("table", "key"),
    [("[adc]", "adc.bits"), ("[input]", "input.bits")],
)
def test_one_bit_converter_in_chip_file_is_refused(cli, write, table, key):
    head, tail = HERMES.split(table, 1)
    chip = write("one-bit.toml", head + table + _edit(tail, (r"^bits = \d+", "bits = 1")))
    cli.refused("evaluate", "--chip", chip, "--workload", "mlp", match=f"{key}: expected 0 (ideal")


@pytest.mark.parametrize("option", ["--input-bits", "--adc-bits"])
def test_one_bit_converter_option_is_refused(cli, option):
    cli.refused(
        "device-error",
        "--device",
        "pcm",
        option,
        "1",
        match=f"{option}: expected 0 (ideal, no quantization) or 2..16",
    )


def test_sweep_of_one_bit_adc_is_refused(cli, write, tmp_path):
    sweep = write(
        "s.toml",
        'chip = "hermes"\nworkload = "mlp"\nmode = "timing"\n[parameters]\n"adc.bits" = [1]\n',
    )
    cli.refused("sweep", sweep, "--serial", "--out", tmp_path / "out", match="adc.bits: expected 0")


def test_two_bit_converters_give_finite_errors(cli):
    code, out, err = cli(
        "device-error",
        "--device",
        "pcm",
        "--size",
        "16x16",
        "--seeds",
        "1",
        "--vectors",
        "50",
        "--times",
        "1",
        "--input-bits",
        "2",
        "--adc-bits",
        "2",
    )
    assert code == 0, err
    nrmse = float(out.splitlines()[1].split()[3])
    assert math.isfinite(nrmse) and nrmse > 0


# -- nothing non-finite reaches an output --------------------------------------------------


def test_require_finite():
    assert require_finite("x", 1.5) == 1.5
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ArchsimError, match="x: computed a non-finite value"):
            require_finite("x", bad)


def test_csv_with_a_nan_cell_is_refused_before_writing(tmp_path):
    from archsim.run_report import write_csv

    path = tmp_path / "out.csv"
    with pytest.raises(ArchsimError, match=r"out\.csv: ratio: computed a non-finite"):
        write_csv([{"ratio": 1.0}, {"ratio": math.nan}], path)
    assert not path.exists()


def _energy_free(chip):
    """`chip` with every energy coefficient and the static power 0."""
    from dataclasses import fields, replace

    def zero(spec):
        names = [f.name for f in fields(spec) if "energy" in f.name]
        return replace(spec, **{n: 0.0 for n in names if isinstance(getattr(spec, n), float)})

    return replace(
        chip,
        crossbar=zero(chip.crossbar),
        input=zero(chip.input),
        adc=zero(chip.adc),
        ldpu=zero(chip.ldpu),
        gdpu=zero(chip.gdpu),
        fabric=zero(chip.fabric),
        memory=zero(chip.memory),
        cores=replace(chip.cores, static_power_mw=0.0),
    )


def test_tops_per_w_is_na_when_no_energy_is_spent(hermes):
    """0 pJ per sample: TOPS/W has no value; it is reported as n/a, never 0 or inf."""
    from archsim.api import simulate
    from archsim.run_report import format_metrics
    from archsim.validate import format_rows, validate
    from archsim.workload.catalog import load_workload

    chip = _energy_free(hermes)
    m = simulate(chip, load_workload("mlp"), mode="timing", samples=2).metrics
    assert m.energy_per_sample_pj == 0 and m.tops_per_w is None
    text = format_metrics(m)
    assert "n/a TOPS/W" in text and not re.search(r"\b(nan|inf)\b", text.lower())
    rows = [r for r in validate(chip) if r.metric == "tops_per_w"]
    assert rows and all(r.simulated is None and r.ok is False for r in rows)
    assert "n/a" in format_rows(rows)


# -- plausibility bounds ---------------------------------------------------------------------


def test_every_shipped_preset_is_inside_the_bounds():
    from archsim.config import chip_presets

    for name in chip_presets():
        load_chip(name)
    for name in device_presets():
        load_device(name)


def test_bound_message_names_key_limit_and_reason():
    with pytest.raises(SpecError) as e:
        bounds.GRID_PLACES.check("cores.grid", 10**6)
    assert str(e.value).startswith("cores.grid: expected <= 4,096, got 1,000,000 (placement")
    bounds.GRID_PLACES.check("cores.grid", 4096)


def test_core_area_bound():
    """HERMES (256x256, 4 devices per weight) needs 1e-4 mm2 of 4F^2 cells in 0.634 mm2."""
    bounds.check_core_area("crossbar", 256 * 256 * 4, 0.634)
    with pytest.raises(SpecError, match=r"more than the core's 0\.634 mm"):
        bounds.check_core_area("crossbar", 65536 * 65536 * 4, 0.634)


@pytest.mark.parametrize(
    ("edits", "match"),
    [
        (
            [(r"^static_power_mw = .*", "static_power_mw = nan")],
            "cores.static_power_mw: expected a finite",
        ),
        (
            [(r"^rows = 256", "rows = 65536"), (r"^cols = 256", "cols = 65536")],
            "crossbar (65536x65536, 4 devices per weight): 17,179,869,184 devices need",
        ),
        (
            [
                (r"^grid = \[8, 8\]", "grid = [1000, 1000]"),
                (r"^dims = \[8, 8\]", "dims = [1000, 1000]"),
            ],
            "cores.grid: expected <= 4,096, got 1,000,000",
        ),
    ],
)
def test_implausible_chip_is_refused(cli, write, edits, match):
    chip = write("chip.toml", _edit(HERMES, *edits))
    cli.refused("simulate", "--chip", chip, "--workload", "mlp", "--mode", "timing", match=match)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ((r"^g_max_us = .*", "g_max_us = 1e308"), "g_max_us: expected <= 10,000, got 1e+308"),
        (
            (r"^read_q_coeff = .*", "read_q_coeff = inf"),
            "params.read_q_coeff: expected a finite number, got inf",
        ),
        ((r"^read_q_coeff = .*", "read_q_coeff = 1e6"), "params.read_q_coeff: expected <= 10"),
        ((r"^t0_s = .*", "t0_s = nan"), "params.t0_s: expected a finite number, got nan"),
        ((r"^std = .*", "std = 1e30"), "mvm_noise.std: expected <= 10"),
    ],
)
def test_implausible_device_is_refused(cli, write, edit, match):
    device = write("dev.toml", _edit(PCM, edit))
    cli.refused("evaluate", "--workload", "mlp", "--device", device, match=match)


def test_huge_toml_layer_is_refused(cli, write):
    wl = write(
        "big.toml",
        '[[layer]]\nid = "x"\nop = "input"\nshape = [100000]\n[[layer]]\n'
        'id = "fc"\nop = "linear"\nout_features = 100000\n',
    )
    cli.refused(
        "simulate",
        "--workload",
        wl,
        "--mode",
        "timing",
        match="weight fc.weight: size: expected <= 268,435,456",
    )


def test_huge_toml_input_is_refused(cli, write):
    wl = write("big.toml", '[[layer]]\nid = "x"\nop = "input"\nshape = [100000, 100000]\n')
    cli.refused(
        "simulate",
        "--workload",
        wl,
        "--mode",
        "timing",
        match="shape (elements): expected <= 67,108,864",
    )


def test_huge_sweep_grid_is_refused(cli, write, tmp_path):
    axis = "{min = 2, max = 16, steps = 1000000, integer = true}"
    sweep = write(
        "s.toml",
        f'chip = "hermes"\nworkload = "mlp"\nmode = "timing"\n[parameters]\n'
        f'"adc.bits" = {axis}\n"input.bits" = {axis}\n',
    )
    cli.refused(
        "sweep",
        sweep,
        "--serial",
        "--out",
        tmp_path / "out",
        match="points: expected <= 100,000, got 1,000,000,000,000",
    )


def test_long_stream_is_refused(cli):
    cli.refused(
        "simulate",
        "--workload",
        "mlp",
        "--mode",
        "timing",
        "--stream",
        "1000000",
        match="--stream): expected <= 10,000, got 1,000,000",
    )


# -- memory estimates -----------------------------------------------------------------------


def test_check_footprint_refuses_above_half_the_ram():
    gib = 2**30
    footprint.check_footprint("x", 7 * gib, ram=16 * gib)
    with pytest.raises(
        ArchsimError,
        match=r"x needs an estimated 9 GiB .* 50% of this machine's "
        r"16 GiB RAM \(8 GiB\)",
    ):
        footprint.check_footprint("x", 9 * gib, ram=16 * gib)


def test_matrix_estimate_counts_padding_to_whole_crossbars():
    """A 10x10 matrix on one 65536x65536 crossbar: the block sums pad it to 2^32 float64s."""
    kept, transient = footprint.matrix_bytes(10, 10, 65536, 65536, 2)
    assert kept == 100 * 4 * 8  # 2 per device, 4 per weight
    assert transient >= 2**32 * 8


def test_hop_table_stays_small_inside_the_grid_bound():
    assert footprint.hop_table_bytes(int(bounds.GRID_PLACES.limit)) < 2**30


@pytest.mark.parametrize("name", ["mlp", "digits-cnn", "lstm"])
def test_engine_estimate_tracks_the_recorded_rows(hermes, name):
    """Within the factor the module states (0.5x to 3.3x on the zoo), and linear in samples."""
    from archsim.api import simulate
    from archsim.workload.catalog import load_workload

    run = simulate(hermes, load_workload(name), mode="timing", samples=2)
    estimate = footprint.engine_bytes(run.mapping, 2, 1)
    rows = len(run.sim.recorder.rows)
    assert 0.4 <= estimate / (rows * footprint.EVENT_BYTES) <= 4
    assert footprint.engine_bytes(run.mapping, 200, 1) == pytest.approx(100 * estimate, rel=1e-4)


def test_oversized_evaluate_is_refused_before_allocating(cli, write, monkeypatch):
    """One 65536x65536 crossbar on a core big enough for its cells: evaluate would pad every
    layer to 2^32 cells of float64 (64 GiB); refused on a 16 GiB machine."""
    monkeypatch.setattr(footprint, "ram_bytes", lambda: 16 * 2**30)
    chip = write(
        "chip.toml",
        _edit(
            HERMES,
            (r"^count = 64", "count = 4"),
            (r"^grid = \[8, 8\]", "grid = [2, 2]"),
            (r"^dims = \[8, 8\]", "dims = [2, 2]"),
            (r"^area_mm2 = .*", "area_mm2 = 100.0"),
            (r"^die_area_mm2 = .*", "die_area_mm2 = 400.0"),
            (r"^rows = 256", "rows = 65536"),
            (r"^cols = 256", "cols = 65536"),
            (r"^devices_per_weight = 4", "devices_per_weight = 2"),
            (r"^count = 256", "count = 1"),
            (r'^preset = "hermes-pcm"', 'preset = "pcm"'),
        ),
    )
    cli.refused(
        "evaluate",
        "--chip",
        chip,
        "--workload",
        "mlp",
        match="evaluating mlp on hermes needs an estimated",
    )


def test_oversized_device_error_is_refused_before_allocating(cli, monkeypatch):
    """65536 x 65536 weights: 32 GiB of float64 weights alone; refused on a 16 GiB machine."""
    monkeypatch.setattr(footprint, "ram_bytes", lambda: 16 * 2**30)
    cli.refused(
        "device-error",
        "--device",
        "pcm",
        "--size",
        "65536x65536",
        match="--size 65536x65536 needs an estimated",
    )


# -- device models and their fitted time range ----------------------------------------------


@pytest.mark.parametrize("name", device_presets())
def test_device_error_runs_on_every_shipped_device(cli, name):
    """Calibrated at the model's earliest time, read at its earliest and a later fitted time."""
    model = load_device(name).model
    times = f"{model.earliest_s:g},{min(model.latest_s, 86400.0):g}"
    code, out, err = cli(
        "device-error",
        "--device",
        name,
        "--size",
        "16x16",
        "--seeds",
        "1",
        "--vectors",
        "40",
        "--times",
        times,
    )
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert len(rows) == 2
    assert all(math.isfinite(float(r[3])) and math.isfinite(float(r[4])) for r in rows)


def test_device_models_declare_their_time_range():
    ranges = {
        n: (load_device(n).model.earliest_s, load_device(n).model.latest_s)
        for n in device_presets()
    }
    assert ranges["reram-wan2022"] == (1.0, 172800.0)
    assert ranges["cmo-hfox"] == (1.0, np.inf)
    assert ranges["pcm"] == (0.0, np.inf) and ranges["ideal"] == (0.0, np.inf)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            ["device-error", "--device", "reram-wan2022", "--times", "1,1e6"],
            "--times: device 'reram-wan2022' is modelled for 1 s <= t <= 172800 s after "
            "programming; got t = 1e+06 s",
        ),
        (
            ["device-error", "--device", "cmo-hfox", "--times", "0.5"],
            "--times: device 'cmo-hfox' is modelled for t >= 1 s after programming; got t = 0.5 s",
        ),
        (
            ["evaluate", "--workload", "mlp", "--device", "reram-wan2022"],
            "is modelled for 1 s <= t <= 172800 s after programming; got t = 3.1536e+07 s",
        ),
    ],
)
def test_times_outside_the_model_range_are_refused(cli, argv, match):
    cli.refused(*argv, match=match)


def test_sweep_times_outside_a_swept_device_range_are_refused(cli, write, tmp_path):
    sweep = write(
        "s.toml",
        'chip = "hermes"\nworkload = "mlp"\nmode = "functional"\n'
        "t_inference_s = [1, 31536000]\n[parameters]\n"
        '"device.preset" = ["pcm", "reram-wan2022"]\n',
    )
    cli.refused(
        "sweep",
        sweep,
        "--serial",
        "--out",
        tmp_path / "out",
        match="t_inference_s: device 'reram-wan2022' is modelled for 1 s <= t <= ",
    )
