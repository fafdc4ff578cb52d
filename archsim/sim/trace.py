"""Chrome/Perfetto trace of a timed run (open it in https://ui.perfetto.dev or chrome://tracing).

One process per component ("core12", "link3-4", "gdpu0", "offchip") and one track (thread) per
resource of it (`recorder.RESOURCE_OF_OP`: a core's array, ADC bank and LDPU are separate
tracks), so the slices of a track never overlap: each resource serves one request at a time.
One slice per recorded busy interval, named by op and layer. Only the first `max_samples`
samples are exported to keep the file small; instantaneous rows (SRAM bookkeeping) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from archsim.sim.recorder import RESOURCE_OF_OP


def write_trace(frame: pd.DataFrame, path: Path, max_samples: int = 2) -> int:
    """Write the trace; returns the number of slices."""
    rows = frame[(frame.t1_ns > frame.t0_ns) & (frame["sample"] < max_samples)]
    resources = rows.op.map(lambda op: RESOURCE_OF_OP.get(op, op))
    procs = {c: i + 1 for i, c in enumerate(sorted(rows.component.unique()))}
    tracks = {
        key: i + 1 for i, key in enumerate(sorted(set(zip(rows.component, resources, strict=True))))
    }
    events = [
        *(
            {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": c}}
            for c, pid in procs.items()
        ),
        *(
            {"name": "thread_name", "ph": "M", "pid": procs[c], "tid": tid, "args": {"name": r}}
            for (c, r), tid in tracks.items()
        ),
    ]
    for r, resource in zip(rows.itertuples(index=False), resources, strict=True):
        events.append(
            {
                "name": f"{r.op} {r.layer}",
                "ph": "X",
                "pid": procs[r.component],
                "tid": tracks[(r.component, resource)],
                "ts": r.t0_ns / 1e3,
                "dur": (r.t1_ns - r.t0_ns) / 1e3,
                "args": {"sample": int(r.sample), "qty": float(r.qty)},
            }
        )
    path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
    return len(rows)
