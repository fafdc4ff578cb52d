"""Trainable parameters of a workload as a flat dict, and a workload rebuilt around them.

Keys are `"<op name>.<attribute>"`: weight and bias of Conv2d, Linear and Lstm (in their IR
layouts: Conv2d (C_out, C_in/groups, kh, kw), Linear (in, out), Lstm ((in + hidden), 4 * hidden)),
scale and shift of Affine, gamma and beta of LayerNorm and table of Embedding, where the op
has them (a bias of None is no parameter). An analog product may add its own parameters to the
same dict under an analog op's name (`PRODUCT_PARAMS`, e.g. HWA's learned input ranges); the
ops do not carry those.

Simplifications: Binary constants and Pad values are constants, not parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from archsim.errors import WorkloadError
from archsim.workload import ir

Params = dict[str, np.ndarray]
"""{"<op name>.<attribute>": array}, float32 (float64 in gradient checks)."""

PARAM_ATTRS: dict[type, tuple[str, ...]] = {
    ir.Conv2d: ("weight", "bias"),
    ir.Linear: ("weight", "bias"),
    ir.Lstm: ("weight", "bias"),
    ir.Affine: ("scale", "shift"),
    ir.LayerNorm: ("gamma", "beta"),
    ir.Embedding: ("table",),
}
"""Op type -> attributes that are trainable parameters (when not None)."""

PRODUCT_PARAMS = ("input_range",)
"""Parameters an analog product keeps beside an analog op's weights (archsim.train.hwa)."""


def param_names(op: ir.Op) -> list[str]:
    """The attributes of `op` that are parameters, in a fixed order."""
    return [a for a in PARAM_ATTRS.get(type(op), ()) if getattr(op, a) is not None]


def params_of(workload: ir.Workload, dtype: type = np.float32) -> Params:
    """Copies of every trainable parameter of `workload`, in topological op order.

    Args:
        workload: the graph.
        dtype: float32 for training, float64 for gradient checks.
    """
    return {
        f"{op.name}.{a}": np.array(getattr(op, a), dtype=dtype)
        for op in workload.ops()
        for a in param_names(op)
    }


def with_params(workload: ir.Workload, params: Params, *, copy: bool = True) -> ir.Workload:
    """A new workload whose ops carry `params` (same graph, names and shapes).

    Args:
        workload: the graph whose parameters are replaced.
        params: one array per key of `params_of(workload)`, same shapes; keys in
            `PRODUCT_PARAMS` under an analog op are accepted and left out of the ops.
        copy: copy the arrays (False lets the ops share the caller's arrays).

    Raises:
        WorkloadError: a missing or unknown key, or an array of the wrong shape.
    """
    graph = workload.graph.copy()
    used = set()
    for op in workload.ops():
        names = param_names(op)
        if not names:
            continue
        new = {}
        for a in names:
            key = f"{op.name}.{a}"
            if key not in params:
                raise WorkloadError(f"{workload.name}: parameters lack {key!r}")
            old = getattr(op, a)
            value = np.asarray(params[key])
            if value.shape != old.shape:
                raise WorkloadError(
                    f"{workload.name}: parameter {key!r} expects shape {old.shape}, "
                    f"got {value.shape}"
                )
            new[a] = value.copy() if copy else value
            used.add(key)
        graph.nodes[op.name]["op"] = dataclasses.replace(op, **new)
    analog = {op.name for op in workload.analog_ops()}
    for key in params:
        owner, _, attr = key.rpartition(".")
        if key not in used and not (owner in analog and attr in PRODUCT_PARAMS):
            raise WorkloadError(f"{workload.name}: unknown parameter {key!r}")
    return dataclasses.replace(workload, graph=graph)


def add_grads(total: Params, more: Params) -> None:
    """total += more, key by key (new keys are added)."""
    for k, v in more.items():
        total[k] = total[k] + v if k in total else v
