"""The main job: a workload mapped on a chip, timed, costed and evaluated, as a report.

Writes into an explicit output directory:
- summary.md (report.html: the same with the pictures embedded): the chip (from its preset),
  the mapping table, latency / throughput / energy /
  power / efficiency with the bottleneck, accuracy against float over time, per-layer errors
  and clipping, links to the pictures;
- mapping.png (cores coloured by layer), utilisation.png (array busy per core), layers.png
  (when each layer works on the first sample; each layer's busiest resource per sample), energy.png
  (energy per sample by part), accuracy.png (accuracy vs time since programming);
- accuracy.csv (workload,device,t_s,accuracy,float_accuracy,agreement), layers.csv,
  mapping.csv, components.csv (busy fractions), trace.json (Perfetto), run.json.
"""

from __future__ import annotations

import csv
import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from archsim import __version__
from archsim.api import RunResult, simulate
from archsim.checks import require_finite
from archsim.evaluate import EvalResult, EvalSettings
from archsim.html_report import markdown_to_html
from archsim.mapping.report import format_mapping, mapping_rows, plot_mapping
from archsim.outputs import atomic_dir, atomic_file
from archsim.sim.core import CoreTiming
from archsim.sim.metrics import Metrics
from archsim.sim.timeline import plot_layer_timing
from archsim.sim.trace import write_trace
from archsim.spec import ChipSpec, DeviceSpec
from archsim.workload.catalog import Dataset
from archsim.workload.ir import Workload

DEFAULT_TIMES_S = (1.0, 3600.0, 86400.0, 31536000.0)
"""1 s, 1 hour, 1 day, 1 year."""


def chip_figures(chip: ChipSpec) -> list[tuple[str, str]]:
    """(name, value) pairs read off the preset alone, no simulation."""
    xb, inp, adc = chip.crossbar, chip.input, chip.adc
    mvm_ns = CoreTiming.of(chip).mvm_latency_ns
    ops = 2 * xb.rows * xb.cols
    return [
        ("cores", f"{chip.cores.count} on a {chip.cores.grid[0]}x{chip.cores.grid[1]} grid"),
        ("crossbar", f"{xb.rows} x {xb.cols} weights, {xb.devices_per_weight} devices per weight"),
        ("weights on chip", f"{chip.cores.count * chip.weights_per_core:,}"),
        ("device", f"{chip.device.name} (model {type(chip.device.model).__name__})"),
        ("input", f"{inp.encoding}, {inp.bits} bits, {inp.ns_per_lsb:g} ns/LSB, {inp.read_mode}"),
        ("ADC", f"{adc.count} per core, {adc.bits} bits, {chip.cols_per_adc} column(s) per ADC"),
        ("one MVM (preset timing)", f"{mvm_ns:g} ns"),
        ("peak, all cores busy", f"{chip.cores.count * ops / mvm_ns / 1e3:.1f} TOPS"),
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


def write_run_report(
    chip: ChipSpec,
    workload: Workload,
    dataset: Dataset,
    out_dir: Path,
    *,
    device: DeviceSpec | None = None,
    times_s: Sequence[float] = DEFAULT_TIMES_S,
    seed: int = 0,
    samples: int = 16,
    chunk: int = 1,
    settings: EvalSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """One full run (accuracy at every time, timing and energy for `samples` streamed samples),
    written into `out_dir` (atomically: into a temporary directory beside it, renamed into
    place at the end; an earlier report in `out_dir` is replaced)."""
    result = simulate(
        chip,
        workload,
        mode="full",
        samples=samples,
        dataset=dataset,
        device=device,
        t_inference_s=tuple(times_s),
        seed=seed,
        chunk=chunk,
        eval_settings=settings,
        progress=progress,
    )
    with atomic_dir(out_dir) as tmp:
        _write_files(
            chip,
            workload,
            result,
            tmp,
            times_s=times_s,
            seed=seed,
            samples=samples,
            chunk=chunk,
            settings=settings,
        )
    return result


def _write_files(chip, workload, result, out_dir, *, times_s, seed, samples, chunk, settings):
    acc, m, mapping = result.accuracy, result.metrics, result.mapping
    plot_mapping(mapping, out_dir / "mapping.png")
    _plot_accuracy(acc, out_dir / "accuracy.png")
    _plot_energy(m, out_dir / "energy.png", f"{workload.name} on {chip.name}")
    _plot_utilisation(result, out_dir / "utilisation.png")
    plot_layer_timing(
        result.sim.recorder.to_frame(),
        m.samples,
        m.period_ns,
        f"{workload.name} on {chip.name}",
        out_dir / "layers.png",
    )
    write_csv(accuracy_rows(acc), out_dir / "accuracy.csv")
    write_csv(mapping_rows(mapping), out_dir / "mapping.csv")
    write_csv(
        [{"t_s": p.t_s, **asdict(s)} for p in acc.points for s in p.layers], out_dir / "layers.csv"
    )
    write_csv(m.utilisation.to_dict("records"), out_dir / "components.csv")
    write_trace(result.sim.recorder.to_frame(), out_dir / "trace.json")
    summary = _summary(chip, result)
    (out_dir / "summary.md").write_text(summary)
    title = f"archsim: {workload.name} on {chip.name}"
    (out_dir / "report.html").write_text(markdown_to_html(summary, out_dir, title))
    run = {
        "chip": chip.name,
        "workload": workload.name,
        "workload_source": workload.source,
        "device": acc.device,
        "dataset": acc.dataset,
        "samples_evaluated": acc.samples,
        "samples_timed": samples,
        "chunk": chunk,
        "times_s": list(times_s),
        "seed": seed,
        "settings": asdict(settings or EvalSettings()),
        "activity": result.activity,
        "archsim": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")


def format_metrics(m: Metrics) -> str:
    """The timing and energy answers as aligned text."""
    lines = [
        f"latency (first sample)    {m.latency_ns / 1e3:10.2f} us",
        f"period{' (steady state)' if m.steady_state else ' (run / samples)'}"
        f"{'     ' if m.steady_state else '   '}{m.period_ns / 1e3:10.2f} us per sample "
        f"({m.throughput_per_s:,.0f} samples/s)",
        f"effective throughput      {m.effective_tops:10.3f} TOPS "
        f"({m.ops_per_sample / 1e6:,.1f} MOPs per sample)",
        f"energy per sample         {m.energy_per_sample_pj / 1e6:10.3f} uJ",
        f"average power             {m.average_power_w:10.3f} W",
        f"efficiency                {_or_na(m.tops_per_w, '10.2f'):>10} TOPS/W, "
        f"{m.tops_per_mm2:.3f} TOPS/mm2",
        f"bottleneck                {m.bottleneck}",
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


def _or_na(value: float | None, spec: str) -> str:
    """`value` formatted, or "n/a" when it has none."""
    return "n/a" if value is None else format(value, spec)


def _plot_energy(m: Metrics, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = {k: v / 1e6 for k, v in m.energy_breakdown_pj.items() if v > 0}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(parts), list(parts.values()), color="tab:orange")
    ax.set_ylabel("energy per sample (uJ)")
    ax.set_title(f"{title}: {m.energy_per_sample_pj / 1e6:.3g} uJ per sample")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_utilisation(result: RunResult, path: Path) -> None:
    """Busy fraction of each core's array in the steady state, on the chip floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chip = result.chip
    util = result.metrics.utilisation
    arrays = util[util.op == "mvm"].groupby("component").busy.sum()
    rows, cols = chip.cores.grid
    grid = np.full((rows, cols), np.nan)
    for core in range(chip.cores.count):
        grid[divmod(core, cols)] = arrays.get(f"core{core}", 0.0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * cols, 0.8 + 0.6 * rows))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    for (r, c), v in np.ndenumerate(grid):
        if not np.isnan(v):
            ax.text(
                c,
                r,
                f"{v:.0%}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if v < 0.6 else "black",
            )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, label="array busy (steady state)")
    ax.set_title(f"{result.workload.name} on {chip.name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_accuracy(result: EvalResult, path: Path) -> None:
    """Accuracy, agreement with float and output similarity against time since programming."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [max(p.t_s, 0.1) for p in result.points]
    fig, ax = plt.subplots(figsize=(6, 4))
    if result.float_accuracy is not None:
        ax.plot(t, [100 * (p.accuracy or 0) for p in result.points], "o-", label="analog accuracy")
        ax.axhline(100 * result.float_accuracy, color="k", ls="--", label="float accuracy")
        ax.set_ylabel("top-1 accuracy (%)")
    ax.plot(t, [100 * p.agreement for p in result.points], "s:", label="agreement with float")
    ax.plot(
        t,
        [100 * p.similarity for p in result.points],
        "^-.",
        label="output cosine similarity to float",
    )
    if result.float_accuracy is None:
        ax.set_ylabel("agreement / similarity with float (%)")
    ax.set_xscale("log")
    ax.set_xlabel("time since programming (s)")
    ax.set_title(f"{result.workload} on {result.chip} ({result.device}), {result.samples} samples")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _summary(chip: ChipSpec, result: RunResult) -> str:
    acc, m, mapping = result.accuracy, result.metrics, result.mapping
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

![energy per sample](energy.png) ![array utilisation](utilisation.png)

![per-layer timing](layers.png)

SRAM grown so that the pipeline cannot stall for lack of a receptive field:{grown}

A timeline of the first samples is in `trace.json` (open it in https://ui.perfetto.dev).

## Accuracy over time

Device `{acc.device}`, data: {acc.dataset}, {acc.samples} samples. DAC/ADC ranges are
calibrated once at the first time on a separate calibration batch; digital ops in
{chip.ldpu.precision}.

```
{format_accuracy(acc)}
```

![accuracy over time](accuracy.png)

Per analog layer, first batch: NRMSE against the exact product on the same inputs, the part
DAC/ADC rounding alone would explain, and the clipping rates:

```
{format_layers(acc)}
```

## Sources of the preset

{sources}
"""
