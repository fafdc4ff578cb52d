"""A whole network through the crossbars against its float NumPy reference, same run.

`mnist-cnn` over the 10,000 MNIST test images (or `digits-cnn` over its 450 test digits when the
MNIST packages are absent), on HERMES: the float reference (the same graph executor with exact
products in float32), archsim with the ideal device (8-bit DAC/ADC, FP16 digital), and archsim
with PCM read one hour after programming (fresh conductance-dependent read noise on every MVM).
Prints wall times (programming, read-out and calibration included in the analog ones),
accuracies and the ratio to the float reference.

Run: python benchmarks/bench_network.py [--workload NAME]
"""

from __future__ import annotations

import argparse
import time

from archsim.config import load_chip, load_device
from archsim.evaluate import evaluate
from archsim.mapping import map_workload
from archsim.workload.catalog import load_dataset, load_workload
from archsim.workload.mnist import mnist_available


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", help="zoo name (mnist-cnn, or digits-cnn without MNIST)")
    parser.add_argument("--chip", default="hermes")
    args = parser.parse_args()
    name = args.workload or ("mnist-cnn" if mnist_available() else "digits-cnn")
    chip = load_chip(args.chip)
    workload = load_workload(name)
    dataset = load_dataset(workload)
    mapping = map_workload(workload, chip)
    print(
        f"{name} on {chip.name}: {len(dataset.x)} samples of {dataset.name}, "
        f"{mapping.cores_used} cores"
    )
    print(f"{'variant':<22} {'wall_s':>8} {'x float':>8} {'accuracy':>9} {'agreement':>10}")
    rows = []
    for label, device, t in (
        ("ideal (8b DAC/ADC)", load_device("ideal"), 0.0),
        ("pcm at 1 h", load_device("pcm"), 3600.0),
    ):
        start = time.perf_counter()
        r = evaluate(chip, workload, dataset, (t,), device=device, mapping=mapping)
        wall = time.perf_counter() - start - r.float_wall_s
        rows.append((label, wall, r))
    float_wall = min(r.float_wall_s for _, _, r in rows)
    acc = rows[0][2].float_accuracy
    print(
        f"{'float reference':<22} {float_wall:8.2f} {1.0:8.2f} {acc or float('nan'):9.4f} {1:10.4f}"
    )
    for label, wall, r in rows:
        p = r.points[0]
        print(
            f"{label:<22} {wall:8.2f} {wall / float_wall:8.2f} "
            f"{p.accuracy if p.accuracy is not None else float('nan'):9.4f} {p.agreement:10.4f}"
        )


if __name__ == "__main__":
    main()
