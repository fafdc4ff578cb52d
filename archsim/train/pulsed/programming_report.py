"""Tables and the figure of the weight-programming benchmark (archsim.train.pulsed.programming).

Errors are printed in percent of w_max = 1 (the device range is +-1), i.e. 100 x the SD of
W - W* in weight units, the unit in which RA24 Fig. 4 quotes about 4.5 % and 1.2 % for AGAD.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from archsim.outputs import atomic_file
from archsim.train.pulsed.programming import ProgrammingCell

RA24_EXPECTED = {
    ("analog-sgd", 20): "> 25 % (notes on RA24)",
    ("ttv2", 20): "about 5 % at sigma_r 0, about 9 % from 0.1 (RA24-sum)",
    ("cttv2", 20): "flat up to sigma_r about 0.5 (RA24-sum)",
    ("agad", 20): "about 4.5 %, flat (RA24-sum)",
    ("agad", 100): "about 1.2 %, flat (RA24-sum)",
}
"""What seed 001 reports per (method, n_states): RA24 Fig. 4 as two secondary sources summarise
it (RA24-sum, the seed text, and notes; see RA24 and notes in docs/sources.md)."""


def _pct(v: float) -> str:
    return f"{100.0 * v:.2f}"


def format_table(cells: Sequence[ProgrammingCell]) -> str:
    """A markdown table: one row per (method, n_states), one column per sigma_r, each entry the
    mean over seeds and the seeds' range in percent of w_max, then RA24's figure."""
    sigmas = sorted({c.sigma_r for c in cells})
    keys = list(dict.fromkeys((c.method, c.n_states) for c in cells))
    by = {(c.method, c.n_states, c.sigma_r): c for c in cells}
    head = "| method | n_states | " + " | ".join(f"sigma_r {s:g}" for s in sigmas)
    lines = [head + " | RA24 Fig. 4 |", "|---|---:|" + "---:|" * len(sigmas) + "---|"]
    for method, states in keys:
        row = [method, str(states)]
        for s in sigmas:
            c = by.get((method, states, s))
            row.append(
                "-"
                if c is None
                else f"{_pct(c.mean)} ({_pct(min(c.errors))}-{_pct(max(c.errors))})"
            )
        row.append(RA24_EXPECTED.get((method, states), "not given"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(cells: Sequence[ProgrammingCell], out: Path, notes: str) -> None:
    """table.md (the table and `notes`), table.csv (one line per seed) and errors.png."""
    with atomic_file(out / "table.md") as tmp:
        tmp.write_text(
            "# Weight programming (RA24 Fig. 4): SD of W - W* in % of w_max (mean over "
            "device seeds, their range in brackets)\n\n" + format_table(cells) + "\n" + notes
        )
    lines = ["method,n_states,sigma_r,device_seed,weight_error,wall_s"]
    for c in cells:
        lines += [
            f"{c.method},{c.n_states},{c.sigma_r:g},{i},{e:.6g},{c.wall_s:.2f}"
            for i, e in enumerate(c.errors)
        ]
    with atomic_file(out / "table.csv") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    fig = error_figure(cells)
    from archsim.report_figures import save

    with atomic_file(out / "errors.png") as tmp:
        save(fig, tmp)


def error_figure(cells: Sequence[ProgrammingCell]):
    """One panel per n_states: the error against sigma_r per method, seeds' range as bars."""
    from archsim.report_figures import _pyplot

    plt = _pyplot()
    states = sorted({c.n_states for c in cells})
    fig, axes = plt.subplots(1, len(states), figsize=(5 * len(states), 4), squeeze=False)
    for ax, n in zip(axes[0], states, strict=True):
        for method in dict.fromkeys(c.method for c in cells):
            mine = sorted(
                (c for c in cells if c.method == method and c.n_states == n),
                key=lambda c: c.sigma_r,
            )
            if not mine:
                continue
            x = np.array([c.sigma_r for c in mine])
            y = np.array([100 * c.mean for c in mine])
            lo = y - np.array([100 * min(c.errors) for c in mine])
            hi = np.array([100 * max(c.errors) for c in mine]) - y
            ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=method)
        ax.set_yscale("log")
        ax.set_xlabel("reference offset spread sigma_r (device range +-1)")
        ax.set_ylabel("SD of W - W* (% of w_max)")
        ax.set_title(f"{n} states (dw_min {2 / n:g})")
        ax.legend()
    return fig
