"""Hardware specs of a chip: one frozen dataclass per physical concern, composed in `ChipSpec`.

Units live in field names (`_ns`, `_pj`, `_mm2`, `_bytes`, `_ghz`). Every spec checks its own
ranges in `__post_init__` and raises `SpecError` with the field's key path; the TOML loader
(`archsim.config`) adds the file name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from archsim import bounds
from archsim.checks import converter_bits, in_range, largest_code, non_negative, one_of, positive
from archsim.errors import SpecError
from archsim.spec.device import DeviceSpec
from archsim.spec.digital import DIGITAL_POLICIES, DigitalNodeSpec
from archsim.spec.published import PublishedSpec, PublishedWorkloadSpec
from archsim.spec.training import TrainingSpec


@dataclass(frozen=True, slots=True)
class CoresSpec:
    """The array of AIMC cores and what every core shares (area, leakage).

    The digital clocks belong to the units that are timed by them (`LdpuSpec.clock_ghz`,
    `GdpuSpec.clock_ghz`); the analog MVM is timed in ns (`InputSpec`, `AdcSpec`)."""

    count: int
    """Number of AIMC cores on the chip; >= 1."""
    grid: tuple[int, int]
    """Floor-plan grid (rows, columns) the cores sit on; rows * columns >= count."""
    area_mm2: float
    """Silicon area of one core (crossbar, ADCs, LDPU, buffers); > 0."""
    static_power_mw: float = 0.0
    """Leakage/static power of one core while powered; >= 0."""

    def __post_init__(self) -> None:
        in_range("count", self.count, 1)
        if len(self.grid) != 2:
            raise SpecError("grid", f"expected [rows, columns], got {list(self.grid)}")
        in_range("grid", min(self.grid), 1)
        bounds.GRID_PLACES.check("grid", self.grid[0] * self.grid[1])
        if self.grid[0] * self.grid[1] < self.count:
            raise SpecError(
                "grid",
                f"{self.grid[0]}x{self.grid[1]} grid has fewer places than {self.count} cores",
            )
        positive("area_mm2", self.area_mm2)
        non_negative("static_power_mw", self.static_power_mw)


@dataclass(frozen=True, slots=True)
class CrossbarSpec:
    """The analog array of one core: unit cells holding one signed weight each."""

    rows: int
    """Word lines (inputs) of the array: the K extent of one block; >= 1."""
    cols: int
    """Bit lines (outputs) of the array: the N extent of one block; >= 1."""
    devices_per_weight: int
    """Memory devices per weight: 1 (single device against a mid-range reference) or an even
    number split equally between the positive and negative polarity (2 = one pair, 4 = HERMES)."""
    wire_resistance_ohm: float = 0.0
    """Wire resistance of one cell segment along a line, for the IR-drop model; >= 0."""
    ir_drop: bool = False
    """Apply the steady-state IR-drop model in the functional MVM (needs wire_resistance_ohm)."""
    energy_pj_per_row_lsb: float = 0.0
    """Array read energy per active row per input LSB of pulse time, all columns together."""
    program_ns_per_row: float = 0.0
    """Time to program one word line of devices (all columns at once, program-and-verify),
    for weight reloads; >= 0."""
    program_energy_pj_per_device: float = 0.0
    """Energy to program one device, for weight reloads; >= 0."""
    mid_reference: Literal["column", "digital"] = "column"
    """Single device only: what removes the mid-range current. "column": a reference column per
    crossbar block, programmed to g_mid and aged with the weights (`archsim.crossbar`);
    "digital": the nominal g_mid subtracted digitally (aihwkit's SingleDeviceConductanceConverter),
    exact only for a device that neither drifts nor relaxes."""
    weight_sets: int = 1
    """Weight matrices (sets, slots) one array holds, each rows x cols weights on devices of
    its own, of which exactly one is active per MVM (the IEDM-2024 NPU: up to 8 sets of
    512x512 per node at the lowest precision, BOY24; PAS26's core: 8 512x512-weight layers;
    that only one set is read per MVM is an estimate, neither source says); 1..1024. Fewer
    sets when several devices make one weight is the preset's choice (with
    devices_per_weight)."""
    set_switch_ns: float = 0.0
    """Time the array needs before an MVM on a different set than its previous MVM used
    (selecting the other set's devices); >= 0."""
    set_switch_energy_pj: float = 0.0
    """Energy of one such switch of one array; >= 0."""

    def __post_init__(self) -> None:
        in_range("rows", self.rows, 1, 1 << 16)
        in_range("cols", self.cols, 1, 1 << 16)
        d = self.devices_per_weight
        if d < 1 or (d > 1 and d % 2):
            raise SpecError("devices_per_weight", f"expected 1 or an even number >= 2, got {d}")
        non_negative("wire_resistance_ohm", self.wire_resistance_ohm)
        if self.ir_drop and self.wire_resistance_ohm == 0:
            raise SpecError("ir_drop", "IR drop is on but wire_resistance_ohm is 0")
        non_negative("energy_pj_per_row_lsb", self.energy_pj_per_row_lsb)
        non_negative("program_ns_per_row", self.program_ns_per_row)
        non_negative("program_energy_pj_per_device", self.program_energy_pj_per_device)
        if self.mid_reference not in ("column", "digital"):
            raise SpecError(
                "mid_reference", f"expected 'column' or 'digital', got {self.mid_reference!r}"
            )
        in_range("weight_sets", self.weight_sets, 1, 1024)
        non_negative("set_switch_ns", self.set_switch_ns)
        non_negative("set_switch_energy_pj", self.set_switch_energy_pj)

    @property
    def devices_per_polarity(self) -> int:
        """Devices on each side of the differential pair (1 for a single-device weight)."""
        return max(1, self.devices_per_weight // 2)

    @property
    def differential(self) -> bool:
        """True when the weight is stored as G+ - G-; False for one device vs a reference."""
        return self.devices_per_weight >= 2


@dataclass(frozen=True, slots=True)
class ReadModeSpec:
    """A named read mode of the array: how many integration phases one MVM takes."""

    name: str
    """Mode name used by `InputSpec.read_mode`, e.g. "1-phase"."""
    phases: int
    """Integration phases per MVM (HERMES: 1 in the fast mode, 4 in the precise mode); >= 1."""

    def __post_init__(self) -> None:
        in_range("phases", self.phases, 1, 64)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Input encoding of the word lines (the DACs): pulse-width or bit-serial."""

    encoding: Literal["pwm", "bit_serial"]
    """"pwm": one pulse whose duration encodes the magnitude; "bit_serial": one step per bit."""
    bits: int
    """Input code width including the sign bit; 0 = unquantized (ideal DAC), else 2..16
    (`checks.CONVERTER_BITS`: 1 bit is the sign alone)."""
    ns_per_lsb: float
    """PWM: pulse time per LSB; bit-serial: time of one bit step; > 0."""
    read_modes: tuple[ReadModeSpec, ...]
    """The read modes the array supports; at least one."""
    read_mode: str
    """Name of the read mode in use; one of `read_modes`."""
    overhead_ns: float = 0.0
    """Fixed time per MVM phase outside the integration window (set-up, latching); >= 0."""
    energy_pj_per_row_lsb: float = 0.0
    """Driver (DAC/PWM) energy per active row per LSB of pulse time; >= 0."""

    def __post_init__(self) -> None:
        one_of("encoding", self.encoding, ("pwm", "bit_serial"))
        converter_bits("bits", self.bits)
        positive("ns_per_lsb", self.ns_per_lsb)
        if not self.read_modes:
            raise SpecError("read_modes", "expected at least one read mode")
        names = [m.name for m in self.read_modes]
        if len(set(names)) != len(names):
            raise SpecError("read_modes", f"duplicate mode names in {names}")
        one_of("read_mode", self.read_mode, tuple(names))
        non_negative("overhead_ns", self.overhead_ns)
        non_negative("energy_pj_per_row_lsb", self.energy_pj_per_row_lsb)

    @property
    def phases(self) -> int:
        """Integration phases per MVM in the selected read mode."""
        return next(m.phases for m in self.read_modes if m.name == self.read_mode)

    @property
    def pulse_bits(self) -> int:
        """Width the drivers are timed and costed at: `bits`, or 8 for an ideal DAC (an
        unquantized input still needs a pulse; 8 bits is the common AIMC input width)."""
        return self.bits or 8

    @property
    def pulse_lsbs(self) -> int:
        """LSB steps of a full-scale input pulse (the largest code at `pulse_bits`)."""
        return largest_code(self.pulse_bits)

    @property
    def window_ns(self) -> float:
        """Integration window of one phase: 2**(b-1) time slices (PWM) or b bit steps.

        A PWM window holds one slice more than the longest pulse (`pulse_lsbs` = 2**(b-1) - 1):
        the published timing counts slices, e.g. 8-bit signed PWM as 128 slices (aihwkit's
        IOParametersIRDropT; KA22's 128 ns integration, 133 ns with overhead). Energy follows the
        pulse (`pulse_lsbs`), time the window."""
        bits = self.pulse_bits
        steps = 1 << (bits - 1) if self.encoding == "pwm" else bits
        return steps * self.ns_per_lsb


@dataclass(frozen=True, slots=True)
class AdcSpec:
    """The column ADC bank of one core."""

    count: int
    """ADCs per core; columns share them when count < crossbar cols; >= 1."""
    bits: int
    """Output code width including the sign bit; 0 = unquantized (ideal ADC), else 2..16
    (`checks.CONVERTER_BITS`: 1 bit is the sign alone)."""
    conversion_ns: float
    """Time of one conversion round after integration ends; >= 0."""
    energy_pj_per_conversion: float = 0.0
    """Energy of one conversion of one column at `energy_reference_bits`; >= 0."""
    energy_scaling: Literal["fixed", "walden"] = "fixed"
    """How the energy per conversion follows `bits`: "fixed" (the same at any width) or
    "walden" (doubles per bit: a constant Walden figure of merit, energy = FoM x 2^bits,
    MUR23). The conversion time stays `conversion_ns` either way."""
    energy_reference_bits: int = 0
    """The width `energy_pj_per_conversion` was given for (0 = `bits`); 0..16."""

    def __post_init__(self) -> None:
        in_range("count", self.count, 1)
        converter_bits("bits", self.bits)
        non_negative("conversion_ns", self.conversion_ns)
        non_negative("energy_pj_per_conversion", self.energy_pj_per_conversion)
        one_of("energy_scaling", self.energy_scaling, ("fixed", "walden"))
        in_range("energy_reference_bits", self.energy_reference_bits, 0, 16)

    @property
    def energy_pj(self) -> float:
        """Energy of one conversion at `bits`, after `energy_scaling` (an ideal ADC, bits = 0,
        costs the reference energy)."""
        ref = self.energy_reference_bits or self.bits
        if self.energy_scaling == "fixed" or not self.bits:
            return self.energy_pj_per_conversion
        return self.energy_pj_per_conversion * 2.0 ** (self.bits - ref)


DIGITAL_PRECISIONS = ("fp16", "fp32")
"""Digital arithmetic the functional model has: FP16 rounding of every digital result, or
float32 as computed."""


@dataclass(frozen=True, slots=True)
class LdpuSpec:
    """Local digital processing unit of a core: per-column scale/offset, partial sums, ReLU."""

    clock_ghz: float
    """Clock of the unit; > 0."""
    ops_per_cycle: float
    """Element operations completed per cycle (vector width / cycles per element); > 0."""
    energy_pj_per_op: float
    """Energy of one element operation (one FMA or compare); >= 0."""
    precision: str = "fp16"
    """Arithmetic of all digital units (this LDPU and the GDPUs) in the functional model:
    "fp16" rounds every digitally computed value to FP16, "fp32" keeps float32. One of
    `DIGITAL_PRECISIONS`; integer arithmetic (int8, int16) is not modelled and refused."""

    def __post_init__(self) -> None:
        positive("clock_ghz", self.clock_ghz)
        positive("ops_per_cycle", self.ops_per_cycle)
        non_negative("energy_pj_per_op", self.energy_pj_per_op)
        if self.precision not in DIGITAL_PRECISIONS:
            raise SpecError(
                "precision",
                f"expected one of {', '.join(map(repr, DIGITAL_PRECISIONS))}, got "
                f"{self.precision!r} (integer digital arithmetic is not modelled)",
            )


@dataclass(frozen=True, slots=True)
class GdpuSpec:
    """Global digital processing units: element-wise ops, pooling, LSTM state, softmax, ...

    Their arithmetic is the LDPU's (`LdpuSpec.precision`): the functional model rounds every
    digital op at one precision."""

    count: int
    """Number of global units on the chip; >= 0."""
    clock_ghz: float
    """Clock of one unit; > 0."""
    ops_per_cycle: float
    """Element operations per cycle of one unit; > 0."""
    energy_pj_per_op: float
    """Energy of one element operation; >= 0."""
    area_mm2: float = 0.0
    """Area of one unit; >= 0."""

    def __post_init__(self) -> None:
        in_range("count", self.count, 0)
        positive("clock_ghz", self.clock_ghz)
        positive("ops_per_cycle", self.ops_per_cycle)
        non_negative("energy_pj_per_op", self.energy_pj_per_op)
        non_negative("area_mm2", self.area_mm2)


@dataclass(frozen=True, slots=True)
class FabricSpec:
    """Digital communication fabric between cores: a mesh of routers and links."""

    topology: Literal["mesh"]
    """Router graph; "mesh" connects each router to its grid neighbours."""
    dims: tuple[int, int]
    """Mesh size (rows, columns) in routers; one core per router."""
    link_latency_ns: float
    """Flight time of one hop; >= 0."""
    bandwidth_bytes_per_ns: float
    """Payload bandwidth of one link in one direction; > 0."""
    energy_pj_per_bit: float
    """Energy to move one bit across one hop (router + wire); >= 0."""

    def __post_init__(self) -> None:
        one_of("topology", self.topology, ("mesh",))
        if len(self.dims) != 2 or min(self.dims) < 1:
            raise SpecError("dims", f"expected [rows, columns] >= 1, got {list(self.dims)}")
        non_negative("link_latency_ns", self.link_latency_ns)
        positive("bandwidth_bytes_per_ns", self.bandwidth_bytes_per_ns)
        non_negative("energy_pj_per_bit", self.energy_pj_per_bit)


@dataclass(frozen=True, slots=True)
class MemorySpec:
    """On-chip activation buffers of each core and the off-chip interface.

    SRAM traffic costs energy but no time: its bandwidth is not a resource of the timed model
    (`archsim/sim/core.py`, Simplifications)."""

    sram_bytes_per_core: int
    """Activation SRAM of one core, split equally between input and output buffers; >= 2."""
    sram_energy_pj_per_byte: float
    """Energy of one byte read or written; >= 0."""
    offchip_bandwidth_bytes_per_ns: float
    """Bandwidth of the off-chip interface (inputs, outputs, weight reloads); > 0."""
    offchip_latency_ns: float
    """Latency of one off-chip access; >= 0."""
    offchip_energy_pj_per_byte: float
    """Energy of one byte moved off chip; >= 0."""

    def __post_init__(self) -> None:
        in_range("sram_bytes_per_core", self.sram_bytes_per_core, 1)
        non_negative("sram_energy_pj_per_byte", self.sram_energy_pj_per_byte)
        positive("offchip_bandwidth_bytes_per_ns", self.offchip_bandwidth_bytes_per_ns)
        non_negative("offchip_latency_ns", self.offchip_latency_ns)
        non_negative("offchip_energy_pj_per_byte", self.offchip_energy_pj_per_byte)


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """How workloads are put on this chip by default (the CLI can override each choice)."""

    placement: str = "greedy"
    """Placement policy: "sequential" (row-major in layer order) or "greedy" (fewest
    bytes x hops to already placed neighbours)."""
    replication: str = "balanced"
    """Replication policy: "none" or "balanced" (copy the slowest pipeline stage while cores
    are free)."""
    weight_scaling: Literal["matrix", "column"] = "column"
    """Digital weight scale per layer matrix or per output column (LDPU per-column scale)."""
    weight_reload: bool = False
    """When a network needs more cores than the chip has, run it in segments that fit,
    reprogramming the crossbars from off-chip memory between segments (else: MappingError)."""
    digital_policy: str = ""
    """Which digital unit runs each digital op (`archsim.mapping.hetero`): "spread" (a fixed
    spread by op name), "balanced" (the unit that finishes it earliest given the work already
    assigned and its per-class rates), or "" (the default: "spread" on a chip without digital
    nodes, "balanced" with them)."""
    digital_layers: tuple[str, ...] = ()
    """Static-weight linear layers (by name) run on the digital nodes as class matmul instead
    of on AIMC cores; their weights sit in the node's SRAM. Convolutions and LSTMs stay on AIMC
    (refused here)."""

    def __post_init__(self) -> None:
        one_of("placement", self.placement, ("sequential", "greedy"))
        one_of("replication", self.replication, ("none", "balanced"))
        one_of("weight_scaling", self.weight_scaling, ("matrix", "column"))
        one_of("digital_policy", self.digital_policy, ("", *DIGITAL_POLICIES))
        if len(set(self.digital_layers)) != len(self.digital_layers):
            raise SpecError(
                "digital_layers", f"a layer is named twice in {list(self.digital_layers)}"
            )


@dataclass(frozen=True, slots=True)
class ChipSpec:
    """A whole chip: cores, their crossbars and periphery, global units, fabric, memory, device."""

    name: str
    """Preset name (the TOML file's stem for shipped presets)."""
    description: str
    """One line on what the preset models."""
    die_area_mm2: float
    """Whole die area; >= cores.count * cores.area_mm2."""
    cores: CoresSpec
    crossbar: CrossbarSpec
    input: InputSpec
    adc: AdcSpec
    ldpu: LdpuSpec
    gdpu: GdpuSpec
    fabric: FabricSpec
    memory: MemorySpec
    device: DeviceSpec
    mapping: MappingSpec = MappingSpec()
    training: TrainingSpec | None = None
    """On-chip training's update pulses and digital unit (`[training]`); None: not timed."""
    digital_nodes: tuple[DigitalNodeSpec, ...] = ()
    """Digital accelerator node flavours (`[[digital_nodes]]`), on the routers after the
    cores: flavour by flavour, node i of the chip on router cores.count + i."""
    published: tuple[PublishedSpec, ...] = ()
    """Published figures to validate against."""
    published_workloads: tuple[PublishedWorkloadSpec, ...] = ()
    """Published whole-network figures, reported beside the simulation."""
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(table, source) pairs as given in the preset file."""

    def __post_init__(self) -> None:
        positive("die_area_mm2", self.die_area_mm2)
        core_area = self.cores.count * self.cores.area_mm2
        if self.die_area_mm2 + 1e-9 < core_area:
            raise SpecError(
                "die_area_mm2",
                f"expected >= cores.count * cores.area_mm2 = {core_area:g}, "
                f"got {self.die_area_mm2}",
            )
        self._check_digital_nodes()
        xb = self.crossbar
        # every weight set has devices of its own in the core's plane (PAS26: 4 M cells hold
        # 8 sets of 512x512 weights), so the area bound counts the devices of all sets
        sets = f", {xb.weight_sets} weight sets" if xb.weight_sets > 1 else ""
        bounds.check_core_area(
            f"crossbar ({xb.rows}x{xb.cols}, {xb.devices_per_weight} devices per weight{sets})",
            xb.rows * xb.cols * xb.devices_per_weight * xb.weight_sets,
            self.cores.area_mm2,
        )
        if self.adc.count > self.crossbar.cols:
            raise SpecError(
                "adc.count",
                f"expected <= crossbar.cols = {self.crossbar.cols}, got {self.adc.count}",
            )
        if tuple(self.fabric.dims) != tuple(self.cores.grid):
            raise SpecError(
                "fabric.dims",
                f"expected the core grid {list(self.cores.grid)} (one router per core place), "
                f"got {list(self.fabric.dims)}",
            )
        fitted = getattr(self.device.model, "devices_per_weight", None)
        if fitted is not None and fitted != xb.devices_per_weight:
            raise SpecError(
                "crossbar.devices_per_weight",
                f"device {self.device.name!r} is fitted for {fitted}, got {xb.devices_per_weight}",
            )
        modes = {m.name for m in self.input.read_modes}
        for i, p in enumerate(self.published):
            if p.read_mode and p.read_mode not in modes:
                raise SpecError(f"published[{i}].read_mode", f"expected one of {sorted(modes)}")
        for i, p in enumerate(self.published_workloads):
            if p.read_mode and p.read_mode not in modes:
                raise SpecError(
                    f"published_workloads[{i}].read_mode", f"expected one of {sorted(modes)}"
                )

    def _check_digital_nodes(self) -> None:
        """Distinct flavour labels, and a router for every node after the cores."""
        kinds = [d.kind for d in self.digital_nodes]
        for i, kind in enumerate(kinds):
            if kind in kinds[:i]:
                raise SpecError(f"digital_nodes[{i}].kind", f"{kind!r} is used by another flavour")
        nodes = sum(d.count for d in self.digital_nodes)
        rows, cols = self.cores.grid
        if nodes and rows * cols < self.cores.count + nodes:
            raise SpecError(
                "digital_nodes",
                f"{nodes} digital nodes need routers after the {self.cores.count} cores, but the "
                f"{rows}x{cols} grid has {rows * cols} places (expected cores.grid with >= "
                f"{self.cores.count + nodes})",
            )

    @property
    def digital_node_count(self) -> int:
        """Digital accelerator nodes of all flavours."""
        return sum(d.count for d in self.digital_nodes)

    @property
    def static_power_mw(self) -> float:
        """Static power of the whole chip: every core and every digital node."""
        nodes = sum(d.count * d.static_power_mw for d in self.digital_nodes)
        return self.cores.count * self.cores.static_power_mw + nodes

    @property
    def cols_per_adc(self) -> int:
        """Columns that share one ADC (conversions of those columns serialise)."""
        return math.ceil(self.crossbar.cols / self.adc.count)

    @property
    def compute_area_mm2(self) -> float:
        """Area of the compute units, the cores, the global digital units and the digital
        nodes: the one basis of TOPS/mm2 in metrics, sweeps and validation."""
        nodes = sum(d.count * d.area_mm2 for d in self.digital_nodes)
        return self.cores.count * self.cores.area_mm2 + self.gdpu.count * self.gdpu.area_mm2 + nodes

    @property
    def weights_per_core(self) -> int:
        """Signed weights one core's array computes with in one MVM (one per unit cell of the
        active weight set)."""
        return self.crossbar.rows * self.crossbar.cols

    @property
    def weight_capacity(self) -> int:
        """Signed weights the chip stores: cores x rows x cols x weight sets."""
        return self.cores.count * self.weights_per_core * self.crossbar.weight_sets
