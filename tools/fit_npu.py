"""Fit the IEDM-2024 NPU preset's digital node throughput on one published row.

One constant is fitted: a scale factor on every class rate of the preset's digital nodes
(`macs_per_cycle` and the softmax / norm / element-wise rates tied to it by the preset's
ratios), found by bracketed bisection (false position with the Illinois step) on MobileBERT-
EdgeTPU-XS at its benchmark sequence length, timed as one inference alone (timing mode, one
sample): inferences/s = 1 / latency, the figure `archsim validate` compares.

    python tools/fit_npu.py --preset npu-iedm2024-3da --target 29.3

prints each evaluation and the fitted `macs_per_cycle` (with the tied rates) to write into
the preset's `[[digital_nodes]]` table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from archsim.api import simulate
from archsim.config import load_chip
from archsim.spec import ChipSpec
from archsim.workload.catalog import load_workload
from archsim.workload.ir import Workload

MAX_RUNS = 12
"""Timed runs the fit may take before it gives up."""
MAX_SCALE = 100.0
"""Largest factor on the preset's digital rates the fit tries."""

RATES = ("macs_per_cycle", "softmax_per_cycle", "norm_per_cycle", "elementwise_per_cycle")


def scaled(chip: ChipSpec, scale: float) -> ChipSpec:
    """`chip` with every class rate of every digital node flavour times `scale`."""
    nodes = tuple(
        replace(n, **{r: getattr(n, r) * scale for r in RATES}) for n in chip.digital_nodes
    )
    return replace(chip, digital_nodes=nodes)


def inferences_per_s(chip: ChipSpec, workload: Workload) -> float:
    """Single-stream inferences/s of `workload` on `chip` (timing mode, one sample)."""
    run = simulate(chip, workload, mode="timing", samples=1)
    return run.metrics.inferences_per_s


def fit(chip: ChipSpec, workload: Workload, target: float, rtol: float) -> tuple[float, float]:
    """The scale of the digital rates at which `workload` runs at `target` inferences/s, and
    the inferences/s it gives (within `rtol`)."""
    seen: dict[float, float] = {}

    def f(scale: float) -> float:
        t0 = time.time()
        seen[scale] = inferences_per_s(scaled(chip, scale), workload)
        macs = chip.digital_nodes[0].macs_per_cycle * scale
        print(
            f"  macs_per_cycle {macs:9.5f}: {seen[scale]:8.4f} inf/s ({time.time() - t0:.0f} s)",
            flush=True,
        )
        return seen[scale] - target

    lo, f_lo = 1.0, f(1.0)
    if abs(f_lo) <= rtol * target:
        return lo, seen[lo]
    hi = min(target / seen[lo], MAX_SCALE)  # throughput roughly proportional to the rate
    f_hi = f(hi)
    while f_lo * f_hi > 0:  # step past the target until it is bracketed
        if len(seen) >= MAX_RUNS or hi > MAX_SCALE:
            raise ValueError(
                f"{target:g} inferences/s not reachable by scaling the digital rates "
                f"(reached {max(seen.values()):.4g} at up to {max(seen):.4g}x)"
            )
        slope = (f_hi - f_lo) / (hi - lo)  # extrapolate through the last two, 10 % beyond
        lo, f_lo = hi, f_hi
        hi = hi - 1.1 * f_hi / slope if slope > 0 else hi * (2.0 if f_hi < 0 else 0.5)
        f_hi = f(hi)
    side = 0
    while len(seen) < MAX_RUNS:
        mid = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f_mid = f(mid)
        if abs(f_mid) <= rtol * target:
            return mid, seen[mid]
        if f_mid * f_hi < 0:
            lo, f_lo = hi, f_hi
            side = 0
        else:  # Illinois: halve the stale end's value so the bracket keeps shrinking
            f_lo = f_lo / 2 if side == 1 else f_lo
            side = 1
        hi, f_hi = mid, f_mid
    raise ValueError(f"no fit within {rtol:g} after {MAX_RUNS} runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="npu-iedm2024-3da")
    ap.add_argument("--workload", default="mobilebert-edgetpu-xs")
    ap.add_argument("--target", type=float, default=29.3, help="published inferences/s")
    ap.add_argument("--rtol", type=float, default=0.002, help="relative tolerance of the fit")
    args = ap.parse_args()
    chip = load_chip(args.preset)
    if not chip.digital_nodes:
        raise SystemExit(f"{args.preset}: no [[digital_nodes]] to fit")
    print(f"fitting {args.preset} on {args.workload} = {args.target:g} inferences/s")
    scale, got = fit(chip, load_workload(args.workload), args.target, args.rtol)
    for node in scaled(chip, scale).digital_nodes:
        rates = ", ".join(f"{r} = {getattr(node, r):.6g}" for r in RATES)
        print(f"[[digital_nodes]] kind = {node.kind!r}: {rates}")
    print(f"-> {got:.4f} inferences/s (target {args.target:g})")


if __name__ == "__main__":
    main()
