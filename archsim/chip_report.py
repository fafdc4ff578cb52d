"""The main job's report for a chip preset: what the preset says and how its device ages.

Writes into an explicit output directory:
- summary.md: chip figures derived from the preset, and the MVM error of one full crossbar of
  the chip's device at its DAC/ADC precision over time, with and without drift compensation;
- device_error.csv: the error rows (device, t_s, compensation, nrmse, rmse, nrmse_std);
- device_error.png: the same as a plot;
- run.json: the resolved inputs (preset file, seed, setup) and package versions.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from archsim import __version__
from archsim.device_error import (
    DEFAULT_TIMES_S,
    DeviceErrorRow,
    DeviceErrorSetup,
    device_error,
    format_table,
)
from archsim.spec import ChipSpec


def chip_figures(chip: ChipSpec) -> list[tuple[str, str]]:
    """(name, value) pairs computed from the preset alone, no simulation."""
    xb, inp, adc = chip.crossbar, chip.input, chip.adc
    mvm_ns = inp.phases * (inp.window_ns + inp.overhead_ns) + adc.conversion_ns * chip.cols_per_adc
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


def write_chip_report(
    chip: ChipSpec,
    out_dir: Path,
    *,
    seed: int = 0,
    seeds: int = 3,
    times_s: Sequence[float] = DEFAULT_TIMES_S,
    progress: Callable[[str], None] | None = None,
) -> list[DeviceErrorRow]:
    """Run the device-error study on the chip's own crossbar and write the report files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = DeviceErrorSetup(
        rows=chip.crossbar.rows,
        cols=chip.crossbar.cols,
        input_bits=chip.input.bits,
        adc_bits=chip.adc.bits,
        devices_per_weight=chip.crossbar.devices_per_weight,
        seeds=seeds,
        ir_drop=chip.crossbar.ir_drop,
        wire_resistance_ohm=chip.crossbar.wire_resistance_ohm,
    )
    rows: list[DeviceErrorRow] = []
    for comp in (True, False):
        rows += device_error(
            chip.device, setup, times_s, compensation=comp, seed=seed, progress=progress
        )
    _write_csv(rows, out_dir / "device_error.csv")
    _plot(rows, chip, out_dir / "device_error.png")
    (out_dir / "summary.md").write_text(_summary(chip, setup, rows))
    run = {
        "chip": chip.name,
        "device": chip.device.name,
        "seed": seed,
        "setup": asdict(setup),
        "times_s": list(times_s),
        "archsim": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    return rows


def _write_csv(rows: Sequence[DeviceErrorRow], path: Path) -> None:
    lines = ["device,t_s,compensation,nrmse,rmse,nrmse_std"]
    for r in rows:
        comp = str(r.compensation).lower()
        lines.append(f"{r.device},{r.t_s:g},{comp},{r.nrmse:.6g},{r.rmse:.6g},{r.nrmse_std:.3g}")
    path.write_text("\n".join(lines) + "\n")


def _plot(rows: Sequence[DeviceErrorRow], chip: ChipSpec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for comp, style in ((True, "o-"), (False, "s--")):
        sel = [r for r in rows if r.compensation == comp]
        ax.errorbar(
            [max(r.t_s, 1e-1) for r in sel], [r.nrmse for r in sel], [r.nrmse_std for r in sel],
            fmt=style, capsize=3, label=f"drift compensation {'on' if comp else 'off'}",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("time since programming (s)")
    ax.set_ylabel("MVM NRMSE (RMSE / std of exact output)")
    ax.set_title(
        f"{chip.name}: {chip.device.name}, {chip.crossbar.rows}x{chip.crossbar.cols}, "
        f"{chip.input.bits}-bit DAC, {chip.adc.bits}-bit ADC"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _summary(chip: ChipSpec, setup: DeviceErrorSetup, rows: Sequence[DeviceErrorRow]) -> str:
    figures = "\n".join(f"| {k} | {v} |" for k, v in chip_figures(chip))
    sources = "\n".join(f"- **{k}**: {v}" for k, v in chip.sources)
    return f"""# archsim report: {chip.name}

{chip.description}

## The chip, from its preset

| quantity | value |
|---|---|
{figures}

Timing and peak throughput here are read off the preset (integration window x phases plus
conversion); they are not a simulation.

## MVM error of the device over time

One {setup.rows}x{setup.cols} crossbar of `{chip.device.name}`, \
{setup.devices_per_weight} devices per weight, {setup.input_bits}-bit DAC and \
{setup.adc_bits}-bit ADC (ranges calibrated right after programming). Weights N(0,1) clipped \
to [-1, 1], inputs U[-1, 1], {setup.vectors} vectors, mean of {setup.seeds} seeds. \
nrmse = RMSE / std of the exact outputs; rmse is in units of a full-scale input on a \
full-scale weight.

```
{format_table(rows)}
```

![MVM error over time](device_error.png)

## Sources of the preset

{sources}
"""
