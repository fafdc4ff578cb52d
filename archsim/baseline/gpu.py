"""GPU baseline presets: `models/baselines/<name>.toml`, one `[gpu]` table read into `GpuSpec`.

Every number carries a source (a docs/sources.md key) or says "estimate". Unknown keys, wrong
types and out-of-range values raise `ConfigError` naming the file and the key path, as the chip
presets of `archsim.config` do (whose helpers this module reuses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from archsim.checks import non_negative, positive
from archsim.config import _build, models_dir
from archsim.single_presets import load_single, pop_source, single_table


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """A GPU as a roofline: a compute peak, a memory bandwidth, a power and a die area."""

    matmul_tflops: float
    """Peak of products with weights or two dynamic operands (tensor cores), TFLOP/s; > 0."""
    vector_tflops: float
    """Peak of element-wise, softmax, norm and pooling ops (CUDA cores), TFLOP/s; > 0."""
    bandwidth_gb_s: float
    """DRAM (HBM) bandwidth, GB/s (1e9 bytes per second); > 0."""
    power_w: float
    """Power drawn while running, W; energy = power x time; > 0."""
    area_mm2: float
    """Die area the throughput per mm² is taken over; > 0."""
    weight_bytes: float
    """Bytes per weight fetched from DRAM (all weights once per batch pass); > 0."""
    activation_bytes: float = 0.0
    """Bytes per activation value read and written through DRAM; 0: activations stay on chip
    (L2 and registers) and only weights cost bandwidth; >= 0."""
    name: str = "gpu"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("matmul_tflops", "vector_tflops", "bandwidth_gb_s", "power_w", "area_mm2"):
            positive(key, getattr(self, key))
        positive("weight_bytes", self.weight_bytes)
        non_negative("activation_bytes", self.activation_bytes)


def baselines_dir() -> Path:
    return models_dir() / "baselines"


def gpu_presets() -> list[str]:
    """Names of the shipped GPU baseline presets (`models/baselines/*.toml`)."""
    return sorted(p.stem for p in baselines_dir().glob("*.toml"))


def load_gpu(name_or_path: str | Path) -> GpuSpec:
    """Read a GPU baseline preset by name or path.

    Raises:
        ConfigError: missing or malformed file, a table other than [gpu], or a key that is
            unknown, mistyped or out of range; the message names the file and the key path.
    """
    return load_single(name_or_path, baselines_dir(), "GPU baseline", gpu_presets(), gpu_from_table)


def gpu_from_table(raw: dict, default_name: str = "gpu") -> GpuSpec:
    """GpuSpec from a parsed TOML document holding a `[gpu]` table.

    Raises:
        SpecError: as `load_gpu`, with the key path only.
    """
    table = single_table(raw, "gpu")
    source = pop_source(table, "gpu")
    table.setdefault("name", default_name)
    return dataclasses.replace(_build(GpuSpec, table, "gpu", []), source=source)
