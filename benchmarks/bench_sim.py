"""Speed of the timing engine, measured in one run.

Prints: SimPy's own raw rate (timeouts per second, the baseline of this machine), the engine's
events per second and the wall time of timing mode for ResNet-9 streaming 16 images on HERMES
(chunk 1 and chunk 8), and ResNet-18 for one image on the 256-core HERMES variant.

Run: python benchmarks/bench_sim.py
"""

from __future__ import annotations

import time

import simpy

from archsim.api import simulate
from archsim.config import load_chip
from archsim.workload.catalog import load_workload


def raw_simpy_rate(n: int = 300_000) -> float:
    """Timeouts per second of a bare SimPy loop."""
    env = simpy.Environment()

    def loop():
        for _ in range(n):
            yield env.timeout(1)

    env.process(loop())
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def main() -> None:
    print(f"bare SimPy: {raw_simpy_rate():,.0f} timeouts/s")
    print(f"{'case':<34} {'wall_s':>7} {'events':>10} {'events/s':>10} {'sim period':>12}")
    cases = [
        ("resnet9, 16 images, hermes", "resnet9", "hermes", 16, 1),
        ("resnet9, 16 images, hermes, chunk 8", "resnet9", "hermes", 16, 8),
        ("resnet18, 1 image, hermes-256", "resnet18", "hermes-256", 1, 1),
    ]
    for label, name, chip_name, samples, chunk in cases:
        chip = load_chip(chip_name)
        workload = load_workload(name)
        t0 = time.perf_counter()
        r = simulate(chip, workload, mode="timing", samples=samples, chunk=chunk)
        wall = time.perf_counter() - t0
        ev = r.sim.events
        print(
            f"{label:<34} {wall:7.2f} {ev:>10,} {ev / wall:>10,.0f} "
            f"{r.metrics.period_ns / 1e3:>9.2f} us"
        )


if __name__ == "__main__":
    main()
