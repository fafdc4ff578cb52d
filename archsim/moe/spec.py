"""3D AIMC systems for mixture-of-experts inference: `models/systems/<name>.toml` -> Tile3dSpec.

A system (BUE25, modelled after the 3DSIM simulator) is a set of 3D tiles, each a stack of
`tiers` crossbar tiers of `tier_rows x tier_cols` weights of which exactly one computes an MVM
at a time (one-tier-at-a-time, OTT), a pool of digital processing units (DPUs: LayerNorm, GeLU,
add), a pool of multi-head-attention (MHA) units, a fixed-cost interconnect (one transfer per
tier output, no contention) and a KV cache in DRAM. Every constant of a preset names its source
or says `estimate`; unknown keys, wrong types and out-of-range values raise ConfigError naming
the file and the key path.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from archsim.checks import non_negative, positive
from archsim.config import _build, models_dir
from archsim.errors import SpecError
from archsim.single_presets import load_single, pop_source, single_table


@dataclass(frozen=True, slots=True)
class Tile3dSpec:
    """A 3D-AIMC MoE accelerator: tiles of stacked tiers plus digital units and a KV cache."""

    tiles: int
    """Number of 3D tiles; each computes one tier MVM at a time; >= 1."""
    tiers: int
    """Tiers stacked in one tile, each holding one `tier_rows x tier_cols` weight chunk; >= 1."""
    tier_rows: int
    """Inputs (rows) of one tier; >= 1."""
    tier_cols: int
    """Outputs (columns) of one tier; >= 1."""
    tier_mvm_ns: float
    """Latency of one tier MVM (whatever the fraction of the tier used); > 0."""
    tier_mvm_energy_pj: float
    """Energy of one tier MVM, ADCs included; >= 0."""
    dpus: int
    """Digital processing units (LayerNorm, GeLU, add), a pool; >= 1."""
    mha_units: int
    """Digital attention units (QK^T, softmax, A.V with a scratchpad), a pool; >= 1."""
    tile_area_mm2: float
    """Area of one tile; >= 0."""
    dpu_area_mm2: float
    """Area of one DPU; >= 0."""
    mha_area_mm2: float
    """Area of one MHA unit; >= 0."""
    comm_ns: float
    """Latency of the transfer after every tier MVM (fixed, no contention); >= 0."""
    comm_energy_pj_per_element: float
    """Energy of that transfer per output element (8-bit); >= 0."""
    layernorm_ns_per_chunk: float
    """LayerNorm latency per `dpu_chunk` elements (a d-vector costs ceil(d/chunk) of them)."""
    layernorm_energy_pj_per_element: float
    """LayerNorm energy per element; >= 0."""
    gelu_ns_base: float
    """GeLU latency of an n-vector: gelu_ns_base + gelu_ns_per_element * n; >= 0."""
    gelu_ns_per_element: float
    """See gelu_ns_base; >= 0."""
    gelu_energy_pj_per_element: float
    """GeLU energy per element; >= 0."""
    add_ns_base: float
    """Element-wise add latency of an n-vector: add_ns_base + add_ns_per_element * n; >= 0."""
    add_ns_per_element: float
    """See add_ns_base; >= 0."""
    add_energy_pj_per_element: float
    """Add energy per element; >= 0."""
    mha_ref_len: int
    """Sequence length the MHA latency fit is normalised to (64); >= 1."""
    mha_ns_per_d2: float
    """Whole-sequence MHA latency at length L: (L/ref)^2 * (mha_ns_per_d2 * d^2 + mha_ns_base)."""
    mha_ns_base: float
    """See mha_ns_per_d2; >= 0."""
    mha_energy_pj_per_l2d: float
    """Whole-sequence MHA energy at length L: mha_energy_pj_per_l2d * L^2 * d; >= 0."""
    kv_bandwidth_gb_s: float
    """KV-cache DRAM bandwidth (1e9 bytes/s), one shared port; > 0."""
    kv_bytes_per_element: float
    """Bytes per cached K or V element (int8: 1); > 0."""
    kv_channels: int
    """Independent KV-cache DRAM ports of `kv_bandwidth_gb_s` each; >= 1."""
    kv_active_w: float
    """DRAM power of one port while transferring; >= 0."""
    kv_idle_w: float
    """DRAM power of one port while idle; >= 0."""
    passive_power_w: float
    """Power drawn for the whole makespan on top of the op energies; >= 0."""
    dpu_chunk: int = 512
    """Elements one LayerNorm latency step covers; >= 1."""
    name: str = "system"
    description: str = ""

    def __post_init__(self) -> None:
        for key in ("tiles", "tiers", "tier_rows", "tier_cols", "dpus", "mha_units"):
            _count(key, getattr(self, key))
        _count("mha_ref_len", self.mha_ref_len)
        _count("kv_channels", self.kv_channels)
        _count("dpu_chunk", self.dpu_chunk)
        positive("tier_mvm_ns", self.tier_mvm_ns)
        positive("kv_bandwidth_gb_s", self.kv_bandwidth_gb_s)
        positive("kv_bytes_per_element", self.kv_bytes_per_element)
        for f in dataclasses.fields(self):
            if f.type in ("float", float) and f.name not in ("tier_mvm_ns", "kv_bandwidth_gb_s"):
                non_negative(f.name, getattr(self, f.name))

    @property
    def area_mm2(self) -> float:
        """Tiles, DPUs and MHA units (BUE25: 1, 1.25 and 5 mm² each in the preset)."""
        return (
            self.tiles * self.tile_area_mm2
            + self.dpus * self.dpu_area_mm2
            + self.mha_units * self.mha_area_mm2
        )

    @property
    def tiers_total(self) -> int:
        return self.tiles * self.tiers

    def tiers_for(self, rows: int, cols: int) -> int:
        """Tiers a rows x cols matrix takes: ceil(rows/tier_rows) * ceil(cols/tier_cols)."""
        return math.ceil(rows / self.tier_rows) * math.ceil(cols / self.tier_cols)

    def layernorm_ns(self, n: int) -> float:
        return math.ceil(n / self.dpu_chunk) * self.layernorm_ns_per_chunk

    def gelu_ns(self, n: int) -> float:
        return self.gelu_ns_base + self.gelu_ns_per_element * n

    def add_ns(self, n: int) -> float:
        return self.add_ns_base + self.add_ns_per_element * n

    def mha_decode_ns(self, context: int, d_model: int) -> float:
        """Attention of ONE decode token over `context` cached keys and values.

        The MHA table (GY26's transcription of the BUE25 Supplementary, fitted as
        (L/64)^2 * (0.063 d^2 + 130) ns) costs the attention of a whole sequence: L queries
        against L keys, so it grows with L^2. In autoregressive decode with a KV cache a step
        has one query row against `context` keys: QK^T and A.V do 1/L of the whole-sequence
        work, softmax covers 1/L of the score matrix. The per-token cost is therefore the
        table's cost at L = context divided by L, i.e. linear in the context length. (Charging
        the full table value per token would count the previous tokens' queries again; a
        fixed per-call overhead is not visible in the table and is not added.)
        """
        whole = (context / self.mha_ref_len) ** 2 * (
            self.mha_ns_per_d2 * d_model * d_model + self.mha_ns_base
        )
        return whole / context

    def mha_decode_energy_pj(self, context: int, d_model: int) -> float:
        """Energy of one decode token's attention: the whole-sequence fit 0.0223 pJ L^2 d over L
        (see mha_decode_ns for why a 1/L share)."""
        return self.mha_energy_pj_per_l2d * context * d_model

    def kv_ns(self, n_bytes: float) -> float:
        """Time the KV-cache port is busy moving n_bytes (GB/s = bytes/ns)."""
        return n_bytes / self.kv_bandwidth_gb_s


def _count(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(key, f"expected an integer >= 1, got {value!r}")


def systems_dir() -> Path:
    return models_dir() / "systems"


def system_presets() -> list[str]:
    """Names of the shipped 3D systems (`models/systems/*.toml`)."""
    return sorted(p.stem for p in systems_dir().glob("*.toml"))


def load_system(
    name_or_path: str | Path, *, tiles: int | None = None, tiers: int | None = None
) -> Tile3dSpec:
    """Read a 3D system preset by name (`models/systems/<name>.toml`) or path; `tiles` and
    `tiers` override the file's values (checked like them).

    Raises:
        ConfigError: missing or malformed file, a table other than [system], or a key that is
            unknown, mistyped or out of range; the message names the file and the key path.
    """
    overrides = {k: v for k, v in (("tiles", tiles), ("tiers", tiers)) if v is not None}

    def build(raw: dict, name: str) -> Tile3dSpec:
        return dataclasses.replace(system_from_table(raw, name), **overrides)

    return load_single(name_or_path, systems_dir(), "3D system", system_presets(), build)


def system_from_table(raw: dict, default_name: str = "system") -> Tile3dSpec:
    """Tile3dSpec from a parsed TOML document holding a `[system]` table.

    Raises:
        SpecError: as `load_system`, with the key path only.
    """
    table = single_table(raw, "system")
    pop_source(table, "system")
    table.setdefault("name", default_name)
    return _build(Tile3dSpec, table, "system", [])
