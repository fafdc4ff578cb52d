"""One owner per quantity (issue 10 item 1): the area behind TOPS/mm2, one MVM's time and the
DAC's range come out the same from `run` (api.simulate), `sweep` (a runner row), `validate` and
the report, and each equals a number derived by hand for the tiny test chip."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from archsim.api import simulate
from archsim.checks import largest_code
from archsim.config import load_chip
from archsim.crossbar import program_matrix, read_state
from archsim.mvm import Converters, analog_mvm
from archsim.run_report import chip_figures, format_metrics
from archsim.spec import CrossbarSpec
from archsim.sweep.runner import _result_cells
from archsim.validate import mvm_energy_pj, peak_figures
from archsim.workload.zoo import mlp

ROOT = Path(__file__).resolve().parents[1]
TINY = Path(__file__).parent / "data" / "tiny-chip.toml"

AREA_MM2 = 4 * 0.05 + 1 * 0.02
"""Tiny chip: 4 cores of 0.05 mm2 plus one GDPU of 0.02 mm2 (cores and global units)."""
MVM_NS = 32 * 1.0 + 2.0 + 5.0 + 3 * 5.0
"""Tiny chip, one 32 x 32 MVM: a 6-bit signed PWM pulse of up to 2**5 = 32 LSBs of 1 ns plus
2 ns overhead (one phase), one 5 ns conversion round, and 32 columns on 8 ADCs = 4 rounds in
all, so 3 more of 5 ns: 54 ns."""
PEAK_TOPS = 4 * 2 * 32 * 32 / (32 * 1.0 + 2.0 + 5.0) / 1e3
"""Tiny chip flat out: 4 cores, each starting a 32 x 32 MVM (2048 ops) every 39 ns (pulse, overhead
and the first conversion round; the other three rounds overlap the next integration)."""
DAC_CODE = 31
"""Tiny chip: 6-bit signed DAC, largest code 2**5 - 1."""
MVM_PJ = 32 * DAC_CODE * 0.0824 * 2 + 32 * 31.4
"""Tiny chip, one full-scale 32 x 32 MVM: 32 rows x 31 LSBs x 0.0824 pJ in the array and as
much in the drivers, plus 32 conversions x 31.4 pJ = 1168.2816 pJ."""


def _printed(text: str, unit: str) -> tuple[float, float]:
    """The number printed before `unit` in `text`, and half a unit of its last digit."""
    m = re.search(r"([0-9][0-9.,]*)\s*" + re.escape(unit), text)
    assert m, (unit, text)
    digits = m.group(1).replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits), 0.5 * 10.0**-decimals


@pytest.fixture(scope="module")
def tiny_run():
    """One sample of one crossbar-sized linear layer on the tiny chip, timed only (full-scale
    activity, so the energy of its one MVM is the full-scale MVM energy)."""
    chip = load_chip(TINY)
    net = mlp(np.random.default_rng(0), sizes=(32, 32))
    return simulate(chip, net, mode="timing", samples=1, seed=0)


def test_run_sweep_validate_and_report_agree_on_area_mvm_time_and_dac_range(tiny_run):
    """Area, one MVM's time and the DAC range, read from each of the four places."""
    r = tiny_run
    chip, m = r.chip, r.metrics
    peak = peak_figures(chip)
    row = _result_cells(r)
    figures = dict(chip_figures(chip))
    report = format_metrics(m)

    # area: the basis of TOPS/mm2 in run, sweep, validate and the report's printed figure
    assert chip.compute_area_mm2 == pytest.approx(AREA_MM2, rel=1e-12)
    assert m.effective_tops / m.tops_per_mm2 == pytest.approx(AREA_MM2, rel=1e-9)
    assert row["area_mm2"] == pytest.approx(AREA_MM2, rel=1e-12)
    assert row["tops_per_mm2"] == m.tops_per_mm2
    assert peak.peak_tops / peak.tops_per_mm2 == pytest.approx(AREA_MM2, rel=1e-9)
    printed, half_digit = _printed(report, "TOPS/mm2")
    assert abs(printed - m.effective_tops / AREA_MM2) <= half_digit

    # one MVM: from the run's own event rows (array start to last conversion), validate's
    # single-MVM run and the report's chip figure
    rows = r.sim.recorder.to_frame()
    start = rows[rows.op == "mvm"].t0_ns.min()
    end = rows[rows.op.isin(["mvm", "adc"])].t1_ns.max()
    assert end - start == pytest.approx(MVM_NS, rel=1e-12)
    assert peak.mvm_latency_ns == pytest.approx(MVM_NS, rel=1e-12)
    assert _printed(figures["one MVM, input to converted output"], "ns")[0] == pytest.approx(MVM_NS)
    # peak: the report prints validate's figure, set by the array period, not by the latency
    assert peak.peak_tops == pytest.approx(PEAK_TOPS, rel=1e-12)
    printed, half_digit = _printed(figures["peak, all cores doing back-to-back MVMs"], "TOPS")
    assert abs(printed - PEAK_TOPS) <= half_digit

    # DAC range: full-scale pulses in the run's energy (per sample = one MVM), validate's
    # full-scale MVM energy, the report's input width, and the functional half's codes
    assert m.energy_breakdown_pj["dac"] == pytest.approx(32 * DAC_CODE * 0.0824, rel=1e-9)
    one_mvm = sum(m.energy_breakdown_pj[k] for k in ("array", "dac", "adc"))
    assert one_mvm == pytest.approx(MVM_PJ, rel=1e-9)
    assert mvm_energy_pj(chip) == pytest.approx(MVM_PJ, rel=1e-9)
    assert f"{chip.input.bits} bits" in figures["input"] and chip.input.bits == 6
    assert largest_code(chip.input.bits) == DAC_CODE


def test_the_functional_dac_rounds_to_the_same_largest_code(ideal, rng):
    """One weight of 1 on an ideal device, a 6-bit DAC of range 1, an ideal ADC: the input
    0.5 becomes code round(0.5 x 31) = 16, read back as 16/31 = 0.516129 (a largest code of
    32 or 63 would give 0.5)."""
    p = program_matrix(
        np.ones((1, 1)), CrossbarSpec(rows=1, cols=1, devices_per_weight=2), ideal, rng
    )
    state = read_state(p, 0.0, rng)
    y = analog_mvm(np.array([[0.5]]), state, Converters(6, 1.0, 0, None)).y
    assert y[0, 0] == pytest.approx(16 / DAC_CODE, rel=1e-6)


_LARGEST_CODE = re.compile(
    r"(2\s*\*\*\s*\(?[^)\n]*?-\s*1\s*\)?|1\s*<<\s*\([^)\n]*-\s*1\s*\))\s*\)?\s*-\s*1\b"
)
"""2**(b - 1) - 1 or (1 << (b - 1)) - 1 written out: the largest code computed in place."""


def _code_only(source: str) -> str:
    """The source without comments and strings (docstrings may quote the formula)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    skip = (tokenize.COMMENT, tokenize.STRING)
    return " ".join(t.string for t in tokens if t.type not in skip)


def test_the_largest_code_is_written_once():
    """`checks.largest_code` is the one definition: no other module computes 2**(b-1) - 1."""
    defs, inline = [], []
    for path in sorted((ROOT / "archsim").rglob("*.py")):
        text = path.read_text()
        rel = str(path.relative_to(ROOT))
        defs += [rel for _ in re.finditer(r"^def largest_code\(", text, re.M)]
        if rel != "archsim/checks.py":
            inline += [f"{rel}: {m.group(0)}" for m in _LARGEST_CODE.finditer(_code_only(text))]
    assert defs == ["archsim/checks.py"]
    assert inline == []
    for line, found in (  # the pattern finds what it should, in tokenized code
        ("q = 2 ** (bits - 1) - 1", True),
        ("q=2**(b-1)-1", True),
        ("q = (1 << (bits - 1)) - 1", True),
        ("steps = 1 << (bits - 1)", False),  # a step count is no code
        ('text = "2 ** (b - 1) - 1"', False),
    ):
        assert bool(_LARGEST_CODE.search(_code_only(line + "\n"))) == found, line
