"""Row delivery in the timed run: rows moving from producers to consumers, in order, into the
consumers' input SRAM.

`RowDelivery` is the one owner of everything a row does between the moment it exists and the
moment its last reader lets it go:
- per (producer, consumer) edge, one sender process (started by the engine) moves the rows in
  (sample, row) order: to a GDPU over the fabric; to an analog layer into the input SRAM of
  every block of every copy that reads the row (waiting while that SRAM is full), then over the
  fabric from the routers that hold the row;
- arrival counts per edge and sample, which consumer processes wait on (`wait`), and the rows
  each node has made (`wait_made`: a recurrent step waits for its previous step);
- the input SRAM each copy holds per producer and sample, given back when the copy moves past
  a row's last use (`release`) or has issued all its MVMs of the sample (`finish`).
Simplifications: a row goes to its consumers whole (no partial rows); a full SRAM holds the
edge's sender back, and with it every later row on that edge (head-of-line blocking).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import simpy

from archsim.sim.core import Core
from archsim.sim.fabric import Fabric
from archsim.sim.plan import Node, last_reading_row, node_k
from archsim.sim.recorder import Recorder
from archsim.sim.replicas import Replica, reads_row

OUTPUT = "<output>"
"""The consumer name of a network output (leaves through the off-chip interface)."""


class RowGate:
    """Rows of one producer that have arrived at one consumer, per sample (in order)."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.count: dict[int, int] = defaultdict(int)
        self.waiters: dict[int, list[tuple[int, simpy.Event]]] = defaultdict(list)

    def wait(self, sample: int, rows: int) -> simpy.Event | None:
        """An event that fires when `rows` rows of `sample` have arrived (None: already)."""
        if self.count[sample] >= rows:
            return None
        ev = self.env.event()
        self.waiters[sample].append((rows, ev))
        return ev

    def arrive(self, sample: int) -> None:
        """One more row of `sample` has arrived."""
        self.count[sample] += 1
        n = self.count[sample]
        keep = []
        for rows, ev in self.waiters[sample]:
            if n >= rows:
                ev.succeed()
            else:
                keep.append((rows, ev))
        self.waiters[sample] = keep


@dataclass(slots=True, eq=False)
class _Edge:
    """The rows of one producer on their way to one consumer."""

    producer: Node
    consumer: Node
    arrived: RowGate
    ready: dict[tuple[int, int], tuple[list, simpy.Event]] = field(default_factory=dict)
    """(sample, row) -> (sources, event to fire on delivery), rows made but not yet sent."""
    next: tuple[int, int] = (0, 0)
    """The (sample, row) to send next."""
    wake: simpy.Event | None = None
    """Fired when `next` becomes ready while the sender waits for it."""


class RowDelivery:
    """Delivers every row of a timed run to its consumers (see the module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        plan: dict[str, Node],
        replicas: dict[str, list[Replica]],
        fabric: Fabric,
        routers: dict[str, int],
        samples: int,
        rec: Recorder,
    ) -> None:
        """`routers`: the router each GDPU node runs at (destination of its input rows)."""
        self.env, self.plan, self.replicas, self.fabric = env, plan, replicas, fabric
        self.routers, self.samples, self.rec = routers, samples, rec
        self._made = {name: RowGate(env) for name in plan}
        self._edges = {
            (n.name, c): _Edge(n, plan[c], RowGate(env))
            for n in plan.values()
            for c in n.consumers
            if c != OUTPUT
        }
        self._held: dict[tuple, list[int]] = defaultdict(list)
        """(consumer, copy, producer, sample) -> rows in that copy's input SRAM."""
        self._finished: set[tuple[str, int, int]] = set()
        """(consumer, copy, sample) whose MVMs are all issued."""

    def processes(self) -> list:
        """The sender generators, one per edge, for the engine to start."""
        return [self._send(edge) for edge in self._edges.values()]

    def wait(self, producer: str, consumer: str, sample: int, rows: int) -> simpy.Event | None:
        """Fires when `rows` rows of `producer` have reached `consumer` for `sample`."""
        return self._edges[(producer, consumer)].arrived.wait(sample, rows)

    def wait_made(self, node: str, sample: int, rows: int) -> simpy.Event | None:
        """Fires when `node` has made `rows` rows of `sample`."""
        return self._made[node].wait(sample, rows)

    def send(self, node: Node, sample: int, row: int, sources: list) -> list[simpy.Event]:
        """Row `row` of `node` exists at `sources` ((router, fraction of the row)): count it and
        queue it to every on-chip consumer. One event per consumer, fired on arrival there."""
        self._made[node.name].arrive(sample)
        sent = []
        for c in dict.fromkeys(node.consumers):  # a consumer reading the row twice gets it once
            if c == OUTPUT:
                continue
            ev = self.env.event()
            sent.append(ev)
            edge = self._edges[(node.name, c)]
            edge.ready[(sample, row)] = (sources, ev)
            if (sample, row) == edge.next and edge.wake is not None and not edge.wake.triggered:
                edge.wake.succeed()
        return sent

    def release(self, node: Node, rep: Replica, producer: str, sample: int, out_row: int) -> None:
        """`rep` starts `out_row`: give back the input SRAM of the rows of `producer` it will
        not read again."""
        prod = self.plan[producer]
        held = self._held[(node.name, rep.index, producer, sample)]
        while held and last_reading_row(node, prod, held[0]) < out_row:
            held.pop(0)
            self._free(node, rep, prod)

    def finish(self, node: Node, rep: Replica, sample: int) -> None:
        """`rep` has issued all its MVMs of `sample`: give back all the input SRAM it holds for
        it; rows of it that arrive later are given back on arrival."""
        self._finished.add((node.name, rep.index, sample))
        for p in node.inputs:
            for _ in self._held.pop((node.name, rep.index, p, sample), ()):
                self._free(node, rep, self.plan[p])

    def _free(self, node: Node, rep: Replica, prod: Node) -> None:
        for core, rows, _ in rep.blocks:
            core.inbuf.get(prod.row_bytes * rows / node_k(node))

    def _send(self, edge: _Edge):
        """Send the edge's rows in (sample, row) order, each once it exists."""
        while edge.next[0] < self.samples:
            if edge.next not in edge.ready:
                edge.wake = self.env.event()
                yield edge.wake
                continue
            sources, ev = edge.ready.pop(edge.next)
            n, row = edge.next
            if edge.consumer.kind == "analog":
                yield from self._to_copies(edge, sources, n, row)
            elif edge.consumer.kind == "gdpu":
                dst = self.routers[edge.consumer.name]
                nbytes = edge.producer.row_bytes
                moves = [
                    self.env.process(
                        self.fabric.transfer(src, dst, nbytes * f, edge.consumer.name, n)
                    )
                    for src, f in sources
                ]
                yield simpy.AllOf(self.env, moves)
            edge.arrived.arrive(n)
            ev.succeed()
            edge.next = (n, row + 1) if row + 1 < edge.producer.rows else (n + 1, 0)

    def _to_copies(self, edge: _Edge, sources: list, n: int, row: int):
        """Put the row into the input SRAM of every block of every copy that reads it."""
        c, prod = edge.consumer, edge.producer
        copies = self.replicas[c.name]
        reps = [r for r in copies if reads_row(c, len(copies), r.index, n, prod, row)]
        k = node_k(c)
        moves = [
            self.env.process(self._to_block(c, core, prod.row_bytes * rows / k, sources, n))
            for rep in reps
            for core, rows, _ in rep.blocks
        ]
        yield simpy.AllOf(self.env, moves)
        for rep in reps:
            if (c.name, rep.index, n) in self._finished:  # arrived after its last use
                self._free(c, rep, prod)
            else:
                self._held[(c.name, rep.index, prod.name, n)].append(row)

    def _to_block(self, consumer: Node, core: Core, nbytes: float, sources: list, n: int):
        yield core.inbuf.put(nbytes)
        moves = [
            self.env.process(self.fabric.transfer(src, core.index, nbytes * f, consumer.name, n))
            for src, f in sources
        ]
        yield simpy.AllOf(self.env, moves)
        self.rec.record(
            self.env.now, self.env.now, core.name, "sram_write", consumer.name, n, nbytes
        )
