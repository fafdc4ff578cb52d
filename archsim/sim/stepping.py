"""Running a SimPy environment to the end, optionally with status lines, and counting events."""

from __future__ import annotations

import time
from collections.abc import Callable

import simpy

REPORT_EVERY = 0x4000
"""Events between two looks at the wall clock."""


def run_to_end(
    env: simpy.Environment,
    status: Callable[[int], str],
    progress: Callable[[str], None] | None = None,
    interval_s: float = 0.5,
) -> None:
    """env.run(); with `progress`, step one event at a time (the same order) and pass it
    status(events so far) about every `interval_s` of wall time."""
    if progress is None:
        env.run()
        return
    step, events, next_report = env.step, 0, time.perf_counter() + interval_s
    try:
        while True:
            step()
            events += 1
            if not events % REPORT_EVERY and time.perf_counter() > next_report:
                progress(status(events))
                next_report = time.perf_counter() + interval_s
    except simpy.core.EmptySchedule:
        pass


def event_count(env: simpy.Environment) -> int:
    """Events SimPy scheduled so far (its event-id counter; 0 if SimPy hides it)."""
    counter = getattr(env, "_eid", None)
    return int(next(counter)) if counter is not None else 0
