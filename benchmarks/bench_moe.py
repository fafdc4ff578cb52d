"""Scale of the 3D-AIMC MoE engine (archsim.moe), measured in one run.

Prints SimPy's bare rate (timeouts per second, this machine's baseline), then events, wall time
and events per second of:
- small cases at both granularities, "tier" (one event per tier MVM, exact under the model) and
  "matrix" (a matrix's tiers on one tile as one hold: the shortcut), with the shortcut's error
  on tokens/s and J/token;
- the large case of issue 13 (moe-12x32: 12 blocks, 32 experts, top-2; 16 sequences x 64
  tokens = 1,024 tokens) at the matrix granularity on the preset (100 tiles x 1,024 tiers), and
  at both granularities on the fewest tiles that hold it (10), where every tile is contended;
- BUE25's largest MoE (48 blocks, 128 experts, 51.9 G weights on 194 tiles), 1,024 tokens.

Wall times include routing and tier mapping; events/s is over the engine's run only.

Run: python benchmarks/bench_moe.py [--skip-large]
"""

from __future__ import annotations

import sys
import time

from bench_sim import raw_simpy_rate  # the same baseline as the chip engine

from archsim.moe.api import simulate_moe
from archsim.moe.model import TokenStream, load_moe
from archsim.moe.spec import load_system

LARGE = ("moe-12x32", TokenStream(16, 64))
"""The large case: 12 blocks, 32 experts, top-2, 1,024 tokens."""


def timed(system, model, stream, granularity):
    """The run and its whole wall time (routing and tier mapping included)."""
    t0 = time.perf_counter()
    run = simulate_moe(system, model, stream, granularity=granularity)
    return run, time.perf_counter() - t0


def line(label: str, run, wall: float) -> str:
    return (
        f"{label:<44} {run.granularity:<7} {wall:8.2f} {run.events:>11,} "
        f"{run.events / run.wall_s:>10,.0f} {run.tokens_per_s:>11.5g} "
        f"{run.energy_per_token_j * 1e6:>10.5g}"
    )


def compare(label: str, system, model, stream) -> None:
    """Both granularities of one case and the shortcut's error."""
    exact, wall_exact = timed(system, model, stream, "tier")
    fast, wall_fast = timed(system, model, stream, "matrix")
    print(line(label, exact, wall_exact))
    print(line(label, fast, wall_fast))
    err_t = fast.tokens_per_s / exact.tokens_per_s - 1
    err_e = fast.energy_per_token_j / exact.energy_per_token_j - 1
    print(
        f"{'':<44} shortcut error: tokens/s {err_t:+.3%}, J/token {err_e:+.3%}, "
        f"{exact.events / fast.events:.1f}x fewer events, {wall_exact / wall_fast:.1f}x faster"
    )


def main(skip_large: bool = False) -> None:
    print(f"bare SimPy: {raw_simpy_rate():,.0f} timeouts/s")
    print(
        f"{'case':<44} {'gran.':<7} {'wall_s':>8} {'events':>11} {'events/s':>10} "
        f"{'tokens/s':>11} {'uJ/token':>10}"
    )
    small = [
        ("moe-small, 8 seq x 16 tok, 2 tiles", "moe-small", 2, TokenStream(8, 16)),
        ("moe-small, 8 seq x 16 tok, 100 tiles", "moe-small", 100, TokenStream(8, 16)),
        ("moe-12x32, 4 seq x 8 tok, 10 tiles", "moe-12x32", 10, TokenStream(4, 8)),
    ]
    for label, name, tiles, stream in small:
        compare(label, load_system("bue25-3d", tiles=tiles), load_moe(name), stream)
    if skip_large:
        return
    name, stream = LARGE
    label = f"{name}, {stream.sequences} seq x {stream.tokens_per_sequence} tok"
    model = load_moe(name)
    run, wall = timed(load_system("bue25-3d"), model, stream, "matrix")
    print(line(f"{label}, 100 tiles", run, wall))
    compare(f"{label}, 10 tiles", load_system("bue25-3d", tiles=10), model, stream)
    largest = load_moe("bue25-largest")
    run, wall = timed(load_system("bue25-3d", tiles=194), largest, stream, "matrix")
    print(line(f"bue25-largest, {stream.sequences} seq x 64 tok, 194 tiles", run, wall))


if __name__ == "__main__":
    main(skip_large="--skip-large" in sys.argv[1:])
