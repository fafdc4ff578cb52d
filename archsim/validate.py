"""Simulated against published: peak throughput, efficiency, density and MVM latency.

The peak figures come from a component-level SimPy run: every core of the chip does back-to-
back MVMs on full-scale inputs already in its SRAM (the "maximum utilization" of LG23 Table
I), so the array is the only limit. TOPS/W counts the energy of the MVM path only (array,
input drivers, ADCs), as the published figures do. Figures a preset marks `check = false`
(secondary sources, whole-network numbers) are reported with their ratio but never fail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import simpy

from archsim.checks import require_finite
from archsim.sim.core import Core, CoreTiming
from archsim.sim.recorder import Recorder
from archsim.spec import ChipSpec

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


@dataclass(frozen=True, slots=True)
class ValidationRow:
    preset: str
    metric: str
    read_mode: str
    published: float
    simulated: float | None
    """None when the simulation has no value for the metric (TOPS/W without energies)."""
    ratio: float | None
    ok: bool | None
    """None for rows reported without a pass/fail (secondary sources)."""
    source: str


def peak_figures(chip: ChipSpec) -> PeakFigures:
    """Run every core flat out on full-scale inputs and measure."""
    env = simpy.Environment()
    rec = Recorder()
    timing = CoreTiming.of(chip)
    cores = [Core(env, timing, i, chip.memory.sram_bytes_per_core, rec)
             for i in range(chip.cores.count)]  # fmt: skip
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
        chip.input.read_mode, tops, ops / energy if energy else None,
        tops / (chip.cores.count * chip.cores.area_mm2), _single_mvm_latency(chip), energy,
    )  # fmt: skip


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
    """Compare the preset's published figures with the simulation (whole-network figures
    run the workload in timing mode for `samples` samples)."""
    rows = []
    peaks: dict[str, PeakFigures] = {}
    for pub in chip.published:
        mode = pub.read_mode or chip.input.read_mode
        if mode not in peaks:
            peaks[mode] = peak_figures(replace(chip, input=replace(chip.input, read_mode=mode)))
        sim = getattr(peaks[mode], pub.metric)
        ratio = None if sim is None else require_finite(pub.metric, sim / pub.value)
        ok = ratio is not None and abs(ratio - 1) <= pub.tolerance
        rows.append(ValidationRow(chip.name, pub.metric, mode, pub.value, sim, ratio, ok,
                                  _source(chip, pub)))  # fmt: skip
    runs = {}
    for i, pub in enumerate(chip.published_workloads):
        if pub.workload not in runs:
            from archsim.api import simulate
            from archsim.workload.catalog import load_workload

            runs[pub.workload] = simulate(chip, load_workload(pub.workload), mode="timing",
                                          samples=samples).metrics  # fmt: skip
        m = runs[pub.workload]
        sim = getattr(m, pub.metric)
        ratio = None if sim is None else require_finite(pub.metric, sim / pub.value)
        src = next((s for k, s in chip.sources if k == f"published_workloads[{i}]"), "")
        rows.append(ValidationRow(chip.name, f"{pub.workload} {pub.metric}", chip.input.read_mode,
                                  pub.value, sim, ratio, None,
                                  f"{src}; bound by {m.bottleneck}"))  # fmt: skip
    return rows


def _source(chip: ChipSpec, pub) -> str:
    return next((s for k, s in chip.sources if k == f"published[{chip.published.index(pub)}]"), "")


def format_rows(rows: list[ValidationRow]) -> str:
    lines = [f"{'preset':<12} {'metric':<30} {'mode':<8} {'published':>10} {'simulated':>10} "
             f"{'ratio':>7} {'ok':>5}"]  # fmt: skip
    for r in rows:
        ok = "info" if r.ok is None else ("pass" if r.ok else "FAIL")
        sim = "n/a" if r.simulated is None else format(r.simulated, ".4g")
        ratio = "n/a" if r.ratio is None else format(r.ratio, ".3f")
        lines.append(f"{r.preset:<12} {r.metric:<30} {r.read_mode:<8} {r.published:>10.4g} "
                     f"{sim:>10} {ratio:>7} {ok:>5}")  # fmt: skip
    return "\n".join(lines)
