"""Noisy crossbar MVM against a plain numpy matmul, measured in the same run.

For float32 weights of 256x256 and 1024x1024 and a batch of 1024 input vectors, times:
  ideal        archsim, ideal device, no quantization
  noisy        archsim, PCM programmed and drifted to 1 h beforehand, 8-bit DAC, 8-bit ADC,
               fresh output-referred noise on every MVM
  noisy-cond   the same with conductance-dependent per-MVM noise (one extra matrix product)
on HERMES-sized 256x256 crossbars, so a 1024-row matrix is split into 4 K-blocks whose partial
sums are converted separately. Each variant is timed alternately with numpy `x @ W` on the same
data and the ratio of the medians is printed, against numpy with its default BLAS threads and
with one BLAS thread (archsim runs its products on one thread: archsim/blas.py). On a loaded
machine the multi-threaded baseline can be far slower than the one-thread one: read both.
`--tile 1024` shows the same without K-split.

Run: python benchmarks/bench_mvm.py [--repeats N] [--tile ROWS]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from archsim.blas import one_blas_thread
from archsim.config import load_device
from archsim.crossbar import program_matrix, read_state
from archsim.mvm import analog_mvm, calibrate
from archsim.spec import CrossbarSpec, MvmNoiseSpec


def paired_times(fns, repeats: int) -> list[float]:
    """Median wall times of each of `fns`, called in turn so all see the same machine."""
    for f in (*fns, *fns):
        f()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for f, t in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256, help="crossbar rows and columns (256)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    xbar = CrossbarSpec(rows=args.tile, cols=args.tile, devices_per_weight=2)
    pcm = load_device("pcm")
    variants = {
        "ideal": (load_device("ideal"), 0, 0),
        "noisy": (dataclasses.replace(pcm, mvm_noise=MvmNoiseSpec("output", 0.02)), 8, 8),
        # conductance-dependent per-MVM noise (the pcm preset has none since issue 9: this times
        # the kind, at aihwkit's PCM_READ-like std)
        "noisy-cond": (
            dataclasses.replace(pcm, mvm_noise=MvmNoiseSpec("conductance", 0.0175)),
            8,
            8,
        ),
    }
    print(
        f"batch {args.batch}, float32, {args.tile}x{args.tile} crossbars, median of "
        f"{args.repeats} paired runs"
    )
    print(
        f"{'weights':>10} {'variant':>11} {'time_ms':>9} {'numpy_ms':>9} {'x numpy':>8}"
        f" {'numpy1_ms':>10} {'x numpy1':>9}"
    )
    for size in (256, 1024):
        w = rng.normal(size=(size, size)).astype(np.float32)
        x = rng.uniform(-1, 1, size=(args.batch, size)).astype(np.float32)
        for name, (device, in_bits, adc_bits) in variants.items():
            prog = program_matrix(w, xbar, device, rng)
            state = read_state(prog, 3600.0, rng)
            conv = calibrate(state, x, input_bits=in_bits, adc_bits=adc_bits)
            base, base1, t = paired_times(
                (
                    lambda x=x, w=w: x @ w,
                    one_blas_thread(lambda x=x, w=w: x @ w),
                    lambda x=x, s=state, c=conv: analog_mvm(x, s, c, key=1),
                ),
                args.repeats,
            )
            shape = f"{size}x{size}"
            print(
                f"{shape:>10} {name:>11} {t * 1e3:9.3f} {base * 1e3:9.3f} {t / base:8.2f}"
                f" {base1 * 1e3:10.3f} {t / base1:9.2f}"
            )


if __name__ == "__main__":
    main()
