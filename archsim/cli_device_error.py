"""The `archsim device-error` command: options, defaults taken from the chip, and the run.

The study's array size, converter widths and devices per weight default to the chip of
`--chip` (hermes), its device to the chip's; `--devices-per-weight` defaults to the device's
fitted count when the device preset has one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archsim import cli_options as opt
from archsim.checks import converter_bits
from archsim.errors import ArchsimError
from archsim.outputs import atomic_file, check_file


def add_parser(sub) -> None:
    """Add `device-error` to the subcommands `sub`."""
    de = opt.command(
        sub,
        "device-error",
        "MVM error of a device preset against float",
        (
            "--device pcm --size 64x64 --times 1,86400,31536000",
            "--chip neurram --times 1,86400,172800 --csv neurram-error.csv",
            "--device cmo-hfox --validate",
        ),
    )
    de.add_argument(
        "--chip",
        default="hermes",
        help="chip preset whose device, crossbar and converters give the defaults below (hermes)",
    )
    de.add_argument("--device", help="device preset name or TOML path (the chip's)")
    de.add_argument(
        "--size", type=opt.size, help="ROWSxCOLS of the weight matrix (the chip's crossbar)"
    )
    de.add_argument("--input-bits", type=int, help="DAC bits incl. sign, 0 = off (the chip's)")
    de.add_argument("--adc-bits", type=int, help="ADC bits incl. sign, 0 = off (the chip's)")
    de.add_argument(
        "--devices-per-weight",
        type=int,
        help="1 = one device vs a reference, 2 = one per polarity, 4 = two per polarity "
        "(the device's fitted count, else the chip's crossbar)",
    )
    de.add_argument(
        "--times",
        type=opt.times,
        default="1,3600,86400,31536000,315360000",
        help="comma list of times since programming in s (1 s .. 10 years)",
    )
    de.add_argument(
        "--seeds", type=opt.count, default=3, help="weight matrices to average over (3)"
    )
    de.add_argument("--vectors", type=opt.count, default=1000, help="input vectors per seed (1000)")
    opt.add_seed(de)
    de.add_argument(
        "--compensation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="global drift compensation (default: the device preset's choice)",
    )
    de.add_argument("--ir-drop", action="store_true", help="apply the IR-drop model")
    de.add_argument(
        "--wire-resistance-ohm",
        type=float,
        default=0.35,
        help="wire resistance per cell segment for --ir-drop (0.35)",
    )
    de.add_argument("--csv", type=Path, help="write device,t_s,compensation,nrmse,... to PATH")
    de.add_argument(
        "--validate",
        action="store_true",
        help="run the device paper's own experiments ([[published_error]] of the preset) and "
        "compare; exit 1 if a predicted figure is missed",
    )
    de.set_defaults(
        func=run,
        option_keys={
            "rows": "--size",
            "cols": "--size",
            "input_bits": "--input-bits",
            "adc_bits": "--adc-bits",
            "devices_per_weight": "--devices-per-weight",
            "wire_resistance_ohm": "--wire-resistance-ohm",
            "times": "--times",
        },
    )


def run(args: argparse.Namespace) -> int:
    """`archsim device-error`: the study, or with --validate the preset's published figures."""
    from archsim.config import load_chip, load_device
    from archsim.device_error import DeviceErrorSetup, device_error, format_table, stderr_progress

    if args.csv:
        check_file("--csv", args.csv)
    if args.validate:
        return _validate(args)
    chip = load_chip(args.chip)
    _chip_defaults(args, chip)
    rows_, cols_ = args.size
    times = args.times
    converter_bits("--input-bits", args.input_bits)
    converter_bits("--adc-bits", args.adc_bits)
    device = load_device(args.device) if args.device else chip.device
    fitted = getattr(device.model, "devices_per_weight", None)
    if args.devices_per_weight is None:
        args.devices_per_weight = fitted or chip.crossbar.devices_per_weight
    dpw = args.devices_per_weight
    if dpw < 1 or (dpw > 1 and dpw % 2):
        raise ArchsimError(f"--devices-per-weight: expected 1 or an even number, got {dpw}")
    if fitted and dpw != fitted:
        raise ArchsimError(
            f"--devices-per-weight: device {device.name!r} is fitted for "
            f"{fitted} devices per weight, got {dpw}"
        )
    _check_memory(args)
    setup = DeviceErrorSetup(
        rows=rows_,
        cols=cols_,
        input_bits=args.input_bits,
        adc_bits=args.adc_bits,
        devices_per_weight=dpw,
        vectors=args.vectors,
        seeds=args.seeds,
        ir_drop=args.ir_drop,
        wire_resistance_ohm=args.wire_resistance_ohm,
    )
    args.progress_shown = True
    rows = device_error(
        device,
        setup,
        times,
        compensation=args.compensation,
        seed=args.seed,
        progress=stderr_progress,
    )
    opt.end_progress()
    print(format_table(rows))
    if args.csv:
        lines = ["device,t_s,compensation,nrmse,rmse"]
        lines += [
            f"{r.device},{r.t_s:g},{str(r.compensation).lower()},{r.nrmse:.6g},{r.rmse:.6g}"
            for r in rows
        ]
        with atomic_file(args.csv) as tmp:
            tmp.write_text("\n".join(lines) + "\n")
    return 0


def _validate(args: argparse.Namespace) -> int:
    """`device-error --validate`: the preset's published experiments, each with its own setup."""
    from archsim.config import load_chip
    from archsim.device_error import check_published, format_checks, load_published_errors

    parser = opt.Parser(prog="archsim")
    add_parser(parser.add_subparsers())
    defaults = parser.parse_args(["device-error"])
    for key in (
        "size",
        "input_bits",
        "adc_bits",
        "devices_per_weight",
        "times",
        "seeds",
        "vectors",
        "compensation",
        "ir_drop",
        "wire_resistance_ohm",
        "csv",
    ):
        if getattr(args, key) != getattr(defaults, key):
            flag = "--" + key.replace("_", "-")
            raise ArchsimError(
                f"{flag}: not used with --validate (each published figure runs "
                "the paper's own setup)"
            )
    name = args.device or load_chip(args.chip).device.name
    device, entries = load_published_errors(name)
    if not entries:
        raise ArchsimError(f"--device {name}: the preset has no [[published_error]]")
    rows = check_published(device, entries, seed=args.seed)
    print(format_checks(rows))
    return 1 if any(r.basis == "predicted" and not r.passed for r in rows) else 0


def _chip_defaults(args: argparse.Namespace, chip) -> None:
    """Fill --size, --input-bits and --adc-bits not given from `chip` (--chip), so device-error
    studies the array and converters the chip has."""
    if args.size is None:
        args.size = (chip.crossbar.rows, chip.crossbar.cols)
    if args.input_bits is None:
        args.input_bits = chip.input.bits
    if args.adc_bits is None:
        args.adc_bits = chip.adc.bits


def _check_memory(args: argparse.Namespace) -> None:
    """Refuse --size / --vectors / --seeds whose arrays cannot fit, before the study runs,
    in the options' words (the study checks the same estimate again for API callers)."""
    from archsim.footprint import check_footprint, device_error_bytes
    from archsim.spec import CrossbarSpec

    rows, cols = args.size
    with opt.named_options({"rows": "--size", "cols": "--size"}):
        CrossbarSpec(rows=rows, cols=cols, devices_per_weight=1)
    estimate = device_error_bytes(
        rows, cols, args.devices_per_weight, args.vectors, args.seeds, len(args.times)
    )
    check_footprint(
        f"device-error with --vectors {args.vectors}, --seeds {args.seeds} and "
        f"--size {rows}x{cols}",
        estimate,
    )
