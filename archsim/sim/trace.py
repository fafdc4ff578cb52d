"""Chrome/Perfetto trace of a timed run (open it in https://ui.perfetto.dev or chrome://tracing).

One track per component, one slice per recorded busy interval, named by op and layer. Only the
first `max_samples` samples are exported to keep the file small.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def write_trace(frame: pd.DataFrame, path: Path, max_samples: int = 2) -> int:
    """Write the trace; returns the number of slices."""
    rows = frame[(frame.t1_ns > frame.t0_ns) & (frame["sample"] < max_samples)]
    tracks = {c: i for i, c in enumerate(sorted(rows.component.unique()))}
    events = [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "chip"}},
        *(
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": {"name": c}}
            for c, t in tracks.items()
        ),
    ]
    for r in rows.itertuples(index=False):
        events.append(
            {
                "name": f"{r.op} {r.layer}",
                "ph": "X",
                "pid": 1,
                "tid": tracks[r.component],
                "ts": r.t0_ns / 1e3,
                "dur": (r.t1_ns - r.t0_ns) / 1e3,
                "args": {"sample": int(r.sample), "qty": float(r.qty)},
            }
        )
    path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
    return len(rows)
