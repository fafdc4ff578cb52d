"""The `archsim moe` command: a token stream through a MoE model on a 3D AIMC system."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from archsim import cli_options as opt


def add_parser(sub) -> None:
    """Add `moe` to the subcommands `sub`."""
    p = opt.command(
        sub,
        "moe",
        "decode a token stream through a mixture-of-experts model on 3D AIMC tiles (BUE25)",
        (
            "--system bue25-3d --model moe-12x32 --sequences 16 --tokens 64 --out moe-run",
            "--model moe-small --sequences 4 --tokens 16 --granularity tier --tiles 8",
            "--model bue25-largest --tiles 200 --sequences 8 --tokens 32 --strategy layer-spread",
        ),
    )
    add_decode_options(p, "moe-<system>-<model>")
    p.add_argument(
        "--skew", type=float, default=0.0, help="expert-popularity skew of the router (0)"
    )
    p.set_defaults(func=run)


def add_decode_options(p, out_name: str) -> None:
    """The options `moe` and `compare` share: the 3D system and its size, the MoE model, the
    token stream, the engine's granularity and tier mapping, the seed and --out."""
    p.add_argument("--system", default="bue25-3d", help="3D system preset or TOML path (bue25-3d)")
    p.add_argument("--model", default="moe-12x32", help="MoE model preset or TOML path (moe-12x32)")
    p.add_argument("--sequences", type=opt.count, default=16, help="independent sequences (16)")
    p.add_argument("--tokens", type=opt.count, default=64, help="tokens decoded per sequence (64)")
    p.add_argument(
        "--prompt",
        type=opt.integer(0),
        default=0,
        help="prompt tokens already in the KV cache of every sequence (0)",
    )
    p.add_argument("--tiers", type=opt.count, help="tiers per tile (the system's)")
    p.add_argument(
        "--tiles",
        type=_tiles,
        help="tiles, or 'fit' for the fewest that hold the model (default: the system's, "
        "raised to the fewest that hold the model when it does not fit, with a note)",
    )
    p.add_argument(
        "--granularity",
        choices=("tier", "matrix"),
        default="matrix",
        help="tier: one event per tier MVM (exact); matrix: a matrix's tiers on one tile as "
        "one hold (faster; error < 2 %% on the small case) (matrix)",
    )
    p.add_argument(
        "--strategy",
        choices=("greedy", "layer-spread"),
        default="greedy",
        help="tier mapping: greedy least-used tile, or spread each block over tiles (greedy)",
    )
    opt.add_seed(p)
    p.add_argument("--out", type=Path, help=f"output directory (reports/{out_name})")


def _tiles(text: str) -> int | str:
    if text == "fit":
        return text
    return opt.count(text)


def load_decode(args: argparse.Namespace):
    """(system, model, stream) from the options of `add_decode_options`. A system too small for
    the model grows to the fewest tiles that hold it unless --tiles was given (then the mapper
    refuses it, naming the tiers needed)."""
    import dataclasses
    import sys

    from archsim.moe.model import TokenStream, load_moe
    from archsim.moe.sizing import fewest_tiles
    from archsim.moe.spec import load_system

    tiles = args.tiles if isinstance(args.tiles, int) else None
    system = load_system(args.system, tiles=tiles, tiers=args.tiers)
    model = load_moe(args.model)
    stream = TokenStream(args.sequences, args.tokens, args.prompt)
    fit = fewest_tiles(model, system)
    if args.tiles == "fit" or (args.tiles is None and system.tiles < fit):
        if args.tiles is None:
            print(
                f"note: {model.name} needs {fit} tiles of {system.tiers} tiers; "
                f"{system.name} has {system.tiles}, so {fit} are simulated",
                file=sys.stderr,
            )
        system = dataclasses.replace(system, tiles=fit)
    return system, model, stream


def run(args: argparse.Namespace) -> int:
    from archsim.device_error import stderr_progress
    from archsim.moe.api import simulate_moe
    from archsim.moe.report import format_summary, write_report
    from archsim.outputs import RUN_REPORT, check_dir

    opt.check_names(args, ("system", "model"))
    if not (math.isfinite(args.skew) and args.skew >= 0):
        raise opt.OptionError(f"--skew: expected >= 0, got {args.skew}")
    if args.out:
        check_dir("--out", args.out, RUN_REPORT)
    system, model, stream = load_decode(args)
    out = args.out or check_dir(
        "--out", Path("reports") / f"moe-{system.name}-{model.name}", RUN_REPORT, make_parents=True
    )
    args.progress_shown = True
    result = simulate_moe(
        system,
        model,
        stream,
        seed=args.seed,
        granularity=args.granularity,
        strategy=args.strategy,
        skew=args.skew,
        progress=stderr_progress,
    )
    write_report(result, system, model, stream, out)
    opt.end_progress()
    print(format_summary(result, system, model, stream))
    print(f"report written to {out}/summary.md (run.json, tiles.csv, tiles.png)")
    return 0
