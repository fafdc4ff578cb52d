"""The `archsim train` command: train a network on a data set, float or hardware-aware.

A trainable architecture named by `--workload` (mnist-cnn, mnist-fc, digits-cnn,
char-lstm) starts from
fresh seeded weights; an .onnx or .toml file starts from its own weights (fine-tuning, e.g. HWA
retraining of a float-trained export: float first, then retraining with noise, the recipe of
Rasch et al., Nat. Commun. 14, 5282, 2023). The output directory
holds `train.json` (written before the first checkpoint to mark the directory as a training
run; rewritten with the final epoch at the end), a checkpoint per epoch (`checkpoints/`,
resumed by the next run unless `--fresh`), and at the end the trained network as ONNX,
`history.csv`, `curves.png` (loss and accuracy per epoch), `summary.md` and `report.html`
(archsim.train.report), which also give the trained network's accuracy on `--chip` after each
of `--times` of drift (classification).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archsim import cli_options as opt
from archsim.errors import ArchsimError
from archsim.outputs import TRAIN_REPORT, atomic_file, check_dir
from archsim.train.models import MODELS

MODEL_DATA = {name: m.data for name, m in MODELS.items()}
"""The trainable architectures (archsim.train.models.MODELS) and the data set each learns."""

ONCHIP_METHODS = ("agad", "cttv2", "ttv2", "mp", "analog-sgd")
"""The on-chip training methods (archsim.train.pulsed.settings.METHODS; archsim.cli_onchip)."""

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001}
"""--lr when not given, per optimiser (estimate: what trains the three models in a few epochs)."""


def add_parser(sub) -> None:
    """Add `train` to the subcommands `sub`."""
    tr = opt.command(
        sub,
        "train",
        "train a network (float or hardware-aware); write ONNX, checkpoints and a report",
        (
            "--workload digits-cnn --epochs 5 --out digits-float",
            "--workload mnist-cnn --data mnist --epochs 3 --batch-size 128 --out mnist-float",
            "--workload mnist-float/mnist-cnn.onnx --data mnist --method hwa --epochs 1 "
            "--lr 0.01 --out mnist-hwa",
            "--workload mnist-float/mnist-cnn.onnx --data mnist --method hwa "
            "--training reram-wan2022 --out mnist-hwa-reram",
            "--workload char-lstm --optimizer adam --schedule cosine --epochs 10",
            "--workload digits-cnn --method agad --device cmo-hfox --epochs 1 --out digits-agad",
        ),
    )
    tr.add_argument(
        "--workload",
        required=True,
        help=f"architecture to train from scratch ({', '.join(MODEL_DATA)}), or an .onnx / "
        ".toml file whose weights are fine-tuned",
    )
    tr.add_argument(
        "--data",
        choices=sorted(set(MODEL_DATA.values())),
        help="training data (the architecture's own; required for files)",
    )
    tr.add_argument(
        "--method",
        choices=("float", "hwa", *ONCHIP_METHODS),
        default="float",
        help="float: exact products; hwa: hardware-aware (noise, input ranges, quantisation, "
        "clipping as the chip's training settings say); agad, cttv2, ttv2, mp, analog-sgd: "
        "on-chip training with pulsed updates on --device (float)",
    )
    tr.add_argument(
        "--onchip",
        help="on-chip algorithm preset (models/onchip/NAME.toml) or TOML path "
        "(<method>-<device> if shipped, else <method>)",
    )
    tr.add_argument(
        "--chip", default="hermes", help="chip whose crossbar blocks --method hwa uses (hermes)"
    )
    tr.add_argument(
        "--training",
        help="HWA training preset (models/training/NAME.toml) or TOML path (the chip's name)",
    )
    tr.add_argument(
        "--device", help="device preset replacing the chip's in the drift evaluation (chip's)"
    )
    tr.add_argument(
        "--times",
        type=opt.times,
        help="times since programming in s at which the trained network is evaluated on "
        "--chip (1 s .. 1 year; on-chip methods: 1 s .. 10 years)",
    )
    tr.add_argument(
        "--drift-samples",
        type=opt.integer(0),
        default=1000,
        help="test samples of the drift evaluation; 0 skips it (1000)",
    )
    tr.add_argument("--epochs", type=opt.count, default=5, help="epochs to finish (5)")
    tr.add_argument(
        "--batch-size", type=opt.count, help="samples per step (64; on-chip: the preset's)"
    )
    tr.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="(sgd)")
    tr.add_argument(
        "--lr",
        type=float,
        help=f"base learning rate (sgd {DEFAULT_LR['sgd']}, adam {DEFAULT_LR['adam']})",
    )
    tr.add_argument("--momentum", type=float, help="SGD momentum (0.9; on-chip: 0)")
    tr.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (0)")
    tr.add_argument(
        "--schedule",
        choices=("constant", "step", "cosine"),
        default="constant",
        help="learning-rate schedule (constant)",
    )
    tr.add_argument(
        "--milestones",
        type=_epochs_list,
        default=(),
        help="comma list of epochs after which --schedule step multiplies the rate by 0.1",
    )
    tr.add_argument(
        "--warmup-epochs", type=float, default=0.0, help="linear warm-up length in epochs (0)"
    )
    tr.add_argument(
        "--train-samples", type=opt.count, help="train on the first N training samples (all)"
    )
    tr.add_argument(
        "--test-samples", type=opt.count, help="evaluate on the first N test samples (all)"
    )
    opt.add_seed(tr)
    tr.add_argument("--out", type=Path, help="output directory (reports/train-<workload>-<method>)")
    again = tr.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        default=True,
        help="continue from the last checkpoint in --out (default)",
    )
    again.add_argument(
        "--fresh", dest="resume", action="store_false", help="discard checkpoints in --out"
    )
    tr.set_defaults(
        func=run,
        option_keys={
            "lr": "--lr",
            "momentum": "--momentum",
            "weight_decay": "--weight-decay",
            "warmup_epochs": "--warmup-epochs",
            "milestones": "--milestones",
        },
    )


def _epochs_list(text: str) -> tuple[int, ...]:
    """An argparse type: a comma list of epoch numbers >= 1."""
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of epochs, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """`archsim train`: check everything, train, then write the network and the report."""
    from archsim.train.loop import TrainSettings
    from archsim.train.optim import Schedule

    if args.method in ONCHIP_METHODS:
        from archsim import cli_onchip

        return cli_onchip.run(args, sys.modules[__name__])
    if args.onchip:
        raise ArchsimError(f"--onchip: for on-chip methods ({', '.join(ONCHIP_METHODS)})")
    args.batch_size = args.batch_size or 64
    args.momentum = 0.9 if args.momentum is None else args.momentum
    args.times = args.times or opt.times("1,3600,86400,31536000")
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr if args.lr is not None else DEFAULT_LR[args.optimizer],
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=Schedule(
            args.schedule,
            milestones=args.milestones,
            warmup_epochs=args.warmup_epochs,
        ),
        train_samples=args.train_samples,
        test_samples=args.test_samples,
    )
    data_name = args.data or MODEL_DATA.get(args.workload)
    if data_name is None:
        raise ArchsimError(
            f"--data: required for --workload {args.workload} "
            f"({', '.join(sorted(set(MODEL_DATA.values())))})"
        )
    if args.method == "hwa" and args.workload in MODEL_DATA:
        # from fresh weights the noisy forward diverges (MNIST CNN: loss 5 -> 39 in 60 steps,
        # fc2's ADC saturated on ~90 % of outputs); the recipe is float first (RA23)
        raise ArchsimError(
            f"--method hwa: fine-tunes a trained network; train {args.workload} with --method "
            "float first and give its .onnx as --workload (the recipe of RA23)"
        )
    stem = Path(args.workload).stem if args.workload not in MODEL_DATA else args.workload
    out = args.out or Path("reports") / f"train-{stem}-{args.method}"
    check_dir("--out", out, TRAIN_REPORT, make_parents=args.out is None)
    workload = _workload(args)
    data = _data(data_name, args.seed, workload)
    drift = _drift_setup(args, workload, data)
    product = _hwa_product(args) if args.method == "hwa" else None
    if not (out / TRAIN_REPORT).is_file():  # mark the directory before the first checkpoint
        with atomic_file(out / TRAIN_REPORT) as tmp:
            tmp.write_text(json.dumps(_command(args, data_name), indent=1) + "\n")
    args.lr = settings.lr
    args.progress_shown = True

    result = train_with_progress(workload, data, settings, args, out, product)
    onnx_path = _export(workload, result.params, out / f"{stem}.onnx")
    points = _drift(drift, workload, result.params, data, args.seed) if drift else None
    from archsim.train.report import write_train_report

    write_train_report(
        out,
        title=f"{args.workload} on {data_name} ({args.method})",
        setup=f"Optimiser {args.optimizer}, lr {result.history[-1]['lr']:g} at the end, batch "
        f"{args.batch_size}, seed {args.seed}",
        result=result,
        onnx_name=onnx_path.name,
        drift=points,
        record=_command(args, data_name),
    )
    print(f"trained {workload.name} on {data_name}: {_final(result.history[-1])}")
    print(f"report written to {out / 'report.html'} (network: {onnx_path})")
    return 0


def train_with_progress(workload, data, settings, args: argparse.Namespace, out: Path, product):
    """`archsim.train.loop.train` with progress on stderr (a line per epoch; within an epoch a
    line rewritten in place on a terminal), resuming from `out` unless --fresh; says so when
    the run had already finished."""
    from archsim.train.loop import format_progress, train

    def progress(record: dict) -> None:
        line = format_progress(record)
        if "batch" not in record:
            print(f"\r{line:<78}" if sys.stderr.isatty() else line, file=sys.stderr, flush=True)
        elif sys.stderr.isatty():
            print(f"\r{line:<78}", end="", file=sys.stderr, flush=True)

    result = train(
        workload,
        data,
        settings,
        seed=args.seed,
        out_dir=out,
        product=product,
        progress=progress,
        resume=args.resume,
    )
    if result.resumed_from == settings.epochs:
        print(
            f"archsim: {out} already holds {settings.epochs} finished epochs; writing the "
            "network and report again (more --epochs continue, --fresh starts over)",
            file=sys.stderr,
        )
    return result


def _workload(args: argparse.Namespace):
    """A trainable architecture with fresh weights, or the network of an .onnx / .toml file."""
    import numpy as np

    if args.workload in MODEL_DATA:
        from archsim.train.models import build_model

        return build_model(args.workload, np.random.default_rng(args.seed))
    from archsim.workload.catalog import load_workload

    if not args.workload.endswith((".onnx", ".toml")):
        raise ArchsimError(
            f"--workload: expected one of {', '.join(MODEL_DATA)} or an .onnx / .toml file, "
            f"got {args.workload!r}"
        )
    return load_workload(args.workload, seed=args.seed)


def _data(name: str, seed: int, workload):
    """The data set `name`, refused when its inputs do not fit the network's input."""
    from archsim.train.data import load_training_data

    data = load_training_data(name, seed=seed)
    shape = workload.op(workload.inputs[0]).shape
    if len(workload.inputs) != 1 or tuple(data.x_train.shape[1:]) != tuple(shape):
        raise ArchsimError(
            f"--data {name}: samples of shape {tuple(data.x_train.shape[1:])} do not fit "
            f"{workload.name}'s input {tuple(shape)}"
        )
    return data


def _hwa_product(args: argparse.Namespace):
    """The hardware-aware product: --training settings (the chip's), blocks of the chip's rows."""
    from archsim.config import load_chip
    from archsim.train.table import chip_product

    chip = load_chip(args.chip)
    args.training = args.training or chip.name
    return chip_product(chip, args.seed, args.training)


def _drift_setup(args: argparse.Namespace, workload, data):
    """(chip, device) for the drift evaluation, checked before training; None when skipped
    (--drift-samples 0)."""
    if args.drift_samples == 0:
        return None
    from archsim.config import load_chip, load_device
    from archsim.mapping.mapper import map_workload

    chip = load_chip(args.chip)
    device = load_device(args.device) if args.device else chip.device
    device.check_times(args.times)
    map_workload(workload, chip)  # refuse a network that does not fit before training it
    return chip, device, args.times, args.drift_samples


def _drift(setup, workload, params, data, seed: int):
    """The trained network on the chip: accuracy or perplexity at each time (archsim.evaluate)."""
    from archsim.device_error import stderr_progress
    from archsim.evaluate import evaluate
    from archsim.train.table import network, test_set

    chip, device, times, samples = setup
    dataset = test_set(data, samples)
    result = evaluate(
        chip,
        network(workload, params),
        dataset,
        times,
        device=device,
        seed=seed,
        progress=stderr_progress,
    )
    opt.end_progress()
    return result


def _command(args: argparse.Namespace, data_name: str) -> dict:
    keys = ("workload", "method", "chip", "training", "epochs", "batch_size", "optimizer")
    keys += ("lr", "seed")
    return {"command": "train", "data": data_name, **{k: getattr(args, k) for k in keys}}


def _export(workload, params, path: Path) -> Path:
    """Write the trained network as ONNX."""
    from archsim.train.export import export_onnx
    from archsim.train.table import network

    with atomic_file(path) as tmp:
        export_onnx(network(workload, params), tmp)
    return path


def _final(record: dict) -> str:
    if "test_perplexity" in record:
        return f"test perplexity {record['test_perplexity']:.3f}"
    return f"test accuracy {record.get('test_accuracy', float('nan')):.2f} %"
