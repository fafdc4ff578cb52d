"""The `archsim` command line.

Every error caused by the user's input (a bad preset file, an unknown device, a bad option)
is printed as one line, `archsim: error: ...`, and exits with code 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from archsim import (
    cli_baseline,
    cli_catalog,
    cli_compare,
    cli_device_error,
    cli_hwa_table,
    cli_moe,
    cli_pulsed,
    cli_train,
    cli_train_time,
)
from archsim import cli_options as opt
from archsim.errors import ArchsimError
from archsim.outputs import (
    MAP_REPORT,
    RUN_REPORT,
    SWEEP_REPORT,
    atomic_dir,
    atomic_file,
    check_dir,
    check_file,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `archsim` console script (Ctrl-C: one line, exit 130)."""
    args = None
    try:
        args = _parser().parse_args(argv)
        opt.check_names(args, ("chip", "device", "workload"))
        with opt.named_options(getattr(args, "option_keys", {})):
            return args.func(args)
    except ArchsimError as e:
        if getattr(args, "progress_shown", False) and sys.stderr.isatty():
            print(file=sys.stderr)  # end the progress line
        print(f"archsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if getattr(args, "progress_shown", False) and sys.stderr.isatty():
            print(file=sys.stderr)
        print("archsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `archsim presets | head -1`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a pipe writer stopped by the signal


STREAM_HELP = (
    "samples streamed in the timed run (16; fewer for networks of more than 120,000 crossbar "
    "MVMs per 16 samples, at least 1)"
)


def _parser() -> argparse.ArgumentParser:
    parser = opt.Parser(
        prog="archsim",
        description="Architecture simulator for analog in-memory-computing DNN accelerators.",
        epilog="examples:\n  archsim run --workload digits-cnn\n  archsim presets\n"
        "  archsim COMMAND --help    (the command's options, with examples)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=opt.version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = opt.command(
        sub,
        "run",
        "map, time and evaluate a workload; write a report",
        (
            "--workload digits-cnn --out digits-report",
            "--chip hermes --workload resnet9 --read-mode 4-phase --times 1,86400",
        ),
    )
    _chip_workload_args(run, default_workload="digits-cnn")
    run.add_argument("--out", type=Path, help="output directory (reports/<chip>-<workload>)")
    run.add_argument("--stream", type=opt.count, help=STREAM_HELP)
    run.add_argument("--chunk", type=opt.count, default=1, help="MVMs per timed event (1)")
    run.set_defaults(func=_cmd_run)

    sim = opt.command(
        sub,
        "simulate",
        "one run: timing, energy and (with data) accuracy",
        (
            "--workload mlp --mode timing --trace trace.json",
            "--workload digits-cnn --mode functional --device pcm --samples 100",
        ),
    )
    _chip_workload_args(sim)
    sim.add_argument(
        "--mode",
        choices=("full", "timing", "functional"),
        default="full",
        help="full: timed run and accuracy; timing: the timed run alone (no data needed); "
        "functional: accuracy alone (full)",
    )
    sim.add_argument("--stream", type=opt.count, help=STREAM_HELP)
    sim.add_argument("--chunk", type=opt.count, default=1, help="MVMs per timed event (1)")
    sim.add_argument("--trace", type=Path, help="write a Perfetto/Chrome trace to PATH")
    sim.add_argument("--share", action="store_true", help=SHARE_HELP)
    sim.set_defaults(func=_cmd_simulate)

    sw = opt.command(
        sub,
        "sweep",
        "design-space sweep from a sweep file (chips, or 3D-AIMC MoE systems); Pareto fronts",
        (
            "sweeps/hermes-converters.toml --workers 2",
            "sweeps/hermes-ldpu.toml --serial --out ldpu-sweep",
            "sweeps/moe-tiers.toml --serial --out moe-tiers",
        ),
    )
    sw.add_argument("file", type=Path, help="sweep file (TOML; see sweeps/)")
    sw.add_argument("--out", type=Path, help="output directory (reports/sweep-<name>)")
    sw.add_argument("--serial", action="store_true", help="run the points in this process")
    sw.add_argument("--workers", type=opt.count, help="dask LocalCluster worker processes (cores)")
    sw.add_argument(
        "--scheduler",
        type=opt.scheduler_address,
        help="HOST:PORT of a running dask scheduler to use instead",
    )
    sw.add_argument("--fresh", action="store_true", help="discard earlier results in --out")
    sw.add_argument("--retry-failed", action="store_true", help="run failed points again")
    sw.set_defaults(func=_cmd_sweep)

    va = opt.command(
        sub,
        "validate",
        "simulated vs published figures of the presets",
        ("", "--chip hermes --chip neurram --csv validate.csv"),
    )
    va.add_argument("--chip", action="append", help="preset(s) to check (all with figures)")
    va.add_argument("--csv", type=Path, help="write the table as CSV to PATH")
    va.set_defaults(func=cli_catalog.validate)

    ev = opt.command(
        sub,
        "evaluate",
        "accuracy of a mapped network over time",
        ("--workload digits-cnn --device pcm --times 1,3600,31536000 --csv accuracy.csv",),
    )
    _chip_workload_args(ev)
    ev.add_argument("--csv", type=Path, help="write workload,device,t_s,accuracy,... to PATH")
    ev.set_defaults(func=_cmd_evaluate)

    mp = opt.command(
        sub,
        "map",
        "map a workload onto a chip; write the placement picture and table",
        (
            "--workload resnet9 --out resnet9-map",
            "--chip hermes-256 --workload digits-cnn --placement sequential",
        ),
    )
    mp.add_argument("--chip", default="hermes", help="chip preset name or TOML path (hermes)")
    mp.add_argument("--workload", required=True, help="zoo name, .onnx or .toml path")
    mp.add_argument("--placement", choices=("sequential", "greedy"), help="(chip default)")
    mp.add_argument("--replication", choices=("none", "balanced"), help="(chip default)")
    mp.add_argument(
        "--out",
        type=Path,
        help="output directory for mapping.png, mapping.csv and nodes.csv "
        "(reports/map-<chip>-<workload>)",
    )
    opt.add_seed(mp)
    _dim_arg(mp)
    mp.add_argument(
        "--reload",
        action="store_true",
        help="cut networks too big for the chip into segments (weight reloads)",
    )
    mp.add_argument("--share", action="store_true", help=SHARE_HELP)
    opt.add_digital(mp)
    mp.set_defaults(func=_cmd_map)

    wl = opt.command(sub, "workloads", "list the built-in workloads", ("",))
    wl.set_defaults(func=cli_catalog.workloads)

    cli_device_error.add_parser(sub)
    cli_train.add_parser(sub)
    cli_hwa_table.add_parser(sub)
    cli_train_time.add_parser(sub)
    cli_pulsed.add_parser(sub)
    cli_baseline.add_parser(sub)
    cli_compare.add_parser(sub)
    cli_moe.add_parser(sub)

    presets = opt.command(sub, "presets", "list the shipped chip and device presets", ("",))
    presets.set_defaults(func=cli_catalog.presets)
    return parser


def _chip_workload_args(p: argparse.ArgumentParser, default_workload: str | None = None) -> None:
    p.add_argument("--chip", default="hermes", help="chip preset name or TOML path (hermes)")
    if default_workload:
        p.add_argument(
            "--workload",
            default=default_workload,
            help=f"zoo name, .onnx or .toml path ({default_workload})",
        )
    else:
        p.add_argument("--workload", required=True, help="zoo name, .onnx or .toml path")
    p.add_argument("--device", help="device preset replacing the chip's (name or TOML path)")
    p.add_argument("--read-mode", help="read mode of the chip's preset, e.g. 4-phase (preset's)")
    p.add_argument(
        "--times",
        type=opt.times,
        default="1,3600,86400,31536000",
        help="comma list of times since programming in s (1 s .. 1 year)",
    )
    p.add_argument("--samples", type=opt.count, help="evaluate on the first N samples (all)")
    opt.add_digital(p)
    opt.add_seed(p)
    _dim_arg(p)
    p.add_argument(
        "--input-percentile",
        type=float,
        default=99.995,
        help="DAC range: this percentile of |input| on the calibration batch",
    )
    p.add_argument(
        "--adc-percentile",
        type=float,
        default=99.995,
        help="ADC range: this percentile of |partial sum| per crossbar block",
    )
    p.add_argument(
        "--adc-per-column",
        action="store_true",
        help="one ADC range per column instead of per crossbar block",
    )
    p.add_argument(
        "--reload",
        action="store_true",
        help="run networks too big for the chip in segments with weight reloads",
    )


def _dim_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dim",
        action="append",
        metavar="NAME=SIZE",
        help="size of a symbolic ONNX input dimension (repeatable)",
    )


def _eval_settings(args: argparse.Namespace):
    from archsim.evaluate import EvalSettings

    for option, value in (
        ("--input-percentile", args.input_percentile),
        ("--adc-percentile", args.adc_percentile),
    ):
        if not 0 < value <= 100:
            raise ArchsimError(f"{option}: expected 0 < p <= 100, got {value:g}")
    return EvalSettings(
        input_percentile=args.input_percentile,
        adc_percentile=args.adc_percentile,
        adc_per_column=args.adc_per_column,
    )


def _setup(args: argparse.Namespace):
    from archsim.config import load_device
    from archsim.workload.catalog import load_dataset, load_workload

    chip = _chip(args)
    device = load_device(args.device) if args.device else None
    times = args.times
    workload = load_workload(args.workload, seed=args.seed, dims=opt.dims(args.dim))
    dataset = load_dataset(workload, args.samples, seed=args.seed)
    return chip, device, times, workload, dataset


def _cmd_run(args: argparse.Namespace) -> int:
    from archsim.api import default_stream, simulate
    from archsim.device_error import stderr_progress
    from archsim.mapping.report import format_mapping
    from archsim.run_report import format_accuracy, format_metrics, write_report

    if args.out:
        check_dir("--out", args.out, RUN_REPORT)
    chip, device, times, workload, dataset = _setup(args)
    out = args.out or check_dir(
        "--out", Path("reports") / f"{chip.name}-{workload.name}", RUN_REPORT, make_parents=True
    )
    args.progress_shown = True
    result = simulate(
        chip,
        workload,
        mode="full",
        samples=args.stream or default_stream(workload, chip),
        dataset=dataset,
        device=device,
        t_inference_s=tuple(times),
        seed=args.seed,
        chunk=args.chunk,
        eval_settings=_eval_settings(args),
        progress=stderr_progress,
    )
    write_report(result, out)
    opt.end_progress()
    print(format_mapping(result.mapping))
    print()
    print(format_metrics(result.metrics))
    print()
    print(format_accuracy(result.accuracy))
    print(f"report written to {out}/report.html (the same as Markdown: summary.md)")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from archsim.api import default_stream, simulate
    from archsim.device_error import stderr_progress
    from archsim.mapping.report import format_mapping
    from archsim.run_report import format_accuracy, format_layers, format_metrics
    from archsim.sim.trace import write_trace

    if args.trace:
        check_file("--trace", args.trace)
        if args.mode == "functional":
            raise ArchsimError(
                "--trace: the trace comes from the timed run; use --mode full or timing"
            )
    chip, device, times, workload, dataset = _setup(args)
    if args.mode == "timing":
        dataset = None
    args.progress_shown = True
    result = simulate(
        chip,
        workload,
        mode=args.mode,
        samples=args.stream or default_stream(workload, chip),
        dataset=dataset,
        device=device,
        t_inference_s=tuple(times),
        seed=args.seed,
        chunk=args.chunk,
        eval_settings=_eval_settings(args),
        progress=stderr_progress,
        share=args.share,
    )
    opt.end_progress()
    print(format_mapping(result.mapping))
    if result.metrics is not None:
        print()
        print(format_metrics(result.metrics))
        print(f"events: {result.sim.events:,}")
        if args.trace:
            with atomic_file(args.trace) as tmp:
                write_trace(result.sim.recorder.to_frame(), tmp)
            print(f"trace written to {args.trace}")
    if result.accuracy is not None:
        print()
        print(format_accuracy(result.accuracy))
        print(format_layers(result.accuracy))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from archsim.sweep import load_sweep, run_sweep, write_sweep_report
    from archsim.sweep.report import format_front
    from archsim.sweep.runner import stderr_lines

    if args.out:
        check_dir("--out", args.out, SWEEP_REPORT)
    spec = load_sweep(args.file)
    out = args.out or check_dir(
        "--out", Path("reports") / f"sweep-{spec.name}", SWEEP_REPORT, make_parents=True
    )
    results = run_sweep(
        spec,
        out,
        executor="serial" if args.serial else "dask",
        workers=args.workers,
        scheduler=args.scheduler,
        fresh=args.fresh,
        retry_failed=args.retry_failed,
        progress=stderr_lines,
    )
    front, objectives = write_sweep_report(spec, results, out)
    print(format_front(spec, front, objectives))
    print(f"{len(results)} points in {out}/results.csv; report in {out}/summary.md")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from archsim.device_error import stderr_progress
    from archsim.evaluate import evaluate
    from archsim.run_report import accuracy_rows, format_accuracy, format_layers, write_csv

    if args.csv:
        check_file("--csv", args.csv)
    chip, device, times, workload, dataset = _setup(args)
    args.progress_shown = True
    result = evaluate(
        chip,
        workload,
        dataset,
        times,
        device=device,
        seed=args.seed,
        settings=_eval_settings(args),
        progress=stderr_progress,
    )
    opt.end_progress()
    print(
        f"{workload.name} on {chip.name} with {result.device}: {dataset.name}, "
        f"{result.samples} samples; float reference {result.float_wall_s:.2f} s"
    )
    print(format_accuracy(result))
    print(format_layers(result))
    if args.csv:
        write_csv(accuracy_rows(result), args.csv)
    return 0


def _cmd_map(args: argparse.Namespace) -> int:
    import json

    from archsim.mapping.report import format_mapping, mapping_rows, node_rows, plot_mapping
    from archsim.mapping.segments import map_or_segment
    from archsim.run_report import write_csv
    from archsim.workload.catalog import load_workload

    if args.out:
        check_dir("--out", args.out, MAP_REPORT)
    chip = _chip(args)
    workload = load_workload(args.workload, seed=args.seed, dims=opt.dims(args.dim))
    out = args.out or check_dir(
        "--out", Path("reports") / f"map-{chip.name}-{workload.name}", MAP_REPORT, make_parents=True
    )
    mapping, parts = map_or_segment(
        workload, chip, placement=args.placement, replication=args.replication, share=args.share
    )
    for part in parts or ():
        print(format_mapping(part))
        print()
    print(format_mapping(mapping))
    with atomic_dir(out) as tmp:
        plot_mapping(mapping, tmp / "mapping.png")
        write_csv(mapping_rows(mapping), tmp / "mapping.csv")
        write_csv(node_rows(mapping), tmp / "nodes.csv")
        settings = {
            "chip": chip.name,
            "workload": workload.name,
            "placement": args.placement or chip.mapping.placement,
            "replication": args.replication or chip.mapping.replication,
            "share": args.share,
            "digital_policy": mapping.digital_placement().policy,
            "digital_layers": list(chip.mapping.digital_layers),
            "segments": len(parts or ()),
            "seed": args.seed,
        }
        (tmp / MAP_REPORT).write_text(json.dumps(settings, indent=2) + "\n")
    print(f"placement picture and tables written to {out}/mapping.png, mapping.csv, nodes.csv")
    return 0


SHARE_HELP = "let layers share crossbars when the network needs more cores than the chip has"


def _chip(args: argparse.Namespace):
    """The chip of --chip, in the read mode of --read-mode, with the digital placement of
    --digital-policy / --digital-layer and weight reloads allowed by --reload when given."""
    import dataclasses

    from archsim.config import load_chip

    chip = load_chip(args.chip)
    digital = {}
    if args.digital_policy:
        digital["digital_policy"] = args.digital_policy
    if args.digital_layer:
        digital["digital_layers"] = tuple(args.digital_layer)
    if digital:
        with opt.named_options({"digital_layers": "--digital-layer"}):
            mapping = dataclasses.replace(chip.mapping, **digital)
        chip = dataclasses.replace(chip, mapping=mapping)
    mode = getattr(args, "read_mode", None)
    if mode is not None:
        modes = [m.name for m in chip.input.read_modes]
        if mode not in modes:
            raise ArchsimError(
                f"--read-mode: chip {chip.name} has read modes {', '.join(modes)}; got {mode!r}"
            )
        chip = dataclasses.replace(chip, input=dataclasses.replace(chip.input, read_mode=mode))
    if not args.reload:
        return chip
    return dataclasses.replace(chip, mapping=dataclasses.replace(chip.mapping, weight_reload=True))


if __name__ == "__main__":
    sys.exit(main())
