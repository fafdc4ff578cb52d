"""The `archsim hwa-table` command: seed 000's HWA table (RA23 Table 3) on networks trained here.

For each model: float training from scratch, HWA fine-tuning from the float weights (the chip's
training preset), and both networks on the chip at 1 s, 1 h, 1 day and 1 year over several
programming seeds (`archsim.train.table`). The output directory holds `hwa-table.json` (the
command, then the wall times), `table.csv`, `table.md` and the training runs with their
checkpoints (`<model>/float`, `<model>/hwa`), which the next run reuses or resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from archsim import cli_options as opt
from archsim.outputs import TABLE_REPORT, atomic_file, check_dir

MODELS = ("mnist-cnn", "digits-cnn", "char-lstm")


def add_parser(sub) -> None:
    """Add `hwa-table` to the subcommands `sub`."""
    from archsim.train.table import RECIPES

    p = opt.command(
        sub,
        "hwa-table",
        "train float and HWA networks, then tabulate their error over drift time on a chip",
        (
            "--seeds 5 --out hwa-table",
            "--models digits-cnn --float-epochs digits-cnn=10 --seeds 2",
            "--models mnist-cnn --samples mnist-cnn=10000",
        ),
    )
    p.add_argument(
        "--models",
        type=_models,
        default=",".join(MODELS),
        help=f"comma list of trainable models ({','.join(MODELS)})",
    )
    p.add_argument("--chip", default="hermes", help="chip preset or TOML path (hermes)")
    p.add_argument("--seeds", type=opt.count, default=5, help="programming seeds (5)")
    for key, what in (
        ("float_epochs", "float training epochs"),
        ("hwa_epochs", "HWA fine-tuning epochs"),
        ("eval_samples", "test samples evaluated on the chip, 0 = all"),
    ):
        option = "--samples" if key == "eval_samples" else f"--{key.replace('_', '-')}"
        defaults = ",".join(f"{m}={getattr(r, key) or 0}" for m, r in RECIPES.items())
        p.add_argument(
            option,
            dest=key,
            type=_per_model,
            default={},
            help=f"{what} per model, as MODEL=N,... ({defaults})",
        )
    opt.add_seed(p)
    p.add_argument("--out", type=Path, help="output directory (reports/hwa-table)")
    p.set_defaults(func=run)


def _models(text: str) -> list[str]:
    """An argparse type: a comma list of MODELS."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in MODELS]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(MODELS)}, got {text!r}"
        )
    return names


def _per_model(text: str) -> dict[str, int]:
    """An argparse type: MODEL=N,... with N >= 0 integers."""
    out = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, value = item.partition("=")
        if name not in MODELS or not value.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected MODEL=N,... with MODEL one of {', '.join(MODELS)}, got {item!r}"
            )
        out[name] = int(value)
    return out


def run(args: argparse.Namespace) -> int:
    """`archsim hwa-table`: train what is missing, evaluate, write the table."""
    from archsim.config import load_chip
    from archsim.errors import ArchsimError
    from archsim.train.table import RECIPES, hwa_table, write_table

    out = args.out or Path("reports") / "hwa-table"
    check_dir("--out", out, TABLE_REPORT, make_parents=args.out is None)
    recipes = dict(RECIPES)
    for key in ("float_epochs", "hwa_epochs", "eval_samples"):
        for model, n in getattr(args, key).items():
            if n == 0 and key != "eval_samples":
                raise ArchsimError(f"--{key.replace('_', '-')} {model}=0: expected >= 1 epochs")
            recipes[model] = dataclasses.replace(recipes[model], **{key: n or None})
    chip = load_chip(args.chip)
    command = "archsim " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["hwa-table"] else ""
    command = command or f"archsim hwa-table --models {','.join(args.models)}"
    record = {
        "command": command,
        "recipes": {m: dataclasses.asdict(recipes[m]) for m in args.models},
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / TABLE_REPORT) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    rows = hwa_table(
        args.models, chip, out, seeds=args.seeds, seed=args.seed, recipes=recipes, progress=say
    )
    write_table(rows, out, chip=chip.name, command=command)
    record["wall_s"] = {
        f"{r.model} {r.training}": {"train": round(r.train_s, 1), "chip": round(r.eval_s, 1)}
        for r in rows
    }
    record["total_wall_s"] = round(time.perf_counter() - t0, 1)
    with atomic_file(out / TABLE_REPORT) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    print((out / "table.md").read_text(), end="")
    print(f"wrote {out / 'table.csv'}, {out / 'table.md'} ({record['total_wall_s']:.0f} s)")
    return 0
