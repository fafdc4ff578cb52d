"""Plausibility limits: values that pass the type and sign checks but describe no real chip,
device, workload or study, and would overflow float32 or exhaust memory if accepted.

Each limit is a named `Bound` with its reason, so an error can say what the limit is and why.
The limits are generous: every shipped preset and workload sits orders of magnitude inside them.
Memory that depends on several values at once (a large crossbar times a large layer) is
estimated separately, before allocating, in `archsim.footprint`.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.errors import SpecError


@dataclass(frozen=True, slots=True)
class Bound:
    """An upper limit on one quantity, with the reason it exists."""

    limit: float
    """Largest accepted value."""
    reason: str
    """Why: the physical or practical argument, with its source."""

    def check(self, key: str, value: float) -> None:
        """Raise SpecError naming `key`, the limit and the reason, when value > limit."""
        if value > self.limit:
            raise SpecError(
                key, f"expected <= {_number(self.limit)}, got {_number(value)} ({self.reason})"
            )


def _number(v: float) -> str:
    """A whole number with thousands separators, anything else in %g."""
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e18 else f"{v:g}"


G_MAX_US = Bound(
    1e4,
    "10 mS, a 100 ohm cell, is 50x the largest conductance of published AIMC devices "
    "(PCM, ReRAM: 25-200 uS, aihwkit); far beyond it float32 currents overflow",
)
"""Largest conductance a device preset may map a weight to (microsiemens)."""

RELATIVE_NOISE = Bound(
    10.0,
    "a noise std of more than 10x the conductance itself describes no memory device "
    "(fitted values are 0.001-0.2, aihwkit)",
)
"""Largest relative noise coefficient (read_q_coeff, read_q_max, read_noise_k, scales)."""

DEVICE_AREA_UM2 = 4 * 0.010**2
"""Smallest area of one memory device: a 4F^2 cross-point cell at F = 10 nm (um^2). No
published AIMC cell is smaller (HERMES PCM and NeuRRAM ReRAM cells are 1T1R, > 20F^2)."""

DEVICES_PER_CORE_AREA = (
    "a device needs at least a 4F^2 cross-point cell at F = 10 nm "
    f"({DEVICE_AREA_UM2:g} um^2), so a core of this area cannot hold that many devices"
)
"""Why crossbar rows x cols x devices_per_weight is bounded by the core area."""

GRID_PLACES = Bound(
    4096,
    "placement keeps a places x places hop table and the fabric one router per place; "
    "published AIMC chips have up to 64 cores (HERMES), 4096 is a 64x64 grid",
)
"""Largest number of core places (grid rows x columns) of a chip."""

LAYER_WEIGHTS = Bound(
    1 << 28,
    "2^28 weights is 1 GiB per float32 copy and the functional model keeps several copies "
    "(targets, programmed and read conductances); the largest matrix of GPT-2 has 38.6 M",
)
"""Largest number of weights of one layer of a TOML workload."""

TENSOR_ELEMENTS = Bound(
    1 << 26,
    "2^26 values per sample is 256 MiB of float32 activations for every sample of a batch; "
    "an ImageNet input has 150 k",
)
"""Largest number of elements of one sample's input tensor of a TOML workload."""

SWEEP_POINTS = Bound(
    100_000,
    "each point is a full simulation (seconds to minutes), so 10^5 points is already days of "
    'compute; use method = "random" with fewer points to sample a larger space',
)
"""Largest number of points of one sweep."""

STREAM_SAMPLES = Bound(
    10_000,
    "the timed run keeps every event of every streamed sample in memory, and the steady-state "
    "period is reached after a pipeline depth of samples, so a longer stream adds memory only",
)
"""Largest number of samples streamed through the timed run (--stream)."""


def check_core_area(key: str, devices: int, area_mm2: float) -> None:
    """Raise SpecError when `devices` memory devices cannot fit in `area_mm2` of core."""
    need_mm2 = devices * DEVICE_AREA_UM2 * 1e-6
    if need_mm2 > area_mm2:
        raise SpecError(
            key,
            f"{devices:,} devices need at least {need_mm2:.3g} mm^2, more than the core's "
            f"{area_mm2:g} mm^2 ({DEVICES_PER_CORE_AREA})",
        )
