"""Pulsed update (archsim.kernels.pulse) against the float outer-product update, same run.

Cases: (a) MNIST-like 784 x 256 (81 % of the inputs 0, the rest in (0, 1], half of them 1;
dense normal gradients), (b) dense 512 x 512 (normal inputs and gradients), each at BL 31 and
BL 5. The learning rate is set per case so that the largest element needs k pulses (k = lr
max|x| max|d| / epsilon): k = BL (the longest trains BL management allows, the most work per
sample) and k = BL / 10 (aihwkit's auto-scaled fast_lr 0.1 of c-TTv2 and AGAD). The baseline
is numpy's w -= lr * outer(x, d) per sample on float32 (K, N). Both run over the same samples;
medians of the process CPU time (less disturbed than wall time on a shared machine; both run
on one thread) are printed as us per sample with their ratio, and the coincidences per sample.

Run: python benchmarks/bench_pulse.py [--device cmo-hfox] [--samples 200] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from archsim.config import load_device
from archsim.kernels.pulse import PulseSettings, pulsed_update


def _inputs(case: str, m: int, rng: np.random.Generator):
    if case == "mnist":
        k, n = 784, 256
        x = rng.uniform(0.0, 1.0, (m, k)).astype(np.float32)
        x[rng.random((m, k)) < 0.5] = 1.0
        x[rng.random((m, k)) < 0.81] = 0.0
    else:
        k, n = 512, 512
        x = rng.standard_normal((m, k), dtype=np.float32)
    d = rng.standard_normal((m, n), dtype=np.float32)
    return x, d


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def _case(model, x, d, bl: int, k: float, repeats: int) -> tuple[float, float, float]:
    """(pulsed us, numpy us, coincidences) per sample at lr giving k = lr x_m d_m / epsilon."""
    shape = (x.shape[1], d.shape[1])
    settings = PulseSettings(desired_bl=bl)
    x_m, d_m = np.abs(x).max(axis=1).mean(), np.abs(d).max(axis=1).mean()
    lr = k * model.granularity / float(x_m * d_m)
    dev = model.sample(shape, np.random.default_rng(1))
    w = np.zeros(shape, dtype=np.float32)
    counts = []

    def pulsed() -> (
        None
    ):  # weights wander over the repeats: the cost per pulse does not depend on w
        counts.append(pulsed_update(dev, x, d, lr, settings))

    def outer() -> None:
        for r in range(x.shape[0]):
            w[...] -= np.float32(lr) * np.outer(x[r], d[r])

    pulsed()  # compile
    m = x.shape[0]
    t_pulse, t_np = _time(pulsed, repeats) / m * 1e6, _time(outer, repeats) / m * 1e6
    return t_pulse, t_np, float(np.mean(counts)) / m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cmo-hfox", help="device preset with [update]")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    model = load_device(args.device).update
    print(f"device {args.device}: rule {model.rule}, epsilon {model.granularity:.4g}")
    print(f"{args.samples} samples; k = pulses the largest element needs (BL: saturated)")
    head = f"{'case':<14} {'BL':>3} {'k':>5} {'pulsed us':>10} {'numpy us':>9} {'ratio':>6}"
    print(f"{head} {'coincidences':>12}")
    for case in ("mnist", "dense"):
        x, d = _inputs(case, args.samples, np.random.default_rng(0))
        name = f"{case} {x.shape[1]}x{d.shape[1]}"
        for bl in (31, 5):
            for k in (float(bl), 0.1 * bl):
                t_pulse, t_np, coinc = _case(model, x, d, bl, k, args.repeats)
                ratio = t_pulse / t_np
                row = f"{name:<14} {bl:>3} {k:>5.1f} {t_pulse:>10.1f} {t_np:>9.1f} {ratio:>6.2f}"
                print(f"{row} {coinc:>12.0f}")


if __name__ == "__main__":
    main()
