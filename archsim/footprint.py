"""Memory estimates of the large allocations, checked before making them.

Four things grow with the inputs: the functional model's programmed copies of every weight
(`evaluate`), the device-error study's matrices, the timed run's event rows (`Engine`), and the
placement's core-to-core hop table.
Each is estimated from the mapping alone, and a run whose estimate exceeds `RAM_FRACTION` of the
machine's memory is refused with the estimate and the limit, instead of swapping or being killed
half-way. Simplifications: the estimates count the arrays that dominate (NumPy buffers and
Python event tuples), not interpreter overhead; the weight arrays are counted one by one, the
event rows within a factor of about three (`engine_bytes`), enough for a refusal at half RAM.
"""

from __future__ import annotations

import math
import os

from archsim.errors import ArchsimError

RAM_FRACTION = 0.5
"""Largest share of the machine's physical memory one estimate may take."""

EVENT_BYTES = 300
"""Memory of one recorded event: its 7-tuple in the recorder (~160 B measured with tracemalloc
on resnet9) plus its row of the DataFrame built from it (~90 B), and some slack for copies."""

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
    read-out weights, the weights negative inputs see in a one-phase read, the conductance load
    and the IR-drop current load (float32 per weight). Transient, while programming or
    reading: the float64 device arithmetic of a device model and the float64 block sums over the
    matrix padded to whole crossbars.
    """
    weights = k * n
    kept = weights * _F32 * (2 * devices_per_weight + 4)
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


def device_error_bytes(
    rows: int, cols: int, devices_per_weight: int, vectors: int, seeds: int = 1, times: int = 1
) -> int:
    """Estimated peak memory of the device-error study: per seed (one at a time) the float64
    weights and exact outputs, two float64 input batches and the analog outputs, and one
    programmed matrix on a single rows x cols crossbar; and the two float64 seeds x times
    tables of errors it returns."""
    kept, transient = matrix_bytes(rows, cols, rows, cols, devices_per_weight)
    per_seed = rows * cols * _F64 + vectors * (2 * rows + 2 * cols) * _F64 + kept + transient
    return per_seed + 2 * seeds * times * _F64


def engine_bytes(mapping, samples: int, chunk: int) -> int:
    """Estimated memory of the timed run's event rows for `samples` streamed samples.

    Per chunk of MVMs a layer records its integration, conversion, LDPU and buffer rows (4), a
    partial-sum move per block (2 x blocks), and one link row per hop for each consumer, more
    for consumers spread over many blocks (sqrt of their blocks; an LSTM feeds its own blocks
    every step). Fitted on the zoo networks on HERMES: 0.5x (digits-cnn) to 3.3x (resnet9) of
    the rows a run records.
    """
    layers = {lm.name: lm for lm in mapping.layers}
    per_sample = 0.0
    for name, lm in layers.items():
        outs = [e for e in mapping.edges if e.src == name]
        fan = sum(
            max(1.0, e.mean_hops) * math.sqrt(layers[e.dst].blocks_per_replica)
            if e.dst in layers
            else max(1.0, e.mean_hops)
            for e in outs
        )
        if lm.matrix.kind == "lstm":
            fan += lm.blocks_per_replica * max([max(1.0, e.mean_hops) for e in outs] or [1.0])
        chunks = math.ceil(lm.matrix.mvms_per_sample / chunk)
        per_sample += chunks * (4 + 2 * lm.blocks_per_replica + fan)
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
