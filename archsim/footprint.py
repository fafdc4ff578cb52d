"""Memory estimates of the large allocations, checked before making them.

Three things grow with the inputs: the functional model's programmed copies of every weight
(`evaluate`), the timed run's event rows (`Engine`), and the placement's core-to-core hop table.
Each is estimated from the mapping alone, and a run whose estimate exceeds `RAM_FRACTION` of the
machine's memory is refused with the estimate and the limit, instead of swapping or being killed
half-way. Simplifications: the estimates count the arrays that dominate (NumPy buffers and
Python event tuples), not interpreter overhead; they are meant to be right within a factor of
about two, which is what a refusal at half the RAM needs.
"""

from __future__ import annotations

import math
import os

from archsim.errors import ArchsimError

RAM_FRACTION = 0.5
"""Largest share of the machine's physical memory one estimate may take."""

EVENT_BYTES = 300
"""Memory of one recorded event: a 7-tuple of Python objects in the recorder (~190 B) plus its
row of the DataFrame built from it (~100 B)."""

_F32, _F64 = 4, 8


def ram_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def matrix_bytes(k: int, n: int, rows: int, cols: int, devices_per_weight: int) -> tuple[int, int]:
    """(kept, transient) bytes of one K x N matrix programmed on rows x cols crossbars.

    Kept: programmed conductances and per-device drift exponents (float32 per device), the
    read-out weights and conductance load (float32 per weight). Transient, while programming or
    reading: the float64 device arithmetic of a device model and the float64 block sums over the
    matrix padded to whole crossbars.
    """
    weights = k * n
    kept = weights * _F32 * (2 * devices_per_weight + 2)
    padded = math.ceil(k / rows) * rows * math.ceil(n / cols) * cols
    transient = weights * devices_per_weight * _F64 * 3 + padded * _F64 * 2
    return kept, transient


def evaluate_bytes(mapping) -> int:
    """Estimated peak memory of programming and reading every analog layer of `mapping`."""
    xb = mapping.chip.crossbar
    kept = transient = 0
    for lm in mapping.layers:
        m = lm.matrix
        one_kept, one_transient = matrix_bytes(m.k, m.n, xb.rows, xb.cols, xb.devices_per_weight)
        kept += one_kept * m.groups * lm.replicas
        transient = max(transient, one_transient)
    return kept + transient


def engine_bytes(mapping, samples: int, chunk: int) -> int:
    """Estimated memory of the timed run's event rows for `samples` streamed samples.

    Per sample each core of a layer records, per chunk of MVMs, an integration, a conversion
    round and an LDPU step, and moves its outputs (a link or buffer event): four rows.
    """
    per_sample = 0.0
    for lm in mapping.layers:
        cores = len(set(lm.cores))
        per_sample += cores * 4 * math.ceil(lm.mvms_per_sample_per_replica / chunk)
    return int(per_sample * samples * EVENT_BYTES)


def hop_table_bytes(places: int) -> int:
    """Memory of the placement's places x places hop table and its cost matrices (int64)."""
    return 3 * places * places * _F64


def check_footprint(what: str, estimate: int, ram: int | None = None) -> None:
    """Raise ArchsimError when `estimate` bytes exceed RAM_FRACTION of the machine's memory.

    Args:
        what: what would allocate it, as the user can change it (e.g. "evaluate of vgg19 on
            hermes").
        estimate: estimated bytes.
        ram: physical memory (default: this machine's).
    """
    ram = ram_bytes() if ram is None else ram
    if ram is None:
        return
    limit = RAM_FRACTION * ram
    if estimate > limit:
        raise ArchsimError(
            f"{what} needs an estimated {_gib(estimate)} of memory, more than the limit of "
            f"{RAM_FRACTION:.0%} of this machine's {_gib(ram)} RAM ({_gib(limit)}); "
            "use a smaller crossbar, workload or --stream"
        )


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"
