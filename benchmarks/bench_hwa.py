"""Hardware-aware training product against the exact product, forward + backward, same run.

Shape of one MNIST-CNN-like conv layer lowered by im2col: x (64 * 576, 800) @ w (800, 64), i.e. a
batch of 64 images with 24 x 24 output pixels and 5 x 5 x 32 patches. The exact product is the
three matrix products of a training step (y = x @ w, dx = dy @ w.T, dw = x.T @ dy); the HWA
product adds, per 256-row crossbar block, the input-range clamp and 8-bit DAC, fresh weight
noise, output noise, 8-bit ADC with its bound, and the input-range gradient (the `hermes`
training preset), with input ranges at 3 std of each block's inputs (about 4 % of them clip).
Both are timed alternately; the ratio of the medians is printed.

Run: python benchmarks/bench_hwa.py [--repeats N] [--tile ROWS]
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_mvm import paired_times

from archsim.train.hwa import HwaProduct
from archsim.train.settings import load_training
from archsim.workload import ir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tile", type=int, default=256, help="crossbar rows (256)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    rows, k, n = 64 * 576, 800, 64
    x = np.maximum(rng.standard_normal((rows, k), dtype=np.float32), 0)  # post-ReLU inputs
    w = rng.standard_normal((k, n), dtype=np.float32) * 0.05
    dy = rng.standard_normal((rows, n), dtype=np.float32)
    op = ir.Linear("conv", ("x",), (n,), weight=w)
    hwa = HwaProduct(load_training("hermes"), args.tile, rng)
    edges = range(0, k, args.tile)
    beta = [3 * x[:, i : i + args.tile].std() for i in edges]  # as init_params would set them
    params = {"conv.input_range": np.array([beta], dtype=np.float32)}

    def exact() -> None:
        x @ w, dy @ w.T, x.T @ dy

    def analog() -> None:
        _, ctx = hwa.forward(op, 0, x, w, params)
        hwa.backward(ctx, dy)

    t_exact, t_hwa = paired_times((exact, analog), args.repeats)
    print(f"x ({rows}, {k}) @ w ({k}, {n}), float32, {args.tile}-row blocks, forward + backward")
    print(f"  exact {t_exact * 1e3:7.1f} ms")
    print(f"  hwa   {t_hwa * 1e3:7.1f} ms   ratio {t_hwa / t_exact:.2f}")


if __name__ == "__main__":
    main()
