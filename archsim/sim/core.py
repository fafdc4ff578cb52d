"""One AIMC core: crossbar array, ADC bank, LDPU and activation SRAM, as SimPy resources.

Timing of one MVM (a chunk of k MVMs takes k times as long):
- array: phases x (integration window + overhead) plus one conversion round. PWM windows are
  2**(bits-1) LSB steps of ns_per_lsb; bit-serial windows one step per bit. The array is held
  for all of it: a CCO ADC counts while the columns integrate, so the next integration can only
  start after the read-out (HERMES: 128 + 5 ns).
- ADC bank: when columns share ADCs, the remaining cols_per_adc - 1 rounds per phase happen
  after the array is free (the values wait on sample-and-hold), serialised on the bank.
- LDPU: per-column post-processing (scale, offset, activation, partial-sum adds) at
  ops_per_cycle x clock element operations per ns.
- weight sets: an array holding several sets computes with one per MVM; an MVM on another set
  than the array's previous one first holds the array for set_switch_ns.
Simplifications: a core holds one block (or, with layers sharing it, one block per layer and
weight set); a chunk's set switches are timed at its start;
no refresh, no programming time, no ADC calibration cycles; SRAM bandwidth is not a separate
resource (its energy is counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import simpy

from archsim.sim.recorder import Recorder
from archsim.spec import ChipSpec


@dataclass(frozen=True, slots=True)
class CoreTiming:
    """Times of one MVM on a core of this chip, in ns."""

    array_ns: float
    """Array busy: integration of all phases plus one conversion round."""
    adc_extra_ns: float
    """Further conversion rounds when columns share ADCs (0 with one ADC per column)."""
    ops_per_ns: float
    """LDPU element operations per ns."""
    set_switch_ns: float = 0.0
    """Array busy before an MVM on another weight set than the previous MVM's."""

    @classmethod
    def of(cls, chip: ChipSpec) -> CoreTiming:
        inp, adc = chip.input, chip.adc
        array = inp.phases * (inp.window_ns + inp.overhead_ns) + adc.conversion_ns
        extra = inp.phases * (chip.cols_per_adc - 1) * adc.conversion_ns
        ops = chip.ldpu.ops_per_cycle * chip.ldpu.clock_ghz
        return cls(array, extra, ops, chip.crossbar.set_switch_ns)

    @property
    def mvm_latency_ns(self) -> float:
        """One MVM from input to converted output."""
        return self.array_ns + self.adc_extra_ns


class Core:
    """A core owns its env, timing and resources; behaviour is generator methods."""

    def __init__(
        self, env: simpy.Environment, timing: CoreTiming, index: int, sram_bytes: int, rec: Recorder
    ) -> None:
        self.env = env
        self.timing = timing
        self.index = index
        self.name = f"core{index}"
        self.rec = rec
        self.array = simpy.Resource(env, capacity=1)
        self.active_set = 0
        """Weight set the array's last MVM used (the array starts on set 0)."""
        self.adc = simpy.Resource(env, capacity=1)
        self.ldpu = simpy.Resource(env, capacity=1)
        self.inbuf = simpy.Container(env, capacity=max(1, sram_bytes))
        """Input activation SRAM (bytes held by rows waiting to be used)."""
        self.outbuf = simpy.Container(env, capacity=max(1, sram_bytes))
        """Output SRAM (bytes of results not yet sent)."""

    def grow_sram(self, buffer: str, capacity: int) -> bool:
        """Enlarge the "input" or "output" SRAM to `capacity` bytes if it is smaller (before
        the run); True if it grew."""
        held = self.inbuf if buffer == "input" else self.outbuf
        if capacity <= held.capacity:
            return False
        if buffer == "input":
            self.inbuf = simpy.Container(self.env, capacity=capacity)
        else:
            self.outbuf = simpy.Container(self.env, capacity=capacity)
        return True

    def integrate(
        self,
        layer: str,
        sample: int,
        chunk: int,
        blocks: int,
        after_first=None,
        mvms: int | None = None,
        hold: Sequence[Core] = (),
        sets: Sequence[tuple[Core, tuple[int, ...], int]] = (),
        positions: int = 1,
    ):
        """Hold the array for `chunk` MVMs; records one "mvm" row with qty = chunk x blocks
        (or `mvms` when given: packed crossbars do several MVMs per array pass of the copy).
        The arrays of `hold` (crossbars shared with other layers) are held too, all arrays
        taken in core order so that two copies never wait for each other.

        `after_first(end_ns)`, if given, is called when the first MVM of the chunk is through
        the array (with the time the whole chunk will be), so its post-processing can start
        while the rest integrate, as it would MVM by MVM.

        With `sets` ((core, weight sets used there, array passes per position) for every core
        of the copy: a chip with several weight sets), the chunk is `positions` positions
        instead: each core switches its array to the sets (`select_sets`, one "set_switch" row
        per core that switched) and makes its passes, the copy's arrays are held until the
        slowest core is done, and `after_first` is called after one position's share of that.
        """
        with ExitStack() as arrays:
            for core in sorted({self, *hold, *(c for c, _, _ in sets)}, key=lambda c: c.index):
                yield arrays.enter_context(core.array.request())
            t0 = self.env.now
            if sets:
                busy = 0.0
                for core, used, passes in sets:
                    n = core.select_sets(used, positions)
                    switch_ns = n * self.timing.set_switch_ns
                    if n:
                        self.rec.record(
                            t0, t0 + switch_ns, core.name, "set_switch", layer, sample, n
                        )
                    busy = max(busy, positions * passes * self.timing.array_ns + switch_ns)
                if after_first is None:
                    yield self.env.timeout(busy)
                else:
                    first = busy / positions
                    yield self.env.timeout(first)
                    after_first(t0 + busy)
                    yield self.env.timeout(busy - first)
            elif after_first is None:
                yield self.env.timeout(chunk * self.timing.array_ns)
            else:
                yield self.env.timeout(self.timing.array_ns)
                after_first(t0 + chunk * self.timing.array_ns)
                if chunk > 1:
                    yield self.env.timeout((chunk - 1) * self.timing.array_ns)
        qty = chunk * blocks if mvms is None else mvms
        self.rec.record(t0, self.env.now, self.name, "mvm", layer, sample, qty)

    def select_sets(self, used: tuple[int, ...], positions: int) -> int:
        """Weight-set switches of this array for `positions` positions that each take one MVM
        pass on every set of `used` (sorted), leaving the last set used active.

        The array starts from the set it is on: in reverse order when that is the last of
        `used`; consecutive positions run the sets in alternating order, so they share the set
        at their boundary. Switches: one if the first set is not the active one, plus
        positions x (len(used) - 1).
        """
        order = used[::-1] if len(used) > 1 and self.active_set == used[-1] else used
        switches = int(self.active_set != order[0]) + positions * (len(order) - 1)
        self.active_set = order[-1] if positions % 2 else order[0]
        return switches

    def convert_rest(self, layer: str, sample: int, chunk: int):
        """The conversion rounds of shared ADCs left after the array is free."""
        if self.timing.adc_extra_ns <= 0:
            return
        with self.adc.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout(chunk * self.timing.adc_extra_ns)
        self.rec.record(t0, self.env.now, self.name, "adc", layer, sample, chunk)

    def post_process(self, layer: str, sample: int, ops: float, busy_ops: float | None = None):
        """`ops` element operations on the LDPU, holding it for `busy_ops` of them (default
        all; less when the rest run on other cores' LDPUs in parallel)."""
        if ops <= 0:
            return
        with self.ldpu.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout((ops if busy_ops is None else busy_ops) / self.timing.ops_per_ns)
        self.rec.record(t0, self.env.now, self.name, "ldpu", layer, sample, ops)

    def mvm(self, layer: str, sample: int, cols: int, chunk: int = 1):
        """A whole MVM on this core: array, remaining ADC rounds, LDPU over `cols` outputs."""
        yield from self.integrate(layer, sample, chunk, 1)
        yield from self.convert_rest(layer, sample, chunk)
        yield from self.post_process(layer, sample, chunk * cols)
