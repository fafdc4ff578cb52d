"""Per-layer timing of a timed run, read off the recorder rows.

- `layer_spans`: when each layer works on one sample (first start to last end of its rows), in
  the order layers first start: the pipeline overlap and the latency of one sample.
- `stage_times`: per layer, the busy time per sample of its busiest resource (a core's array,
  LDPU or SRAM port, a link, a GDPU or digital node) over the whole stream. The largest is the
  stage that sets the steady-state period when the pipeline is balanced by nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from archsim.spec.digital import OP_CLASSES

_WORK_OPS = (
    "mvm",
    "adc",
    "ldpu",
    "gdpu",
    *OP_CLASSES,
    "link",
    "offchip_in",
    "offchip_out",
    "spill",
)


def layer_spans(frame: pd.DataFrame, sample: int = 0) -> pd.DataFrame:
    """Columns layer, start_ns, end_ns for `sample`, ordered by start."""
    rows = frame[(frame["sample"] == sample) & frame["op"].isin(_WORK_OPS)]
    spans = rows.groupby("layer").agg(start_ns=("t0_ns", "min"), end_ns=("t1_ns", "max"))
    return spans.sort_values(["start_ns", "end_ns"]).reset_index()


def stage_times(frame: pd.DataFrame, samples: int) -> pd.DataFrame:
    """Columns layer, resource ("core12 mvm", "link3-4 link", ...), busy_ns per sample of each
    layer's busiest resource (a component's array, ADC bank and LDPU are separate resources)."""
    rows = frame[frame["op"].isin(_WORK_OPS)].assign(busy=frame["t1_ns"] - frame["t0_ns"])
    per = rows.groupby(["layer", "component", "op"])["busy"].sum().reset_index()
    top = per.loc[per.groupby("layer")["busy"].idxmax()]
    return pd.DataFrame(
        {
            "layer": top["layer"].to_numpy(),
            "resource": (top["component"] + " " + top["op"]).to_numpy(),
            "busy_ns": top["busy"].to_numpy() / samples,
        }
    )


def plot_layer_timing(
    frame: pd.DataFrame,
    samples: int,
    period_ns: float,
    title: str,
    path: Path,
    sample_span_ns: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Two panels: the first sample's per-layer spans, and each layer's busiest resource per
    sample against the measured period.

    With `sample_span_ns` (the first sample's start and end, as the engine measured them), the
    left panel starts at the sample's start and ends with an "output latency" bar reaching
    its end, so it shows the same latency as `Metrics.latency_ns` (the last work row ends when
    the output leaves the off-chip port; the off-chip latency follows).

    Returns:
        The spans drawn in the left panel (layer, start_ns, end_ns), relative to time 0.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spans = layer_spans(frame, 0)
    stages = stage_times(frame, samples).set_index("layer").reindex(spans["layer"]).dropna()
    t0 = 0.0
    if sample_span_ns is not None:
        t0, t1 = sample_span_ns
        if t1 > spans["end_ns"].max():
            tail = {"layer": "output latency", "start_ns": spans["end_ns"].max(), "end_ns": t1}
            spans = pd.concat([spans, pd.DataFrame([tail])], ignore_index=True)
    n = len(spans)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 1.2 + 0.28 * n), sharey=True)
    y = range(n)
    scale, unit = (1e3, "us") if spans["end_ns"].max() - t0 > 5e3 else (1.0, "ns")
    left.barh(
        y,
        (spans["end_ns"] - spans["start_ns"]) / scale,
        left=(spans["start_ns"] - t0) / scale,
        color="tab:blue",
        alpha=0.75,
    )
    left.set_yticks(list(y), spans["layer"], fontsize=7)
    left.invert_yaxis()
    left.set_xlabel(f"time since the sample's first input ({unit})")
    latency_us = (spans["end_ns"].max() - t0) / 1e3
    left.set_title(f"sample 0: latency {latency_us:.2f} us", fontsize=9)
    left.grid(True, axis="x", alpha=0.3)
    pos = [list(spans["layer"]).index(name) for name in stages.index]
    right.barh(pos, stages["busy_ns"] / scale, color="tab:orange", alpha=0.8)
    if period_ns > 0:
        right.axvline(period_ns / scale, color="k", ls="--", lw=1, label="period")
        right.legend(fontsize=7)
    right.set_xlabel(f"busiest resource, time per sample ({unit})")
    right.set_title("steady state: stage times", fontsize=9)
    right.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return spans
