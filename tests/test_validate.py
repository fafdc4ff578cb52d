"""Published figures against the simulation, and the validate command."""

from __future__ import annotations

from archsim.cli import main
from archsim.config import load_chip, models_dir
from archsim.validate import mvm_energy_pj, peak_figures, validate


def test_hermes_published_figures_within_tolerance(hermes):
    rows = validate(hermes, samples=4)
    checked = [r for r in rows if r.ok is not None]
    metrics = {(r.metric, r.read_mode) for r in checked}
    assert {("peak_tops", "1-phase"), ("peak_tops", "4-phase"), ("tops_per_w", "1-phase"),
            ("tops_per_w", "4-phase"), ("tops_per_mm2", "1-phase"),
            ("mvm_latency_ns", "1-phase")} <= metrics  # fmt: skip
    for r in checked:
        assert abs(r.ratio - 1) <= 0.05, r
    info = [r for r in rows if r.ok is None]
    assert {r.metric for r in info} == {"resnet9 period_ns", "resnet9 energy_per_sample_pj"}
    assert all("bound by" in r.source for r in info)


def test_single_core_figures():
    chip = load_chip("hermes-core")
    assert all(r.ok for r in validate(chip))
    peak = peak_figures(chip)
    assert abs(peak.peak_tops - 1.008) < 0.01 and peak.mvm_latency_ns == 130.0


def test_energy_scales_with_input_activity_and_phases(hermes):
    """Array and driver energy follow the input magnitude, the ADC energy does not."""
    full, idle = mvm_energy_pj(hermes, 1.0), mvm_energy_pj(hermes, 0.0)
    assert idle == 256 * hermes.adc.energy_pj_per_conversion
    assert abs(full - 13.4e3) / 13.4e3 < 0.01  # 0.86 uJ / 64 cores (LG23 Table I)
    four = dataclasses_replace_mode(hermes, "4-phase")
    assert mvm_energy_pj(four, 1.0) == 4 * full


def dataclasses_replace_mode(chip, mode):
    import dataclasses

    return dataclasses.replace(chip, input=dataclasses.replace(chip.input, read_mode=mode))


def test_cli_validate_writes_csv_and_fails_on_a_wrong_figure(tmp_path, capsys):
    csv = tmp_path / "v.csv"
    assert main(["validate", "--chip", "hermes-core", "--csv", str(csv)]) == 0
    lines = csv.read_text().splitlines()
    assert lines[0] == "preset,metric,published,simulated,ratio,ok"
    assert all(line.endswith(",true") for line in lines[1:])
    wrong = (models_dir() / "hermes-core.toml").read_text().replace("value = 1.008", "value = 2.0")
    path = tmp_path / "wrong.toml"
    path.write_text(wrong)
    capsys.readouterr()
    assert main(["validate", "--chip", str(path)]) == 1
    assert "FAIL" in capsys.readouterr().out
