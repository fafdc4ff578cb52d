"""The main job's report: a full-mode RunResult (mapped, timed, costed and evaluated) written
into an explicit output directory by `write_report`; nothing is simulated here.

- summary.md (report.html: the same with the pictures embedded): the chip (from its preset),
  the mapping table, latency / throughput / energy / steady-state and average power /
  efficiency with the bottleneck, accuracy against float over time, per-layer errors and
  clipping, links to the pictures;
- pictures (report_figures, mapping.report, sim.timeline): mapping.png, utilisation.png,
  layers.png, energy.png, accuracy.png;
- accuracy.csv (workload,device,t_s,accuracy,float_accuracy,agreement,cosine), layers.csv,
  mapping.csv, nodes.csv (every AIMC core and digital unit: kind, router, what it holds or
  runs, load), components.csv (busy fractions), trace.json (Perfetto), run.json (what was run
  and the metrics).

reports/README.md describes every file.
"""

from __future__ import annotations

import csv
import json
import platform
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from archsim import __version__
from archsim.api import RunResult
from archsim.checks import require_finite
from archsim.errors import ArchsimError
from archsim.evaluate import EvalResult, EvalSettings
from archsim.html_report import markdown_to_html
from archsim.mapping.report import format_mapping, mapping_rows, node_rows, plot_mapping
from archsim.outputs import atomic_dir, atomic_file
from archsim.report_figures import accuracy_figure, energy_figure, save, utilisation_figure
from archsim.sim.metrics import Metrics
from archsim.sim.timeline import plot_layer_timing
from archsim.sim.trace import write_trace
from archsim.spec import ChipSpec
from archsim.spec.digital import digital_units
from archsim.workload.ir import Workload
from archsim.workload.zoo import ZOO

DEFAULT_TIMES_S = (1.0, 3600.0, 86400.0, 31536000.0)
"""1 s, 1 hour, 1 day, 1 year."""


def chip_figures(chip: ChipSpec) -> list[tuple[str, str]]:
    """(name, value) pairs of the preset: its structure, and the peak figures `archsim validate`
    measures (one core-level run, the same numbers as the validation table)."""
    from archsim.validate import peak_figures

    xb, inp, adc = chip.crossbar, chip.input, chip.adc
    peak = peak_figures(chip)
    nodes = [
        (
            f"digital nodes: {d.kind}",
            f"{d.count} at {d.clock_ghz:g} GHz; per cycle {d.macs_per_cycle:g} MAC, "
            f"{d.softmax_per_cycle:g} softmax, {d.norm_per_cycle:g} norm, "
            f"{d.elementwise_per_cycle:g} element-wise; {d.sram_bytes:,} B SRAM",
        )
        for d in chip.digital_nodes
    ]
    return [
        *nodes,
        ("cores", f"{chip.cores.count} on a {chip.cores.grid[0]}x{chip.cores.grid[1]} grid"),
        (
            "crossbar",
            f"{xb.rows} x {xb.cols} weights, {xb.devices_per_weight} devices per weight"
            + (
                f", {xb.weight_sets} weight sets (switch {xb.set_switch_ns:g} ns, "
                f"{xb.set_switch_energy_pj:g} pJ)"
                if xb.weight_sets > 1
                else ""
            ),
        ),
        ("weights on chip", f"{chip.weight_capacity:,}"),
        ("device", f"{chip.device.name} (model {type(chip.device.model).__name__})"),
        ("input", f"{inp.encoding}, {inp.bits} bits, {inp.ns_per_lsb:g} ns/LSB, {inp.read_mode}"),
        ("ADC", f"{adc.count} per core, {adc.bits} bits, {chip.cols_per_adc} column(s) per ADC"),
        ("one MVM, input to converted output", f"{peak.mvm_latency_ns:g} ns"),
        ("peak, all cores doing back-to-back MVMs", f"{peak.peak_tops:.4g} TOPS"),
        ("core area / die area", f"{chip.cores.area_mm2:g} mm2 / {chip.die_area_mm2:g} mm2"),
    ]


def accuracy_rows(result: EvalResult) -> list[dict]:
    """The CSV rows of `archsim evaluate` (accuracies as fractions; empty when no labels)."""
    return [
        {
            "workload": result.workload,
            "device": result.device,
            "t_s": p.t_s,
            "accuracy": "" if p.accuracy is None else p.accuracy,
            "float_accuracy": "" if result.float_accuracy is None else result.float_accuracy,
            "agreement": p.agreement,
            "cosine": p.similarity,
        }
        for p in result.points
    ]


def format_accuracy(result: EvalResult) -> str:
    """Accuracy, agreement with float and output cosine similarity at each time."""
    lines = [
        f"{'t_s':>12} {'accuracy':>9} {'float':>9} {'agreement':>10} {'cosine':>8} {'wall_s':>7}"
    ]
    for p in result.points:
        acc = "-" if p.accuracy is None else f"{p.accuracy:.4f}"
        fl = "-" if result.float_accuracy is None else f"{result.float_accuracy:.4f}"
        lines.append(
            f"{p.t_s:>12g} {acc:>9} {fl:>9} {p.agreement:>10.4f} "
            f"{p.similarity:>8.4f} {p.wall_s:>7.2f}"
        )
    return "\n".join(lines)


def format_layers(result: EvalResult) -> str:
    p = result.points[0]
    lines = [
        f"at t = {p.t_s:g} s:",
        f"{'layer':<16} {'nrmse':>8} {'quant-only':>10} {'DAC clip':>9} {'ADC clip':>9}",
    ]
    for s in p.layers:
        lines.append(
            f"{s.layer:<16} {s.nrmse:>8.4f} {s.quantization_nrmse:>10.4f} "
            f"{s.input_clip_rate:>9.2e} {s.output_clip_rate:>9.2e}"
        )
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    """Rows as a CSV file, written atomically (a temporary file renamed onto `path`); a
    non-finite number is refused before anything is written."""
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float):
                require_finite(f"{path.name}: {key}", value)
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


def write_report(result: RunResult, out_dir: Path) -> None:
    """Write the report of a full-mode run (`simulate(..., mode="full")`) into `out_dir`,
    atomically: into a temporary directory beside it, renamed into place at the end (an
    earlier report in `out_dir` is replaced). Nothing is simulated here.

    Raises:
        ArchsimError: `result` lacks its functional or its timed half.
    """
    if result.accuracy is None or result.metrics is None or result.sim is None:
        raise ArchsimError(
            f"write_report: expected a full-mode run (accuracy and timing), got mode {result.mode}"
        )
    with atomic_dir(out_dir) as tmp:
        _write_files(result, tmp)


def _write_files(result: RunResult, out_dir: Path) -> None:
    chip, workload = result.chip, result.workload
    acc, m, mapping = result.accuracy, result.metrics, result.mapping
    title = f"{workload.name} on {chip.name}"
    frame = result.sim.recorder.to_frame()
    plot_mapping(mapping, out_dir / "mapping.png")
    save(accuracy_figure(acc, random_weights(workload)), out_dir / "accuracy.png")
    save(energy_figure(m, title), out_dir / "energy.png")
    save(utilisation_figure(chip, m, title), out_dir / "utilisation.png")
    plot_layer_timing(
        frame,
        m.samples,
        m.period_ns,
        title,
        out_dir / "layers.png",
        sample_span_ns=(result.sim.sample_start_ns[0], result.sim.sample_end_ns[0]),
    )
    write_csv(accuracy_rows(acc), out_dir / "accuracy.csv")
    write_csv(mapping_rows(mapping), out_dir / "mapping.csv")
    write_csv(node_rows(mapping), out_dir / "nodes.csv")
    write_csv(
        [{"t_s": p.t_s, **asdict(s)} for p in acc.points for s in p.layers], out_dir / "layers.csv"
    )
    write_csv(component_rows(chip, m), out_dir / "components.csv")
    write_trace(frame, out_dir / "trace.json")
    summary = _summary(result)
    (out_dir / "summary.md").write_text(summary)
    (out_dir / "report.html").write_text(markdown_to_html(summary, out_dir, f"archsim: {title}"))
    run = {
        "chip": chip.name,
        "workload": workload.name,
        "workload_source": workload.source,
        "device": acc.device,
        "dataset": acc.dataset,
        "samples_evaluated": acc.samples,
        "samples_timed": m.samples,
        "chunk": result.chunk,
        "times_s": list(result.times_s),
        "seed": result.seed,
        "settings": asdict(result.eval_settings or EvalSettings()),
        "activity": result.activity,
        "metrics": metrics_record(m),
        "archsim": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")


def component_rows(chip: ChipSpec, m: Metrics) -> list[dict]:
    """The utilisation table with each component's kind: "aimc core", "gdpu", a digital node
    flavour, or what the component is otherwise (off-chip port, link, chip)."""
    kinds = {u.name: u.kind for u in digital_units(chip)}
    out = []
    for row in m.utilisation.to_dict("records"):
        comp = row["component"]
        if comp in kinds:
            kind = kinds[comp]
        elif comp.startswith("core") and comp[4:].isdigit():
            kind = "aimc core"
        else:
            kind = comp.rstrip("0123456789").split(" ")[0] or comp
        out.append(
            {"component": comp, "kind": kind, **{k: v for k, v in row.items() if k != "component"}}
        )
    return out


def metrics_record(m: Metrics) -> dict:
    """The metrics as plain JSON values: every field but the utilisation table (which is
    components.csv), plus the steady-state power."""
    skip = ("utilisation", "resource_kinds")
    out = {f.name: getattr(m, f.name) for f in fields(m) if f.name not in skip}
    out["resource_kinds"] = [asdict(k) for k in m.resource_kinds]
    out["steady_state_power_w"] = m.steady_state_power_w
    out["inferences_per_s"] = m.inferences_per_s
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in out.items()}


def random_weights(workload: Workload) -> bool:
    """True for a zoo network built with seeded random weights (no training, no labels): its
    float model's top-1 class says nothing, so agreement with it is not a measure."""
    entry = ZOO.get(workload.name) if workload.source.split(" ")[0] == "zoo" else None
    return entry is not None and entry.dataset is None


def format_metrics(m: Metrics) -> str:
    """The timing and energy answers as aligned text."""
    power = "power (steady state)     " if m.steady_state else "power (run / samples)    "
    lines = [
        f"latency (first sample)    {m.latency_ns / 1e3:10.2f} us",
        f"inferences/s              {m.inferences_per_s:10.4g} "
        + (
            "single stream (1 / latency of one inference alone on the chip)"
            if m.samples == 1
            else f"1 / latency of the first of {m.samples} streamed inferences (--stream 1: "
            f"one alone); pipelined {m.throughput_per_s:,.4g}/s (1 / period)"
        ),
        f"period{' (steady state)' if m.steady_state else ' (run / samples)'}"
        f"{'     ' if m.steady_state else '   '}{m.period_ns / 1e3:10.2f} us per sample "
        f"({m.throughput_per_s:,.0f} samples/s)",
        f"effective throughput      {m.effective_tops:10.4g} TOPS "
        f"({m.ops_per_sample / 1e6:,.1f} MOPs per sample"
        + (
            f", {2 * m.digital_macs / m.samples / 1e6:,.1f} of them on digital units)"
            if m.digital_macs
            else ")"
        ),
        f"energy per sample         {m.energy_per_sample_pj / 1e6:10.4g} uJ",
        f"{power} {m.steady_state_power_w:10.4g} W (energy per sample / period)",
        f"average power (whole run) {m.average_power_w:10.4g} W (over {m.samples} samples, "
        "pipeline fill and drain included)",
        f"efficiency                {_or_na(m.tops_per_w, '10.4g'):>10} TOPS/W "
        f"(throughput / {'steady-state' if m.steady_state else 'run'} power), "
        f"{m.tops_per_mm2:.4g} TOPS/mm2",
        f"area                      {m.area_mm2:10.4g} mm2 of compute units (cores, global "
        f"units, digital nodes; the TOPS/mm2 basis) on a {m.die_area_mm2:g} mm2 die",
        f"busiest stage             {m.bottleneck}",
        f"bottleneck                {m.bottleneck_kind}",
        f"input activity            {m.activity_basis}",
        *(
            [
                f"per time step             {m.step_latency_ns / 1e3:10.3f} us latency, "
                f"{m.step_period_ns / 1e3:.3f} us period, {m.step_energy_pj / 1e6:.3f} uJ "
                f"({m.steps_per_sample} recurrent steps per sample)"
            ]
            if m.steps_per_sample
            else []
        ),
        *(
            []
            if m.steady_state
            else [
                "(no pipeline steady state: fewer than 4 samples streamed, or a segmented "
                "run with weight reloads)"
            ]
        ),
        "energy per sample by part: "
        + ", ".join(f"{k} {v / 1e6:.3g} uJ" for k, v in m.energy_breakdown_pj.items() if v),
    ]
    return "\n".join(lines)


def _measures_note(result: RunResult) -> str:
    """What the accuracy measures mean for this network and how sure they are."""
    cosine = "the cosine is the mean over samples of the cosine between analog and float outputs"
    if random_weights(result.workload):
        return (
            f"\n**{result.workload.name} has random weights**: its float model is untrained, so "
            "its top-1 class carries no information (a random network often picks the same class "
            "for every input), and agreement with float is not a meaningful measure. The "
            f"output cosine similarity to float is the measure of analog error here; {cosine}. "
            "accuracy.png shows only the cosine.\n"
        )
    return (
        "\nIn accuracy.png the error bars are 95 % Wilson intervals over the "
        f"{result.accuracy.samples} samples (accuracy and agreement are fractions of samples); "
        f"{cosine}.\n"
    )


def _or_na(value: float | None, spec: str) -> str:
    """`value` formatted, or "n/a" when it has none."""
    return "n/a" if value is None else format(value, spec)


def _summary(result: RunResult) -> str:
    chip, acc, m, mapping = result.chip, result.accuracy, result.metrics, result.mapping
    figures = "\n".join(f"| {k} | {v} |" for k, v in chip_figures(chip))
    sources = "\n".join(f"- **{k}**: {v}" for k, v in chip.sources)
    grown = "".join(f"\n- {g}" for g in result.sim.enlarged_buffers) or " none"
    return f"""# archsim report: {acc.workload} on {chip.name}

{chip.description}

## The chip, from its preset

| quantity | value |
|---|---|
{figures}

## Mapping

```
{format_mapping(mapping)}
```

![mapping on the chip floor](mapping.png)

## Timing and energy

{m.samples} samples streamed through the pipeline (SimPy, one event per MVM); array and PWM
energy from the input activity of each layer at t = {result.t_inference_s:g} s:
{m.activity_basis}.

```
{format_metrics(m)}
```

Throughput, efficiency and the steady-state power describe the pipeline once it is full:
throughput / steady-state power = TOPS/W. The average power is the whole run's energy over its
time; it includes filling and draining the pipeline, so it changes with the number of samples
streamed (`--stream`).

![energy per sample](energy.png)

![array utilisation per core](utilisation.png)

Per-layer timing. Left: when each layer works on the first sample, from its first input byte;
the last bar is the output's off-chip latency, so the left panel ends at the latency above.
Right: per layer, the busy time per sample of its busiest resource, against the period.

![per-layer timing](layers.png)

SRAM grown so that the pipeline cannot stall for lack of a receptive field:{grown}

A timeline of the first samples is in `trace.json` (open it in https://ui.perfetto.dev): one
track per resource (a core's array, ADC bank and LDPU, each link, each GDPU, the off-chip
port).

## Accuracy over time

Device `{acc.device}`, data: {acc.dataset}, {acc.samples} samples. DAC/ADC ranges are
calibrated once at the first time on a separate calibration batch; digital ops in
{chip.ldpu.precision}.

```
{format_accuracy(acc)}
```
{_measures_note(result)}
![accuracy over time](accuracy.png)

Per analog layer, first batch: NRMSE against the exact product on the same inputs, the part
DAC/ADC rounding alone would explain, and the clipping rates:

```
{format_layers(acc)}
```

## Sources of the preset

{sources}
"""
