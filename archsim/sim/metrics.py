"""Energy, power, throughput and utilisation of a timed run, from its recorder rows.

Energy per event comes from the preset: the array and the input drivers cost energy per driven
row per LSB of pulse (so they follow the input magnitude: `activity` is the mean |DAC code| as
a fraction of full scale, measured on data in a full run, else ASSUMED_ACTIVITY), the ADCs per
conversion (one per column per phase), the LDPUs and GDPUs per element operation, digital
accelerator nodes per MAC (class matmul) and per element operation (the other classes; one
energy part per node flavour), SRAM per byte, the fabric per bit and hop, the off-chip interface
per byte (a digital node's SRAM spill: part "spill"), a weight-set switch of an array once per
switch; static power runs for the whole run on every core and digital node.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from archsim.checks import require_finite
from archsim.mapping import Mapping
from archsim.mapping.hetero import gdpu_ops
from archsim.sim.bottleneck import KindBusy, describe, kind_busy
from archsim.sim.engine import SimRun
from archsim.spec import ChipSpec
from archsim.workload import ir

ASSUMED_ACTIVITY = 1.0
"""Mean |DAC code| / full scale of a layer without measured data (timing mode) [E]. Full scale:
the presets derive their array and PWM energies from the published peak efficiency by spreading
the peak MVM energy over rows x full-scale pulses (e.g. HERMES: 20 % of 13.4 nJ over 256 rows x
127 LSB), so full scale is the activity at which a preset reproduces its peak TOPS/W. Any lower
guess would let a run without data report more TOPS/W than the chip's published peak; 1.0 is
also the worst case, an upper bound on the data-dependent energy. Trained ReLU networks measure
far less (digits-cnn 0.15-0.28, mnist-cnn 0.02-0.23 per layer): a full run uses those."""

ENERGY_PARTS = (
    "array",
    "dac",
    "adc",
    "ldpu",
    "gdpu",
    "sram",
    "fabric",
    "offchip",
    "reload",
    "set_switch",
    "static",
)
"""Parts of the energy breakdown; "set_switch" (weight-set switches of the arrays, once per
switch) only on chips whose arrays hold several weight sets."""


@dataclass(frozen=True, slots=True)
class LayerCounts:
    """Per MVM position of one layer copy (all its blocks together)."""

    blocks: int
    """Crossbar MVMs per position (one per block; packed groups: one per diagonal)."""
    macs: int
    """K x N x groups."""
    driven_rows: int
    """Word lines driven: K x groups x column blocks."""
    conversions: int
    """Columns converted: N x groups x row blocks x phases."""


def layer_counts(mapping: Mapping) -> dict[str, LayerCounts]:
    phases = mapping.chip.input.phases
    out = {}
    for lm in mapping.layers:
        m = lm.matrix
        out[lm.name] = LayerCounts(
            lm.mvms_per_position,
            m.k * m.n * m.groups,
            m.k * m.groups * lm.col_blocks,
            m.n * m.groups * lm.row_blocks * phases,
        )
    return out


@dataclass(frozen=True, slots=True)
class Metrics:
    """The timing and energy answers of one run."""

    samples: int
    total_ns: float
    latency_ns: float
    """First sample, from its first input byte to its last output byte (empty pipeline)."""
    period_ns: float
    """Steady-state time between finished samples."""
    throughput_per_s: float
    ops_per_sample: float
    """2 x MACs per sample: the analog layers' and the products of two dynamic operands
    (attention's QK^T and A.V, on digital units); element-wise ops are not counted."""
    effective_tops: float
    energy_per_sample_pj: float
    energy_breakdown_pj: dict[str, float]
    """Per sample, by part (ENERGY_PARTS)."""
    average_power_w: float
    """Total energy over the whole run's time, fill and drain included (see
    `steady_state_power_w`)."""
    tops_per_w: float | None
    """Effective TOPS per watt; None when the run used no energy (a preset whose energies are
    all 0: the ratio has no value, and printing 0 or inf would be wrong)."""
    tops_per_mm2: float
    """Effective TOPS over the total core area."""
    bottleneck: str
    """The busiest resource in the steady state, its layer and busy fraction."""
    utilisation: pd.DataFrame = field(repr=False)
    """Busy fraction per (component, op, layer) in the steady state: busy time per sample
    over the period (the blocks of a copy share its array's busy time)."""
    steady_state: bool = True
    """False when too few samples streamed (< 4) for the period to exclude the pipeline fill,
    or when a segmented run (weight reloads) processed them batch-wise: then period = total
    time / samples."""
    block_mvms: int = 0
    """Crossbar MVMs of the run: one per block (packed groups: per diagonal) per position,
    over all samples (a chunk of k MVMs on b blocks counts k x b)."""
    macs: int = 0
    """Multiply-accumulates of the run, all samples: analog layers plus `digital_macs`."""
    digital_macs: int = 0
    """The part of `macs` done on digital units: products of two dynamic operands (ir.MatMul:
    attention's QK^T and A.V, which no crossbar holds) and static-weight layers a mapping puts
    on digital nodes (`MappingSpec.digital_layers`)."""
    conversions: int = 0
    fabric_byte_hops: float = 0.0
    activity_basis: str = ""
    """What input activity the array and PWM energies assume, and why."""
    steps_per_sample: int = 0
    """Time steps of the recurrent (LSTM) layers per sample; 0 without recurrent layers."""
    area_mm2: float = 0.0
    """Compute area (AIMC cores, global units, digital nodes): the basis of `tops_per_mm2`."""
    die_area_mm2: float = 0.0
    """The chip's whole die."""
    resource_kinds: tuple[KindBusy, ...] = ()
    """Busy fraction per resource kind (AIMC arrays, ADCs, LDPUs, digital units, fabric
    links, off-chip port), busiest first: the first is the bottleneck kind."""

    @property
    def bottleneck_kind(self) -> str:
        """The busiest resource kind and the next ones, as one line."""
        return describe(list(self.resource_kinds))

    @property
    def steady_state_power_w(self) -> float:
        """Power while samples stream: energy per sample over the period (pJ/ns = mW). Unlike
        `average_power_w` (whole run, pipeline fill and drain included, so it changes with
        the number of samples streamed) it is the power behind `tops_per_w`:
        effective_tops / steady_state_power_w = tops_per_w."""
        return self.energy_per_sample_pj / self.period_ns * 1e-3

    @property
    def inferences_per_s(self) -> float:
        """Inferences per second of a single stream: 1 / the latency of the first sample
        (exactly one inference alone on the chip when one sample streamed; later samples of a
        longer stream can delay it). The rate of a pipelined stream is `throughput_per_s`
        (1 / period)."""
        return 1e9 / self.latency_ns

    @property
    def step_latency_ns(self) -> float | None:
        """First sample's latency per time step (its pipeline fill shared over the steps)."""
        return self.latency_ns / self.steps_per_sample if self.steps_per_sample else None

    @property
    def step_period_ns(self) -> float | None:
        """Steady-state time per time step while samples stream."""
        return self.period_ns / self.steps_per_sample if self.steps_per_sample else None

    @property
    def step_energy_pj(self) -> float | None:
        """Energy per time step (all layers of a sample, static included, over its steps)."""
        return self.energy_per_sample_pj / self.steps_per_sample if self.steps_per_sample else None


def compute_metrics(
    run: SimRun, mapping: Mapping, activity: dict[str, float] | float | None = None
) -> Metrics:
    """Metrics of `run`: `activity` is one value for all layers or the measured value per layer;
    a layer without one is taken at ASSUMED_ACTIVITY."""
    chip = mapping.chip
    df = run.recorder.to_frame()
    s = len(run.sample_end_ns)
    ends = np.sort(np.asarray(run.sample_end_ns))  # samples on different replicas may overtake
    half = s // 2
    steady = s >= 4 and ends[-1] > ends[half] and not run.batch_schedule
    period = (ends[-1] - ends[half]) / (s - 1 - half) if steady else ends[-1] / s
    latency = run.sample_end_ns[0] - run.sample_start_ns[0]
    counts = layer_counts(mapping)
    activity, basis = _activity(counts, activity)
    mvm = df[df.op == "mvm"]
    per_layer = mvm.groupby("layer").qty.sum()
    positions = {name: per_layer.get(name, 0) / counts[name].blocks for name in counts}
    dynamic = s * digital_macs(mapping)
    macs = int(sum(positions[n] * counts[n].macs for n in counts)) + dynamic
    conversions = int(sum(positions[n] * counts[n].conversions for n in counts))
    energy = _energy(chip, df, counts, positions, activity, run.end_ns, run.digital_units)
    ops_per_sample = 2.0 * macs / s
    total = sum(energy.values())
    static_per_sample = energy["static"] / run.end_ns * period if run.end_ns else 0.0
    by_part = {k: v / s for k, v in energy.items() if k != "static"}
    breakdown = {**by_part, "static": static_per_sample}
    per_sample = sum(breakdown.values())
    util = _utilisation(df, run.core_groups, s * period)
    top = util.idxmax() if len(util) else ("-", "-", "-")
    bottleneck = f"{top[0]} {top[1]} ({top[2]}): {util.max():.0%} busy" if len(util) else "-"
    reloading = df[df.op.isin(("program", "weights_in"))]
    if len(reloading):
        share = float((reloading.t1_ns - reloading.t0_ns).sum()) / run.end_ns
        if share > (util.max() if len(util) else 0.0):
            bottleneck = f"weight reloads: {share:.0%} of the run"
    metrics = Metrics(
        samples=s,
        total_ns=run.end_ns,
        latency_ns=latency,
        period_ns=period,
        throughput_per_s=1e9 / period,
        ops_per_sample=ops_per_sample,
        effective_tops=ops_per_sample / period / 1e3,
        energy_per_sample_pj=per_sample,
        energy_breakdown_pj=breakdown,
        average_power_w=total / run.end_ns * 1e-3,
        tops_per_w=ops_per_sample / per_sample if per_sample else None,
        tops_per_mm2=ops_per_sample / period / 1e3 / chip.compute_area_mm2,
        bottleneck=bottleneck,
        utilisation=util.rename("busy").reset_index(),
        steady_state=steady,
        block_mvms=int(mvm.qty.sum()),
        macs=macs,
        digital_macs=dynamic,
        conversions=conversions,
        fabric_byte_hops=float(df.loc[df.op == "link", "qty"].sum()),
        activity_basis=basis,
        area_mm2=chip.compute_area_mm2,
        die_area_mm2=chip.die_area_mm2,
        resource_kinds=tuple(kind_busy(util.rename("busy").reset_index(), unit_counts(chip))),
        steps_per_sample=max(
            (lm.matrix.mvms_per_sample for lm in mapping.layers if lm.matrix.kind == "lstm"),
            default=0,
        ),
    )
    for f in fields(Metrics):
        value = getattr(metrics, f.name)
        if isinstance(value, float):
            require_finite(f"metrics.{f.name}", value)
    for part, value in breakdown.items():
        require_finite(f"metrics.energy_breakdown_pj.{part}", value)
    return metrics


def unit_counts(chip: ChipSpec) -> dict[str, int]:
    """Units of each component kind the chip has (for busy fractions per kind)."""
    return {
        "core": chip.cores.count,
        "gdpu": chip.gdpu.count,
        **{node.kind: node.count for node in chip.digital_nodes},
    }


def digital_macs(mapping: Mapping) -> int:
    """MACs per sample of the digital units' matmul class: products of two dynamic operands
    (every ir.MatMul: output elements x the shared dimension) and static-weight layers placed on
    digital nodes (output elements x inputs)."""
    moved = mapping.digital.layer_weights if mapping.digital is not None else {}
    workload = mapping.workload
    return int(
        sum(
            gdpu_ops(op, workload)
            for op in workload.ops()
            if isinstance(op, ir.MatMul) or op.name in moved
        )
    )


def _activity(counts, given) -> tuple[dict[str, float], str]:
    """Activity per layer and a sentence saying where it comes from."""
    if isinstance(given, int | float):
        return dict.fromkeys(counts, float(given)), f"{given:.2f} for every layer (given)"
    measured = {n: a for n, a in (given or {}).items() if n in counts}
    out = {n: measured.get(n, ASSUMED_ACTIVITY) for n in counts}
    assumed = len(counts) - len(measured)
    why = (
        f"assumed {ASSUMED_ACTIVITY:.2f} (full-scale inputs) for {assumed} of {len(counts)} "
        "layers without data: the activity at which the preset's energies give its "
        "published peak TOPS/W, so the run cannot beat that peak; an upper bound, trained "
        "networks measure 0.02-0.3"
    )
    if not measured:
        return out, why
    mean = sum(measured.values()) / len(measured)
    basis = f"measured on data for {len(measured)} layers (mean {mean:.2f})"
    return out, basis + ("; " + why if assumed else "")


def _energy(chip: ChipSpec, df, counts, positions, activity, end_ns, units) -> dict[str, float]:
    """Total energy of the run by part, in pJ: the parts of ENERGY_PARTS, then, on a chip with
    digital nodes, "spill" and one part per node flavour."""
    qmax = chip.input.pulse_lsbs
    phases = chip.input.phases
    array = dac = adc = 0.0
    for name, c in counts.items():
        act = activity[name]
        lsb = positions[name] * c.driven_rows * act * qmax * phases
        array += lsb * chip.crossbar.energy_pj_per_row_lsb
        dac += lsb * chip.input.energy_pj_per_row_lsb
        adc += positions[name] * c.conversions * chip.adc.energy_pj
    by_op = df.groupby("op").qty.sum()
    mem = chip.memory
    gdpu_pj = next((u.energy_pj_per_op for u in units if not u.node), 0.0)
    switches = {}
    if chip.crossbar.weight_sets > 1:
        switches["set_switch"] = by_op.get("set_switch", 0.0) * chip.crossbar.set_switch_energy_pj
    out = {
        "array": array,
        "dac": dac,
        "adc": adc,
        "ldpu": by_op.get("ldpu", 0.0) * chip.ldpu.energy_pj_per_op,
        "gdpu": by_op.get("gdpu", 0.0) * gdpu_pj,
        "sram": (by_op.get("sram_read", 0.0) + by_op.get("sram_write", 0.0))
        * mem.sram_energy_pj_per_byte,
        "fabric": by_op.get("link", 0.0) * 8 * chip.fabric.energy_pj_per_bit,
        "offchip": (by_op.get("offchip_in", 0.0) + by_op.get("offchip_out", 0.0))
        * mem.offchip_energy_pj_per_byte,
        "reload": by_op.get("program", 0.0) * chip.crossbar.program_energy_pj_per_device
        + by_op.get("weights_in", 0.0) * mem.offchip_energy_pj_per_byte,
        **switches,
        "static": chip.static_power_mw * end_ns,  # mW x ns = pJ
    }
    if chip.digital_nodes:
        out["spill"] = by_op.get("spill", 0.0) * mem.offchip_energy_pj_per_byte
        out.update(_node_energy(df, units))
    return out


def _node_energy(df: pd.DataFrame, units) -> dict[str, float]:
    """Energy of the digital nodes by flavour: MACs (class matmul) and element operations."""
    out = {u.kind: 0.0 for u in units if u.node}
    rows = df[df.op.isin(("matmul", "softmax", "norm", "elementwise"))]
    done = rows.groupby(["component", "op"]).qty.sum()
    by_name = {u.name: u for u in units if u.node}
    for (comp, op), qty in done.items():
        u = by_name[comp]
        out[u.kind] += qty * (u.energy_pj_per_mac if op == "matmul" else u.energy_pj_per_op)
    return out


def _utilisation(df: pd.DataFrame, groups: dict[str, list[str]], span: float) -> pd.Series:
    """Busy fraction of each (component, op, layer): busy time over `span` (samples x period),
    at most 1. A copy's array time counts for every core of the copy."""
    timed = df[df.t1_ns > df.t0_ns]
    busy = (timed.t1_ns - timed.t0_ns).groupby([timed.component, timed.op, timed.layer]).sum()
    rows = {}
    for (comp, op, layer), b in busy.items():
        for c in groups.get((comp, layer), [comp]) if op == "mvm" else [comp]:
            rows[(c, op, layer)] = rows.get((c, op, layer), 0.0) + b
    out = pd.Series(rows, dtype=float)
    out.index.names = ["component", "op", "layer"]
    return (out / max(span, 1e-9)).clip(upper=1.0)
