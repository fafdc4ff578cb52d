"""Running a SimPy environment to the end, counting its events, optionally with status lines."""

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
) -> int:
    """Process events until none is left (as env.run() does, one step at a time); returns how
    many. With `progress`, pass it status(events so far) about every `interval_s` of wall time.
    """
    step, events, next_report = env.step, 0, time.perf_counter() + interval_s
    try:
        while True:
            step()
            events += 1
            if (
                progress is not None
                and not events % REPORT_EVERY
                and time.perf_counter() > next_report
            ):
                progress(status(events))
                next_report = time.perf_counter() + interval_s
    except simpy.core.EmptySchedule:
        pass
    return events
