"""Exclusive hardware of a 3D MoE system as FIFO reservation timelines: tiles (one tier MVM at a
time, OTT) and pools of identical servers (DPUs, MHA units, the KV-cache DRAM port).

A request made at simulated time `now` for `duration_ns` starts when the unit (in a pool: the
earliest free server) is free and is appended behind every earlier request, so a timeline
grants in request order exactly as a `simpy.Resource` with a FIFO queue does when each holder's
duration is known at grant time (always the case here: tier MVMs and digital ops have fixed
costs). The caller waits with one `env.timeout(end - now)`; no request, grant and release
events are needed. Simplifications: no pre-emption, no priorities.
"""

from __future__ import annotations

import heapq


class TileBank:
    """The tiles of a system: each holds one MVM at a time, whatever the tier."""

    def __init__(self, tiles: int, record: bool = False) -> None:
        self.free_ns = [0.0] * tiles
        self.busy_ns = [0.0] * tiles
        self.mvms = [0] * tiles
        self.intervals: list[tuple[int, float, float]] | None = [] if record else None

    def reserve(self, tile: int, now: float, duration_ns: float, mvms: int) -> float:
        """Book `mvms` back-to-back tier MVMs lasting `duration_ns` in all on `tile`; returns
        their end time."""
        start = self.free_ns[tile]
        if start < now:
            start = now
        end = start + duration_ns
        self.free_ns[tile] = end
        self.busy_ns[tile] += duration_ns
        self.mvms[tile] += mvms
        if self.intervals is not None:
            self.intervals.append((tile, start, end))
        return end


class Pool:
    """`servers` identical units served first come, first served."""

    def __init__(self, servers: int) -> None:
        self.free_ns = [0.0] * servers
        self.busy_ns = 0.0
        self.ops = 0

    def reserve(self, now: float, duration_ns: float) -> float:
        """Book one op on the earliest free server; returns its end time."""
        start = heapq.heappop(self.free_ns)
        if start < now:
            start = now
        end = start + duration_ns
        heapq.heappush(self.free_ns, end)
        self.busy_ns += duration_ns
        self.ops += 1
        return end
