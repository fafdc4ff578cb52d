"""Loss and parameter gradients of a workload on a batch, by reverse mode over its IR.

The forward pass runs the ops in topological order through the rules of `archsim.train.rules`
(the inference executor's forward code), keeping every tensor and each op's context on a tape;
the backward pass walks the tape in reverse, summing the gradients of tensors read by several
ops. Every static-weight product goes through an `AnalogProduct`: `ExactProduct` (x @ w) for
float training, `archsim.train.hwa.HwaProduct` for hardware-aware training.

Losses: "cross_entropy" (softmax and cross-entropy fused, on logits) and "mse". With
cross-entropy, a trailing Softmax (or LogSoftmax) on the last axis of the network's output is
skipped: the loss reads its input as the logits, which is exact for both.

Products run on one BLAS thread (`archsim.blas`): a seed gives the same bits anywhere, which
resuming from a checkpoint relies on, and two threads on two busy cores ran 4x slower.

Simplifications: one network output; no gradient to the network inputs; the digital units' FP16
rounding of inference is not applied in training.
"""

from __future__ import annotations

from typing import Protocol

import networkx as nx
import numpy as np

from archsim.blas import one_blas_thread
from archsim.errors import WorkloadError
from archsim.train.params import Params, add_grads, param_names, with_params
from archsim.train.rules import RULES, refusal
from archsim.workload import execute, ir

LOSSES = ("cross_entropy", "mse")


class AnalogProduct(Protocol):
    """The static-weight product of an analog op, with its own backward."""

    def forward(
        self, op: ir.Op, group: int, x: np.ndarray, w: np.ndarray, params: Params
    ) -> tuple[np.ndarray, object]:
        """x (rows, K) @ w (K, N) -> y (rows, N) and a context for backward."""

    def backward(self, ctx: object, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, Params]:
        """-> dx (rows, K), dw (K, N), grads of the product's own params (e.g. input ranges)."""


class ExactProduct:
    """y = x @ w; dx = dy @ w.T, dw = x.T @ dy; no parameters of its own."""

    def forward(
        self, op: ir.Op, group: int, x: np.ndarray, w: np.ndarray, params: Params
    ) -> tuple[np.ndarray, object]:
        return x @ w, (x, w)

    def backward(self, ctx: object, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, Params]:
        x, w = ctx
        return dy @ w.T, x.T @ dy, {}


def logits_tensor(workload: ir.Workload, loss: str) -> str:
    """The tensor the loss reads: the network's single output, or with cross-entropy the input
    of a trailing Softmax/LogSoftmax over the last axis (softmax is fused into the loss).

    Raises:
        WorkloadError: an unknown loss or a network with several outputs.
    """
    if loss not in LOSSES:
        raise WorkloadError(f"loss {loss!r}: expected one of {', '.join(LOSSES)}")
    if len(workload.outputs) != 1:
        raise WorkloadError(
            f"{workload.name}: training needs one output, the network has {workload.outputs}"
        )
    out = workload.op(workload.outputs[0])
    if loss == "cross_entropy" and isinstance(out, ir.Softmax) and out.axis == len(out.shape) - 1:
        return out.inputs[0]
    return out.name


@one_blas_thread
def value_and_grad(
    workload: ir.Workload,
    params: Params,
    x: np.ndarray | dict[str, np.ndarray],
    target: np.ndarray,
    *,
    loss: str = "cross_entropy",
    product: AnalogProduct | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[float, Params, np.ndarray]:
    """Loss of `workload` with `params` on a batch, its gradient and the network's output.

    Args:
        workload: the graph (its own parameter values are ignored).
        params: every key of `params_of(workload)`, plus the product's own parameters; float32,
            or float64 for gradient checks (the whole pass then runs in float64).
        x: (B, *input shape), or {input name: batch} for several inputs.
        target: cross-entropy: int labels (B,) for an output (B, C), or (B, T) for a sequence
            output (B, T, V) (mean over all B*T positions); mse: an array like the output.
        loss: "cross_entropy" or "mse".
        product: the static-weight product (None: `ExactProduct`).
        rng: reserved for stochastic ops; the IR has none, and an analog product draws from
            its own Generator.

    Returns:
        (loss, {param key: gradient} for every key of `params`, output the loss read: the
        logits when a trailing Softmax was fused into the cross-entropy).

    Raises:
        WorkloadError: an op without a backward rule (named), a bad key, shape or label.
    """
    del rng
    product = ExactProduct() if product is None else product
    bound = with_params(workload, params, copy=False)
    name = logits_tensor(bound, loss)
    needed = nx.ancestors(bound.graph, name) | {name}
    ops = [op for op in bound.ops() if op.name in needed]
    for op in ops:
        why = None if isinstance(op, ir.Input) else refusal(op)
        if why:
            raise WorkloadError(f"{workload.name}: op {op.name!r}: {why}")
    dtype = np.float64 if any(v.dtype == np.float64 for v in params.values()) else np.float32
    values = execute.input_batches(bound, x, dtype)
    tape = []
    for op in ops:
        if not isinstance(op, ir.Input):
            args = [values[s] for s in op.inputs]
            values[op.name], ctx = RULES[type(op)].forward(op, args, product, params)
            tape.append((op, args, ctx))
    out = values[name]
    value, d_out = _LOSS_FNS[loss](out, target, workload.name)
    if not np.isfinite(value):
        raise WorkloadError(f"{workload.name}: the loss is not finite ({value})")
    grads = _backward(tape, values, name, d_out.astype(dtype, copy=False), product)
    return value, {k: grads.get(k, np.zeros_like(v)) for k, v in params.items()}, out


def _backward(tape, values, name, d_out, product) -> Params:
    """Walk the tape in reverse from d loss / d `name`; returns the parameters' gradients."""
    trainable = set()
    for op, _, _ in tape:
        if param_names(op) or any(s in trainable for s in op.inputs):
            trainable.add(op.name)
    pending = {name: d_out}
    grads: Params = {}
    for op, args, ctx in reversed(tape):
        dy = pending.pop(op.name, None)
        if dy is None:
            continue
        need = [s in trainable for s in op.inputs]
        dxs, pgrads = RULES[type(op)].backward(op, args, values[op.name], ctx, dy, need, product)
        add_grads(grads, pgrads)
        add_grads(pending, {s: d for s, d, n in zip(op.inputs, dxs, need, strict=True) if n})
    return grads


def _cross_entropy(logits: np.ndarray, target: np.ndarray, where: str):
    """Mean of -log softmax(logits)[label]; gradient (softmax - onehot) / N."""
    labels = np.asarray(target)
    if labels.shape != logits.shape[:-1] or not np.issubdtype(labels.dtype, np.integer):
        raise WorkloadError(
            f"{where}: cross-entropy needs int labels of shape {logits.shape[:-1]} for "
            f"outputs {logits.shape}, got {labels.dtype} {labels.shape}"
        )
    classes = logits.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise WorkloadError(f"{where}: labels must lie in 0..{classes - 1}")
    z = logits.reshape(-1, classes)
    rows = np.arange(z.shape[0])
    flat = labels.reshape(-1)
    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    value = -float(np.mean(log_p[rows, flat], dtype=np.float64))
    d = np.exp(log_p)
    d[rows, flat] -= 1
    return value, (d / z.shape[0]).reshape(logits.shape)


def _mse(y: np.ndarray, target: np.ndarray, where: str):
    """Mean of (y - target)^2 over all elements; gradient 2 (y - target) / size."""
    t = np.asarray(target)
    if t.shape != y.shape:
        raise WorkloadError(f"{where}: mse needs targets of shape {y.shape}, got {t.shape}")
    diff = y - t.astype(y.dtype)
    return float(np.mean(np.square(diff), dtype=np.float64)), diff * (2 / diff.size)


_LOSS_FNS = {"cross_entropy": _cross_entropy, "mse": _mse}
