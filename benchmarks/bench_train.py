"""Training speed: float against hardware-aware (HWA) training of the MNIST CNN, one epoch each
in the same run, and on-chip pulsed training (`bench_onchip.py`: a 512 x 512 tile step per
algorithm, an AGAD epoch of mnist-fc beside a float one, with aihwkit 1.2.0's figures quoted).

The HWA part:

`mnist-cnn` trains for one epoch on the MNIST training images twice at once: every batch of a
seeded shuffle takes one optimiser step of float training (`archsim train --method float`,
exact products) and then one of HWA training (`--method hwa`: the `hermes` training preset on
the chip's 256-row crossbar blocks), each with the training loop's own step (learning rate from
the schedule, gradient, SGD update, HWA's weight clipping) at the settings `archsim train`
defaults to (batch 64, SGD, lr 0.01, momentum 0.9). An epoch's time is the sum of its steps.
Alternating step by step keeps the ratio honest on a machine shared with other jobs, whose load
moves by 2x within minutes (two epochs run one after the other gave a ratio of 2.42 where
alternated steps of the same code, in the same run, gave 1.42); the load average is printed
before and after.

Both start from the weights of `--warmup` float steps (untimed): HWA training fine-tunes a
float-trained network (the recipe, float first), and a fresh one has outputs far from the
ranges HWA's ADC is set for. HWA's input-range initialisation from data runs once before the
epoch and is timed apart. The test accuracy (`--test-samples`) only shows that both trained.
Last, the cost of the gradient check: the wall time of `pytest tests/test_train_grad.py`
(every backward rule against central differences in float64).

Run: python benchmarks/bench_train.py [--parts tile,agad,hwa] [--samples N] [--warmup STEPS]
[--no-gradcheck] [--tile-steps 60] [--agad-samples 60000]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from archsim.config import load_chip
from archsim.train.data import load_training_data
from archsim.train.grad import value_and_grad
from archsim.train.hwa import HwaProduct
from archsim.train.loop import TrainSettings, _Step, evaluate, make_optimizer, product_rng
from archsim.train.models import build_model
from archsim.train.params import params_of
from archsim.train.settings import load_training

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def hwa_product(chip: str, preset: str, seed: int) -> HwaProduct:
    """The product `archsim train --method hwa --chip CHIP --training PRESET` trains with."""
    settings = load_training(preset)
    return HwaProduct(settings, settings.rows_for(load_chip(chip)), product_rng(seed))


def gradient_check() -> tuple[float, str]:
    """Wall time and summary line of `pytest -q tests/test_train_grad.py`."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_train_grad.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    return time.perf_counter() - t0, lines[-1] if lines else f"exit {done.returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60_000, help="training images (60000)")
    parser.add_argument("--warmup", type=int, default=100, help="float steps before (100)")
    parser.add_argument("--test-samples", type=int, default=1000, help="test images (1000)")
    parser.add_argument("--chip", default="hermes")
    parser.add_argument("--training", default="hermes", help="HWA training preset (hermes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-gradcheck", action="store_true", help="skip the gradient check")
    parser.add_argument(
        "--parts", default="tile,agad,hwa", help="comma list of tile, agad, hwa (all three)"
    )
    parser.add_argument("--tile-steps", type=int, default=60, help="timed tile steps (60)")
    parser.add_argument(
        "--agad-samples", type=int, default=60_000, help="samples of the AGAD epoch (60000)"
    )
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - {"tile", "agad", "hwa"}:
        parser.error(f"--parts: expected a comma list of tile, agad, hwa, got {args.parts!r}")
    if "tile" in parts or "agad" in parts:
        import bench_onchip

        print(f"load average {load()}")
        if "tile" in parts:
            print("one training step (forward, backward, pulsed update) of a 512 x 512 tile:")
            print(
                bench_onchip.format_tile_steps(bench_onchip.tile_steps(args.tile_steps, args.seed))
            )
        if "agad" in parts:
            print(bench_onchip.agad_epoch(args.agad_samples, args.seed, args.test_samples))
        print(f"load average {load()}")
    if "hwa" in parts:
        hwa(args)


def hwa(args: argparse.Namespace) -> None:
    """Float against HWA training of the MNIST CNN (module docstring)."""

    data = load_training_data("mnist", seed=args.seed)
    x, y = data.x_train[: args.samples], data.y_train[: args.samples]
    settings = TrainSettings(test_samples=args.test_samples)
    batch = settings.batch_size
    steps = math.ceil(len(x) / batch)
    print(
        f"mnist-cnn, one epoch of {len(x)} images, batch {batch}, SGD lr {settings.lr:g}, "
        f"float32; HWA: {args.training} preset on {args.chip} blocks; after {args.warmup} float "
        f"steps; load average {load()}"
    )
    workload = build_model("mnist-cnn", np.random.default_rng(args.seed))
    start = params_of(workload)
    warm = _Step(workload, settings, make_optimizer(settings), value_and_grad, None, None)
    for b in range(args.warmup):
        sl = slice((b * batch) % len(x), (b * batch) % len(x) + batch)
        warm(start, x[sl], y[sl], b, steps)

    product = hwa_product(args.chip, args.training, args.seed)
    t0 = time.perf_counter()
    order = np.random.default_rng(args.seed).permutation(len(x))
    batches = (x[order[i : i + batch]] for i in range(0, len(x), batch))
    hwa_start = product.init_params(workload, {k: v.copy() for k, v in start.items()}, batches)
    init_s = time.perf_counter() - t0

    runs = {
        "float": (None, {k: v.copy() for k, v in start.items()}),
        "hwa": (product, hwa_start),
    }
    step_fns = {
        name: _Step(
            workload,
            settings,
            make_optimizer(settings),
            value_and_grad,
            prod,
            np.random.default_rng(0),
        )
        for name, (prod, _) in runs.items()
    }
    for prod, params in runs.values():  # compile the kernels (cold Numba cache), untimed
        trial = _Step(workload, settings, make_optimizer(settings), value_and_grad, prod, None)
        trial({k: v.copy() for k, v in params.items()}, x[:batch], y[:batch], 0, steps)
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = np.random.default_rng(args.seed + 1).permutation(len(x))
    for b in range(steps):
        idx = order[b * batch : (b + 1) * batch]
        xb, yb = x[idx], y[idx]
        for name, (_, params) in runs.items():
            t = time.perf_counter()
            step_fns[name](params, xb, yb, b, steps)
            times[name].append(time.perf_counter() - t)
    after = load()

    print(
        f"{'method':>7} {'epoch_s':>8} {'samples/s':>10} {'step_ms':>8} {'x float':>8}"
        f" {'test_acc':>9}"
    )
    float_s = sum(times["float"])
    for name, (prod, params) in runs.items():
        epoch_s = sum(times[name])
        test = evaluate(
            workload, params, data, settings, product=prod, grad_fn=value_and_grad, rng=None
        )
        print(
            f"{name:>7} {epoch_s:8.1f} {len(x) / epoch_s:10.0f}"
            f" {np.median(times[name]) * 1e3:8.1f} {epoch_s / float_s:8.2f}"
            f" {test['test_accuracy']:8.2f}%"
        )
    print(f"HWA input-range initialisation (not in the epoch): {init_s:.1f} s")
    print(f"load average after the epoch: {after}")
    if not args.no_gradcheck:
        wall, summary = gradient_check()
        print(f"gradient check (pytest tests/test_train_grad.py): {wall:.1f} s, {summary}")


if __name__ == "__main__":
    main()
