"""The `archsim compare` command: a MoE token stream on a 3D-AIMC system against a GPU roofline."""

from __future__ import annotations

import argparse
from pathlib import Path

from archsim import cli_options as opt


def add_parser(sub) -> None:
    """Add `compare` to the subcommands `sub`."""
    p = opt.command(
        sub,
        "compare",
        "tokens/s, tokens/s/mm² and J/token of a MoE decode on 3D AIMC against a GPU roofline",
        (
            "--system bue25-3d --model moe-12x32 --gpu a100 --sequences 16 --tokens 64",
            "--model bue25-largest --sequences 8 --tokens 16 --out cmp-largest",
            "--model moe-12x32 --sequences 64 --tokens 32 --tiers 256 --tiles fit",
        ),
    )
    p.add_argument("--system", default="bue25-3d", help="3D system preset or TOML path (bue25-3d)")
    p.add_argument("--model", default="moe-12x32", help="MoE model preset or TOML path (moe-12x32)")
    p.add_argument("--gpu", default="a100", help="GPU baseline preset or TOML path (a100)")
    p.add_argument("--sequences", type=opt.count, default=16, help="sequences per batch (16)")
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
        "raised to the fewest that hold the model when it does not fit)",
    )
    p.add_argument(
        "--granularity",
        choices=("tier", "matrix"),
        default="matrix",
        help="3D engine events: tier (exact) or matrix (faster) (matrix)",
    )
    p.add_argument(
        "--strategy",
        choices=("greedy", "layer-spread"),
        default="greedy",
        help="tier mapping strategy of the 3D system (greedy)",
    )
    opt.add_seed(p)
    p.add_argument("--out", type=Path, help="output directory (reports/compare-<system>-<model>)")
    p.set_defaults(func=run)


def _tiles(text: str) -> int | str:
    if text == "fit":
        return text
    return opt.count(text)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from archsim.baseline.compare import compare_moe, format_comparison, write_comparison
    from archsim.baseline.gpu import load_gpu
    from archsim.device_error import stderr_progress
    from archsim.moe.model import TokenStream, load_moe
    from archsim.moe.sizing import fewest_tiles
    from archsim.moe.spec import load_system
    from archsim.outputs import COMPARE_REPORT, atomic_dir, check_dir

    opt.check_names(args, ("system", "model", "gpu"))
    if args.out:
        check_dir("--out", args.out, COMPARE_REPORT)
    tiles = args.tiles if isinstance(args.tiles, int) else None
    system = load_system(args.system, tiles=tiles, tiers=args.tiers)
    model = load_moe(args.model)
    gpu = load_gpu(args.gpu)
    stream = TokenStream(args.sequences, args.tokens, args.prompt)
    fit = fewest_tiles(model, system)
    if args.tiles == "fit" or (args.tiles is None and system.tiles < fit):
        system = dataclasses.replace(system, tiles=fit)
    out = args.out or check_dir(
        "--out",
        Path("reports") / f"compare-{system.name}-{model.name}",
        COMPARE_REPORT,
        make_parents=True,
    )
    args.progress_shown = True
    result = compare_moe(
        system,
        model,
        stream,
        gpu,
        seed=args.seed,
        granularity=args.granularity,
        strategy=args.strategy,
        progress=stderr_progress,
    )
    opt.end_progress()
    with atomic_dir(out) as tmp:
        write_comparison(result, tmp)
    print(format_comparison(result))
    print(f"written to {out}/compare.md (compare.csv, compare.png)")
    return 0
