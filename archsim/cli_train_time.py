"""The `archsim train-time` command: time and energy of on-chip training from the SimPy engine.

Without --layers / --workload: seed 001's update-time table (RA24) on the chip, each row with
the published value, archsim's, their ratio and what was fitted on it; exit 1 when a gated row
(fitted or predicted) is off by more than 5 %. With a network: the time and energy per training
sample by part (forward, backward, update pulses, row reads, digital, transfer) per method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archsim import cli_options as opt
from archsim.sim.training import METHODS


def add_parser(sub) -> None:
    """Add `train-time` to the subcommands `sub`."""
    p = opt.command(
        sub,
        "train-time",
        "time and energy per on-chip training sample (RA24's update-time table by default)",
        (
            "--chip ra24-train",
            "--chip ra24-train --layers 784x256,256x128,128x10 --csv train-time.csv",
            "--chip hermes --workload mlp --method agad --pulse-slots 1 --transfer-every 3",
        ),
    )
    p.add_argument("--chip", default="ra24-train", help="chip preset or TOML path (ra24-train)")
    net = p.add_mutually_exclusive_group()
    net.add_argument(
        "--layers", type=_layers, help="fully connected layers as KxN,KxN,... (inputs x outputs)"
    )
    net.add_argument("--workload", help="a zoo network or .toml/.onnx file")
    p.add_argument(
        "--method",
        type=_methods,
        default=list(METHODS),
        help=f"comma list of methods ({','.join(METHODS)}; default all)",
    )
    p.add_argument("--pulse-slots", type=_slots, default=5.0, help="pulse-train length l_max (5)")
    p.add_argument(
        "--transfer-every", type=opt.integer(0), default=2, help="n_s, samples per transfer (2)"
    )
    p.add_argument(
        "--samples",
        type=opt.count,
        default=64,
        help="samples simulated, rounded up to whole transfer periods and batches (64)",
    )
    p.add_argument("--batch", type=opt.count, default=1, help="mini-batch size (1)")
    p.add_argument("--csv", type=Path, help="also write the cost by part to this CSV file")
    p.set_defaults(func=run)


def _layers(text: str) -> list[tuple[int, int]]:
    """An argparse type: KxN,KxN,... with positive sizes."""
    return [opt.size(t.strip()) for t in text.split(",") if t.strip()] or _no_layers(text)


def _no_layers(text: str):
    raise argparse.ArgumentTypeError(f"expected KxN,KxN,... such as 784x256, got {text!r}")


def _methods(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in METHODS]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(METHODS)}, got {text!r}"
        )
    return names


def _slots(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1e6:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a number of pulse slots >= 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from archsim.config import load_chip
    from archsim.errors import ConfigError
    from archsim.outputs import check_file
    from archsim.sim import training_table as tt
    from archsim.sim.training import schedule_for, training_cost

    if args.csv is not None:
        check_file("--csv", args.csv, suffixes=(".csv",))
    chip = load_chip(args.chip)
    if chip.training is None:
        raise ConfigError(
            f"chip {chip.name!r} has no [training] table: it cannot be timed for on-chip "
            "training (see models/ra24-train.toml)"
        )
    layers = args.layers
    if args.workload is not None:
        from archsim.workload.catalog import load_workload

        layers = tt.network_layers(load_workload(args.workload))
    if layers is None:
        if args.csv is not None:
            raise opt.OptionError("--csv: needs --layers or --workload (the cost by part)")
        results = tt.ra24_table(chip)
        print(f"RA24's update time per sample on {chip.name} ({_basis(chip)})\n")
        differences = tt.ra24_differences(chip)
        if differences:
            print(
                f"Not gated: {chip.name} differs from RA24's assumptions in "
                f"{'; '.join(differences)}.\n"
            )
        print(tt.format_ra24_table(results))
        return 1 if any(r.failed for r in results) else 0
    costs = {}
    for method in args.method:
        schedule = schedule_for(
            method,
            n=chip.crossbar.cols,
            pulse_slots=args.pulse_slots,
            transfer_every=args.transfer_every,
        )
        costs[method] = training_cost(
            chip, layers, schedule, samples=args.samples, batch=args.batch
        )
    shapes = ", ".join("x".join(map(str, shape[:2])) + _times(shape) for shape in layers)
    print(
        f"Training time and energy per sample on {chip.name}: layers {shapes}, "
        f"l_max {args.pulse_slots:g}, n_s {args.transfer_every}, batch {args.batch}, "
        f"{next(iter(costs.values())).samples} samples simulated\n"
    )
    print("\n\n".join(tt.format_cost(c, m) for m, c in costs.items()))
    if args.csv is not None:
        tt.write_cost_csv(args.csv, costs)
        print(f"\nwrote {args.csv}")
    return 0


def _times(shape: tuple[int, ...]) -> str:
    return f" ({shape[2]} mat-vecs)" if len(shape) == 3 and shape[2] > 1 else ""


def _basis(chip) -> str:
    from archsim.sim.core import CoreTiming

    t = chip.training
    return (
        f"{chip.crossbar.rows}x{chip.crossbar.cols} arrays, MVM "
        f"{CoreTiming.of(chip).mvm_latency_ns:g} ns, pulse {t.pulse_ns:g} ns, "
        f"{t.digital_flops_per_ns / 1000:g} TFLOP/s per digital unit shared by "
        f"{t.arrays_per_digital_unit} arrays"
    )
