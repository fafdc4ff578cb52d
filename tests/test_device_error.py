"""The device-error study: published trends and numbers, determinism, the CSV."""

from __future__ import annotations

import itertools

import pytest

from archsim.cli import main
from archsim.config import load_device
from archsim.device_error import DeviceErrorSetup, device_error
from archsim.errors import DeviceModelError

YEAR = 31_536_000.0


def test_pcm_error_rises_monotonically_with_compensation():
    """PCM with global drift compensation: error grows from 1 s to 1 year."""
    setup = DeviceErrorSetup(rows=128, cols=128, seeds=2, vectors=500)
    rows = device_error(load_device("pcm"), setup, (1.0, 3600.0, 86400.0, YEAR), compensation=True)
    errors = [r.nrmse for r in rows]
    assert all(b > a for a, b in itertools.pairwise(errors)), errors


def test_compensation_lowers_pcm_error():
    setup = DeviceErrorSetup(rows=128, cols=128, seeds=2, vectors=500)
    pcm = load_device("pcm")
    on = device_error(pcm, setup, (86400.0, YEAR), compensation=True)
    off = device_error(pcm, setup, (86400.0, YEAR), compensation=False)
    for a, b in zip(on, off, strict=True):
        assert a.nrmse < 0.5 * b.nrmse


def test_ideal_device_without_quantization_is_exact():
    setup = DeviceErrorSetup(rows=64, cols=32, input_bits=0, adc_bits=0, seeds=1, vectors=200)
    (row,) = device_error(load_device("ideal"), setup, (0.0,))
    assert row.nrmse < 1e-5


def test_cmo_hfox_matches_falcone_2025():
    """64x64, 6-bit DAC, 8-bit ADC, no compensation: RMSE in units of full-scale input times
    full-scale weight about 0.06 at 1 s and 0.2 at 10 years (Falcone et al. 2025, Fig. 4f);
    accepted within +-50%."""
    setup = DeviceErrorSetup(rows=64, cols=64, input_bits=6, adc_bits=8)
    rows = device_error(load_device("cmo-hfox"), setup, (1.0, 10 * YEAR), compensation=False)
    assert 0.03 <= rows[0].rmse <= 0.09
    assert 0.10 <= rows[1].rmse <= 0.30
    assert rows[1].rmse > 1.5 * rows[0].rmse


def test_same_seed_same_numbers():
    setup = DeviceErrorSetup(rows=32, cols=32, seeds=1, vectors=100)
    a = device_error(load_device("pcm"), setup, (1.0, 3600.0), seed=5)
    b = device_error(load_device("pcm"), setup, (1.0, 3600.0), seed=5)
    c = device_error(load_device("pcm"), setup, (1.0, 3600.0), seed=6)
    assert a == b and a != c


def test_reram_wan2022_runs_inside_its_fit_and_refuses_outside():
    """Fitted at 1 s, 1 day and 2 days: calibrated at 1 s (not t = 0, where the model has no
    data), the error grows from 1 s to 2 days; a year is refused before anything runs."""
    setup = DeviceErrorSetup(rows=32, cols=32, seeds=1, vectors=200)
    wan = load_device("reram-wan2022")
    rows = device_error(wan, setup, (1.0, 172800.0))
    assert rows[0].nrmse < rows[1].nrmse
    with pytest.raises(DeviceModelError, match=r"modelled for 1 s <= t <= 172800 s.*t = 3\.15"):
        device_error(wan, setup, (1.0, YEAR))


def test_cli_writes_csv(tmp_path, capsys):
    csv = tmp_path / "err.csv"
    argv = ["device-error", "--device", "cmo-hfox", "--size", "16x16", "--seeds", "1",
            "--times", "1,3600", "--no-compensation", "--csv", str(csv)]  # fmt: skip
    assert main(argv) == 0
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("device,t_s,compensation,nrmse")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["cmo-hfox", "1", "false"],
        ["cmo-hfox", "3600", "false"],
    ]
    assert all(0 < float(line.split(",")[3]) < 1 for line in lines[1:])
    assert "cmo-hfox" in capsys.readouterr().out
