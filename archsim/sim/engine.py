"""The timed run: SimPy processes execute a mapped workload on the chip's components.

`Engine` wires the components (one `Core` per core, the `Fabric`, the GDPUs, the off-chip
interface, the `RowDelivery`) and starts, in `run`, every process: one per analog-layer copy
(`replicas.py`), digital node, network input and delivery edge. Dataflow, per sample and row:
- a network input is read row by row through the off-chip interface;
- a copy takes its MVM positions, waits until the input rows of the position's receptive field
  have arrived, reserves output SRAM, integrates (all blocks of the copy in lockstep), and
  while the array moves on, each column lane converts, gathers its K-split partial sums at the
  lane's first block and post-processes them on that block's LDPU;
- a finished row leaves from the lanes of the copy that holds its first position and is
  delivered to its consumers (`delivery.py`); digital ops run row by row on the digital unit
  the mapping chose (`archsim.mapping.hetero`: a GDPU or a digital accelerator node; with the
  policy "rows", every unit able to run the op takes its rows in turn); on a node,
  what of an op's operands, result and the node's resident weights exceeds its SRAM is moved
  through the off-chip interface first ("spill");
- outputs leave through the off-chip interface.
Simplifications: a lane's partial sums travel as one packet from its farthest block to its
first block (a star reduction timed by its longest route); GDPU memories are unbounded; a spill
crosses the off-chip interface once per sample, spread over the op's rows; each of a core's
input and output SRAM gets half of `sram_bytes_per_core`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from archsim.errors import ArchsimError
from archsim.mapping import Mapping
from archsim.mapping.mapper import PARTIAL_SUM_BYTES
from archsim.sim.buffers import grow_buffers
from archsim.sim.core import Core, CoreTiming
from archsim.sim.delivery import OUTPUT, RowDelivery
from archsim.sim.digital import DigitalUnit
from archsim.sim.fabric import Fabric, OffChip
from archsim.sim.plan import Node, build_plan, rows_needed
from archsim.sim.recorder import Recorder
from archsim.sim.replicas import Lane, Replica, build_replicas, chunks, owner, positions_of
from archsim.sim.stepping import run_to_end
from archsim.spec import ChipSpec
from archsim.spec.digital import DigitalUnitSpec

IN_FLIGHT = 8
"""Input rows read ahead of their delivery."""


class SimulationStalled(ArchsimError):
    """The timed run stopped before every sample finished (a buffer that can never drain)."""


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Knobs of the timed run (not of the chip)."""

    samples: int = 16
    """Samples streamed through the pipeline."""
    chunk: int = 1
    """MVMs of one replica and output row grouped into one event (same total time)."""
    bytes_per_value: int = 1
    """Bytes of one activation on the fabric (8-bit activations)."""
    psum_bytes: int = PARTIAL_SUM_BYTES
    """Bytes of one partial sum sent between K-split blocks (FP16)."""

    def __post_init__(self) -> None:
        if self.samples < 1 or self.chunk < 1:
            raise ArchsimError("samples and chunk: expected >= 1")


@dataclass(slots=True)
class SimRun:
    """What the timed run produced."""

    recorder: Recorder
    plan: dict[str, Node]
    sample_start_ns: list[float]
    sample_end_ns: list[float]
    end_ns: float
    events: int
    enlarged_buffers: list[str] = field(default_factory=list)
    core_groups: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(array core, layer) of each copy -> every core of that copy (lockstep integration)."""
    digital_units: tuple[DigitalUnitSpec, ...] = ()
    """The digital units that ran the digital ops (an LDPU-class stand-in on a chip with
    neither GDPUs nor digital nodes): their energies per MAC / per operation."""
    batch_schedule: bool = False
    """The samples went through segments one after another (weight reloads): the period is
    the whole run over the samples, not a pipeline's steady state."""


class Engine:
    """Wires the chip's components for one mapping and runs the workload through them.

    Rows between nodes belong to `delivery`; the engine keeps only its own processes' state:
    positions finished per output row, the output SRAM each row holds until it has reached
    every consumer, and the outputs each sample still owes.
    """

    def __init__(self, chip: ChipSpec, mapping: Mapping, settings: SimSettings) -> None:
        self.chip = chip
        self.mapping = mapping
        self.settings = settings
        self.env = env = simpy.Environment()
        self.rec = Recorder()
        timing = CoreTiming.of(chip)
        half = max(1, chip.memory.sram_bytes_per_core // 2)
        self.cores = [Core(env, timing, i, half, self.rec) for i in range(chip.cores.count)]
        self.fabric = Fabric(env, chip.fabric, self.rec)
        self.offchip = OffChip(env, chip.memory, 0, self.rec)
        self.digital = mapping.digital_placement()
        self.units = [DigitalUnit(env, u, self.rec) for u in self.digital.units]
        self.plan = build_plan(mapping, settings.bytes_per_value)
        self.replicas = build_replicas(
            mapping.layers, self.cores, self.fabric, chip.crossbar.weight_sets
        )
        self.routers = self._routers()
        self.delivery = RowDelivery(
            env, self.plan, self.replicas, self.fabric, self.routers, settings.samples, self.rec
        )
        self._positions_done: dict[tuple, int] = defaultdict(int)  # (node, sample, row) -> count
        self._outbuf_held: dict[tuple, list] = defaultdict(list)  # (node, sample, row) -> bytes
        self.sample_start = [0.0] * settings.samples
        self.sample_end = [0.0] * settings.samples
        self._outputs_left = [0] * settings.samples
        self.enlarged = grow_buffers(self.plan, self.replicas, settings.bytes_per_value)

    # -- wiring -----------------------------------------------------------------------------
    def _gdpu(self, node: Node) -> DigitalUnit:
        """The digital unit that runs a digital node (and an LSTM's gates)."""
        return self.units[self.digital.unit_of[node.name]]

    def _spill_bytes(self, node: Node, unit: DigitalUnit) -> float:
        """Bytes per sample of a digital op on `unit` that do not fit its SRAM: the op's input
        operands and result, plus the weights of the static-weight layers the unit holds."""
        if unit.spec.sram_bytes is None:
            return 0.0
        per_value = self.settings.bytes_per_value
        workload = self.mapping.workload
        operands = sum(workload.op(p).size for p in node.op.inputs) + node.op.size
        held = self.digital.weight_bytes(self.units.index(unit), per_value)
        return float(max(0, operands * per_value + held - unit.spec.sram_bytes))

    def _routers(self) -> dict[str, int]:
        """The router where each node's rows appear (a shape node: where its input is)."""
        out: dict[str, int] = {}
        for node in self.plan.values():  # topological order: inputs come first
            if node.kind == "analog":
                out[node.name] = self.replicas[node.name][0].array.index
            elif node.kind == "gdpu":
                out[node.name] = self._gdpu(node).router
            elif node.kind == "input":
                out[node.name] = self.offchip.router
            else:
                out[node.name] = out[node.inputs[0]]
        return out

    # -- run ----------------------------------------------------------------------------------
    def run(self, progress: Callable[[str], None] | None = None) -> SimRun:
        """Start every process, run the stream to the end; `progress` gets a status line about
        twice a second."""
        for node in self.plan.values():
            for n in range(self.settings.samples):
                self._outputs_left[n] += node.rows * node.consumers.count(OUTPUT)
        for sender in self.delivery.processes():
            self.env.process(sender)
        for node in self.plan.values():
            if node.kind == "input":
                self.env.process(self._input(node))
            elif node.kind == "analog":
                for rep in self.replicas[node.name]:
                    self.env.process(self._replica(node, rep))
            elif node.kind == "gdpu":
                sharers = self.digital.units_of(node.name) if node.rows > 1 else ()
                if len(sharers) > 1:  # policy "rows": the units take the rows in turn
                    for j, i in enumerate(sharers):
                        self.env.process(self._digital(node, self.units[i], j, len(sharers)))
                else:
                    self.env.process(self._digital(node))
            else:
                self.env.process(self._shape(node))
        events = run_to_end(self.env, self._status, progress)
        stuck = [n for n, t in enumerate(self.sample_end) if t == 0.0]
        if stuck:
            full = [c.name for c in self.cores if c.inbuf.level >= c.inbuf.capacity]
            raise SimulationStalled(
                f"{self.mapping.workload.name} on {self.chip.name}: the timed run stopped at "
                f"{self.env.now:.0f} ns with samples {stuck[0]}..{stuck[-1]} unfinished "
                f"(full input SRAM: {', '.join(full[:6]) or 'none'})"
            )
        groups = {
            (rep.array.name, name): [c.name for c, _, _ in rep.blocks]
            for name, reps in self.replicas.items()
            for rep in reps
        }
        return SimRun(
            self.rec,
            self.plan,
            self.sample_start,
            self.sample_end,
            self.env.now,
            events,
            self.enlarged,
            groups,
            self.digital.units,
        )

    def _status(self, events: int) -> str:
        done = sum(1 for t in self.sample_end if t > 0.0)
        return (
            f"{self.mapping.workload.name}: {done}/{self.settings.samples} samples done, "
            f"{self.env.now / 1e3:,.1f} us simulated, {events:,} events"
        )

    def _input(self, node: Node):
        """Read the input rows back to back; up to IN_FLIGHT rows travel at once, so the
        off-chip latency overlaps and full input buffers still hold the reads back."""
        in_flight: list[simpy.Event] = []
        for n in range(self.settings.samples):
            self.sample_start[n] = self.env.now
            for r in range(node.rows):
                yield from self.offchip.move(node.row_bytes, "offchip_in", node.name, n, False)
                in_flight.append(self.env.process(self._arrive_input(node, n, r)))
                if len(in_flight) > IN_FLIGHT:
                    yield in_flight.pop(0)

    def _arrive_input(self, node: Node, n: int, r: int):
        yield self.env.timeout(self.chip.memory.offchip_latency_ns)
        yield self._row_done(node, n, r, [(self.offchip.router, 1.0)])

    def _wait_inputs(self, node: Node, n: int, row: int):
        """Wait until every producer's rows that `row` of `node` reads have arrived."""
        for p in node.inputs:
            ev = self.delivery.wait(p, node.name, n, rows_needed(node, self.plan[p], row))
            if ev is not None:
                yield ev

    # -- analog layers --------------------------------------------------------------------------
    def _replica(self, node: Node, rep: Replica):
        """One copy of an analog layer: its positions of every sample, `chunk` at a time."""
        chunk = self.settings.chunk
        ppr = node.positions_per_row
        per_row = self.settings.bytes_per_value
        copies = len(self.replicas[node.name])
        blocks = len(rep.blocks)  # crossbars in lockstep
        rows_read = sum(rows for _, rows, _ in rep.blocks) * per_row
        for n in range(self.settings.samples):
            for row, k in chunks(positions_of(node, copies, rep.index, n), ppr, chunk):
                for p in node.inputs:
                    ev = self.delivery.wait(p, node.name, n, rows_needed(node, self.plan[p], row))
                    if ev is not None:
                        yield ev
                    self.delivery.release(node, rep, p, n, row)
                if node.recurrent and row > 0:  # the previous time step first
                    ev = self.delivery.wait_made(node.name, n, row)
                    if ev is not None:
                        yield ev
                for lane in rep.lanes:
                    yield lane.lead.outbuf.put(k * lane.cols * per_row)
                    self._outbuf_held[(node.name, n, row)].append(
                        (lane.lead, k * lane.cols * per_row)
                    )

                def start_post(end_ns, node=node, rep=rep, n=n, row=row, k=k):
                    self.env.process(self._post(node, rep, n, row, k, end_ns))

                yield from rep.array.integrate(
                    node.name,
                    n,
                    k * rep.passes,
                    blocks,
                    start_post,
                    mvms=k * rep.mvms,
                    hold=rep.hold,
                    sets=rep.sets,
                    positions=k,
                )
                self.rec.record(
                    self.env.now,
                    self.env.now,
                    rep.array.name,
                    "sram_read",
                    node.name,
                    n,
                    k * rows_read,
                )
            self.delivery.finish(node, rep, n)

    def _post(self, node: Node, rep: Replica, n: int, row: int, k: int, array_end: float):
        """Conversion, partial sums and LDPU work of a chunk of k MVMs in every column lane,
        started when the first MVM left the array.

        One MVM goes through a lane's stages in series (lanes side by side). A chunk runs its
        stages side by side too, each holding its resource for the whole chunk's work, and ends
        no earlier than the last MVM would have: when the array released it plus one MVM's
        share of every stage of the slowest lane.
        """
        spans: dict[int, list[float]] = defaultdict(list)
        start = self.env.now

        def lane_work(i: int, lane: Lane):
            stages = self._lane_stages(node, lane, n, k)
            if k == 1:
                for stage in stages:
                    yield from stage
                return
            yield simpy.AllOf(
                self.env, [self.env.process(_timed(self.env, st, spans[i])) for st in stages]
            )

        yield simpy.AllOf(
            self.env, [self.env.process(lane_work(i, lane)) for i, lane in enumerate(rep.lanes)]
        )
        gdpu_span: list[float] = []
        if node.ops_per_row:  # LSTM gates and cell update, after all lanes
            gdpu = self._gdpu(node)
            work = self.digital.work[node.name]
            yield self.env.process(
                _timed(self.env, gdpu.run(work, k * node.ops_per_row, node.name, n), gdpu_span)
            )
        if k > 1:
            # a pipeline of stages: the first MVM passes every stage, the slowest stage then
            # takes the other k - 1; and nothing ends before the array let the last MVM go
            target = 0.0
            for lane_spans in spans.values():
                chain = lane_spans + gdpu_span
                one = sum(chain) / k
                slowest = max(chain) / k
                target = max(target, array_end + one, start + one + (k - 1) * slowest)
            if target > self.env.now:
                yield self.env.timeout(target - self.env.now)
        key = (node.name, n, row)
        self._positions_done[key] += k
        if self._positions_done[key] == node.positions_per_row:
            del self._positions_done[key]
            copies = self.replicas[node.name]
            first = copies[owner(node, len(copies), n, row * node.positions_per_row)]
            total = first.cols
            self._row_done(node, n, row, [(ln.lead.index, ln.cols / total) for ln in first.lanes])

    def _lane_stages(self, node: Node, lane: Lane, n: int, k: int) -> list:
        """The generators of one lane's post-processing of k MVMs, in pipeline order."""
        stages = [lane.lead.convert_rest(node.name, n, k * lane.passes)]
        cols = k * lane.cols
        if lane.row_blocks > 1:
            # the other row blocks' partial sums come to the lead; the adds before the lead
            # run on those blocks' LDPUs in parallel (held here on the farthest one)
            if lane.row_blocks > 2:
                adds = cols * (lane.row_blocks - 2)
                stages.append(lane.far.post_process(node.name, n, adds, busy_ops=cols))
            psum = cols * self.settings.psum_bytes * (lane.row_blocks - 1)
            stages.append(
                self.fabric.transfer(lane.far.index, lane.lead.index, psum, f"{node.name} psum", n)
            )
        extra = 1 if lane.row_blocks > 1 else 0
        # scale, offset and fused activations are one pipelined pass per column
        stages.append(
            lane.lead.post_process(
                node.name, n, cols * (node.ldpu_ops_per_col + extra), busy_ops=cols * (1 + extra)
            )
        )
        return stages

    # -- digital and shape nodes -----------------------------------------------------------------
    def _digital(self, node: Node, unit: DigitalUnit | None = None, first: int = 0, step: int = 1):
        """A digital op's rows first, first + step, ... of every sample on `unit` (default:
        the op's unit, every row)."""
        unit = unit or self._gdpu(node)
        work = self.digital.work[node.name]
        spill = self._spill_bytes(node, unit) / node.rows
        for n in range(self.settings.samples):
            for r in range(first, node.rows, step):
                yield from self._wait_inputs(node, n, r)
                if spill:
                    yield from self.offchip.move(spill, "spill", node.name, n)
                yield from unit.run(work, node.ops_per_row, node.name, n)
                self._row_done(node, n, r, [(unit.router, 1.0)])

    def _shape(self, node: Node):
        src = self.routers[node.name]
        for n in range(self.settings.samples):
            yield from self._wait_inputs(node, n, 0)  # a shape node needs its whole input
            for r in range(node.rows):
                self._row_done(node, n, r, [(src, 1.0)])

    def _row_done(self, node: Node, n: int, row: int, sources: list) -> simpy.Event:
        """A row of `node` exists at the routers of `sources` ((router, fraction of the row)):
        send it on; the event fires when it has reached every consumer, and then the output
        SRAM it held is free."""
        sends = self.delivery.send(node, n, row, sources)
        for _ in range(node.consumers.count(OUTPUT)):
            ev = self.env.event()
            sends.append(ev)
            self.env.process(self._output(node, n, ev))
        all_sent = simpy.AllOf(self.env, sends)
        held = self._outbuf_held.pop((node.name, n, row), None)
        if held:
            all_sent.callbacks.append(lambda _e, held=held: [c.outbuf.get(b) for c, b in held])
        return all_sent

    def _output(self, node: Node, n: int, ev: simpy.Event):
        yield from self.offchip.move(node.row_bytes, "offchip_out", node.name, n)
        self._outputs_left[n] -= 1
        if self._outputs_left[n] == 0:
            self.sample_end[n] = self.env.now
        ev.succeed()


def _timed(env: simpy.Environment, stage, spans: list):
    """Run a stage generator and append how long it took."""
    t0 = env.now
    yield from stage
    spans.append(env.now - t0)
