"""Chip and device presets: TOML files in `models/` read into frozen specs.

A chip file has one table per physical concern (`[cores]`, `[crossbar]`, `[input]`, `[adc]`,
`[ldpu]`, `[gdpu]`, `[fabric]`, `[memory]`, optionally `[training]` for on-chip training) and a
`[device]` table naming a device preset in `models/devices/` (`preset = "pcm"`) with optional
overrides of its keys. Every table may carry `source = "..."`: the paper and table a value comes
from, or "estimate". Unknown keys, wrong types, out-of-range values and missing presets raise
`ConfigError` naming the file and the key path.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from archsim.devices import DEVICE_MODELS
from archsim.errors import ConfigError, SpecError
from archsim.package_data import data_dir
from archsim.spec import ChipSpec, DeviceSpec, MvmNoiseSpec
from archsim.train.pulsed.update_model import UpdateModel

_DEVICE_TOP_KEYS = ("name", "description", "model", "drift_compensation", "g_max_us", "g_min_us")
_DEVICE_TABLES = ("params", "mvm_noise", "update")


def models_dir() -> Path:
    """The preset directory: $ARCHSIM_MODELS, else the shipped `models/`."""
    env = os.environ.get("ARCHSIM_MODELS")
    return Path(env) if env else data_dir("models")


def chip_presets() -> list[str]:
    """Names of the shipped chip presets."""
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def device_presets() -> list[str]:
    """Names of the shipped device presets."""
    return sorted(p.stem for p in (models_dir() / "devices").glob("*.toml"))


def load_chip(
    name_or_path: str | Path, overrides: typing.Mapping[str, Any] | None = None
) -> ChipSpec:
    """Read a chip preset by name (`models/<name>.toml`) or path.

    `overrides` replace values of the file before it is checked, by dotted key path as written
    in the file: {"adc.bits": 6, "device.preset": "cmo-hfox", "device.params.drift_scale": 0.5}.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown, mistyped or out of
            range; the message names the file and the key path (and the overrides, if any).
    """
    path = _resolve(name_or_path, models_dir(), "chip", chip_presets())
    raw = _with_base(path, read_toml(path))
    if overrides:
        try:
            table = override_table(raw, overrides)
        except SpecError as e:
            raise ConfigError(f"{path}: override {e}") from None
        try:
            return _load_chip_table(path, table)
        except ConfigError as e:
            given = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
            raise ConfigError(f"{e} (with {given})") from None
    return _load_chip_table(path, raw)


NOT_INHERITED = ("name", "description", "source", "published", "published_workloads")
"""Top-level keys a chip preset never takes from its `base`: its identity and its figures."""


def _with_base(path: Path, raw: dict, seen: tuple[Path, ...] = ()) -> dict:
    """Chip table `raw` on top of the preset its `base` key names (a shipped preset's name, or
    a .toml path relative to `path`'s folder): tables merge key by key; an array of tables
    (`[[digital_nodes]]`, `[[input.read_modes]]`) is the list the chip has, and each of its
    entries whose identity (`kind` or `name`, see IDENTITY_KEYS) matches an entry of the base's
    array merges key by key onto that entry, so `[[digital_nodes]] kind = "mac-array"
    count = 5` changes only the count; any other value replaces the base's; see
    NOT_INHERITED."""
    if "base" not in raw:
        return raw
    raw = dict(raw)
    name = raw.pop("base")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: base: expected a chip preset name or .toml path, got {name!r}")
    here = path.parent / name if name.endswith(".toml") or "/" in name else name
    try:
        base_path = _resolve(here, models_dir(), "chip", chip_presets())
    except ConfigError as e:
        raise ConfigError(f"{path}: base: {e}") from None
    chain = (*seen, path.resolve())
    if base_path.resolve() in chain:
        raise ConfigError(f"{path}: base: {name!r} includes {path.name} again (a cycle)")
    base = _with_base(base_path, read_toml(base_path), chain)
    return _merged({k: v for k, v in base.items() if k not in NOT_INHERITED}, raw)


IDENTITY_KEYS = ("kind", "name")
"""Keys that name an entry of an array of tables when a preset merges onto its `base`."""


def _merged(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = _merged(old, value)
        elif _tables(value) and _tables(old):
            out[key] = [_merged(_same_entry(old, entry), entry) for entry in value]
        else:
            out[key] = value
    return out


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _same_entry(base: list[dict], entry: dict) -> dict:
    """The entry of the base's array with `entry`'s identity, or {} (a new entry)."""
    for key in IDENTITY_KEYS:
        if key in entry:
            return next((b for b in base if b.get(key) == entry[key]), {})
    return {}


def override_table(raw: dict, overrides: typing.Mapping[str, Any]) -> dict:
    """A copy of TOML table `raw` with values replaced by dotted key path.

    Raises:
        SpecError: a path runs through a value that is not a table (e.g. an array of tables).
    """
    out = _copy_tables(raw)
    for path, value in overrides.items():
        parts = path.split(".")
        if not all(parts):
            raise SpecError(path, "expected a dotted key path such as adc.bits")
        table = out
        for i, part in enumerate(parts[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise SpecError(".".join(parts[: i + 1]), "is not a table; cannot set keys in it")
            table = nxt
        table[parts[-1]] = value
    return out


def _copy_tables(raw: dict) -> dict:
    return {k: _copy_tables(v) if isinstance(v, dict) else v for k, v in raw.items()}


def _load_chip_table(path: Path, raw: dict) -> ChipSpec:
    sources: list[tuple[str, str]] = []
    try:
        raw = dict(raw)
        device_table = raw.pop("device", None)
        if device_table is None:
            raise SpecError("device", 'missing table [device] (e.g. preset = "pcm")')
        if not isinstance(device_table, dict):
            raise SpecError("device", "expected a table")
        raw.setdefault("name", path.stem)
        raw.setdefault("description", "")
        if "source" in raw:
            sources.append(("chip", _source(raw["source"], "source")))
        fields = {f.name for f in dataclasses.fields(ChipSpec)} - {"device", "sources"}
        values = _build_fields(ChipSpec, raw, "", sources, skip={"device", "sources"})
        _require_node_sources(values.get("digital_nodes", ()), sources)
        unknown = set(raw) - fields - {"source"}
        if unknown:
            raise _unknown("", sorted(unknown)[0], sorted(fields | {"source", "device"}))
    except SpecError as e:
        raise ConfigError(f"{path}: {e}") from None
    device = _chip_device(path, device_table, sources)
    try:
        return ChipSpec(**values, device=device, sources=tuple(sources))
    except SpecError as e:
        raise ConfigError(f"{path}: {e}") from None


def _require_node_sources(nodes: tuple, sources: list) -> None:
    """Every `[[digital_nodes]]` table names where its rates and energies come from."""
    have = {key for key, _ in sources}
    for i in range(len(nodes)):
        if f"digital_nodes[{i}]" not in have:
            raise SpecError(
                f"digital_nodes[{i}].source",
                "missing required key (the source of the rates and energies, or 'estimate')",
            )


def load_device(name_or_path: str | Path) -> DeviceSpec:
    """Read a device preset by name (`models/devices/<name>.toml`) or path.

    Raises:
        ConfigError: as for `load_chip`.
    """
    path = _resolve(name_or_path, models_dir() / "devices", "device", device_presets())
    raw = read_toml(path)
    try:
        return _device_from_table(raw, path.stem, [])
    except SpecError as e:
        raise ConfigError(f"{path}: {e}") from None


def _chip_device(chip_path: Path, table: dict, sources: list) -> DeviceSpec:
    """The chip's device: the named preset with the chip's overrides merged in."""
    table = dict(table)
    preset = table.pop("preset", None)
    if not isinstance(preset, str):
        raise ConfigError(f"{chip_path}: device.preset: expected the name of a device preset")
    dev_path = models_dir() / "devices" / f"{preset}.toml"
    if not dev_path.is_file():
        raise ConfigError(
            f"{chip_path}: device.preset: no device preset {preset!r} in {dev_path.parent} "
            f"(available: {', '.join(device_presets())})"
        )
    base = read_toml(dev_path)
    override_source = table.pop("source", None)
    if override_source is not None:
        sources.append(("device", str(override_source)))
    allowed = set(_DEVICE_TOP_KEYS) - {"model", "name"} | set(_DEVICE_TABLES)
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{chip_path}: {_unknown('device', key, sorted(allowed))}")
        if key in _DEVICE_TABLES and not isinstance(value, dict):
            raise ConfigError(f"{chip_path}: device.{key}: expected a table")
    merged = dict(base)
    for key, value in table.items():
        merged[key] = {**base.get(key, {}), **value} if key in _DEVICE_TABLES else value
    try:
        _device_from_table(base, preset, [])
    except SpecError as e:
        raise ConfigError(f"{dev_path}: {e}") from None
    try:
        return _device_from_table(merged, preset, sources, prefix="device")
    except SpecError as e:
        raise ConfigError(f"{chip_path}: {e}") from None


def _device_from_table(raw: dict, default_name: str, sources: list, prefix: str = "") -> DeviceSpec:
    """Build a DeviceSpec from a device preset table (already merged with overrides)."""
    raw = dict(raw)
    allowed = set(_DEVICE_TOP_KEYS) | set(_DEVICE_TABLES) | {"source", "published_error"}
    for key in raw:
        if key not in allowed:
            raise _unknown(prefix, key, sorted(allowed))
    if "source" in raw:
        sources.append((prefix or "device", _source(raw["source"], _join(prefix, "source"))))
    model_name = raw.get("model")
    if model_name not in DEVICE_MODELS:
        raise SpecError(
            _join(prefix, "model"),
            f"expected one of {', '.join(map(repr, DEVICE_MODELS))}, got {model_name!r}",
        )
    model_cls = DEVICE_MODELS[model_name]
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise SpecError(_join(prefix, "params"), "expected a table")
    params = dict(params)
    if "source" in params:
        sources.append((_join(prefix, "params"), _source(params.pop("source"), "params.source")))
    model_fields = {f.name for f in dataclasses.fields(model_cls)}
    for key in ("g_max_us", "g_min_us"):
        if key in params:
            raise SpecError(_join(prefix, f"params.{key}"), f"set {key} at the top of the preset")
        if key in raw and key in model_fields:
            params[key] = raw[key]
    try:
        model = _build(model_cls, params, "", [])
    except SpecError as e:
        # g_max_us / g_min_us are written at the top of the preset, the rest under [params]
        at_top = e.key.split(".")[0] in ("g_max_us", "g_min_us")
        where = prefix if at_top else _join(prefix, "params")
        raise (e.under(where) if where else e) from None
    mvm_noise = _build(MvmNoiseSpec, raw.get("mvm_noise", {}), _join(prefix, "mvm_noise"), sources)
    update = _update_model(raw.get("update"), _join(prefix, "update"), sources)
    top = {k: raw[k] for k in ("name", "description", "drift_compensation") if k in raw}
    top.setdefault("name", default_name)
    top.setdefault("description", "")
    hints = get_type_hints(DeviceSpec, localns={"UpdateModel": UpdateModel})
    values = {k: _convert(v, hints[k], _join(prefix, k), sources) for k, v in top.items()}
    return DeviceSpec(**values, model=model, mvm_noise=mvm_noise, update=update)


def _update_model(table: Any, key: str, sources: list) -> UpdateModel | None:
    """The optional `[update]` table (pulsed-training update model); `source` is required."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise SpecError(key, "expected a table")
    if "source" not in table:
        raise SpecError(
            _join(key, "source"), "missing required key (the source of the constants or 'estimate')"
        )
    source = _source(table["source"], _join(key, "source"))
    return dataclasses.replace(_build(UpdateModel, table, key, sources), source=source)


def _build(cls: type, table: Any, key: str, sources: list) -> Any:
    """Instantiate dataclass `cls` from a TOML table, checking keys, types and ranges."""
    if not isinstance(table, dict):
        raise SpecError(key, "expected a table")
    table = dict(table)
    if "source" in table:
        sources.append((key or cls.__name__, _source(table.pop("source"), _join(key, "source"))))
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise _unknown(key, unknown[0], sorted(names))
    values = _build_fields(cls, table, key, sources)
    try:
        return cls(**values)
    except SpecError as e:
        raise e.under(key) if key else e from None


def _build_fields(cls: type, table: dict, key: str, sources: list, skip=frozenset()) -> dict:
    """Convert the fields of `cls` present in `table`; report required fields that are missing."""
    hints = get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(
                    _join(key, f.name), f"missing required key ({_describe(hints[f.name])})"
                )
            continue
        values[f.name] = _convert(table[f.name], hints[f.name], _join(key, f.name), sources)
    return values


def _convert(value: Any, tp: Any, key: str, sources: list) -> Any:
    """Check `value` against type `tp` and convert (lists to tuples, ints to floats)."""
    origin = get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise _type(key, tp, value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type(key, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type(key, tp, value)
        if not math.isfinite(value):
            raise SpecError(key, f"expected a finite number, got {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _type(key, tp, value)
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise SpecError(key, f"expected {_describe(tp)}, got {value!r}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list):
            raise _type(key, tp, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", sources) for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(key, f"expected {len(args)} values, got {len(value)}")
        return tuple(
            _convert(v, a, f"{key}[{i}]", sources)
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) == 1:  # an optional value (X | None): X's own error message
            return _convert(value, options[0], key, sources)
        for option in options:
            try:
                return _convert(value, option, key, sources)
            except SpecError:
                continue
        raise _type(key, tp, value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, sources)
    raise SpecError(key, f"cannot read values of type {tp}")  # a spec field type we do not map


def _describe(tp: Any) -> str:
    """A type as a user reads it in an error message."""
    origin = get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(
        tp, "tables" if dataclasses.is_dataclass(tp) else _describe(tp)
    )


def _type(key: str, tp: Any, value: Any) -> SpecError:
    return SpecError(key, f"expected {_describe(tp)}, got {value!r}")


NOT_MODELLED = {
    "cores.clock_ghz": "the LDPU and GDPUs have their own clock_ghz; the array is timed in ns",
    "gdpu.precision": "the functional model rounds every digital op at ldpu.precision",
    "memory.sram_bandwidth_bytes_per_ns": "SRAM traffic costs energy (sram_energy_pj_per_byte) "
    "but no time in the timed model",
}
"""Keys earlier presets carried that no model reads: refused with the reason, not ignored."""


def _unknown(key: str, name: str, allowed: list[str]) -> SpecError:
    path = _join(key, name)
    if path in NOT_MODELLED:
        return SpecError(path, f"not modelled, remove the key ({NOT_MODELLED[path]})")
    return SpecError(path, f"unknown key (allowed: {', '.join(allowed)})")


def _source(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(key, "expected a non-empty string naming the source or 'estimate'")
    return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _resolve(name_or_path: str | Path, directory: Path, kind: str, available: list[str]) -> Path:
    """A preset name or a path to a TOML file, as an existing path."""
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text
    path = Path(text) if looks_like_path else directory / f"{text}.toml"
    if not path.is_file():
        if looks_like_path:
            raise ConfigError(f"{path}: no such {kind} preset file")
        raise ConfigError(
            f"unknown {kind} preset {text!r}: no {path} (available: {', '.join(available)})"
        )
    return path


def read_toml(path: Path) -> dict:
    """A TOML file as a dict; ConfigError naming the file (and the line) when it is missing,
    not UTF-8 text or malformed."""
    try:
        data = path.read_bytes()
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}); "
            "TOML files must be UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
