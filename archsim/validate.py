"""Simulated against published: peak throughput, efficiency, density and MVM latency.

The peak figures come from a component-level SimPy run: every core of the chip does back-to-
back MVMs on full-scale inputs already in its SRAM (the "maximum utilization" of LG23 Table
I), so the array is the only limit. TOPS/W counts the energy of the MVM path only (array,
input drivers, ADCs), as the published figures do.

Each figure says whether a preset constant was fitted to it (a consistency check that never
fails the run) or it is predicted; whole-network figures are also checked against the bounds
the published peaks set. Disputed figures are shown with their ratio and never fail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import simpy

from archsim.checks import require_finite
from archsim.sim.core import Core, CoreTiming
from archsim.sim.recorder import Recorder
from archsim.spec import ChipSpec
from archsim.spec.published import SINGLE_STREAM

PEAK_MVMS = 32
"""Back-to-back MVMs per core in the peak run."""


@dataclass(frozen=True, slots=True)
class PeakFigures:
    """What the peak run measured, in one read mode."""

    read_mode: str
    peak_tops: float
    tops_per_w: float | None
    """None when the MVM path costs no energy in the preset (no ratio to report)."""
    tops_per_mm2: float
    mvm_latency_ns: float
    mvm_energy_pj: float
    """Energy of one full-scale MVM of one core (array + drivers + ADCs)."""


GATED = ("predicted", "bound")
"""Row bases whose failure fails `archsim validate`: predictions and physical bounds. A fitted
row only checks that the constants derived from its figure reproduce it."""


@dataclass(frozen=True, slots=True)
class ValidationRow:
    preset: str
    metric: str
    read_mode: str
    published: float
    """The published figure, or for a bound row the bound the simulation must not beat."""
    simulated: float | None
    """None when the simulation has no value for the metric (TOPS/W without energies)."""
    ratio: float | None
    ok: bool | None
    """None for rows reported without a pass/fail (disputed figures)."""
    source: str
    basis: str = "predicted"
    """"fitted", "predicted" (see `PublishedSpec.basis`) or "bound" (a physical limit)."""
    note: str = ""

    @property
    def gated(self) -> bool:
        """Whether a failure of this row fails the validation."""
        return self.basis in GATED

    @property
    def status(self) -> str:
        if self.ok is None:
            return "disputed"
        return "pass" if self.ok else ("FAIL" if self.gated else "fail")


def failed(rows: list[ValidationRow]) -> list[ValidationRow]:
    """Gated rows that fail: predictions off by more than their tolerance, broken bounds."""
    return [r for r in rows if r.gated and r.ok is False]


def peak_figures(chip: ChipSpec) -> PeakFigures:
    """Run every core flat out on full-scale inputs and measure."""
    env = simpy.Environment()
    rec = Recorder()
    timing = CoreTiming.of(chip)
    cores = [
        Core(env, timing, i, chip.memory.sram_bytes_per_core, rec) for i in range(chip.cores.count)
    ]
    done: list[float] = []

    def stream(core: Core):
        for i in range(PEAK_MVMS):
            yield from core.integrate("peak", i, 1, 1)
            env.process(core.convert_rest("peak", i, 1))
        done.append(env.now)

    for core in cores:
        env.process(stream(core))
    env.run()
    starts = [r[0] for r in rec.rows if r[3] == "mvm"]
    ops = 2 * chip.crossbar.rows * chip.crossbar.cols
    period = (max(done) - min(starts)) / PEAK_MVMS
    tops = chip.cores.count * ops / period / 1e3
    energy = mvm_energy_pj(chip)
    return PeakFigures(
        chip.input.read_mode,
        tops,
        ops / energy if energy else None,
        tops / chip.compute_area_mm2,
        _single_mvm_latency(chip),
        energy,
    )


def mvm_energy_pj(chip: ChipSpec, activity: float = 1.0) -> float:
    """Array, driver and ADC energy of one MVM over the full crossbar."""
    xb, inp = chip.crossbar, chip.input
    lsb = xb.rows * activity * inp.pulse_lsbs * inp.phases
    drive = lsb * (xb.energy_pj_per_row_lsb + inp.energy_pj_per_row_lsb)
    return drive + xb.cols * inp.phases * chip.adc.energy_pj


def _single_mvm_latency(chip: ChipSpec) -> float:
    """One MVM on an idle core, from the array request to the last conversion."""
    env = simpy.Environment()
    core = Core(env, CoreTiming.of(chip), 0, chip.memory.sram_bytes_per_core, Recorder())
    end = []

    def one():
        yield from core.integrate("latency", 0, 1, 1)
        yield from core.convert_rest("latency", 0, 1)
        end.append(env.now)

    env.process(one())
    env.run()
    return end[0]


def validate(chip: ChipSpec, samples: int = 16) -> list[ValidationRow]:
    """Compare the preset's published figures with the simulation; whole-network figures run
    the workload in timing mode for `samples` samples, and are also checked against the bounds
    ops / published peak TOPS and ops / published peak TOPS/W in every read mode."""
    rows = []
    peaks: dict[str, PeakFigures] = {}
    for i, pub in enumerate(chip.published):
        mode = pub.read_mode or chip.input.read_mode
        if mode not in peaks:
            peaks[mode] = peak_figures(_in_mode(chip, mode))
        sim = getattr(peaks[mode], pub.metric)
        ratio = None if sim is None else require_finite(pub.metric, sim / pub.value)
        ok = ratio is not None and bool(abs(ratio - 1) <= pub.tolerance)
        src = _source(chip, f"published[{i}]")
        rows.append(
            ValidationRow(
                chip.name, pub.metric, mode, pub.value, sim, ratio, ok, src, pub.basis, pub.note
            )
        )
    runs: dict[tuple[str, str, int], object] = {}
    for i, pub in enumerate(chip.published_workloads):
        mode = pub.read_mode or chip.input.read_mode
        m = _run(chip, pub.workload, mode, 1 if pub.metric in SINGLE_STREAM else samples, runs)
        sim = getattr(m, pub.metric)
        ratio = require_finite(pub.metric, sim / pub.value)
        ok = None if pub.disputed else bool(abs(ratio - 1) <= pub.tolerance)
        src = _source(chip, f"published_workloads[{i}]")
        rows.append(
            ValidationRow(
                chip.name,
                f"{pub.workload} {pub.metric}",
                mode,
                pub.value,
                sim,
                ratio,
                ok,
                f"{src}; bound by {m.bottleneck}",
                pub.basis,
                pub.note,
            )
        )
    for workload in dict.fromkeys(p.workload for p in chip.published_workloads):
        rows += bound_rows(chip, workload, samples, runs)
    return rows


def bound_rows(chip: ChipSpec, workload: str, samples: int = 16, runs=None) -> list[ValidationRow]:
    """The workload's timed period and energy per sample against what the chip's published
    peaks allow: period >= ops / peak TOPS, energy >= ops / peak TOPS/W, in every read mode
    with a published peak (ops = 2 x MACs of the analog layers, a lower bound on the work; the
    products of two dynamic operands run on digital units, outside the analog peak)."""
    runs = {} if runs is None else runs
    rows = []
    for mode in (m.name for m in chip.input.read_modes):
        peaks = {
            p.metric: (i, p)
            for i, p in enumerate(chip.published)
            if (p.read_mode or chip.input.read_mode) == mode
        }
        limits = [
            ("period_ns", "peak_tops", 1e-3, "TOPS"),
            ("energy_per_sample_pj", "tops_per_w", 1.0, "TOPS/W"),
        ]
        if not any(peak in peaks for _, peak, _, _ in limits):
            continue
        m = _run(chip, workload, mode, samples, runs)
        for metric, peak, scale, unit in limits:
            if peak not in peaks:
                continue
            i, pub = peaks[peak]
            analog_ops = 2.0 * (m.macs - m.digital_macs) / m.samples
            bound = analog_ops / pub.value * scale
            sim = getattr(m, metric)
            ratio = require_finite(metric, sim / bound)
            rows.append(
                ValidationRow(
                    chip.name,
                    f"{workload} {metric} >= bound",
                    mode,
                    bound,
                    sim,
                    ratio,
                    bool(ratio >= 1 - 1e-9),
                    _source(chip, f"published[{i}]"),
                    "bound",
                    f"{analog_ops / 1e6:.1f} MOP / {pub.value:g} {unit}"
                    + (
                        f"; the simulation is bound by {m.bottleneck}"
                        if metric == "period_ns"
                        else ""
                    ),
                )
            )
    return rows


def _run(chip: ChipSpec, workload: str, mode: str, samples: int, runs: dict):
    if (workload, mode, samples) not in runs:
        from archsim.api import simulate
        from archsim.workload.catalog import load_workload

        runs[workload, mode, samples] = simulate(
            _in_mode(chip, mode), load_workload(workload), mode="timing", samples=samples
        ).metrics
    return runs[workload, mode, samples]


def _in_mode(chip: ChipSpec, mode: str) -> ChipSpec:
    return replace(chip, input=replace(chip.input, read_mode=mode))


def _source(chip: ChipSpec, key: str) -> str:
    return next((s for k, s in chip.sources if k == key), "")


def format_rows(rows: list[ValidationRow]) -> str:
    """The validation table; notes follow as numbered footnotes so the table stays narrow."""
    pw = max([len("preset"), *(len(r.preset) for r in rows)])
    mw = max([len("metric"), *(len(r.metric) for r in rows)])
    dw = max([len("mode"), *(len(r.read_mode) for r in rows)])
    lines = [
        f"{'preset':<{pw}} {'metric':<{mw}} {'mode':<{dw}} {'basis':<9} {'published':>10} "
        f"{'simulated':>10} {'ratio':>7} {'ok':>8} note"
    ]
    notes: list[str] = []
    for r in rows:
        sim = "n/a" if r.simulated is None else format(r.simulated, ".4g")
        ratio = "n/a" if r.ratio is None else format(r.ratio, ".3f")
        mark = ""
        if r.note:
            notes.append(r.note)
            mark = f"[{len(notes)}]"
        lines.append(
            f"{r.preset:<{pw}} {r.metric:<{mw}} {r.read_mode:<{dw}} {r.basis:<9} "
            f"{r.published:>10.4g} {sim:>10} {ratio:>7} {r.status:>8} {mark}"
        )
    lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    count = {b: sum(r.basis == b for r in rows) for b in ("fitted", "predicted", "bound")}
    bad = failed(rows)
    lines.append(
        f"{len(rows)} rows: {count['fitted']} fitted, {count['predicted']} predicted, "
        f"{count['bound']} bound; "
        + (
            f"{len(bad)} predicted/bound rows FAIL"
            if bad
            else "every predicted and bound row passes"
        )
    )
    lines.append(
        "basis: fitted = a preset constant was derived from the figure (consistency "
        "check, never fails the run); predicted = not used to fit anything; bound = a "
        "physical limit from the published peaks (these two fail the run)"
    )
    return "\n".join(lines)
