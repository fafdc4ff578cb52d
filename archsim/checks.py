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
