"""The `archsim compare` command: a MoE token stream on a 3D-AIMC system against a GPU roofline."""

from __future__ import annotations

import argparse
from pathlib import Path

from archsim import cli_options as opt
from archsim.cli_moe import add_decode_options, load_decode


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
    add_decode_options(p, "compare-<system>-<model>")
    p.add_argument("--gpu", default="a100", help="GPU baseline preset or TOML path (a100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archsim.baseline.compare import compare_moe, format_comparison, write_comparison
    from archsim.baseline.gpu import load_gpu
    from archsim.device_error import stderr_progress
    from archsim.outputs import COMPARE_REPORT, atomic_dir, check_dir

    opt.check_names(args, ("system", "model", "gpu"))
    if args.out:
        check_dir("--out", args.out, COMPARE_REPORT)
    system, model, stream = load_decode(args)
    gpu = load_gpu(args.gpu)
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
