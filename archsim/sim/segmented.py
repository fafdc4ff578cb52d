"""A segmented run (weight reloads): the segments' timed runs joined into one timeline.

Each segment runs the whole batch after its weights were programmed: the programming (weights
streamed in through the off-chip interface, then written by all cores in parallel) appears as
its own rows ("weights_in" on the off-chip interface, "program" on the chip), and each
segment's rows are shifted to start after the previous segment and its reload.
"""

from __future__ import annotations

from archsim.mapping import Mapping
from archsim.mapping.segments import reload_cost
from archsim.sim.engine import Engine, SimRun, SimSettings
from archsim.sim.recorder import Recorder


def run_segments(parts: list[Mapping], settings: SimSettings) -> SimRun:
    """Run every segment for the whole batch, one after another, with reloads between."""
    rec = Recorder()
    offset = 0.0
    plan = {}
    groups = {}
    events = 0
    enlarged: list[str] = []
    start: list[float] | None = None
    end: list[float] = []
    units: tuple = ()
    for part in parts:
        cost = reload_cost(part)
        stream_ns = cost.weight_bytes / part.chip.memory.offchip_bandwidth_bytes_per_ns
        rec.record(
            offset,
            offset + stream_ns,
            "offchip",
            "weights_in",
            part.workload.name,
            -1,
            cost.weight_bytes,
        )
        rec.record(
            offset + stream_ns,
            offset + cost.time_ns,
            "chip",
            "program",
            part.workload.name,
            -1,
            cost.devices,
        )
        offset += cost.time_ns
        run = Engine(part.chip, part, settings).run()
        rec.rows.extend((t0 + offset, t1 + offset, *rest) for t0, t1, *rest in run.recorder.rows)
        if start is None:
            start = [t + offset for t in run.sample_start_ns]
        end = [t + offset for t in run.sample_end_ns]
        offset += run.end_ns
        plan.update(run.plan)
        groups.update(run.core_groups)
        events += run.events
        enlarged += run.enlarged_buffers
        units = run.digital_units
    return SimRun(
        rec,
        plan,
        start or [],
        end,
        offset,
        events,
        enlarged,
        groups,
        units,
        batch_schedule=len(parts) > 1,
    )
