"""Digital accelerator nodes and the digital units a chip has.

A chip may carry, beside its AIMC cores, digital accelerator nodes (`[[digital_nodes]]`, one
table per flavour): a MAC array or vector unit with its own SRAM and a throughput per op class.
Every digital op of a workload runs on one digital unit: a global digital processing unit
(`[gdpu]`, every class at its `ops_per_cycle`) or a digital node (its class rate).

Op classes (`archsim.mapping.hetero.op_class`): "matmul" (products with two dynamic operands,
and static-weight layers a policy puts on digital nodes), "softmax", "norm" (LayerNorm and
unfused per-channel affine steps such as MobileBERT's NoNorm), "elementwise" (everything else).

Simplifications: a node's classes share one pipeline (one op at a time per node); its SRAM holds
one op's operands and result at a time (the excess goes through the off-chip interface).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.checks import in_range, non_negative, positive
from archsim.errors import SpecError

if TYPE_CHECKING:
    from archsim.spec.chip import ChipSpec

OP_CLASSES = ("matmul", "softmax", "norm", "elementwise")
"""The classes of digital work a unit has a rate for."""

RESERVED_KINDS = (
    *("gdpu", "core", "chip", "offchip", "spill", "array", "dac", "adc", "ldpu", "sram"),
    *("fabric", "reload", "static"),
)
"""Labels a digital node flavour cannot take: other components' and energy parts' names."""

DIGITAL_POLICIES = ("spread", "balanced", "rows")
"""Names of the digital placement policies (`archsim.mapping.hetero.POLICIES`)."""


@dataclass(frozen=True, slots=True)
class DigitalNodeSpec:
    """One flavour of digital accelerator node (`[[digital_nodes]]`), `count` of them."""

    kind: str
    """Label of the flavour in tables and pictures, e.g. "mac-array"; letters, digits, '-'
    and '_'; the units are named "<kind><i>" (mac-array0, mac-array1, ...)."""
    count: int
    """Nodes of this flavour; >= 1. They sit on the fabric routers after the cores."""
    clock_ghz: float
    """Clock of one node; > 0."""
    sram_bytes: int
    """Working memory of one node (operands and result of the op it runs, weights of the
    static-weight layers it holds); >= 1."""
    macs_per_cycle: float = 0.0
    """Class "matmul": multiply-accumulates per cycle; >= 0 (0: cannot run the class)."""
    softmax_per_cycle: float = 0.0
    """Class "softmax": output elements per cycle; >= 0 (0: cannot run the class)."""
    norm_per_cycle: float = 0.0
    """Class "norm": output elements per cycle of LayerNorm / unfused affine; >= 0."""
    elementwise_per_cycle: float = 0.0
    """Class "elementwise": element operations per cycle (adds, activations, pooling window
    elements, ...); >= 0."""
    energy_pj_per_mac: float = 0.0
    """Energy of one multiply-accumulate (class matmul); >= 0."""
    energy_pj_per_op: float = 0.0
    """Energy of one element operation of the other classes (softmax counts 3 per element,
    LayerNorm 5, affine 2, as `archsim.mapping.hetero.op_work`); >= 0."""
    area_mm2: float = 0.0
    """Silicon area of one node, SRAM included; >= 0."""
    static_power_mw: float = 0.0
    """Leakage/static power of one node while powered; >= 0."""

    def __post_init__(self) -> None:
        if not self.kind or not all(ch.isalnum() or ch in "-_" for ch in self.kind):
            raise SpecError(
                "kind", f"expected a label of letters, digits, '-', '_', got {self.kind!r}"
            )
        if self.kind[-1].isdigit():
            raise SpecError("kind", f"expected a label not ending in a digit, got {self.kind!r}")
        if self.kind in RESERVED_KINDS:
            raise SpecError(
                "kind", f"{self.kind!r} names another unit or energy part; choose another label"
            )
        in_range("count", self.count, 1, 4096)
        positive("clock_ghz", self.clock_ghz)
        in_range("sram_bytes", self.sram_bytes, 1)
        for name in ("macs", "softmax", "norm", "elementwise"):
            non_negative(f"{name}_per_cycle", getattr(self, f"{name}_per_cycle"))
        if not any(self.per_cycle(c) for c in OP_CLASSES):
            raise SpecError(
                "macs_per_cycle",
                "every rate is 0: the node could run nothing (set at least one *_per_cycle)",
            )
        non_negative("energy_pj_per_mac", self.energy_pj_per_mac)
        non_negative("energy_pj_per_op", self.energy_pj_per_op)
        non_negative("area_mm2", self.area_mm2)
        non_negative("static_power_mw", self.static_power_mw)

    def per_cycle(self, op_class: str) -> float:
        """Rate of one op class in its own unit (MACs, elements or element operations)."""
        return {
            "matmul": self.macs_per_cycle,
            "softmax": self.softmax_per_cycle,
            "norm": self.norm_per_cycle,
            "elementwise": self.elementwise_per_cycle,
        }[op_class]


@dataclass(frozen=True, slots=True)
class DigitalUnitSpec:
    """One digital unit of a chip as placement and the timed run see it."""

    name: str
    """Component name: "gdpu<i>" or "<kind><i>" (numbered per flavour)."""
    kind: str
    """"gdpu" or the digital node flavour."""
    router: int
    """Fabric router the unit sits on."""
    clock_ghz: float
    rates: tuple[float, float, float, float]
    """Per cycle, in OP_CLASSES order; for a GDPU element operations of every class, for a
    node the flavour's rates in their own units (see `counts_ops`)."""
    counts_ops: bool
    """True for a GDPU: its time is element operations / rate for every class (a MAC counts
    as one operation). False for a node: MACs, elements (softmax, norm) or element operations
    (elementwise) over the class rate."""
    energy_pj_per_mac: float
    energy_pj_per_op: float
    sram_bytes: int | None
    """Working memory; None: large enough for any op (the GDPUs' simplification)."""

    @property
    def node(self) -> bool:
        """A digital accelerator node (not a GDPU)."""
        return self.kind != "gdpu"

    def can_run(self, op_class: str) -> bool:
        return self.rates[OP_CLASSES.index(op_class)] > 0

    def per_ns(self, op_class: str) -> float:
        """Work of `op_class` done per ns (0: the unit cannot run the class)."""
        return self.rates[OP_CLASSES.index(op_class)] * self.clock_ghz


def digital_units(chip: ChipSpec) -> tuple[DigitalUnitSpec, ...]:
    """The chip's digital units: its GDPUs spread over the mesh (without any, and without
    digital nodes, one LDPU-class unit stands in), then every digital node on the routers
    after the cores (`cores.count + i`)."""
    g = chip.gdpu
    out = []
    count = g.count
    clock, rate, pj = g.clock_ghz, g.ops_per_cycle, g.energy_pj_per_op
    if not count and not chip.digital_nodes:  # digital ops fall back to one LDPU-class unit
        count, clock, rate, pj = (
            1,
            chip.ldpu.clock_ghz,
            chip.ldpu.ops_per_cycle,
            chip.ldpu.energy_pj_per_op,
        )
    routers = chip.fabric.dims[0] * chip.fabric.dims[1]
    for i in range(count):
        router = int((i + 0.5) * routers / count)
        out.append(
            DigitalUnitSpec(f"gdpu{i}", "gdpu", router, clock, (rate,) * 4, True, pj, pj, None)
        )
    router = chip.cores.count
    for spec in chip.digital_nodes:
        for i in range(spec.count):
            rates = tuple(spec.per_cycle(c) for c in OP_CLASSES)
            out.append(
                DigitalUnitSpec(
                    f"{spec.kind}{i}",
                    spec.kind,
                    router,
                    spec.clock_ghz,
                    rates,
                    False,
                    spec.energy_pj_per_mac,
                    spec.energy_pj_per_op,
                    spec.sram_bytes,
                )
            )
            router += 1
    return tuple(out)
