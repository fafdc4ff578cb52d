"""Sweeps: sweep files, point expansion, resumable runs, failed points, Pareto fronts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from archsim.cli import main
from archsim.config import load_chip
from archsim.errors import ConfigError
from archsim.sweep import (
    expand_points,
    load_sweep,
    pareto_front,
    pareto_mask,
    run_sweep,
    write_sweep_report,
)
from archsim.sweep import runner as runner_mod

TINY = """
chip = "hermes"
workload = "digits-mlp"
mode = "full"
samples = 16
t_inference_s = [1, 3600]
[parameters]
"adc.bits" = [4, 8]
[linked]
"cores.count" = [64, 1]
"cores.grid" = [[8, 8], [1, 1]]
"fabric.dims" = [[8, 8], [1, 1]]
"""


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_overrides_change_the_chip_and_bad_ones_name_file_and_key():
    chip = load_chip("hermes", {"adc.bits": 6, "device.preset": "cmo-hfox", "cores.grid": [8, 8]})
    assert chip.adc.bits == 6
    assert chip.device.name == "cmo-hfox"
    assert load_chip("hermes").adc.bits == 8  # the preset itself is untouched
    with pytest.raises(ConfigError, match=r"hermes\.toml: adc\.bitz: unknown key.*adc\.bitz = 6"):
        load_chip("hermes", {"adc.bitz": 6})
    with pytest.raises(ConfigError, match=r"adc\.bits: expected 0 \(ideal.* or 2\.\.16 .*got -1"):
        load_chip("hermes", {"adc.bits": -1})
    with pytest.raises(ConfigError, match=r"input\.read_modes: is not a table"):
        load_chip("hermes", {"input.read_modes.phases": 2})


def test_grid_expands_to_every_combination_with_linked_lists_as_one_axis(tmp_path):
    spec = load_sweep(write(tmp_path, TINY.replace("[4, 8]", "[4, 6, 8]")))
    points = expand_points(spec)
    assert len(points) == 3 * 2
    assert {(p["adc.bits"], p["cores.count"]) for p in points} == set(
        itertools.product([4, 6, 8], [64, 1])
    )
    # linked values stay together
    assert all((p["cores.count"] == 1) == (p["cores.grid"] == (1, 1)) for p in points)


def test_grid_range_steps_and_random_draws(tmp_path):
    text = """
chip = "hermes"
workload = "digits-mlp"
[parameters]
"crossbar.wire_resistance_ohm" = {min = 0.1, max = 10.0, steps = 3, scale = "log"}
"adc.bits" = {min = 4, max = 8, steps = 5, integer = true}
"""
    points = expand_points(load_sweep(write(tmp_path, text)))
    wires = sorted({p["crossbar.wire_resistance_ohm"] for p in points})
    assert wires == pytest.approx([0.1, 1.0, 10.0])
    assert sorted({p["adc.bits"] for p in points}) == [4, 5, 6, 7, 8]

    rand = """
chip = "hermes"
workload = "digits-mlp"
method = "random"
points = 200
sample_seed = 7
[parameters]
"crossbar.wire_resistance_ohm" = {min = 0.1, max = 10.0, scale = "log"}
"adc.bits" = {min = 4, max = 8, integer = true}
"""
    spec = load_sweep(write(tmp_path, rand, "rand.toml"))
    a, b = expand_points(spec), expand_points(spec)
    assert a == b  # seeded
    w = np.array([p["crossbar.wire_resistance_ohm"] for p in a])
    assert w.min() >= 0.1 and w.max() <= 10.0
    # log-uniform: about half the draws below the geometric middle (1.0); 200 draws, 5 sigma
    assert abs(np.mean(w < 1.0) - 0.5) < 5 * math.sqrt(0.25 / len(w))
    assert all(isinstance(p["adc.bits"], int) and 4 <= p["adc.bits"] <= 8 for p in a)


HEAD = 'chip = "hermes"\nworkload = "mlp"\n'


@pytest.mark.parametrize(
    "text, key",
    [
        (HEAD + 'samplez = 3\n[parameters]\n"adc.bits" = [4]', "samplez"),
        (HEAD + 'mode = "fast"\n[parameters]\n"adc.bits" = [4]', "mode"),
        (HEAD + '[parameters]\n"adc.bits" = []', '"adc.bits"'),
        (HEAD + '[parameters]\n"adc.bits" = {min = 4, max = 8}', "steps"),
        (HEAD + 'method = "random"\n[parameters]\n"adc.bits" = [4]', "points"),
        (HEAD + '[linked]\n"a.b" = [1, 2]\n"c.d" = [1]', "linked"),
        (HEAD, "parameters"),
        (
            HEAD + '[parameters]\n"adc.bits" = [4]\n[objectives]\nenergy_per_sample_pj = "less"',
            "objectives.energy_per_sample_pj",
        ),
        (
            HEAD + '[parameters]\n"adc.bits" = [4]\n[objectives]\nenergy = "min"',
            "objectives.energy",
        ),
        (
            HEAD + 'mode = "timing"\n[parameters]\n"adc.bits" = [4]\n'
            '[objectives]\naccuracy = "max"',
            "objectives.accuracy",
        ),
        (HEAD + "[parameters\n", "malformed TOML"),
    ],
)
def test_bad_sweep_files_name_the_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_run_records_failed_points_and_resumes(tmp_path, monkeypatch):
    spec = load_sweep(write(tmp_path, TINY))
    out = tmp_path / "out"
    lines = []
    df = run_sweep(spec, out, executor="serial", progress=lines.append)
    assert len(df) == 4
    ok, failed = df[df.status == "ok"], df[df.status == "error"]
    assert set(ok["cores.count"]) == {64} and set(failed["cores.count"]) == {1}
    # the 1-core chip does not fit the network: recorded with the mapping error, not fatal
    assert failed.error.str.contains("needs 2 cores").all()
    assert (ok.energy_per_sample_pj > 0).all() and (ok.period_ns > 0).all()
    assert ok.accuracy.between(0, 1).all() and ok["accuracy_t3600"].between(0, 1).all()
    assert (ok.cores_used <= ok.cores_available).all()
    # TOPS/W is a steady-state figure: its power is the steady-state one, not the whole run's
    ratio = ok.effective_tops / ok.steady_state_power_w / ok.tops_per_w
    assert np.allclose(ratio, 1.0, rtol=1e-9)
    assert (ok.average_power_w < ok.steady_state_power_w).all()  # 16 samples: fill and drain
    assert any(line.startswith("[4/4]") for line in lines)

    calls = []
    real = runner_mod.run_point

    def counting(spec_, params):
        calls.append(params)
        return real(spec_, params)

    monkeypatch.setattr(runner_mod, "run_point", counting)
    again = run_sweep(spec, out, executor="serial")
    assert calls == []  # everything was done before
    pd.testing.assert_frame_equal(again, df)

    run_sweep(spec, out, executor="serial", retry_failed=True)
    assert sorted(p["cores.count"] for p in calls) == [1, 1]  # only the failed points again

    changed = load_sweep(write(tmp_path, TINY.replace("samples = 16", "samples = 8")))
    with pytest.raises(ConfigError, match="other settings"):
        run_sweep(changed, out, executor="serial")
    calls.clear()
    assert len(run_sweep(changed, out, executor="serial", fresh=True)) == 4
    assert len(calls) == 4  # fresh: every point again


def test_same_points_give_the_same_numbers_serial_and_on_dask(tmp_path):
    spec = load_sweep(write(tmp_path, TINY.replace('"adc.bits" = [4, 8]', '"adc.bits" = [6]')))
    serial = run_sweep(spec, tmp_path / "serial", executor="serial")
    dask = run_sweep(spec, tmp_path / "dask", executor="dask", workers=1)
    key = ["point"]
    cols = [c for c in serial.columns if c != "wall_s"]
    pd.testing.assert_frame_equal(
        serial[cols].sort_values(key).reset_index(drop=True),
        dask[cols].sort_values(key).reset_index(drop=True),
    )


def test_a_misspelt_key_in_every_point_is_fatal(tmp_path):
    """Refused when the sweep file is read: the key fails on its own, before any point runs."""
    with pytest.raises(ConfigError, match=r'parameters\."adc\.bitz": .*adc\.bitz: unknown key'):
        load_sweep(write(tmp_path, TINY.replace('"adc.bits"', '"adc.bitz"')))
    assert not (tmp_path / "out").exists()


def test_pareto_mask_matches_brute_force():
    rng = np.random.default_rng(3)
    costs = rng.integers(0, 5, size=(60, 3)).astype(float)  # many ties and duplicates
    mask = pareto_mask(costs)
    for i, c in enumerate(costs):
        dominated = any(np.all(o <= c) and np.any(o < c) for j, o in enumerate(costs) if j != i)
        assert mask[i] == (not dominated)
    assert mask.any()


def test_pareto_front_handles_max_objectives_and_failed_rows():
    df = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "error"],
            "accuracy": [0.9, 0.95, 0.85, np.nan],
            "energy_per_sample_pj": [10.0, 20.0, 30.0, np.nan],
        }
    )
    front = pareto_front(df, {"accuracy": "max", "energy_per_sample_pj": "min"})
    assert len(front) == 3  # failed rows are not candidates
    assert list(front.pareto) == [True, True, False]  # 0.85 at 30 pJ is beaten by both


def test_cli_sweep_writes_the_report(tmp_path, capsys):
    path = write(tmp_path, TINY)
    out = tmp_path / "rep"
    assert main(["sweep", str(path), "--serial", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "adc.bits" in printed and "4 points" in printed
    for name in ("results.csv", "pareto.csv", "summary.md", "report.html"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    assert "Pareto front" in summary and "Failed points" in summary and "needs 2 cores" in summary


def test_cli_sweep_bad_file_is_one_line_exit_2(tmp_path, capsys):
    path = write(tmp_path, 'chip = "hermes"\nworkload = "mlp"\nmode = "fast"\n')
    assert main(["sweep", str(path), "--serial", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mode" in err and str(path) in err


def test_report_of_a_shipped_sweep_file_parses(tmp_path):
    """The example sweeps in sweeps/ are valid files with valid chips at every point."""
    from pathlib import Path

    from archsim.sweep.runner import chip_overrides, result_columns

    files = sorted((Path(__file__).parent.parent / "sweeps").glob("*.toml"))
    assert files
    for f in files:
        spec = load_sweep(f)
        for p in expand_points(spec):
            if spec.kind == "moe":
                spec.inputs(p)
            else:
                load_chip(spec.chip, chip_overrides(p))
    # and a report can be written from any results table
    spec = load_sweep(files[0])
    empty = pd.DataFrame(columns=result_columns(spec))
    front, _ = write_sweep_report(spec, empty, tmp_path)
    assert front.empty and (tmp_path / "summary.md").is_file()
