"""The training report: history.csv, curves.png, summary.md, report.html and train.json.

The summary gives the loss and accuracy (or perplexity) per epoch and, when the trained network
was evaluated on a chip, its accuracy after each time of drift with the normalised accuracy
A*(t) = (100 - e(t)) / (100 - e_FP) x 100 % (e in %; RA23 via LG25), the measure of seed 000's
hardware-aware training table.
"""

from __future__ import annotations

import json
from pathlib import Path

from archsim.html_report import markdown_to_html
from archsim.outputs import TRAIN_REPORT, atomic_file


def a_star(accuracy_pct: float, float_accuracy_pct: float) -> float:
    """Normalised accuracy A* in %: (100 - e(t)) / (100 - e_FP) x 100 with e = 100 - accuracy,
    i.e. the analog accuracy over the float accuracy; NaN when the float accuracy is 0."""
    if float_accuracy_pct <= 0:
        return float("nan")
    return 100.0 * accuracy_pct / float_accuracy_pct


def normalised_accuracy(value: float, fp: float, metric: str) -> float:
    """A* in % of a metric: for an error in % RA23's (100 - e) / (100 - e_FP) (`a_star` on the
    accuracies), for a perplexity the ratio 100 ppl_FP / ppl."""
    if metric == "perplexity":
        return 100.0 * fp / value
    return a_star(100.0 - value, 100.0 - fp)


def drift_rows(result) -> list[dict]:
    """Per time of an EvalResult: the metric (accuracy in % or perplexity), its float value and
    A*(t) in %."""
    if result.float_perplexity is not None:
        f = result.float_perplexity
        return [
            {
                "t_s": p.t_s,
                "perplexity": p.perplexity,
                "float_perplexity": f,
                "a_star": normalised_accuracy(p.perplexity, f, "perplexity"),
            }
            for p in result.points
        ]
    f = 100 * result.float_accuracy
    return [
        {
            "t_s": p.t_s,
            "accuracy": 100 * p.accuracy,
            "float_accuracy": f,
            "a_star": a_star(100 * p.accuracy, f),
        }
        for p in result.points
    ]


def write_train_report(
    out: Path,
    *,
    title: str,
    setup: str,
    result,
    onnx_name: str,
    drift=None,
    record: dict | None = None,
    sections: tuple[str, ...] = (),
    extra: dict | None = None,
) -> None:
    """Write the report of a finished training run into `out`.

    Args:
        out: the run's output directory.
        title: "<workload> on <data> (<method>)".
        setup: one line on optimiser, rate, batch and seed.
        result: the loop's TrainResult (history, resumed_from).
        onnx_name: file name of the exported network in `out`.
        drift: the EvalResult of the trained network on a chip over drift time, or None.
        record: the command's settings, stored in train.json with the final epoch.
        sections: more markdown (whole sections) appended to the summary (on-chip training:
            pulses per device, aging, time and energy per sample).
        extra: more JSON-able results stored in train.json.
    """
    h = result.history
    keys = list(dict.fromkeys(k for r in h for k in r))
    with atomic_file(out / "history.csv") as tmp:
        rows = [",".join(keys)] + [",".join(f"{r.get(k, '')}" for k in keys) for r in h]
        tmp.write_text("\n".join(rows) + "\n")
    _plot_curves(h, out / "curves.png", title)
    metric = "perplexity" if "test_perplexity" in h[-1] else "accuracy"
    unit = "" if metric == "perplexity" else " %"
    resumed = f" (resumed after epoch {result.resumed_from})" if result.resumed_from else ""
    lines = [
        f"# Training: {title}",
        "",
        f"{setup}; {len(h)} epochs{resumed}.",
        "",
        "![loss and accuracy per epoch](curves.png)",
        "",
        f"| epoch | loss | train {metric} | test {metric} | samples/s |",
        "|---|---|---|---|---|",
    ]
    for r in h:
        lines.append(
            f"| {r['epoch']} | {r['loss']:.4f} | {r.get(f'train_{metric}', float('nan')):.2f}"
            f"{unit} | {r.get(f'test_{metric}', float('nan')):.2f}{unit} | "
            f"{r['samples_per_s']:.0f} |"
        )
    lines += ["", f"Network: `{onnx_name}` (ONNX)."]
    rows = drift_rows(drift) if drift is not None else []
    if rows:
        key = "perplexity" if "perplexity" in rows[0] else "accuracy"
        unit = "" if key == "perplexity" else " %"
        formula = (
            "A*(t) = 100 ppl_float / ppl(t), the perplexity ratio."
            if key == "perplexity"
            else "A*(t) = (100 - e(t)) / (100 - e_float), e the error in %."
        )
        lines += [
            "",
            f"## On {drift.chip} with {drift.device}: {drift.samples} test samples",
            "",
            formula,
            "",
            f"| t (s) | {key} | float | A*(t) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['t_s']:g} | {r[key]:.2f}{unit} | {r['float_' + key]:.2f}{unit} | "
            f"{r['a_star']:.1f} % |"
            for r in rows
        ]
    for section in sections:
        lines += ["", section.rstrip("\n")]
    summary = "\n".join(lines) + "\n"
    with atomic_file(out / "summary.md") as tmp:
        tmp.write_text(summary)
    with atomic_file(out / "report.html") as tmp:
        tmp.write_text(markdown_to_html(summary, out, f"archsim train: {title}"))
    stored = (record or {}) | {"final": h[-1], "onnx": onnx_name}
    if rows:
        stored["drift"] = rows
    stored |= extra or {}
    with atomic_file(out / TRAIN_REPORT) as tmp:
        tmp.write_text(json.dumps(stored, indent=1) + "\n")


def _plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    metric = "perplexity" if "test_perplexity" in history[-1] else "accuracy"
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_loss.plot(epochs, [r["loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    ax_loss.set_ylabel("loss")
    for split, marker in (("train", "o-"), ("test", "s-")):
        values = [r.get(f"{split}_{metric}", float("nan")) for r in history]
        ax_metric.plot(epochs, values, marker, label=split)
    ax_metric.set_ylabel(metric + (" (%)" if metric == "accuracy" else ""))
    for ax in (ax_loss, ax_metric):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
