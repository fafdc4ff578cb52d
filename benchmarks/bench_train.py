"""Float against hardware-aware (HWA) training of the MNIST CNN, one epoch each, same run.

Trains `mnist-cnn` for one epoch on the MNIST training images with the training loop itself
(`archsim.train.loop.train`: seeded shuffling, SGD steps, checkpoint), first from fresh seeded
weights with exact products (`archsim train --method float`), then from the weights that epoch
gave with the HWA product of the `hermes` training preset on the chip's 256-row crossbar blocks
(`--method hwa` on the float export: the recipe, float first, then HWA retraining), at the
batch size `archsim train` defaults to. The epoch time is the loop's own (samples / its
samples/s: steps only, no evaluation or checkpoint); the rest of the call (HWA's input-range
initialisation, evaluation, checkpoint) is `other_s`. The test accuracy (on `--test-samples`)
only shows that the epoch trained.

Because other jobs share the machine, the epochs are followed by `--pairs` pairs of steps, a
float step then an HWA step on the same batch, whose median ratio does not drift with the load;
the load average is printed before and after. Last, the cost of the gradient check: the wall
time of `pytest tests/test_train_grad.py` (every backward rule against central differences in
float64).

Run: python benchmarks/bench_train.py [--samples N] [--pairs N] [--no-gradcheck]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from archsim.config import load_chip
from archsim.train.data import load_training_data
from archsim.train.grad import value_and_grad
from archsim.train.hwa import HwaProduct
from archsim.train.loop import TrainSettings, make_optimizer, product_rng, train
from archsim.train.models import build_model
from archsim.train.settings import load_training

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def hwa_product(chip: str, preset: str, seed: int) -> HwaProduct:
    """The product `archsim train --method hwa --chip CHIP --training PRESET` trains with."""
    settings = load_training(preset)
    return HwaProduct(settings, settings.rows_for(load_chip(chip)), product_rng(seed))


def one_epoch(data, settings: TrainSettings, seed: int, product, params=None) -> dict:
    """One epoch of `archsim.train.loop.train` from `params` (default fresh weights); its
    record plus timings and the trained parameters."""
    workload = build_model("mnist-cnn", np.random.default_rng(seed))
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = train(
            workload, data, settings, seed=seed, out_dir=Path(out), product=product, params=params
        )
        total = time.perf_counter() - t0
    record = result.history[-1]
    epoch_s = (
        min(len(data.x_train), settings.train_samples or len(data.x_train))
        / record["samples_per_s"]
    )
    return {**record, "epoch_s": epoch_s, "other_s": total - epoch_s, "params": result.params}


def paired_steps(data, start, batch: int, pairs: int, seed: int, chip: str, preset: str):
    """Median time of a float and of an HWA optimiser step (gradient, SGD update, HWA's
    clipping) from the parameters `start`, alternated on the same batches of `batch` samples."""
    workload = build_model("mnist-cnn", np.random.default_rng(seed))
    product = hwa_product(chip, preset, seed)
    runs = {
        "float": (None, {k: v.copy() for k, v in start.items()}),
        "hwa": (
            product,
            product.init_params(
                workload, {k: v.copy() for k, v in start.items()}, [data.x_train[:batch]]
            ),
        ),
    }
    opts = {name: make_optimizer(TrainSettings()) for name in runs}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(pairs + 1):  # the first pair warms up (JIT, caches)
        sl = slice(i * batch, (i + 1) * batch)
        x, y = data.x_train[sl], data.y_train[sl]
        for name, (prod, params) in runs.items():
            t0 = time.perf_counter()
            _, grads, _ = value_and_grad(workload, params, x, y, product=prod)
            opts[name].step(params, grads)
            if prod is not None:
                prod.post_step(params)
            if i:
                times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def gradient_check_s() -> tuple[float, str]:
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
    parser.add_argument("--test-samples", type=int, default=1000, help="test images (1000)")
    parser.add_argument("--pairs", type=int, default=30, help="paired float/HWA steps (30)")
    parser.add_argument("--chip", default="hermes")
    parser.add_argument("--training", default="hermes", help="HWA training preset (hermes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-gradcheck", action="store_true", help="skip the gradient check")
    args = parser.parse_args()

    data = load_training_data("mnist", seed=args.seed)
    settings = TrainSettings(epochs=1, train_samples=args.samples, test_samples=args.test_samples)
    n = min(args.samples, len(data.x_train))
    print(
        f"mnist-cnn, one epoch of {n} images, batch {settings.batch_size}, SGD, float32, "
        f"HWA: {args.training} preset on {args.chip} blocks; load average {load()}"
    )
    rows = {"float": one_epoch(data, settings, args.seed, None)}
    product = hwa_product(args.chip, args.training, args.seed)
    rows["hwa"] = one_epoch(data, settings, args.seed, product, rows["float"]["params"])
    print(
        f"{'method':>7} {'epoch_s':>8} {'samples/s':>10} {'x float':>8} {'other_s':>8}"
        f" {'test_acc':>9}"
    )
    for name, r in rows.items():
        print(
            f"{name:>7} {r['epoch_s']:8.1f} {r['samples_per_s']:10.0f}"
            f" {r['epoch_s'] / rows['float']['epoch_s']:8.2f} {r['other_s']:8.1f}"
            f" {r['test_accuracy']:8.2f}%"
        )
    print(f"load average after the epochs: {load()}")
    if args.pairs > 0:
        start = rows["float"]["params"]
        med = paired_steps(
            data, start, settings.batch_size, args.pairs, args.seed, args.chip, args.training
        )
        print(
            f"paired steps (median of {args.pairs}): float {med['float'] * 1e3:.1f} ms, "
            f"hwa {med['hwa'] * 1e3:.1f} ms, ratio {med['hwa'] / med['float']:.2f}; "
            f"load average {load()}"
        )
    if not args.no_gradcheck:
        wall, summary = gradient_check_s()
        print(f"gradient check (pytest tests/test_train_grad.py): {wall:.1f} s, {summary}")


if __name__ == "__main__":
    main()
