"""Pareto fronts of sweep results: the points no other point beats on every objective."""

from __future__ import annotations

import numpy as np
import pandas as pd

from archsim.errors import ArchsimError


def pareto_mask(costs: np.ndarray) -> np.ndarray:
    """Which rows of `costs` (points x objectives, all to be minimised) are not dominated.

    Row j dominates row i when it is no worse on every objective and better on one. Equal rows
    do not dominate each other, so duplicates of a front point are all on the front.
    """
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 2:
        raise ArchsimError(f"costs: expected a (points, objectives) array, got shape {costs.shape}")
    keep = np.ones(len(costs), dtype=bool)
    for i, c in enumerate(costs):
        no_worse = np.all(costs <= c, axis=1)
        better = np.any(costs < c, axis=1)
        keep[i] = not np.any(no_worse & better)
    return keep


def objectives_for(df: pd.DataFrame, wanted: dict[str, str]) -> dict[str, str]:
    """The objectives that exist in `df` with values on its successful points.

    Raises:
        ArchsimError: an objective names a column the results do not have.
    """
    ok = df[df["status"] == "ok"]
    out = {}
    for col, sense in wanted.items():
        if col not in df.columns:
            raise ArchsimError(
                f"objectives.{col}: no such result column (have: {', '.join(df.columns)})"
            )
        values = pd.to_numeric(ok[col], errors="coerce")
        if len(ok) and values.notna().all():
            out[col] = sense
    return out


def pareto_front(df: pd.DataFrame, objectives: dict[str, str]) -> pd.DataFrame:
    """The successful rows of `df` with a boolean `pareto` column for `objectives`
    ({column: "min" | "max"}); rows missing an objective value are never on the front."""
    ok = df[df["status"] == "ok"].copy()
    if not objectives or ok.empty:
        ok["pareto"] = False
        return ok
    cols = list(objectives)
    values = ok[cols].apply(pd.to_numeric, errors="coerce")
    complete = values.notna().all(axis=1).to_numpy()
    signs = np.array([1.0 if objectives[c] == "min" else -1.0 for c in cols])
    mask = np.zeros(len(ok), dtype=bool)
    mask[complete] = pareto_mask(values.to_numpy()[complete] * signs)
    ok["pareto"] = mask
    return ok
