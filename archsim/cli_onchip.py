"""`archsim train --method agad|cttv2|ttv2|mp|analog-sgd`: on-chip (pulsed) training.

The network's static-weight products run on AnalogTiles of `--chip`'s crossbar size whose
devices follow `--device`'s `[update]` table (archsim.train.pulsed); `--onchip` names the
algorithm preset (models/onchip/, default `<method>-<device>` if shipped, else `<method>`), which
may also carry the learning rate and batch size of its set-up. After training the report gives
the curves, the pulses per device of the gradient array A and the weight array W, the trained
conductances aged with the device's inference model at `--times` (1 s .. 10 y), and the time and
energy per training sample on `--chip` (archsim.sim.training).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from archsim.errors import ArchsimError

ONCHIP_TIMES = (1.0, 3600.0, 86400.0, 31536000.0, 315360000.0)
"""Default --times of the aging evaluation: 1 s, 1 h, 1 d, 1 y, 10 y."""


def onchip_settings(method: str, device: str, preset: str | None):
    """The algorithm preset: `preset`, else `<method>-<device>` if shipped, else `<method>`;
    refused when it is a preset of another method."""
    from archsim.train.pulsed.settings import load_onchip, onchip_presets

    if preset is None:
        preset = f"{method}-{device}" if f"{method}-{device}" in onchip_presets() else method
    settings = load_onchip(preset)
    if settings.method != method:
        raise ArchsimError(
            f"--onchip {preset}: is a preset for --method {settings.method}, not {method}"
        )
    return settings


def check_args(args: argparse.Namespace):
    """Refusals before any work: (device spec, on-chip settings)."""
    from archsim.config import load_device

    if args.training:
        raise ArchsimError(f"--training: an HWA preset; --method {args.method} takes --onchip")
    if not args.device:
        raise ArchsimError(
            f"--device: required for --method {args.method} (a device preset with an [update] "
            "table, e.g. cmo-hfox)"
        )
    spec = load_device(args.device)
    if getattr(spec, "update", None) is None:
        raise ArchsimError(
            f"--device {spec.name}: has no [update] table (no pulsed-update model), so it "
            "cannot be trained on chip"
        )
    return spec, onchip_settings(args.method, spec.name, args.onchip)


def run(args: argparse.Namespace, common) -> int:
    """Train on chip, then report, age and cost. `common` is archsim.cli_train (its helpers)."""
    from archsim.config import load_chip
    from archsim.outputs import TRAIN_REPORT, atomic_file, check_dir
    from archsim.sim.training_table import network_layers
    from archsim.train.grad import value_and_grad
    from archsim.train.loop import TrainSettings, evaluate, product_rng
    from archsim.train.optim import Schedule
    from archsim.train.pulsed.aging import REFERENCES, age_and_evaluate
    from archsim.train.pulsed.product import OnChipProduct
    from archsim.train.report import write_train_report

    spec, onchip = check_args(args)
    chip = load_chip(args.chip)
    if chip.training is None:
        raise ArchsimError(
            f"--chip {chip.name}: has no [training] table (pulse_ns, digital_flops_per_ns, "
            "arrays_per_digital_unit), so its training time and energy cannot be given"
        )
    times = args.times if args.times is not None else ONCHIP_TIMES
    spec.check_times(times)
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size or onchip.batch_size or 64,
        lr=args.lr if args.lr is not None else onchip.lr or 0.01,
        momentum=args.momentum if args.momentum is not None else 0.0,
        weight_decay=args.weight_decay,
        schedule=Schedule(
            args.schedule, milestones=args.milestones, warmup_epochs=args.warmup_epochs
        ),
        train_samples=args.train_samples,
        test_samples=args.test_samples,
    )
    data_name = args.data or common.MODEL_DATA.get(args.workload)
    if data_name is None:
        raise ArchsimError(f"--data: required for --workload {args.workload}")
    stem = Path(args.workload).stem if args.workload not in common.MODEL_DATA else args.workload
    out = args.out or Path("reports") / f"train-{stem}-{args.method}"
    check_dir("--out", out, TRAIN_REPORT, make_parents=args.out is None)
    workload = common._workload(args)
    data = common._data(data_name, args.seed, workload)
    layers = network_layers(workload)
    # refuse a chip the network does not fit before training
    cost_of(chip, layers, onchip, settings.batch_size, float(onchip.pulse.desired_bl), None)
    block = (chip.crossbar.rows, chip.crossbar.cols)
    product = OnChipProduct(onchip, spec.update, block, product_rng(args.seed))
    args.lr, args.batch_size, args.training = settings.lr, settings.batch_size, onchip.name
    record = common._command(args, data_name) | {"device": spec.name, "onchip": onchip.name}
    if not (out / TRAIN_REPORT).is_file():
        with atomic_file(out / TRAIN_REPORT) as tmp:
            tmp.write_text(common.json.dumps(record, indent=1) + "\n")

    result = common.train_with_progress(workload, data, settings, args, out, product)
    product.build(workload, result.params)
    product.write_weights(result.params)
    onnx_path = common._export(workload, result.params, out / f"{stem}.onnx")
    sections, extra = [], {}
    pulses = pulse_table(product)
    sections.append(_pulse_section(pulses))
    extra["pulses_per_device"] = pulses
    if args.drift_samples:
        test = dataclasses.replace(settings, test_samples=args.drift_samples)
        rows = {
            ref: age_and_evaluate(
                product,
                spec,
                times,
                lambda: evaluate(
                    workload,
                    result.params,
                    data,
                    test,
                    product=product,
                    grad_fn=value_and_grad,
                    rng=np.random.default_rng(0),
                ),
                np.random.default_rng([args.seed, 7]),
                reference=ref,
            )
            for ref in REFERENCES
        }
        sections.append(_aging_section(rows, spec.name, args.drift_samples))
        extra["aging"] = rows["digital"]
        extra["aging_reference_column"] = rows["column"]
    n_train = min(len(data.x_train), settings.train_samples or len(data.x_train))
    split = wall_split(product, result.history[result.resumed_from :], n_train)
    extra["wall_s"] = split
    cost = training_cost_row(chip, layers, product, onchip, settings.batch_size)
    sections.append(_cost_section(cost, chip.name))
    extra["cost"] = cost
    write_train_report(
        out,
        title=f"{args.workload} on {data_name} ({args.method} on {spec.name})",
        setup=f"On-chip {args.method} (preset {onchip.name}), lr {settings.lr:g}, batch "
        f"{settings.batch_size}, {chip.name} tiles {block[0]}x{block[1]}, seed {args.seed}",
        result=result,
        onnx_name=onnx_path.name,
        record=record,
        sections=tuple(sections),
        extra=extra,
    )
    print(f"trained {workload.name} on {data_name}: {common._final(result.history[-1])}")
    for r, c in zip(extra.get("aging", []), extra.get("aging_reference_column", []), strict=True):
        print(f"  after {when(r['t_s'])}: {_metric(r)} (aged reference column: {_metric(c)})")
    print(
        f"  simulation wall time: {split['update_s']:.1f} s pulsed updates, "
        f"{split['read_s']:.1f} s analog reads, {split['train_s']:.1f} s training in all"
    )
    print(
        f"  per training sample on {chip.name}: {cost['latency_ns_per_sample']:.1f} ns, "
        f"{cost['energy_pj_per_sample']:.1f} pJ"
    )
    print(f"report written to {out / 'report.html'} (network: {onnx_path})")
    return 0


def pulse_table(product) -> dict[str, dict[str, float]]:
    """Per array ("A", "W"): mean and max pulses per device over all tiles, and the mean per
    device and update sample."""
    out: dict[str, dict[str, float]] = {}
    for blocks in product.tiles.values():
        for b in blocks:
            samples = b.tile.stats()["samples"]
            for name, counts in b.tile.pulse_counts().items():
                row = out.setdefault(name, {"devices": 0, "total": 0, "max": 0, "per_sample": 0.0})
                row["devices"] += counts.size
                row["total"] += int(counts.sum())
                row["max"] = max(row["max"], int(counts.max(initial=0)))
                row["per_sample"] += float(counts.sum()) / max(samples, 1.0)
    for row in out.values():
        row["mean"] = row["total"] / max(row["devices"], 1)
        row["per_sample"] /= max(row["devices"], 1)
    return out


def wall_split(product, history: list[dict], n_train: int) -> dict[str, float]:
    """Wall seconds of this process's training epochs (`history`, `n_train` samples each), and
    of them in the tiles' updates and reads (summed over tiles: with update threads the update
    part may exceed its share of the wall time)."""
    tiles = [b.tile for blocks in product.tiles.values() for b in blocks]
    return {
        "update_s": float(sum(t.stats()["update_s"] for t in tiles)),
        "read_s": float(sum(t.stats()["read_s"] for t in tiles)),
        "train_s": float(sum(n_train / r["samples_per_s"] for r in history)),
    }


def cost_of(chip, layers, onchip, batch: int, slots: float, per_device: float | None):
    """archsim.sim.training's cost per sample of `layers` under the algorithm of `onchip`."""
    from archsim.sim.training import schedule_for, training_cost

    every = onchip.transfer_every if onchip.method in ("ttv2", "cttv2", "agad") else 0
    if onchip.method == "mp":  # W is programmed every transfer_every mini-batches
        every = onchip.transfer_every * batch
    schedule = schedule_for(
        onchip.method, n=chip.crossbar.cols, pulse_slots=slots, transfer_every=every
    )
    if per_device is not None:
        schedule = dataclasses.replace(schedule, pulses_per_device=per_device)
    return training_cost(chip, layers, schedule, batch=batch)


def training_cost_row(chip, layers, product, onchip, batch: int) -> dict:
    """Time and energy per training sample on `chip` (archsim.sim.training) with the measured
    pulse-train length and pulses per device of the pulsed array (A, or W for analog SGD)."""
    tiles = [b.tile for blocks in product.tiles.values() for b in blocks]
    slots = float(np.mean([t.stats()["pulse_slots"] for t in tiles]))
    per_device = float(
        np.mean([t.stats()["coincidences"] / (t.shape[0] * t.shape[1]) for t in tiles])
    )
    cost = cost_of(
        chip, layers, onchip, batch, slots, per_device if onchip.method != "mp" else None
    )
    return {
        "latency_ns_per_sample": cost.latency_ns_per_sample,
        "energy_pj_per_sample": cost.energy_pj_per_sample,
        "update_ns_per_sample": cost.update_ns_per_sample,
        "latency_by_part_ns": dict(cost.latency_by_part_ns),
        "energy_by_part_pj": dict(cost.energy_by_part_pj),
    }


def when(t_s: float) -> str:
    """A time in the largest unit that divides it: 1 s, 1 h, 1 d, 10 y (else seconds)."""
    for unit, size in (("y", 31536000.0), ("d", 86400.0), ("h", 3600.0)):
        if t_s >= size and float(t_s / size).is_integer():
            return f"{t_s / size:g} {unit}"
    return f"{t_s:g} s"


def _metric(row: dict) -> str:
    if "test_perplexity" in row:
        return f"test perplexity {row['test_perplexity']:.3f}"
    return f"test accuracy {row.get('test_accuracy', float('nan')):.2f} %"


def _pulse_section(pulses: dict) -> str:
    lines = [
        "## Pulses per device (endurance)",
        "",
        "| array | devices | mean | max | per device and sample |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(pulses):
        r = pulses[name]
        lines.append(
            f"| {name} | {r['devices']} | {r['mean']:.1f} | {r['max']} | {r['per_sample']:.3g} |"
        )
    return "\n".join(lines)


def _aging_section(rows: dict[str, list[dict]], device: str, samples: int) -> str:
    lines = [
        f"## Trained conductances aged ({device} inference model, {samples} test samples)",
        "",
        "Read against a fixed digital mid-reference, and against a reference column (one device "
        "per row, programmed to the zero weight at the end of training) that ages with the array "
        "and cancels the mean relaxation.",
        "",
        "| time after training | digital reference | aged reference column |",
        "|---|---|---|",
    ]
    lines += [
        f"| {when(r['t_s'])} | {_metric(r)} | {_metric(c)} |"
        for r, c in zip(rows["digital"], rows["column"], strict=True)
    ]
    return "\n".join(lines)


def _cost_section(cost: dict, chip: str) -> str:
    lines = [
        f"## Time and energy per training sample on {chip}",
        "",
        f"{cost['latency_ns_per_sample']:.1f} ns and {cost['energy_pj_per_sample']:.1f} pJ per "
        f"sample (update: {cost['update_ns_per_sample']:.1f} ns).",
        "",
        "| part | ns | pJ |",
        "|---|---|---|",
    ]
    parts = dict.fromkeys([*cost["latency_by_part_ns"], *cost["energy_by_part_pj"]])
    for p in parts:
        lines.append(
            f"| {p} | {cost['latency_by_part_ns'].get(p, 0.0):.1f} | "
            f"{cost['energy_by_part_pj'].get(p, 0.0):.1f} |"
        )
    return "\n".join(lines)
