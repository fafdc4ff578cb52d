"""Optimisers and learning-rate schedules for training over `Params` (name -> float array).

`Sgd` (heavy-ball momentum as in PyTorch's SGD, optional Nesterov, L2 weight decay) and `Adam`
(Kingma & Ba, ICLR 2015, Algorithm 1 with bias correction; optional decoupled weight decay,
Loshchilov & Hutter, ICLR 2019 "AdamW") update the parameter arrays in place. Their state (the
momentum buffers, Adam's moments and step count) is a flat `dict[str, np.ndarray]` for
checkpoints. `Schedule` gives the learning-rate factor of every optimiser step: constant, step
decay at epoch milestones, or cosine annealing to zero, each after an optional linear warm-up.

Simplifications: no gradient clipping, no per-parameter-group settings (one learning rate and
one weight decay for every array, biases and input ranges included), no AMSGrad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archsim.errors import SpecError
from archsim.train.params import Params

SCHEDULES = ("constant", "step", "cosine")


def _check(key: str, ok: bool, expected: str, value: object) -> None:
    if not ok:
        raise SpecError(key, f"expected {expected}, got {value!r}")


def _positive(key: str, value: float) -> None:
    _check(key, math.isfinite(value) and value > 0, "a finite number > 0", value)


def _unit(key: str, value: float) -> None:
    _check(key, 0 <= value < 1, "0 <= value < 1", value)


class Sgd:
    """Stochastic gradient descent with momentum (PyTorch's form, dampening 0):
    g = grad + weight_decay * p; b = momentum * b + g (b = g on the first step);
    p -= lr * (g + momentum * b if nesterov else b)."""

    def __init__(
        self,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        nesterov: bool = False,
    ) -> None:
        _positive("lr", lr)
        _unit("momentum", momentum)
        _check("weight_decay", weight_decay >= 0, "a number >= 0", weight_decay)
        _check("nesterov", not nesterov or momentum > 0, "momentum > 0 with nesterov", momentum)
        self.lr = lr
        """Learning rate of the next step (the training loop sets it from the schedule)."""
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self._buf: Params = {}

    def step(self, params: Params, grads: Params) -> None:
        """Update every array of `params` that has a gradient in `grads`, in place."""
        for key, grad in grads.items():
            p = params[key]
            g = grad.astype(p.dtype, copy=False)  # read only: no copy of the gradient
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                b = self._buf.get(key)
                if b is None:
                    b = self._buf[key] = g.copy()
                else:
                    b *= self.momentum
                    b += g
                g = g + self.momentum * b if self.nesterov else b
            p -= self.lr * g

    def state(self) -> Params:
        """The momentum buffers, as `momentum/<param>` arrays."""
        return {f"momentum/{k}": b.copy() for k, b in self._buf.items()}

    def load_state(self, state: Params) -> None:
        """Restore what `state()` returned."""
        self._buf = {
            k.removeprefix("momentum/"): np.array(v)
            for k, v in state.items()
            if k.startswith("momentum/")
        }


class Adam:
    """Adam with bias correction; weight decay is added to the gradient (L2, as PyTorch's Adam)
    or, with `decoupled`, applied to the weights directly (p -= lr * weight_decay * p, AdamW)."""

    def __init__(
        self,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled: bool = False,
    ) -> None:
        _positive("lr", lr)
        _check("betas", len(betas) == 2, "two numbers", betas)
        _unit("betas", betas[0])
        _unit("betas", betas[1])
        _positive("eps", eps)
        _check("weight_decay", weight_decay >= 0, "a number >= 0", weight_decay)
        self.lr = lr
        """Learning rate of the next step (the training loop sets it from the schedule)."""
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = eps
        self.weight_decay = weight_decay
        self.decoupled = decoupled
        self.t = 0
        """Steps taken so far."""
        self._m: Params = {}
        self._v: Params = {}

    def step(self, params: Params, grads: Params) -> None:
        """One Adam step on every array of `params` that has a gradient, in place."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for key, grad in grads.items():
            p = params[key]
            g = grad.astype(p.dtype, copy=True)
            if self.weight_decay and not self.decoupled:
                g += self.weight_decay * p
            m = self._m.setdefault(key, np.zeros_like(p))
            v = self._v.setdefault(key, np.zeros_like(p))
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            if self.weight_decay and self.decoupled:
                p -= self.lr * self.weight_decay * p
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state(self) -> Params:
        """First and second moments (`m/<param>`, `v/<param>`) and the step count (`step`)."""
        out = {f"m/{k}": a.copy() for k, a in self._m.items()}
        out |= {f"v/{k}": a.copy() for k, a in self._v.items()}
        out["step"] = np.array(self.t, dtype=np.int64)
        return out

    def load_state(self, state: Params) -> None:
        """Restore what `state()` returned."""
        self.t = int(state["step"])
        self._m = {k[2:]: np.array(a) for k, a in state.items() if k.startswith("m/")}
        self._v = {k[2:]: np.array(a) for k, a in state.items() if k.startswith("v/")}


Optimizer = Sgd | Adam


@dataclass(frozen=True, slots=True)
class Schedule:
    """Learning-rate factor per optimiser step: a linear warm-up, then constant, step decay or
    cosine annealing."""

    kind: str = "constant"
    """"constant", "step" (times `gamma` at each milestone) or "cosine" (to 0 at the end)."""
    milestones: tuple[int, ...] = ()
    """Epochs (1-based counts of finished epochs) after which "step" multiplies by `gamma`;
    increasing, >= 1."""
    gamma: float = 0.1
    """Factor per milestone of "step"; 0 < gamma <= 1."""
    warmup_epochs: float = 0.0
    """Length of the linear warm-up in epochs (may be fractional); >= 0."""

    def __post_init__(self) -> None:
        _check("schedule", self.kind in SCHEDULES, f"one of {', '.join(SCHEDULES)}", self.kind)
        ms = self.milestones
        _check(
            "milestones",
            all(m >= 1 for m in ms) and list(ms) == sorted(set(ms)),
            "increasing epochs >= 1",
            ms,
        )
        _check("milestones", not ms or self.kind == "step", 'schedule "step"', self.kind)
        _check("gamma", 0 < self.gamma <= 1, "0 < gamma <= 1", self.gamma)
        _check(
            "warmup_epochs",
            math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0,
            "a number >= 0",
            self.warmup_epochs,
        )

    def factor(self, step: int, steps_per_epoch: int, epochs: int) -> float:
        """Factor of the base learning rate for optimiser step `step` (0-based) of a run of
        `epochs` epochs with `steps_per_epoch` steps each.

        Warm-up over W = round(warmup_epochs * steps_per_epoch) steps: (step + 1) / W. Then
        "step": gamma ** (milestones <= step // steps_per_epoch); "cosine":
        (1 + cos(pi * (step - W) / (total - W))) / 2 with total = epochs * steps_per_epoch.
        """
        warmup = round(self.warmup_epochs * steps_per_epoch)
        if step < warmup:
            return (step + 1) / warmup
        if self.kind == "step":
            done = step // steps_per_epoch
            return self.gamma ** sum(m <= done for m in self.milestones)
        if self.kind == "cosine":
            span = max(epochs * steps_per_epoch - warmup, 1)
            return 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))
        return 1.0
