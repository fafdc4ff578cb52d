"""Single-table preset files: one TOML table (`[training]`, `[onchip]`, `[gpu]`, `[system]`,
`[model]`) with a required `source`, read by name from a presets folder or by path. The
training, on-chip training, GPU baseline, 3D system and MoE model loaders share these steps;
chip presets (several tables, `base` inheritance) have their own loader in `archsim.config`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from archsim.config import _join, _resolve, _source, _unknown, read_toml
from archsim.errors import ConfigError, SpecError


def single_table(raw: dict, name: str) -> dict:
    """A copy of `[name]`, the only table of a single-table preset (training, on-chip training,
    GPU baseline, 3D system and MoE model files).

    Raises:
        SpecError: another top-level key, or no `[name]` table.
    """
    for key in raw:
        if key != name:
            raise _unknown("", key, [name])
    table = raw.get(name)
    if not isinstance(table, dict):
        raise SpecError(name, f"missing table [{name}]")
    return dict(table)


def pop_source(table: dict, prefix: str) -> str:
    """Remove and return the table's required `source` (a non-empty string)."""
    key = _join(prefix, "source")
    if "source" not in table:
        raise SpecError(key, "missing required key (the source of the numbers)")
    return _source(table.pop("source"), key)


def load_single(
    name_or_path: str | Path,
    directory: Path,
    kind: str,
    available: list[str],
    from_table: Callable[[dict, str], Any],
) -> Any:
    """Read a single-table preset by name (in `directory`) or path with `from_table(raw,
    default name)`; a SpecError becomes a ConfigError naming the file."""
    path = _resolve(name_or_path, directory, kind, available)
    try:
        return from_table(read_toml(path), path.stem)
    except SpecError as e:
        raise ConfigError(f"{path}: {e}") from None
