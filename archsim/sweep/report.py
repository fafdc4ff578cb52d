"""The report of a sweep: Pareto front table and pictures next to the results CSV.

Writes into the sweep's output directory (beside results.csv):
- pareto.csv: the successful points with a `pareto` column;
- pareto.png: each pair of objectives, all points in grey, the front in colour;
- summary.md / report.html: settings, point counts, the front, the failed points.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from archsim.html_report import markdown_to_html
from archsim.outputs import atomic_file
from archsim.sweep.pareto import objectives_for, pareto_front
from archsim.sweep.spec import SweepSpec

LABELS = {
    "accuracy": "accuracy (first time)",
    "agreement": "agreement with float (first time)",
    "similarity": "output cosine similarity to float (first time)",
    "energy_per_sample_pj": "energy per sample (pJ)",
    "period_ns": "time per sample, steady state (ns)",
    "latency_ns": "latency (ns)",
    "area_mm2": "compute area, cores + GDPUs (mm2)",
    "tops_per_w": "TOPS/W",
    "effective_tops": "effective TOPS",
    "tokens_per_s": "tokens/s",
    "tokens_per_s_per_mm2": "tokens/s/mm2",
    "energy_per_token_j": "energy per token (J)",
    "makespan_ns": "makespan (ns)",
    "average_power_w": "average power (W)",
}
LABELLED_POINTS = 24
"""A sweep of at most this many points labels each point with its first swept key's value."""


def write_sweep_report(
    spec: SweepSpec, results: pd.DataFrame, out_dir: Path
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Write pareto.csv, pareto.png, summary.md and report.html.

    Returns:
        The successful points with their `pareto` flag, and the objectives used.
    """
    wanted = spec.objectives or spec.default_objectives()
    objectives = objectives_for(results, wanted)
    front = pareto_front(results, objectives)
    with atomic_file(out_dir / "pareto.csv") as tmp:
        front.to_csv(tmp, index=False)
    pictures = []
    if len(objectives) >= 2 and front["pareto"].any():
        with atomic_file(out_dir / "pareto.png") as tmp:
            _plot_front(front, objectives, spec, tmp)
        pictures.append("pareto.png")
    else:
        (out_dir / "pareto.png").unlink(missing_ok=True)  # an earlier run's front
    text = _summary(spec, results, front, objectives, pictures)
    html = markdown_to_html(text, out_dir, f"sweep {spec.name}")
    for name, content in (("summary.md", text), ("report.html", html)):
        with atomic_file(out_dir / name) as tmp:
            tmp.write_text(content)
    return front, objectives


def format_front(spec: SweepSpec, front: pd.DataFrame, objectives: dict[str, str]) -> str:
    """The Pareto points as a fixed-width table (parameters, then objectives)."""
    on = front[front["pareto"]]
    if on.empty:
        return "no Pareto front (no successful point with every objective)"
    cols = [*spec.parameter_keys, *objectives]
    first = next(iter(objectives))
    table = on[cols].sort_values(first, ascending=objectives[first] == "min")
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _summary(spec, results, front, objectives, pictures) -> str:
    ok = results[results["status"] == "ok"]
    failed = results[results["status"] != "ok"]
    senses = ", ".join(f"{k} ({v})" for k, v in objectives.items()) or "none"
    lines = [
        f"# Sweep {spec.name}",
        "",
        spec.description,
        "",
        spec.setting_line(),
        f"- method {spec.method}; swept: " + ", ".join(f"`{k}`" for k in spec.parameter_keys),
        f"- points: {len(results)} ({len(ok)} ok, {len(failed)} failed)",
        f"- objectives: {senses}; {int(front['pareto'].sum())} points on the Pareto front",
        "",
        "## Pareto front",
        "",
        "```",
        format_front(spec, front, objectives),
        "```",
        "",
    ]
    lines += [f"![{p}]({p})" for p in pictures]
    if len(failed):
        lines += ["", "## Failed points", ""]
        for _, r in failed.iterrows():
            params = ", ".join(f"{k}={r[k]}" for k in spec.parameter_keys)
            lines.append(f"- {params}: {r['error']}")
    lines += ["", "Files: results.csv (every point), pareto.csv (with the `pareto` column)."]
    return "\n".join(lines) + "\n"


def _plot_front(front: pd.DataFrame, objectives: dict[str, str], spec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(itertools.combinations(objectives, 2))[:6]
    ncols = min(3, len(pairs))
    nrows = -(-len(pairs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    on = front[front["pareto"]]
    keys = list(spec.parameter_keys)
    others = keys[1:]  # points that differ in these get their own marker
    groups = list(front.groupby(others, sort=True)) if others else [((), front)]
    for ax, (x, y) in zip(axes.flat, pairs, strict=False):
        for i, (values, g) in enumerate(groups):
            values = values if isinstance(values, tuple) else (values,)
            name = ", ".join(f"{k}={v}" for k, v in zip(others, values, strict=True))
            ax.scatter(
                g[x],
                g[y],
                s=16,
                color=f"C{i % 10}",
                marker="osD^v<>"[i % 7],
                label=name or "all points",
            )
        ax.scatter(
            on[x],
            on[y],
            s=70,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=1.4,
            label="Pareto front",
        )
        if keys and len(front) <= LABELLED_POINTS:
            for _, r in front.iterrows():
                ax.annotate(
                    f"{keys[0]}={r[keys[0]]}",
                    (r[x], r[y]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xlabel(LABELS.get(x, x) + _better(objectives[x]))
        ax.set_ylabel(LABELS.get(y, y) + _better(objectives[y]))
        for col in (x, y):
            values = pd.to_numeric(front[col], errors="coerce")
            if objectives[col] == "min" and values.min() > 0 and values.max() / values.min() > 20:
                (ax.set_xscale if col == x else ax.set_yscale)("log")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"sweep {spec.name}: {len(front)} points", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _better(objective: str) -> str:
    """Axis-label suffix saying which way is better."""
    return " (higher is better)" if objective == "max" else " (lower is better)"
