"""The training loop: epochs of seeded mini-batches, evaluation, checkpoints and resume.

`train` runs `settings.epochs` epochs of mini-batch gradient descent on a workload's parameters.
Each epoch draws one permutation of the training split from the run's shuffling generator,
takes a step of the optimiser per batch (learning rate from the schedule), lets the analog
product clip the weights after every step (HWA, `post_step`), evaluates on the test split with
training noise off, and writes a checkpoint. A run started again with the same settings and
seed resumes after the last finished epoch and ends with bit-identical parameters.

Randomness: one `SeedSequence(seed)` is spawned into the shuffling generator, the generator
handed to the gradient function (noise drawn during a step), the one that picks the batches
the product initialises its input ranges from, and `product_rng(seed)` for the caller's analog
product. The product's generator (`product.rng`), when it has one, is checkpointed as well, and
so is its `state()` (on-chip training: the tiles), restored by its `load_state`. A product with
`set_lr` learns the optimiser's learning rate before every step (on-chip pulsed updates).

Simplifications: the last batch of an epoch may be smaller; no early stopping; no validation
split apart from the test split (the data's own split decides what the test is).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archsim.errors import ArchsimError, SpecError
from archsim.train.checkpoint import (
    Checkpoint,
    check_same_run,
    clear_checkpoints,
    latest_checkpoint,
    save_checkpoint,
)
from archsim.train.optim import Adam, Optimizer, Params, Schedule, Sgd
from archsim.workload import ir

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse")

GradFn = Callable[..., tuple[float, Params, np.ndarray]]
"""`value_and_grad(workload, params, x, target, *, loss, product, rng) -> (loss, grads,
output)`, as archsim.train.grad.value_and_grad."""


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """How to train: epochs, batches, optimiser and schedule."""

    epochs: int = 1
    """Epochs to have finished at the end (a resumed run continues up to this); >= 1."""
    batch_size: int = 64
    """Samples per optimiser step; >= 1."""
    optimizer: str = "sgd"
    """"sgd" or "adam"."""
    lr: float = 0.01
    """Base learning rate; > 0."""
    momentum: float = 0.9
    """SGD momentum; 0 <= momentum < 1."""
    nesterov: bool = False
    """SGD with Nesterov momentum."""
    weight_decay: float = 0.0
    """L2 weight decay (Adam with `decoupled`: AdamW's); >= 0."""
    decoupled: bool = False
    """Adam: decoupled weight decay (AdamW)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's moment decay rates; each in [0, 1)."""
    eps: float = 1e-8
    """Adam's denominator guard; > 0."""
    schedule: Schedule = field(default_factory=Schedule)
    """Learning-rate schedule (constant, step, cosine; linear warm-up)."""
    loss: str = "cross_entropy"
    """"cross_entropy" (softmax fused) or "mse"."""
    eval_batch_size: int = 1000
    """Samples per forward pass when evaluating on the test split; >= 1."""
    train_samples: int | None = None
    """Use only the first N samples of the training split (quick runs); None = all."""
    test_samples: int | None = None
    """Evaluate only the first N samples of the test split; None = all."""

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise SpecError(key, f"expected an integer >= 1, got {value!r}")
        for key in ("train_samples", "test_samples"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SpecError(key, f"expected an integer >= 1 or None, got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            raise SpecError(
                "optimizer", f"expected one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.loss not in LOSSES:
            raise SpecError("loss", f"expected one of {', '.join(LOSSES)}, got {self.loss!r}")
        make_optimizer(self)  # checks lr, momentum, betas, eps, weight decay

    def run_identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with its checkpoint: all but `epochs`, unless
        the cosine schedule's curve depends on it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out |= _flat("schedule", dataclasses.asdict(out.pop("schedule")))
        if self.schedule.kind != "cosine":
            del out["epochs"]
        return out


def make_optimizer(settings: TrainSettings) -> Optimizer:
    """The optimiser `settings` describe, at the base learning rate."""
    if settings.optimizer == "adam":
        return Adam(
            settings.lr,
            settings.betas,
            settings.eps,
            settings.weight_decay,
            decoupled=settings.decoupled,
        )
    return Sgd(settings.lr, settings.momentum, settings.weight_decay, nesterov=settings.nesterov)


@dataclass(frozen=True, slots=True, eq=False)
class TrainResult:
    """Trained parameters and one record per epoch."""

    params: Params
    history: list[dict]
    """Per epoch: epoch, lr, loss (training mean), train_accuracy, test_loss, test_accuracy,
    (sequences: train_perplexity, test_perplexity), samples_per_s (training), wall_s."""
    resumed_from: int = 0
    """Finished epochs read from a checkpoint (0: started fresh)."""


def train(
    workload: ir.Workload,
    data,
    settings: TrainSettings,
    *,
    seed: int,
    out_dir: Path,
    product=None,
    progress: Callable[[dict], None] | None = None,
    grad_fn: GradFn | None = None,
    resume: bool = True,
    params: Params | None = None,
) -> TrainResult:
    """Train `workload` on `data` (a TrainData: x_train, y_train, x_test, y_test, name).

    Args:
        seed: the run seed (shuffling, noise drawn by the gradient function).
        out_dir: where the checkpoints go (`<out_dir>/checkpoints/`).
        product: an AnalogProduct (HWA) for every static-weight product; None = exact. Its
            `init_params` (if any) runs once on a fresh start, `post_step` after every step;
            during evaluation its `eval` attribute (if any) is True (noise off).
        progress: called with a record after every epoch, and with a partial record (it has
            a "batch" key) about every 2 s inside an epoch.
        grad_fn: the gradient function (archsim.train.grad.value_and_grad).
        resume: continue from the last checkpoint in `out_dir` (False: discard it).
        params: the starting parameters (fine-tuning); default the workload's own.

    Raises:
        ArchsimError: a checkpoint from a different run, or one past `settings.epochs`; a
            loss that is not finite.
    """
    if grad_fn is None:
        from archsim.train.grad import value_and_grad as grad_fn
    out_dir = Path(out_dir)
    x, y = data.x_train, data.y_train
    if settings.train_samples is not None:
        x, y = x[: settings.train_samples], y[: settings.train_samples]
    run = {
        "seed": seed,
        "workload": workload.name,
        "data": data.name,
        "train_samples_used": len(x),
        "method": type(product).__name__ if product is not None else "float",
        **_flat("product", _product_identity(product)),
        **settings.run_identity(),
    }
    shuffle_ss, step_ss, init_ss, _ = _seeds(seed)
    rngs = {"shuffle": np.random.default_rng(shuffle_ss), "step": np.random.default_rng(step_ss)}
    if isinstance(getattr(product, "rng", None), np.random.Generator):
        rngs["product"] = product.rng
    opt = make_optimizer(settings)
    if not resume:
        clear_checkpoints(out_dir)
    found = latest_checkpoint(out_dir)
    if found is not None:
        params, start, history = _resume(*found, run, settings, opt, rngs)
        if hasattr(product, "load_state"):
            product.load_state(found[1].product)
    else:
        params, start, history = _start_params(workload, params), 0, []
        if hasattr(product, "init_params"):
            batches = _batches(x, settings.batch_size, np.random.default_rng(init_ss))
            params = product.init_params(workload, params, batches)
    for epoch in range(start, settings.epochs):
        t0 = time.perf_counter()
        fit = _Tally()
        step = _Step(workload, settings, opt, grad_fn, product, rngs["step"])
        order = rngs["shuffle"].permutation(len(x))
        steps = math.ceil(len(x) / settings.batch_size)
        last = t0
        for b in range(steps):
            idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
            loss, out = step(params, x[idx], y[idx], epoch * steps + b, steps)
            fit.add(loss, out, y[idx])
            if progress is not None and time.perf_counter() - last > 2.0:
                last = time.perf_counter()
                progress(
                    {
                        "epoch": epoch + 1,
                        "epochs": settings.epochs,
                        "batch": b + 1,
                        "batches": steps,
                        "loss": fit.mean_loss(),
                        "samples_per_s": fit.samples / (last - t0),
                    }
                )
        train_s = time.perf_counter() - t0
        test = evaluate(
            workload, params, data, settings, product=product, grad_fn=grad_fn, rng=rngs["step"]
        )
        history.append(
            {
                "epoch": epoch + 1,
                "epochs": settings.epochs,
                "lr": opt.lr,
                "loss": fit.mean_loss(),
                **fit.metrics("train_"),
                **test,
                "samples_per_s": len(x) / train_s,
                "wall_s": time.perf_counter() - t0,
            }
        )
        states = {name: r.bit_generator.state for name, r in rngs.items()}
        own = product.state() if hasattr(product, "state") else {}
        save_checkpoint(
            out_dir, Checkpoint(epoch + 1, params, opt.state(), states, history, run, own)
        )
        if progress is not None:
            progress(history[-1])
    return TrainResult(params=params, history=history, resumed_from=start)


class _Step:
    """One optimiser step: learning rate from the schedule, gradient, update, the product's
    post-step clipping."""

    def __init__(self, workload, settings, opt, grad_fn, product, rng) -> None:
        self.workload, self.settings, self.opt = workload, settings, opt
        self.grad_fn, self.product, self.rng = grad_fn, product, rng

    def __call__(self, params: Params, x, y, step: int, steps_per_epoch: int):
        """Update `params` in place on batch (x, y); returns the batch's loss and output."""
        s = self.settings
        self.opt.lr = s.lr * s.schedule.factor(step, steps_per_epoch, s.epochs)
        if hasattr(self.product, "set_lr"):
            self.product.set_lr(self.opt.lr)
        loss, grads, out = self.grad_fn(
            self.workload, params, x, y, loss=s.loss, product=self.product, rng=self.rng
        )
        if not math.isfinite(loss):
            raise ArchsimError(
                f"training diverged: loss {loss} at epoch {step // steps_per_epoch + 1}, "
                f"batch {step % steps_per_epoch + 1}; try a smaller learning rate than {s.lr:g}"
            )
        self.opt.step(params, grads)
        if hasattr(self.product, "post_step"):
            self.product.post_step(params)
        return loss, out


def _resume(path: Path, ck: Checkpoint, run: dict, settings: TrainSettings, opt, rngs):
    """Parameters, finished epochs and history of checkpoint `ck`; restores the optimiser
    and the generators. Refuses a checkpoint of another run or past `settings.epochs`."""
    check_same_run(path, ck.run, run)
    if ck.epoch > settings.epochs:
        raise ArchsimError(
            f"{path}: has {ck.epoch} finished epochs, more than the {settings.epochs} "
            "asked for; ask for more epochs or start over (--fresh, resume=False)"
        )
    opt.load_state(ck.optimizer)
    for name, state in ck.rng_states.items():
        rngs[name].bit_generator.state = state
    return ck.params, ck.epoch, list(ck.history)


def _product_identity(product) -> dict[str, Any]:
    """What a resumed run must share about the product: its settings (a dataclass), block
    rows and `identity()` (on-chip: the device and the tile shape), when it has them."""
    settings = getattr(product, "settings", None)
    out = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else {}
    if hasattr(product, "tile_rows"):
        out["tile_rows"] = product.tile_rows
    if hasattr(product, "identity"):
        out |= product.identity()
    return out


def _flat(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}: one key per setting, so a mismatch names it."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(f"{prefix}.{k}", v)
        else:
            out[f"{prefix}.{k}"] = v
    return out


def evaluate(
    workload: ir.Workload,
    params: Params,
    data,
    settings: TrainSettings,
    *,
    product=None,
    grad_fn: GradFn,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Loss and accuracy (sequences: and perplexity) on the test split, in batches of
    `settings.eval_batch_size`, with the product's training noise off."""
    x, y = data.x_test, data.y_test
    if settings.test_samples is not None:
        x, y = x[: settings.test_samples], y[: settings.test_samples]
    tally = _Tally()
    was_eval = getattr(product, "eval", None)
    if was_eval is not None:
        product.eval = True
    try:
        for i in range(0, len(x), settings.eval_batch_size):
            xb, yb = x[i : i + settings.eval_batch_size], y[i : i + settings.eval_batch_size]
            loss, _, out = grad_fn(
                workload, params, xb, yb, loss=settings.loss, product=product, rng=rng
            )
            tally.add(loss, out, yb)
    finally:
        if was_eval is not None:
            product.eval = was_eval
    return {"test_loss": tally.mean_loss(), **tally.metrics("test_")}


class _Tally:
    """Sample-weighted mean loss and count of correct predictions over batches."""

    def __init__(self) -> None:
        self.samples = 0
        self.loss_sum = 0.0
        self.correct = 0
        self.positions = 0
        self.sequence = False

    def add(self, loss: float, out: np.ndarray, target: np.ndarray) -> None:
        n = len(target)
        self.samples += n
        self.loss_sum += float(loss) * n
        if target.ndim >= 1 and np.issubdtype(target.dtype, np.integer):
            self.sequence = target.ndim == 2
            self.correct += int(np.sum(np.argmax(out, axis=-1) == target))
            self.positions += target.size

    def mean_loss(self) -> float:
        return self.loss_sum / max(self.samples, 1)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Accuracy in % (labels only); perplexity exp(mean loss) for sequences."""
        out = {}
        if self.positions:
            out[f"{prefix}accuracy"] = 100.0 * self.correct / self.positions
        if self.sequence:
            out[f"{prefix}perplexity"] = math.exp(self.mean_loss())
        return out


def _seeds(seed: int) -> list[np.random.SeedSequence]:
    """The run's seed tree: shuffling, gradient function, input-range batches, product."""
    return np.random.SeedSequence(seed).spawn(4)


def product_rng(seed: int) -> np.random.Generator:
    """The generator an analog product of the run with `seed` draws its noise from."""
    return np.random.default_rng(_seeds(seed)[3])


def _start_params(workload: ir.Workload, params: Params | None) -> Params:
    """Copies of `params`, or of the workload's own parameters."""
    if params is None:
        from archsim.train.params import params_of

        return params_of(workload)
    return {k: np.array(v, copy=True) for k, v in params.items()}


def _batches(x: np.ndarray, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Batches of `x` in a random order (for initialising input ranges from data)."""
    order = rng.permutation(len(x))
    for i in range(0, len(x), size):
        yield x[order[i : i + size]]


def format_progress(record: dict) -> str:
    """One progress line: `epoch 2/5  loss 0.1234  train 96.10 %  test 97.02 %  812 samples/s`
    (inside an epoch: `epoch 2/5  batch 120/938  loss ...  812 samples/s`)."""
    head = f"epoch {record['epoch']}/{record['epochs']}"
    if "batch" in record:
        head += f"  batch {record['batch']}/{record['batches']}"
    parts = [head, f"loss {record['loss']:.4f}"]
    for split in ("train", "test"):
        if f"{split}_perplexity" in record:
            parts.append(f"{split} ppl {record[f'{split}_perplexity']:.3f}")
        elif f"{split}_accuracy" in record:
            parts.append(f"{split} {record[f'{split}_accuracy']:.2f} %")
    parts.append(f"{record['samples_per_s']:.0f} samples/s")
    return "  ".join(parts)
