"""Time and energy of on-chip (pulsed) training: one more dataflow in the SimPy engine.

Per training sample (and per mat-vec of a layer with several per sample: conv positions, LSTM
steps), every crossbar tile of every layer resident on its own core (a core's
crossbar holds the tile's arrays A, W and R side by side; they share its drivers and ADCs, so
their operations serialise on the core's array resource):
1. forward: the layers in sequence, the tiles of a layer in parallel, one MVM per tile and
   sample (`Core.mvm`: array, further ADC rounds, LDPU over the N outputs);
2. backward: the layers in reverse order, without the first (no gradient is needed for the
   network input): one transposed read per tile. Assumed: the same time as a forward MVM (one
   integration window and conversion round; the d inputs drive the N column lines through a
   second set of drivers, the K row lines are converted by a second set of ADCs), and the same
   energy per driven line and per conversion as the forward direction (periphery on both sides
   of the array; its area is not modelled);
3. update, all tiles of all layers in parallel, per tile in this order: the per-sample digital
   work (mixed precision's outer product into chi), the pulse train (`pulse_slots` slots of
   `pulse_ns`; on A for the Tiki-Taka family, on W for analog SGD and mixed precision), and
   after every `transfer_every`-th sample, `reads_per_transfer` times: a row read of A (one MVM
   with a one-hot input: one row driven at full scale, N columns converted), the digital
   accumulation of the row (H, P, choppers: k x N FLOPs) and the transfer pulses to W.
   The digital units are SimPy resources, one per `arrays_per_digital_unit` consecutive tiles:
   tiles that read in the same sample queue for their unit (contention is simulated, not
   computed). The tiles are clocked in lockstep: each sample's update ends when every tile is
   done (a barrier), as in RA24's additive per-sample model; the digital work of one read does
   not overlap the next sample's pulses.

Not modelled: activation transfers between layers (fabric, SRAM), static power, the partial
sums of row blocks beyond each tile's LDPU pass, weight reloads (every tile stays resident).
Energies: the chip's per-line, per-conversion and per-op constants at full-scale input activity
(`metrics.ASSUMED_ACTIVITY`, an upper bound) plus the `[training]` table's pulse and FLOP
energies; device pulses are `pulses_per_device` per device and sample if measured, else
`pulse_slots` (every slot a coincidence: an upper bound), W gets at most `transfer_pulse_slots`
pulses per device of the read row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

from archsim.checks import in_range, non_negative, require_finite
from archsim.errors import ConfigError, MappingError, SpecError
from archsim.sim.core import Core, CoreTiming
from archsim.sim.metrics import ASSUMED_ACTIVITY
from archsim.sim.recorder import Recorder
from archsim.spec import ChipSpec

METHODS = ("analog-sgd", "mp", "ttv2", "cttv2", "agad")
"""The on-chip training methods (as `archsim.train.pulsed`)."""

PARTS = ("forward", "backward", "update_pulses", "reads", "digital", "transfer")
"""The parts of a training sample's time and energy, in order."""

UPDATE_PARTS = PARTS[2:]
"""The parts RA24's update-time table counts (no forward or backward pass)."""

FLOPS_PER_COLUMN = {"ttv2": 6.0, "cttv2": 10.0, "agad": 14.0}
"""k of k x N digital FLOPs per row read of A. ttv2 6: FITTED on RA24's TTv2 row (56.3 ns); as
an operation count H += lr v (2), threshold compare (1), truncate (1), reset (2). cttv2 10:
FITTED on RA24's c-TTv2 row (62.1 ns); TTv2's 6 plus 4 for chopping (sign of v by c, chopper
bookkeeping). agad 14: NOT fitted (no additive model fits both AGAD rows, see
`archsim.sim.training_table`), an operation count [E]: c-TTv2's 10, plus v - P_ref (1), plus
P <- (1 - beta) P + beta v (3)."""


@dataclass(frozen=True, slots=True)
class UpdateSchedule:
    """The per-sample update work of one algorithm, per tile of `n` columns."""

    method: str
    pulse_slots: float
    """Length of the pulse train on the gradient array per sample (l_max): on A for the
    Tiki-Taka family, on W for analog SGD and mixed precision (its thresholded programming)."""
    transfer_every: int
    """n_s: one transfer (row reads of A) after every n_s samples (0: no transfer)."""
    reads_per_transfer: int = 1
    digital_flops_per_read: float = 0.0
    """k x N of a full-width tile (scaled by n_t / n for a narrower tile)."""
    digital_flops_per_sample: float = 0.0
    """Mixed precision: 2N^2 + N for an n x n tile (scaled by k_t n_t / n^2 for other tiles)."""
    transfer_pulse_slots: float = 1.0
    """Pulse slots written to W per row read."""
    n: int = 0
    """Columns the FLOP counts are given for (0: the same counts for every tile)."""
    pulses_per_device: float | None = None
    """Measured mean pulses (coincidences) per device of the pulsed array per mat-vec update
    (per sample for a fully connected layer); None: `pulse_slots` (an upper bound)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SpecError("method", f"expected one of {', '.join(METHODS)}, got {self.method!r}")
        non_negative("pulse_slots", self.pulse_slots)
        in_range("transfer_every", self.transfer_every, 0)
        in_range("reads_per_transfer", self.reads_per_transfer, 1)
        non_negative("digital_flops_per_read", self.digital_flops_per_read)
        non_negative("digital_flops_per_sample", self.digital_flops_per_sample)
        non_negative("transfer_pulse_slots", self.transfer_pulse_slots)
        in_range("n", self.n, 0)
        if self.pulses_per_device is not None:
            non_negative("pulses_per_device", self.pulses_per_device)

    def read_flops(self, n_t: int) -> float:
        """Digital FLOPs of one row read on a tile of n_t columns."""
        return self.digital_flops_per_read * (n_t / self.n if self.n else 1.0)

    def sample_flops(self, k_t: int, n_t: int) -> float:
        """Digital FLOPs per sample on a k_t x n_t tile."""
        return self.digital_flops_per_sample * (k_t * n_t / self.n**2 if self.n else 1.0)


def schedule_for(method: str, *, n: int, pulse_slots: float, transfer_every: int) -> UpdateSchedule:
    """The update work of `method` on tiles of `n` columns with pulse trains of `pulse_slots`
    slots (l_max) and a transfer every `transfer_every` samples (n_s).

    analog-sgd: pulses on W only (transfer_every is not used: set 0). mp: 2N^2 + N digital
    FLOPs per sample (chi += lr d x^T and its scaling), then W programmed by thresholded pulses
    as one pulse train of `pulse_slots` slots after every `transfer_every` samples (amortised
    per sample). ttv2, cttv2, agad: k x N FLOPs per read (FLOPS_PER_COLUMN), one read and one
    W pulse slot per transfer.

    Raises:
        SpecError: unknown method, n < 1, pulse_slots < 0, transfer_every < 0.
    """
    if method not in METHODS:
        raise SpecError("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    in_range("n", n, 1)
    in_range("transfer_every", transfer_every, 0)
    non_negative("pulse_slots", pulse_slots)
    if method == "analog-sgd":
        return UpdateSchedule(method, pulse_slots, 0, n=n)
    if method == "mp":
        slots = pulse_slots / max(transfer_every, 1)
        return UpdateSchedule(method, slots, 0, digital_flops_per_sample=2.0 * n * n + n, n=n)
    k = FLOPS_PER_COLUMN[method]
    return UpdateSchedule(method, pulse_slots, transfer_every, digital_flops_per_read=k * n, n=n)


@dataclass(frozen=True, slots=True)
class TrainingCost:
    """Time and energy of one training sample, by part (PARTS)."""

    latency_ns_per_sample: float
    energy_pj_per_sample: float
    latency_by_part_ns: dict[str, float]
    """Per sample: forward and backward pass times, and the update's parts along the tile that
    finished last (waiting for a shared digital unit counts as digital)."""
    energy_by_part_pj: dict[str, float]
    update_ns_per_sample: float
    """The update parts alone: the figure of RA24's update-time table."""
    tiles: int = 0
    digital_units: int = 0
    samples: int = 0
    """Samples simulated (a whole number of transfer periods and mini-batches)."""
    counts: dict[str, float] = field(default_factory=dict)
    """Per sample: forward, backward and row-read MVMs, pulse slots and device pulses on the
    pulsed array and on W, digital FLOPs (every operation counted once)."""


def training_cost(
    chip: ChipSpec,
    layers: list[tuple[int, ...]],
    schedule: UpdateSchedule,
    *,
    samples: int = 64,
    batch: int = 1,
) -> TrainingCost:
    """Simulate `samples` training samples (forward and backward per mini-batch of `batch`,
    then the per-sample updates) of the network with static-weight ops `layers` = [(K, N)...]
    on `chip`, and return the time and energy per sample. A layer may be (K, N, matvecs): its
    mat-vecs per sample (conv output positions, LSTM time steps; default 1), each a forward
    MVM, a transposed MVM and a pulsed update, the transfer counter counting mat-vecs (as
    aihwkit's units_in_mbatch False). `samples` is rounded up to a whole number of transfer
    periods and mini-batches (`TrainingCost.samples`), so that the figures per sample are the
    steady-state averages (64 samples at n_s = 3 would hold 21 reads, not 21.3).

    Raises:
        ConfigError: the chip has no [training] table.
        MappingError: the network's tiles need more cores than the chip has.
        SpecError: empty or non-positive layer shapes, samples or batch < 1.
    """
    if chip.training is None:
        raise ConfigError(
            f"chip {chip.name!r} has no [training] table (pulse_ns, digital_flops_per_ns, "
            "arrays_per_digital_unit): it cannot be timed for on-chip training"
        )
    in_range("samples", samples, 1)
    in_range("batch", batch, 1)
    tiles, matvecs = _tiles(chip, layers)
    every = max(schedule.transfer_every, 1)
    period = math.lcm(batch, *(every // math.gcd(every, v) for v in matvecs))
    samples = -(-samples // period) * period
    sim = _TrainingSim(chip, tiles, matvecs, schedule)
    sim.run(samples, batch)
    return sim.cost(samples)


def _tiles(chip: ChipSpec, layers: list[tuple[int, ...]]):
    """Per layer, the (k_t, n_t) of its crossbar tiles; and its mat-vecs per sample."""
    if not layers:
        raise SpecError("layers", "expected at least one (K, N) static-weight op")
    rows, cols = chip.crossbar.rows, chip.crossbar.cols
    out, matvecs = [], []
    for i, shape in enumerate(layers):
        shape = tuple(shape)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        if len(shape) not in (2, 3) or not ints or min(shape) < 1:
            raise SpecError(
                f"layers[{i}]", f"expected (K, N) or (K, N, matvecs) integers >= 1, got {shape!r}"
            )
        k, n = shape[:2]
        matvecs.append(shape[2] if len(shape) == 3 else 1)
        out.append(
            [
                (min(rows, k - r), min(cols, n - c))
                for r in range(0, k, rows)
                for c in range(0, n, cols)
            ]
        )
    count = sum(map(len, out))
    if count > chip.cores.count:
        raise MappingError(
            f"on-chip training keeps every tile resident: {count} tiles of "
            f"{rows}x{cols} needed, chip {chip.name!r} has {chip.cores.count} cores"
        )
    return out, matvecs


class _TrainingSim:
    """One run: cores per tile, digital units, and the tallies of time, energy and counts."""

    def __init__(self, chip: ChipSpec, tiles, matvecs: list[int], sched: UpdateSchedule):
        self.chip, self.tiles, self.matvecs, self.sched = chip, tiles, matvecs, sched
        self.train = chip.training
        self.env = simpy.Environment()
        self.timing = CoreTiming.of(chip)
        rec = Recorder()
        flat = [t for layer in tiles for t in layer]
        self.cores = [Core(self.env, self.timing, i, 2, rec) for i in range(len(flat))]
        self.flat = [(t, v) for layer, v in zip(tiles, matvecs, strict=True) for t in layer]
        """Every tile with its layer's mat-vecs per sample."""
        self.updates = [0] * len(flat)
        """Mat-vec updates of each tile so far (the transfer counter)."""
        per_unit = self.train.arrays_per_digital_unit
        self.units = [
            simpy.Resource(self.env, capacity=1) for _ in range(math.ceil(len(flat) / per_unit))
        ]
        self.time = dict.fromkeys(PARTS, 0.0)
        self.energy = dict.fromkeys(PARTS, 0.0)
        self.counts: dict[str, float] = {}

    def _count(self, part: str, what: str, qty: float, energy_pj: float) -> None:
        self.counts[what] = self.counts.get(what, 0.0) + qty
        self.energy[part] += energy_pj

    def _mvm_pj(self, driven: int, converted: int, activity: float) -> float:
        """Energy of one MVM: `driven` lines at `activity` of full scale, `converted` columns
        converted and post-processed, over the read mode's phases."""
        chip = self.chip
        act = ASSUMED_ACTIVITY if activity < 0 else activity
        phases = chip.input.phases
        lsb = driven * act * chip.input.pulse_lsbs * phases
        return (
            lsb * (chip.crossbar.energy_pj_per_row_lsb + chip.input.energy_pj_per_row_lsb)
            + converted * phases * chip.adc.energy_pj
            + converted * chip.ldpu.energy_pj_per_op
        )

    def run(self, samples: int, batch: int) -> None:
        self.env.process(self._training(samples, batch))
        self.env.run()

    def _training(self, samples: int, batch: int):
        done = 0
        while done < samples:
            m = min(batch, samples - done)
            t0 = self.env.now
            for i in range(len(self.tiles)):
                yield self.env.all_of(self._layer_procs(i, m, backward=False))
            t1 = self.env.now
            for i in range(len(self.tiles) - 1, 0, -1):
                yield self.env.all_of(self._layer_procs(i, m, backward=True))
            t2 = self.env.now
            self.time["forward"] += t1 - t0
            self.time["backward"] += t2 - t1
            for _ in range(m):
                yield from self._update()
            done += m

    def _layer_procs(self, i: int, m: int, backward: bool):
        first = sum(map(len, self.tiles[:i]))
        mvms = m * self.matvecs[i]
        return [
            self.env.process(self._pass(self.cores[first + j], i, k_t, n_t, mvms, backward))
            for j, (k_t, n_t) in enumerate(self.tiles[i])
        ]

    def _pass(self, core: Core, i: int, k_t: int, n_t: int, m: int, backward: bool):
        """m MVMs of one tile: forward (K rows in, N out) or transposed (N in, K out)."""
        driven, converted = (n_t, k_t) if backward else (k_t, n_t)
        label = f"{i}:{'bwd' if backward else 'fwd'}"
        yield from core.integrate(label, 0, m, 1)
        yield from core.convert_rest(label, 0, m)
        yield from core.post_process(label, 0, m * converted)
        part = "backward" if backward else "forward"
        self._count(part, f"{part}_mvms", m, m * self._mvm_pj(driven, converted, -1.0))

    def _update(self):
        """One sample's update on every tile, then the barrier; the critical tile's parts."""
        parts = [dict.fromkeys(UPDATE_PARTS, 0.0) for _ in self.flat]
        yield self.env.all_of(
            [self.env.process(self._tile_update(j, parts[j])) for j in range(len(self.flat))]
        )
        critical = max(parts, key=lambda p: sum(p.values()))
        for part, t in critical.items():
            self.time[part] += t

    def _tile_update(self, j: int, parts: dict[str, float]):
        """A tile's mat-vec updates of one sample, one after the other."""
        (k_t, n_t), matvecs = self.flat[j]
        unit = self.units[j // self.train.arrays_per_digital_unit]
        for _ in range(matvecs):
            yield from self._matvec_update(j, k_t, n_t, unit, parts)

    def _matvec_update(self, j: int, k_t: int, n_t: int, unit, parts: dict[str, float]):
        sched, train, core = self.sched, self.train, self.cores[j]
        flops = sched.sample_flops(k_t, n_t)
        if flops > 0:
            yield from self._digital(unit, flops, parts)
        if sched.pulse_slots > 0:
            yield from self._hold(core, sched.pulse_slots * train.pulse_ns, "update_pulses", parts)
            per_device = sched.pulse_slots
            if sched.pulses_per_device is not None:
                per_device = sched.pulses_per_device
            self._count(
                "update_pulses",
                "pulse_slots",
                sched.pulse_slots,
                sched.pulse_slots * (k_t + n_t) * train.energy_pj_per_line_pulse
                + per_device * k_t * n_t * train.energy_pj_per_device_pulse,
            )
            self.counts["device_pulses"] = self.counts.get("device_pulses", 0.0) + (
                per_device * k_t * n_t
            )
        self.updates[j] += 1
        if not sched.transfer_every or self.updates[j] % sched.transfer_every:
            return
        for _ in range(sched.reads_per_transfer):
            yield from self._hold(core, self.timing.mvm_latency_ns, "reads", parts)
            self._count("reads", "row_reads", 1, self._mvm_pj(1, n_t, 1.0))
            yield from self._digital(unit, sched.read_flops(n_t), parts)
            slots = sched.transfer_pulse_slots
            if slots > 0:
                yield from self._hold(core, slots * train.pulse_ns, "transfer", parts)
                self._count(
                    "transfer",
                    "transfer_pulse_slots",
                    slots,
                    slots * (1 + n_t) * train.energy_pj_per_line_pulse
                    + slots * n_t * train.energy_pj_per_device_pulse,
                )
                self.counts["transfer_device_pulses"] = (
                    self.counts.get("transfer_device_pulses", 0.0) + slots * n_t
                )

    def _hold(self, core: Core, ns: float, part: str, parts: dict[str, float]):
        """Hold the tile's array for `ns` (its time, waiting included, goes to `part`)."""
        t0 = self.env.now
        with core.array.request() as req:
            yield req
            yield self.env.timeout(ns)
        parts[part] += self.env.now - t0

    def _digital(self, unit: simpy.Resource, flops: float, parts: dict[str, float]):
        """`flops` on the tile's digital unit, after the tiles queued before it."""
        if flops <= 0:
            return
        t0 = self.env.now
        with unit.request() as req:
            yield req
            yield self.env.timeout(flops / self.train.digital_flops_per_ns)
        parts["digital"] += self.env.now - t0
        self._count(
            "digital", "digital_flops", flops, flops * self.train.digital_energy_pj_per_flop
        )

    def cost(self, samples: int) -> TrainingCost:
        time = {p: v / samples for p, v in self.time.items()}
        energy = {p: v / samples for p, v in self.energy.items()}
        for p in PARTS:
            require_finite(f"training.latency.{p}", time[p])
            require_finite(f"training.energy.{p}", energy[p])
        return TrainingCost(
            latency_ns_per_sample=sum(time.values()),
            energy_pj_per_sample=sum(energy.values()),
            latency_by_part_ns=time,
            energy_by_part_pj=energy,
            update_ns_per_sample=sum(time[p] for p in UPDATE_PARTS),
            tiles=len(self.cores),
            digital_units=len(self.units),
            samples=samples,
            counts={k: v / samples for k, v in self.counts.items()},
        )
