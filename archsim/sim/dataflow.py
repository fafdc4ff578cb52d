"""Rows moving between nodes of the timed run: arrival gates and in-order delivery.

A `RowGate` counts, per sample, the rows of one producer that have arrived at one consumer and
wakes the consumer's processes waiting for enough of them. A `RowSender` sends one producer's
rows to one consumer in (sample, row) order, into the input SRAM of every consumer block that
reads the row (waiting while that SRAM is full), over the fabric.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import simpy

from archsim.sim.core import Core
from archsim.sim.plan import Node, node_k

if TYPE_CHECKING:
    from archsim.sim.engine import Engine


class RowGate:
    """Rows of one producer that have arrived at one consumer, per sample (in order)."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.count: dict[int, int] = defaultdict(int)
        self.waiters: dict[int, list[tuple[int, simpy.Event]]] = defaultdict(list)

    def wait(self, sample: int, rows: int) -> simpy.Event | None:
        if self.count[sample] >= rows:
            return None
        ev = self.env.event()
        self.waiters[sample].append((rows, ev))
        return ev

    def arrive(self, sample: int) -> None:
        self.count[sample] += 1
        n = self.count[sample]
        keep = []
        for rows, ev in self.waiters[sample]:
            if n >= rows:
                ev.succeed()
            else:
                keep.append((rows, ev))
        self.waiters[sample] = keep


class RowSender:
    """Sends the rows of one producer to one consumer in (sample, row) order."""

    def __init__(self, engine: Engine, producer: Node, consumer: Node) -> None:
        self.e = engine
        self.producer = producer
        self.consumer = consumer
        self.gate = engine.gates[(producer.name, consumer.name)]
        self.ready: dict[tuple[int, int], tuple[list, simpy.Event]] = {}
        self.next = (0, 0)
        self.wake: simpy.Event | None = None
        engine.env.process(self.loop())

    def submit(self, n: int, row: int, sources: list, ev: simpy.Event) -> None:
        self.ready[(n, row)] = (sources, ev)
        if (n, row) == self.next and self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def loop(self):
        env = self.e.env
        samples = self.e.settings.samples
        while self.next[0] < samples:
            if self.next not in self.ready:
                self.wake = env.event()
                yield self.wake
                continue
            sources, ev = self.ready.pop(self.next)
            n, row = self.next
            if self.consumer.kind == "analog":
                yield from self._to_replicas(sources, n, row)
            elif self.consumer.kind == "gdpu":
                dst = self.e._location(self.consumer)
                moves = [
                    env.process(
                        self.e.fabric.transfer(
                            src, dst, self.producer.row_bytes * f, self.consumer.name, n
                        )
                    )
                    for src, f in sources
                ]
                yield simpy.AllOf(env, moves)
            self.gate.arrive(n)
            ev.succeed()
            self.next = (n, row + 1) if row + 1 < self.producer.rows else (n + 1, 0)

    def _to_replicas(self, sources: list, n: int, row: int):
        """Put the row into the input SRAM of every block of every replica that reads it."""
        env, c, k = self.e.env, self.consumer, node_k(self.consumer)
        reps = [r for r in self.e.replicas[c.name] if self.e.needs(c, r, n, self.producer, row)]
        moves = [
            env.process(self._to_block(core, self.producer.row_bytes * rows / k, sources, n))
            for rep in reps
            for core, rows, _ in rep.blocks
        ]
        yield simpy.AllOf(env, moves)
        for rep in reps:
            if (c.name, rep.index, n) in self.e.finished:  # arrived after its last use
                self.e.release_row(c, rep, self.producer)
            else:
                self.e.delivered[(c.name, rep.index, self.producer.name, n)].append(row)

    def _to_block(self, core: Core, nbytes: float, sources: list, n: int):
        yield core.inbuf.put(nbytes)
        moves = [
            self.e.env.process(
                self.e.fabric.transfer(src, core.index, nbytes * f, self.consumer.name, n)
            )
            for src, f in sources
        ]
        yield simpy.AllOf(self.e.env, moves)
        self.e.rec.record(
            self.e.env.now, self.e.env.now, core.name, "sram_write", self.consumer.name, n, nbytes
        )
