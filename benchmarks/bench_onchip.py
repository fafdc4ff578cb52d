"""On-chip (pulsed) training speed, the parts `bench_train.py` runs (issue 12 item 7).

1. One training step of a 512 x 512 AnalogTile per algorithm (analog-sgd, mp, ttv2, cttv2,
   agad; the shipped presets models/onchip/<method>.toml) at batch 1 and 32: forward, backward
   and pulsed update, on the `reram-sb` device (aihwkit's ReRamSB preset). Inputs x uniform in
   +-1, gradients d normal with SD `d_sd` (0.01), lr 0.01. The work of a pulsed update grows with
   its coincidences, count_lr |x_j d_i| / epsilon per device: lr for analog SGD and mixed
   precision, fast_lr 1 unscaled for ttv2 (so ttv2's work grows with d), while the auto_scale of
   cttv2 and agad fixes it at about fast_lr x BL = 0.5 pulses for the largest product. The
   table prints the coincidences per step. Median over `steps` steps after two warm-up steps.
2. One epoch of mnist-fc (784-256-128-10, sigmoid) at batch 32 trained with AGAD on cmo-hfox
   (the agad-cmo-hfox preset: FAL25's set-up, lr 0.01) beside float SGD of the same network
   (lr 0.1, momentum 0.9), alternating step by step in the same run as the HWA part does. The
   AGAD epoch is split into pulsed updates (the product's post_step: every tile's update and
   transfers), MVMs (every tile's forward and backward read, with its periphery) and the rest
   (the network's digital ops, loss, optimiser for the digital biases, Python glue).

Every time is wall clock and process CPU (all threads): the machine is shared, and CPU time is
the figure that does not move with the other jobs' load. BLAS runs on one thread (as the
product's updates do): with two BLAS threads on a busy 2-core machine a 32 x 512 x 512 read
took anywhere from 0.4 to 25 ms, the second thread waiting for a core. aihwkit 1.2.0's figures
are quoted from issue 12, measured elsewhere (its C++ CPU simulator, 2 threads, median of 60
steps), not by this script.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np

from archsim.blas import one_blas_thread
from archsim.config import load_device
from archsim.train.data import load_training_data
from archsim.train.grad import value_and_grad
from archsim.train.loop import TrainSettings, _Step, evaluate, make_optimizer, product_rng
from archsim.train.models import build_model
from archsim.train.params import params_of
from archsim.train.pulsed.product import OnChipProduct
from archsim.train.pulsed.settings import METHODS, load_onchip
from archsim.train.pulsed.tile import AnalogTile

AIHWKIT_STEP_MS = {
    ("analog-sgd", 1): 2.4,
    ("ttv2", 1): 0.61,
    ("cttv2", 1): 0.61,
    ("agad", 1): 0.61,
    ("mp", 1): 3.5,
    ("agad", 32): 14.5,
    ("analog-sgd", 32): 51.8,
    ("mp", 32): 48.3,
}
"""aihwkit 1.2.0, one 512 x 512 training step in ms (issue 12; measured elsewhere)."""
AIHWKIT_AGAD_EPOCH_S = 11.0
"""aihwkit 1.2.0, one AGAD epoch of the MNIST FC network at batch 32 (issue 12; elsewhere)."""


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def __call__(self):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


@one_blas_thread
def tile_steps(steps: int, seed: int, device: str = "reram-sb", d_sd: float = 0.01) -> list[dict]:
    """Median wall and CPU ms of one step of a 512 x 512 tile per method and batch."""
    dev = load_device(device).update
    rows = []
    for method in METHODS:
        for batch in (1, 32):
            rng = np.random.default_rng(seed)
            tile = AnalogTile((512, 512), load_onchip(method), dev, rng)
            tile.program(rng.uniform(-0.3, 0.3, (512, 512)).astype(np.float32))
            walls, cpus, reads = [], [], []
            for i in range(steps + 2):
                x = rng.uniform(-1, 1, (batch, 512)).astype(np.float32)
                d = (d_sd * rng.standard_normal((batch, 512))).astype(np.float32)
                w, c = time.perf_counter(), time.process_time()
                tile.forward(x)
                tile.backward(d)
                r = time.process_time()
                tile.update(x, d, 0.01)
                if i >= 2:
                    walls.append(time.perf_counter() - w)
                    cpus.append(time.process_time() - c)
                    reads.append(r - c)
            rows.append(
                {
                    "method": method,
                    "batch": batch,
                    "wall_ms": 1e3 * float(np.median(walls)),
                    "cpu_ms": 1e3 * float(np.median(cpus)),
                    "mvm_cpu_ms": 1e3 * float(np.median(reads)),
                    "coincidences": tile.stats()["coincidences"] * batch,
                    "aihwkit_ms": AIHWKIT_STEP_MS.get((method, batch)),
                }
            )
    return rows


def format_tile_steps(rows: list[dict]) -> str:
    head = (
        f"{'method':>10} {'batch':>5} {'wall_ms':>8} {'cpu_ms':>8} {'fwd+bwd':>8} "
        f"{'coinc/step':>10} {'aihwkit_ms':>10} {'vs aihwkit':>10}"
    )
    out = [head]
    for r in rows:
        ref = r["aihwkit_ms"]
        ratio = f"{ref / r['wall_ms']:9.1f}x" if ref else f"{'-':>10}"
        out.append(
            f"{r['method']:>10} {r['batch']:5d} {r['wall_ms']:8.3f} {r['cpu_ms']:8.3f} "
            f"{r['mvm_cpu_ms']:8.3f} "
            f"{r['coincidences']:10.0f} {ref if ref else '-':>10} {ratio}"
        )
    out.append(
        "(fwd+bwd: CPU ms of the two reads; vs aihwkit: aihwkit's time / our wall time, > 1 = "
        "we are faster; aihwkit measured elsewhere, issue 12)"
    )
    return "\n".join(out)


@one_blas_thread
def agad_epoch(samples: int, seed: int, test_samples: int) -> str:
    """One AGAD epoch of mnist-fc beside a float epoch, alternating steps; the AGAD split."""
    data = load_training_data("mnist-flat", seed=seed)
    x, y = data.x_train[:samples], data.y_train[:samples]
    onchip = load_onchip("agad-cmo-hfox")
    batch = onchip.batch_size or 32
    agad_set = TrainSettings(batch_size=batch, lr=onchip.lr or 0.01, momentum=0.0)
    float_set = TrainSettings(batch_size=batch, lr=0.1, momentum=0.9)
    workload = build_model("mnist-fc", np.random.default_rng(seed))
    start = params_of(workload)
    product = OnChipProduct(onchip, load_device("cmo-hfox").update, (256, 256), product_rng(seed))
    clocks = {name: Clock() for name in ("float", "agad", "updates", "mvm")}
    _instrument(product, clocks)
    runs = {
        "float": (float_set, None, {k: v.copy() for k, v in start.items()}),
        "agad": (agad_set, product, {k: v.copy() for k, v in start.items()}),
    }
    steps_fn = {
        name: _Step(workload, s, make_optimizer(s), value_and_grad, prod, np.random.default_rng(0))
        for name, (s, prod, _) in runs.items()
    }
    steps = math.ceil(len(x) / batch)
    order = np.random.default_rng(seed + 1).permutation(len(x))
    for b in range(steps):
        idx = order[b * batch : (b + 1) * batch]
        for name, (_, _, params) in runs.items():
            with clocks[name]():
                steps_fn[name](params, x[idx], y[idx], b, steps)
    lines = [
        f"mnist-fc, one epoch of {len(x)} samples at batch {batch}: AGAD on cmo-hfox "
        f"(agad-cmo-hfox, lr {agad_set.lr:g}, 256 x 256 tiles, {product.threads} update "
        f"threads) beside float SGD (lr {float_set.lr:g}, momentum 0.9)",
        f"{'run':>7} {'wall_s':>8} {'cpu_s':>8} {'samples/s':>10} {'test_acc':>9}",
    ]
    settings = TrainSettings(test_samples=test_samples)
    for name, (_, prod, params) in runs.items():
        c = clocks[name]
        acc = evaluate(
            workload, params, data, settings, product=prod, grad_fn=value_and_grad, rng=None
        )["test_accuracy"]
        lines.append(f"{name:>7} {c.wall:8.1f} {c.cpu:8.1f} {len(x) / c.wall:10.0f} {acc:8.2f}%")
    total = clocks["agad"]
    up, mvm = clocks["updates"], clocks["mvm"]
    rest_w, rest_c = total.wall - up.wall - mvm.wall, total.cpu - up.cpu - mvm.cpu
    lines.append("AGAD epoch split (wall s / cpu s / share of wall):")
    for name, w, c in (
        ("pulsed updates", up.wall, up.cpu),
        ("MVMs (fwd+bwd)", mvm.wall, mvm.cpu),
        ("rest", rest_w, rest_c),
    ):
        lines.append(f"  {name:<15} {w:7.1f} {c:7.1f} {100 * w / total.wall:6.1f} %")
    lines.append(
        f"aihwkit 1.2.0 (issue 12, measured elsewhere): {AIHWKIT_AGAD_EPOCH_S:g} s per 60,000-"
        f"sample AGAD epoch; here {total.wall * 60_000 / len(x):.1f} s wall, "
        f"{total.cpu * 60_000 / len(x):.1f} s CPU per 60,000 samples"
    )
    return "\n".join(lines)


def _instrument(product: OnChipProduct, clocks: dict[str, Clock]) -> None:
    """Time the product's pulsed updates and its tiles' reads (only this product's)."""
    post = product.post_step

    def post_step(params):
        with clocks["updates"]():
            post(params)

    product.post_step = post_step
    fwd, bwd = AnalogTile.forward, AnalogTile.backward
    mine: set[int] = set()

    def forward(self, x):
        if id(self) not in mine:
            return fwd(self, x)
        with clocks["mvm"]():
            return fwd(self, x)

    def backward(self, d):
        if id(self) not in mine:
            return bwd(self, d)
        with clocks["mvm"]():
            return bwd(self, d)

    build = product._build

    def tracked(key, op, w):
        blocks = build(key, op, w)
        mine.update(id(b.tile) for b in blocks)
        return blocks

    product._build = tracked
    AnalogTile.forward, AnalogTile.backward = forward, backward
