"""Range checks shared by the spec dataclasses; each raises `SpecError` naming the field."""

from __future__ import annotations

import math

from archsim.errors import SpecError


def in_range(key: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise unless lo <= value <= hi (either bound may be None) and value is finite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(key, f"expected a finite number, got {value}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise SpecError(key, f"expected >= {lo}, got {value}")
        if lo is None:
            raise SpecError(key, f"expected <= {hi}, got {value}")
        raise SpecError(key, f"expected {lo}..{hi}, got {value}")


def positive(key: str, value: float) -> None:
    """Raise unless value > 0 and finite."""
    if not (math.isfinite(value) and value > 0):
        raise SpecError(key, f"expected > 0, got {value}")


def non_negative(key: str, value: float) -> None:
    """Raise unless value >= 0 and finite."""
    if not (math.isfinite(value) and value >= 0):
        raise SpecError(key, f"expected >= 0, got {value}")


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise unless value is one of `allowed`."""
    if value not in allowed:
        raise SpecError(key, f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")


CONVERTER_BITS = (2, 16)
"""Allowed widths of a quantizing DAC or ADC, sign bit included. Converters are signed: a code
of `bits` bits spans -(2**(bits-1) - 1) .. 2**(bits-1) - 1, so 1 bit is the sign alone and has no
magnitude code (its largest code would be 0: a zero step and a division by zero). 0 means an
ideal converter (no quantization)."""


def converter_bits(key: str, bits: int) -> None:
    """Raise unless `bits` is 0 (ideal converter) or within CONVERTER_BITS."""
    lo, hi = CONVERTER_BITS
    if isinstance(bits, bool) or not isinstance(bits, int) or not (bits == 0 or lo <= bits <= hi):
        raise SpecError(
            key,
            f"expected 0 (ideal, no quantization) or {lo}..{hi} bits including the sign "
            f"(1 bit is the sign alone, with no magnitude code), got {bits}",
        )


def largest_code(bits: int) -> int:
    """Largest code magnitude of a signed converter of `bits` bits including the sign:
    2**(bits-1) - 1 (127 at 8 bits).

    Raises:
        SpecError: `bits` is not within CONVERTER_BITS (an ideal converter has no largest code;
            callers decide what bits = 0 means for them).
    """
    lo, hi = CONVERTER_BITS
    if not lo <= bits <= hi:
        raise SpecError("bits", f"no largest code for a {bits}-bit converter (expected {lo}..{hi})")
    return (1 << (bits - 1)) - 1


def require_finite(key: str, value: float) -> float:
    """`value` unchanged when it is a finite number; else ArchsimError naming `key` (no NaN or
    inf may reach a table, CSV or plot)."""
    if not math.isfinite(value):
        raise SpecError(key, f"computed a non-finite value ({value}); refusing to write it")
    return value
