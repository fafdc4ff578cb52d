"""The `archsim baseline` command: a workload on a GPU roofline preset (models/baselines/)."""

from __future__ import annotations

import argparse
from pathlib import Path

from archsim import cli_options as opt


def add_parser(sub) -> None:
    """Add `baseline` to the subcommands `sub`."""
    p = opt.command(
        sub,
        "baseline",
        "latency, throughput and energy of a workload on a GPU roofline (BUE25's A100 baseline)",
        ("--gpu a100 --workload bert", "--gpu a100 --workload bert --batch 64 --csv a100.csv"),
    )
    p.add_argument("--gpu", default="a100", help="GPU baseline preset or TOML path (a100)")
    p.add_argument("--workload", required=True, help="a zoo network or .toml/.onnx file")
    p.add_argument("--batch", type=opt.count, default=1, help="samples per pass (1)")
    p.add_argument("--csv", type=Path, help="also write the per-op table to this CSV file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archsim.baseline.gpu import load_gpu
    from archsim.baseline.roofline import roofline
    from archsim.outputs import check_file
    from archsim.run_report import write_csv
    from archsim.workload.catalog import load_workload

    if args.csv is not None:
        check_file("--csv", args.csv, suffixes=(".csv",))
    gpu = load_gpu(args.gpu)
    result = roofline(load_workload(args.workload), gpu, args.batch)
    print(format_roofline(result))
    if args.csv is not None:
        write_csv(csv_rows(result), args.csv)
    return 0


def csv_rows(result) -> list[dict]:
    return [
        {
            "op": op.name,
            "kind": op.kind,
            "flops": op.flops,
            "weight_bytes": op.weight_bytes,
            "activation_bytes": op.activation_bytes,
            "compute_s": op.compute_s,
            "memory_s": op.memory_s,
            "time_s": op.time_s,
            "bound": op.bound,
        }
        for op in result.ops
    ]


def format_roofline(result) -> str:
    """The per-op table (ops that cost nothing left out) and the totals."""
    gpu = result.gpu
    lines = [
        f"{result.workload} on {gpu.name} (roofline, batch {result.batch}): "
        f"{gpu.matmul_tflops:g} TFLOPS, {gpu.bandwidth_gb_s:g} GB/s, {gpu.power_w:g} W, "
        f"{gpu.area_mm2:g} mm², weights {gpu.weight_bytes:g} B fetched every pass",
        "",
        f"{'op':<20} {'kind':<10} {'GFLOP':>10} {'MB moved':>10} {'time us':>10}  bound",
    ]
    for op in result.ops:
        if op.bound == "none":
            continue
        moved = (op.weight_bytes + op.activation_bytes) / 1e6
        lines.append(
            f"{op.name:<20} {op.kind:<10} {op.flops / 1e9:>10.4g} {moved:>10.4g} "
            f"{op.time_s * 1e6:>10.4g}  {op.bound}"
        )
    lines += [
        "",
        f"latency per pass       {result.latency_s * 1e3:.4g} ms "
        f"(compute-bound {result.bound_share('compute'):.0%}, "
        f"memory-bound {result.bound_share('memory'):.0%} of the time)",
        f"throughput             {result.throughput:.4g} inferences/s",
        f"throughput per mm²     {result.throughput_per_mm2:.4g} inferences/s/mm²",
        f"energy per inference   {result.energy_per_inference_j * 1e3:.4g} mJ "
        f"({gpu.power_w:g} W x latency / batch)",
    ]
    return "\n".join(lines)
