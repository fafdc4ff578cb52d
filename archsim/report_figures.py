"""The run report's pictures: energy by part, array utilisation on the chip floor, accuracy over
time with its sampling uncertainty.

Each `*_figure` function returns the matplotlib figure (so tests can read what was drawn) and
`save` writes and closes it. Simplifications: accuracy and agreement are treated as binomial
proportions of independent samples (Wilson score interval, 95 %); the output cosine is a mean
and is drawn without an interval.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from archsim.evaluate import EvalResult
from archsim.sim.metrics import Metrics
from archsim.spec import ChipSpec
from archsim.spec.digital import digital_units

Z95 = 1.959963984540054
"""Two-sided 95 % quantile of the standard normal distribution."""


def wilson_interval(fraction: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (E. B. Wilson, JASA 22(158), 1927).

    Args:
        fraction: observed successes / n, in [0, 1].
        n: number of trials, >= 1.
        z: normal quantile of the confidence level (default 95 %).

    Returns:
        (low, high), both inside [0, 1]; unlike the normal approximation it does not collapse
        to zero width at 0 or 1.
    """
    z2n = z * z / n
    centre = (fraction + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(fraction * (1 - fraction) / n + z2n / (4 * n))
    # the interval holds `fraction` (at 0 and 1 rounding can put an end just past it)
    return max(0.0, min(fraction, centre - half)), min(1.0, max(fraction, centre + half))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 120) -> None:
    """Write `fig` to `path` and release it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)


def energy_figure(m: Metrics, title: str):
    """Bar chart of the energy per sample by part."""
    plt = _pyplot()
    parts = {k: v / 1e6 for k, v in m.energy_breakdown_pj.items() if v > 0}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(parts), list(parts.values()), color="tab:orange")
    ax.set_xlabel("part of the chip")
    ax.set_ylabel("energy per sample (uJ)")
    ax.set_title(f"{title}: {m.energy_per_sample_pj / 1e6:.3g} uJ per sample")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def utilisation_figure(chip: ChipSpec, m: Metrics, title: str):
    """Busy fraction of each core's array in the steady state, on the chip floor; each cell
    names the layer(s) the core's array works for. Digital accelerator nodes appear at their
    routers, named, with their busy fraction over all the ops they run."""
    plt = _pyplot()
    util = m.utilisation
    mvm = util[util.op == "mvm"]
    busy = mvm.groupby("component").busy.sum()
    layers = mvm.groupby("component").layer.agg(lambda s: "+".join(dict.fromkeys(s)))
    rows, cols = chip.cores.grid
    grid = np.full((rows, cols), np.nan)
    for core in range(chip.cores.count):
        grid[divmod(core, cols)] = busy.get(f"core{core}", 0.0)
    nodes = {u.router: u.name for u in digital_units(chip) if u.node}
    node_busy = util.groupby("component").busy.sum()
    for router, name in nodes.items():  # a node's busy fraction over all the ops it runs
        grid[divmod(router, cols)] = min(1.0, node_busy.get(name, 0.0))
    fig, ax = plt.subplots(figsize=(2.0 + 0.9 * cols, 1.4 + 0.75 * rows))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    for (r, c), v in np.ndenumerate(grid):
        if np.isnan(v):
            continue
        name = nodes.get(r * cols + c) or layers.get(f"core{r * cols + c}", "idle")
        ax.text(
            c,
            r,
            f"{name if (r * cols + c) in nodes else name[:9]}\n{v:.0%}",
            ha="center",
            va="center",
            fontsize=5.5,
            color="white" if v < 0.6 else "black",
        )
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("core column on the chip floor")
    ax.set_ylabel("core row (core = row x columns + column)")
    fig.colorbar(im, ax=ax, label="array busy fraction (steady state)")
    what = "array utilisation per core, layer it serves"
    if nodes:
        what += "; digital nodes by name"
    ax.set_title(f"{title}: {what}", fontsize=9)
    fig.tight_layout()
    return fig


def accuracy_figure(result: EvalResult, random_weights: bool = False):
    """One panel per measure against time since programming: top-1 accuracy (with labels),
    agreement with float (omitted for random-weight networks, where it is not meaningful)
    and output cosine similarity to float. Accuracy and agreement carry 95 % Wilson
    intervals over `result.samples` samples; every axis spans its intervals."""
    plt = _pyplot()
    t = [max(p.t_s, 0.1) for p in result.points]
    n = result.samples
    panels = []
    if result.float_accuracy is not None:
        panels.append(("accuracy", "top-1 accuracy (%)"))
    if not random_weights:
        panels.append(("agreement", "top-1 agreement\nwith float (%)"))
    panels.append(("similarity", "output cosine\nsimilarity to float"))
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(6.5, 1.2 + 2.0 * len(panels)), sharex=True, squeeze=False
    )
    for ax, (what, label) in zip(axes[:, 0], panels, strict=True):
        values = [getattr(p, what) or 0.0 for p in result.points]
        if what == "similarity":
            ax.plot(t, values, "^-", color="tab:green", label="mean over samples")
            low, high = min(values), max(values)
        else:
            bounds = [wilson_interval(v, n) for v in values]
            pct = [100 * v for v in values]
            err = [[100 * (v - lo) for v, (lo, _) in zip(values, bounds, strict=True)]]
            err.append([100 * (hi - v) for v, (_, hi) in zip(values, bounds, strict=True)])
            ax.errorbar(t, pct, yerr=err, fmt="o-", capsize=3, label="analog, 95 % interval")
            low, high = 100 * min(b[0] for b in bounds), 100 * max(b[1] for b in bounds)
            if what == "accuracy":
                low, high = (
                    min(low, 100 * result.float_accuracy),
                    max(high, 100 * result.float_accuracy),
                )
                ax.axhline(100 * result.float_accuracy, color="k", ls="--", label="float")
        pad = max(0.1 * (high - low), 0.01 * max(abs(high), 1e-3))
        top = 100.0 if what != "similarity" else 1.0
        ax.set_ylim(low - pad, min(high + pad, top * 1.005) if high <= top else high + pad)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[-1, 0].set_xscale("log")
    axes[-1, 0].set_xlabel("time since programming (s)")
    axes[0, 0].set_title(
        f"{result.workload} on {result.chip} ({result.device}), {n} samples", fontsize=9
    )
    fig.tight_layout()
    return fig
