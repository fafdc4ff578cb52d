"""The timed run: SimPy processes execute a mapped workload on the chip's components.

`Engine` wires the components (one `Core` per core, the `Fabric`, the GDPUs, the off-chip
interface) and starts one process per analog-layer replica, digital node and network input;
no component starts itself. Dataflow, per sample and row:
- a network input is read row by row through the off-chip interface;
- an analog replica takes the MVM positions assigned to it (position g = sample x P + p goes to
  replica g mod R; LSTM steps stay on the replica of their sample), waits until the input rows
  of the position's receptive field have arrived, reserves output SRAM, integrates (all blocks
  of the copy run in lockstep on their own cores), and while the array moves on, each column
  lane (the blocks of one column slice) converts, gathers its K-split partial sums at the lane's
  first block and post-processes them on that block's LDPU;
- a finished row leaves from the lanes of the replica that holds its first position and goes to
  every block that reads it, in (sample, row) order, into the block's input SRAM (a full buffer
  holds the sender back), over the mesh;
- digital nodes run row by row on their GDPU; outputs leave through the off-chip interface.
Simplifications: a lane's partial sums travel as one packet from its farthest block to its
first block (a star reduction timed by its longest route); GDPU memories are unbounded; each of
a core's input and output SRAM gets half of `sram_bytes_per_core`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from archsim.errors import ArchsimError
from archsim.mapping import Mapping
from archsim.mapping.mapper import PARTIAL_SUM_BYTES
from archsim.sim.core import Core, CoreTiming
from archsim.sim.dataflow import RowGate, RowSender
from archsim.sim.digital import GlobalUnit
from archsim.sim.fabric import Fabric, OffChip
from archsim.sim.plan import Node, build_plan, first_use, last_use, need, node_k
from archsim.sim.recorder import Recorder
from archsim.sim.stepping import event_count, run_to_end
from archsim.spec import ChipSpec
from archsim.spec.chip import GdpuSpec

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


@dataclass(slots=True, eq=False)
class _Lane:
    """The blocks of one column slice of one copy (all its K-split row blocks)."""

    lead: Core
    """Row block 0: converts, gathers the partial sums, post-processes."""
    far: Core
    """The row block farthest from the lead (its packet times the reduction)."""
    row_blocks: int
    cols: int
    """Outputs per position."""
    passes: int = 1
    """MVMs per position one after another (packed groups: one per diagonal)."""


@dataclass(slots=True, eq=False)
class _Replica:
    index: int
    lanes: list[_Lane]
    blocks: list[tuple[Core, int, int]]
    """(core, inputs read, outputs made) per position of every block of this copy."""
    passes: int = 1
    """Array passes per position (the most MVMs a block of the copy does one after another)."""
    mvms: int = 1
    """Crossbar MVMs of the whole copy per position."""
    hold: list[Core] = field(default_factory=list)
    """Other cores whose array the copy shares with other layers' blocks: held with its own
    array while it integrates."""

    @property
    def array(self) -> Core:
        """The core whose array times the copy's lockstep integration."""
        return self.lanes[0].lead

    @property
    def cols(self) -> int:
        return sum(lane.cols for lane in self.lanes)


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
    gdpu_energy_pj_per_op: float = 0.0
    """Energy per op of the unit that ran the digital ops (LDPU-class without GDPUs)."""
    batch_schedule: bool = False
    """The samples went through segments one after another (weight reloads): the period is
    the whole run over the samples, not a pipeline's steady state."""


class Engine:
    """Wires the chip's components for one mapping and runs the workload through them."""

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
        self.gdpus = self._gdpus()
        self.plan = build_plan(mapping, settings.bytes_per_value)
        self.replicas = {lm.name: self._replicas(lm) for lm in mapping.layers}
        self._share_arrays()
        self.gates = {(p, n.name): RowGate(env) for n in self.plan.values() for p in n.inputs}
        self.own = {n.name: RowGate(env) for n in self.plan.values()}
        self.done = defaultdict(int)  # (node, sample, row) -> positions done
        self.row_cost: dict[tuple, list] = defaultdict(list)  # outbuf bytes to give back
        self.delivered: dict[tuple, list[int]] = defaultdict(list)  # rows in a replica's SRAM
        self.finished: set[tuple] = set()  # (node, replica, sample) whose MVMs are all issued
        self.senders = {}
        self.sample_start = [0.0] * settings.samples
        self.sample_end = [0.0] * settings.samples
        self.outputs_left = [0] * settings.samples
        self.enlarged: list[str] = []
        self._setup_buffers()

    # -- wiring -----------------------------------------------------------------------------
    def _gdpus(self) -> list[GlobalUnit]:
        spec = self.chip.gdpu
        if spec.count == 0:  # no global units: digital ops fall back to one LDPU-class unit
            ldpu = self.chip.ldpu
            spec = GdpuSpec(1, ldpu.clock_ghz, ldpu.ops_per_cycle, ldpu.energy_pj_per_op)
        self.gdpu_spec = spec
        n_routers = self.chip.fabric.dims[0] * self.chip.fabric.dims[1]
        return [
            GlobalUnit(self.env, spec, g, int((g + 0.5) * n_routers / spec.count), self.rec)
            for g in range(spec.count)
        ]

    def _replicas(self, lm) -> list[_Replica]:
        reps = []
        for r in range(lm.replicas):
            blocks = [b for b in lm.blocks if b.replica == r]
            lanes = []
            for lead in (b for b in blocks if b.row_block == 0):  # packed groups: one lane
                lane = [b for b in blocks if (b.group, b.col_block) == (lead.group, lead.col_block)]
                far = max(lane, key=lambda b, lead=lead: self._hops(b.core, lead.core))
                lanes.append(
                    _Lane(
                        self.cores[lead.core],
                        self.cores[far.core],
                        len(lane),
                        _outputs(lm, lead),
                        lead.mvms,
                    )
                )
            cores = [(self.cores[b.core], _inputs(lm, b), _outputs(lm, b)) for b in blocks]
            reps.append(
                _Replica(r, lanes, cores, max(b.mvms for b in blocks), sum(b.mvms for b in blocks))
            )
        return reps

    def _share_arrays(self) -> None:
        """Copies with blocks on a crossbar that other copies use too hold its array while they
        integrate (layers sharing crossbars take turns)."""
        users: dict[Core, set] = defaultdict(set)
        for name, reps in self.replicas.items():
            for rep in reps:
                for core, _, _ in rep.blocks:
                    users[core].add((name, rep.index))
        for reps in self.replicas.values():
            for rep in reps:
                shared = {c for c, _, _ in rep.blocks if len(users[c]) > 1} - {rep.array}
                rep.hold = sorted(shared, key=lambda c: c.index)

    def _hops(self, a: int, b: int) -> int:
        return len(self.fabric.route(a, b))

    def _setup_buffers(self) -> None:
        """Grow SRAM where one output row's receptive field (or a whole input a layer needs
        at once) does not fit, so the pipeline cannot deadlock; each growth is reported."""
        claimed_in: dict[Core, int] = defaultdict(int)  # by layers sharing the core before
        claimed_out: dict[Core, int] = defaultdict(int)
        for node in self.plan.values():
            if node.kind != "analog":
                continue
            reps = self.replicas[node.name]
            mine: dict[Core, int] = defaultdict(int)
            for p in node.inputs:
                prod = self.plan[p]
                window = max(
                    need(node, prod, r) - (0 if r == 0 else last_use_rows(node, prod, r))
                    for r in range(node.rows)
                )
                rows_needed = window + len(reps) + 1
                for rep in reps:
                    for core, rows, _ in rep.blocks:
                        mine[core] += int(
                            np.ceil(rows_needed * prod.row_bytes * rows / node_k(node))
                        )
            for core, required in mine.items():
                required += claimed_in[core]
                claimed_in[core] = required
                if required > core.inbuf.capacity:
                    core.inbuf = simpy.Container(self.env, capacity=required)
                    self.enlarged.append(f"{core.name} input SRAM for {node.name}: {required} B")
            outs: dict[Core, int] = defaultdict(int)
            for rep in reps:
                for lane in rep.lanes:
                    outs[lane.lead] += (
                        (node.positions_per_row + 2) * lane.cols * self.settings.bytes_per_value
                    )
            for core, cap in outs.items():
                cap += claimed_out[core]
                claimed_out[core] = cap
                if cap > core.outbuf.capacity:
                    core.outbuf = simpy.Container(self.env, capacity=cap)
                    self.enlarged.append(f"{core.name} output SRAM for {node.name}: {cap} B")

    # -- run ----------------------------------------------------------------------------------
    def run(self, progress: Callable[[str], None] | None = None) -> SimRun:
        """Run the stream to the end; `progress` gets a status line about twice a second."""
        for node in self.plan.values():
            if "<output>" in node.consumers:
                for n in range(self.settings.samples):
                    self.outputs_left[n] += node.rows
            for c in node.consumers:
                if c != "<output>":
                    self.senders[(node.name, c)] = RowSender(self, node, self.plan[c])
        for node in self.plan.values():
            if node.kind == "input":
                self.env.process(self._input(node))
            elif node.kind == "analog":
                for rep in self.replicas[node.name]:
                    self.env.process(self._replica(node, rep))
            elif node.kind == "gdpu":
                self.env.process(self._digital(node))
            else:
                self.env.process(self._shape(node))
        run_to_end(self.env, self._status, progress)
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
            event_count(self.env),
            self.enlarged,
            groups,
            self.gdpu_spec.energy_pj_per_op,
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
        yield self.row_done(node, n, r, [(self.offchip.router, 1.0)])

    # -- analog layers --------------------------------------------------------------------------
    def _is_lstm(self, node: Node) -> bool:
        return node.op.__class__.__name__ == "Lstm"

    def _owner(self, node: Node, n: int, position: int) -> int:
        """The replica that computes `position` of sample n."""
        reps = len(self.replicas[node.name])
        if self._is_lstm(node):
            return n % reps
        return (n * node.positions + position) % reps

    def _positions(self, node: Node, rep: _Replica, n: int) -> list[int]:
        reps = len(self.replicas[node.name])
        if self._is_lstm(node):
            return list(range(node.positions)) if n % reps == rep.index else []
        start = (rep.index - n * node.positions) % reps
        return list(range(start, node.positions, reps))

    def needs(self, node: Node, rep: _Replica, n: int, producer: Node, in_row: int) -> bool:
        """Does this replica read row `in_row` of `producer` for sample n?"""
        reps = len(self.replicas[node.name])
        if self._is_lstm(node):
            return n % reps == rep.index
        ppr = node.positions_per_row
        lo = first_use(node, producer, in_row) * ppr
        hi = min(node.positions, (last_use(node, producer, in_row) + 1) * ppr)
        start = (rep.index - n * node.positions) % reps
        return lo < hi and lo + (start - lo) % reps < hi

    def _replica(self, node: Node, rep: _Replica):
        chunk = self.settings.chunk
        ppr = node.positions_per_row
        lstm = self._is_lstm(node)
        per_row = self.settings.bytes_per_value
        blocks = len(rep.blocks)  # crossbars in lockstep
        rows_read = sum(rows for _, rows, _ in rep.blocks) * per_row
        for n in range(self.settings.samples):
            todo = self._positions(node, rep, n)
            i = 0
            while i < len(todo):
                row = todo[i] // ppr
                group = [todo[i]]
                while (
                    len(group) < chunk
                    and i + len(group) < len(todo)
                    and todo[i + len(group)] // ppr == row
                ):
                    group.append(todo[i + len(group)])
                i += len(group)
                for p in node.inputs:
                    ev = self.gates[(p, node.name)].wait(n, need(node, self.plan[p], row))
                    if ev is not None:
                        yield ev
                    self._free_inputs(node, rep, p, n, row)
                if lstm and row > 0:
                    ev = self.own[node.name].wait(n, row)
                    if ev is not None:
                        yield ev
                k = len(group)
                for lane in rep.lanes:
                    yield lane.lead.outbuf.put(k * lane.cols * per_row)
                    self.row_cost[(node.name, n, row)].append((lane.lead, k * lane.cols * per_row))

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
            self.finished.add((node.name, rep.index, n))
            for p in node.inputs:
                self._free_inputs(node, rep, p, n, node.rows)

    def _free_inputs(self, node, rep, producer, n, row) -> None:
        """Give back the input SRAM of rows this replica will not read again."""
        prod = self.plan[producer]
        key = (node.name, rep.index, producer, n)
        rows_here = self.delivered[key]
        while rows_here and (row >= node.rows or last_use(node, prod, rows_here[0]) < row):
            rows_here.pop(0)
            self.release_row(node, rep, prod)
        if row >= node.rows:
            del self.delivered[key]

    def release_row(self, node: Node, rep: _Replica, prod: Node) -> None:
        for core, rows, _ in rep.blocks:
            core.inbuf.get(prod.row_bytes * rows / node_k(node))

    def _post(self, node: Node, rep: _Replica, n: int, row: int, k: int, array_end: float):
        """Conversion, partial sums and LDPU work of a chunk of k MVMs in every column lane,
        started when the first MVM left the array.

        One MVM goes through a lane's stages in series (lanes side by side). A chunk runs its
        stages side by side too, each holding its resource for the whole chunk's work, and ends
        no earlier than the last MVM would have: when the array released it plus one MVM's
        share of every stage of the slowest lane.
        """
        spans: dict[int, list[float]] = defaultdict(list)
        start = self.env.now

        def lane_work(i: int, lane: _Lane):
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
            gdpu = self.gdpus[_stable_index(node.name, len(self.gdpus))]
            yield self.env.process(
                _timed(self.env, gdpu.run(k * node.ops_per_row, node.name, n), gdpu_span)
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
        self.done[key] += k
        if self.done[key] == node.positions_per_row:
            del self.done[key]
            owner = self.replicas[node.name][self._owner(node, n, row * node.positions_per_row)]
            total = owner.cols
            self.row_done(node, n, row, [(ln.lead.index, ln.cols / total) for ln in owner.lanes])

    def _lane_stages(self, node: Node, lane: _Lane, n: int, k: int) -> list:
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
    def _digital(self, node: Node):
        gdpu = self.gdpus[_stable_index(node.name, len(self.gdpus))]
        for n in range(self.settings.samples):
            for r in range(node.rows):
                for p in node.inputs:
                    ev = self.gates[(p, node.name)].wait(n, need(node, self.plan[p], r))
                    if ev is not None:
                        yield ev
                yield from gdpu.run(node.ops_per_row, node.name, n)
                self.row_done(node, n, r, [(gdpu.router, 1.0)])

    def _shape(self, node: Node):
        src = self._location(self.plan[node.inputs[0]])
        for n in range(self.settings.samples):
            for p in node.inputs:
                ev = self.gates[(p, node.name)].wait(n, self.plan[p].rows)
                if ev is not None:
                    yield ev
            for r in range(node.rows):
                self.row_done(node, n, r, [(src, 1.0)])

    def _location(self, node: Node) -> int:
        if node.kind == "analog":
            return self.replicas[node.name][0].array.index
        if node.kind == "gdpu":
            return self.gdpus[_stable_index(node.name, len(self.gdpus))].router
        if node.kind == "input":
            return self.offchip.router
        return self._location(self.plan[node.inputs[0]])

    def row_done(self, node: Node, n: int, row: int, sources: list) -> simpy.Event:
        """A row of `node` exists at the routers of `sources` ((router, fraction of the row)):
        send it on; the event fires when it has reached every consumer."""
        self.own[node.name].arrive(n)
        sends = []
        for c in node.consumers:
            ev = self.env.event()
            sends.append(ev)
            if c == "<output>":
                self.env.process(self._output(node, n, ev))
            else:
                self.senders[(node.name, c)].submit(n, row, sources, ev)
        all_sent = simpy.AllOf(self.env, sends)
        cost = self.row_cost.pop((node.name, n, row), None)
        if cost:
            all_sent.callbacks.append(lambda _e, cost=cost: [c.outbuf.get(b) for c, b in cost])
        return all_sent

    def _output(self, node: Node, n: int, ev: simpy.Event):
        yield from self.offchip.move(node.row_bytes, "offchip_out", node.name, n)
        self.outputs_left[n] -= 1
        if self.outputs_left[n] == 0:
            self.sample_end[n] = self.env.now
        ev.succeed()


def _timed(env: simpy.Environment, stage, spans: list):
    """Run a stage generator and append how long it took."""
    t0 = env.now
    yield from stage
    spans.append(env.now - t0)


def _inputs(lm, block) -> int:
    """Input values one position drives into a block (all its packed groups' rows)."""
    return block.groups * lm.matrix.k if block.groups > 1 else block.rows


def _outputs(lm, block) -> int:
    """Output values one position takes from a block (all its packed groups' columns)."""
    return block.groups * lm.matrix.n if block.groups > 1 else block.cols


def last_use_rows(node: Node, prod: Node, r: int) -> int:
    """Input rows no longer needed once output row r starts (the line buffer's tail)."""
    n = 0
    while n < prod.rows and last_use(node, prod, n) < r:
        n += 1
    return n


def _stable_index(name: str, n: int) -> int:
    return sum(name.encode()) % n
