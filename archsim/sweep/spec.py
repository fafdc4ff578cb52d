"""Sweep files: which chip parameters to vary, over what, and how each point is run.

A sweep file is TOML:

    name = "hermes-converters"     # report directory name (default: the file's stem)
    chip = "hermes"                # base chip preset: name, or path relative to this file
    workload = "digits-cnn"        # zoo name, or .onnx / .toml path relative to this file
    mode = "full"                  # full | timing | functional (as `archsim simulate`)
    samples = 64                   # evaluated and streamed samples per point
    t_inference_s = [1, 86400]     # accuracy at these times after programming
    seed = 0                       # one seed for every point: differences come from parameters
    method = "grid"                # grid (every combination) | random (`points` draws)

    [parameters]                   # dotted keys of the chip file, as `load_chip` overrides
    "adc.bits" = [4, 6, 8]                                  # a list: these values
    "crossbar.wire_resistance_ohm" = {min = 0.1, max = 1.0, steps = 4, scale = "log"}

    [linked]                       # lists varied together (one axis), e.g. grid and fabric
    "cores.grid" = [[4, 4], [8, 8]]
    "fabric.dims" = [[4, 4], [8, 8]]

    [objectives]                   # Pareto objectives: result column = "min" | "max"
    energy_per_sample_pj = "min"
    accuracy = "max"

With method = "random", `points` draws (seeded by `sample_seed`) take each list parameter from
its values and each range parameter from [min, max] (uniform, or log-uniform with scale = "log";
rounded with integer = true); a linked group draws one index.

A file with `kind = "moe"` sweeps a 3D-AIMC system running a MoE token stream instead (its keys:
`archsim.sweep.moe`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from archsim.bounds import STREAM_SAMPLES, SWEEP_POINTS
from archsim.config import read_toml
from archsim.errors import ArchsimError, ConfigError, SpecError
from archsim.outputs import plain_name

MODES = ("full", "timing", "functional")
METHODS = ("grid", "random")
KINDS = ("chip", "moe")
"""What a sweep file varies: a chip preset run by `simulate` (the default), or a 3D-AIMC
system running a MoE token stream (`archsim.sweep.moe`)."""
_TOP_KEYS = {
    "kind",
    "name",
    "chip",
    "workload",
    "mode",
    "samples",
    "t_inference_s",
    "seed",
    "chunk",
    "method",
    "points",
    "sample_seed",
    "parameters",
    "linked",
    "objectives",
    "description",
}
_RANGE_KEYS = {"min", "max", "steps", "scale", "integer"}
METRIC_COLUMNS = (
    "cores_used",
    "cores_available",
    "float_accuracy",
    "accuracy",
    "agreement",
    "similarity",
    "latency_ns",
    "period_ns",
    "throughput_per_s",
    "energy_per_sample_pj",
    "effective_tops",
    "tops_per_w",
    "steady_state_power_w",
    "average_power_w",
    "area_mm2",
    "tops_per_mm2",
    "bottleneck",
)
"""Result columns of every point (empty where the mode does not produce them)."""
_FUNCTIONAL_COLUMNS = {"float_accuracy", "accuracy", "agreement", "similarity"}
_TIMED_COLUMNS = {
    "latency_ns",
    "period_ns",
    "throughput_per_s",
    "energy_per_sample_pj",
    "effective_tops",
    "tops_per_w",
    "steady_state_power_w",
    "average_power_w",
    "tops_per_mm2",
}
DEFAULT_OBJECTIVES = {
    "accuracy": "max",
    "energy_per_sample_pj": "min",
    "period_ns": "min",
    "area_mm2": "min",
}
"""Pareto objectives when a sweep file names none (those its mode produces)."""


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept parameter: a list of values, or a range to draw from or to step through."""

    key: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    steps: int | None = None
    log: bool = False
    integer: bool = False

    def grid_values(self) -> tuple[Any, ...]:
        """The values a grid sweep takes (a range needs `steps`)."""
        if self.values:
            return self.values
        if self.steps == 1:
            return (self._cast(self.low),)
        if self.log:
            raw = np.geomspace(self.low, self.high, self.steps)
        else:
            raw = np.linspace(self.low, self.high, self.steps)
        return tuple(dict.fromkeys(self._cast(v) for v in raw))

    def draw(self, rng: np.random.Generator) -> Any:
        """One value of a random sweep."""
        if self.values:
            return self.values[int(rng.integers(len(self.values)))]
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            v = rng.uniform(self.low, self.high)
        return self._cast(v)

    def _cast(self, v: float) -> Any:
        return round(float(v)) if self.integer else float(v)


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A sweep file, checked."""

    path: Path
    name: str
    chip: str
    workload: str
    mode: str = "full"
    samples: int = 64
    t_inference_s: tuple[float, ...] = (1.0,)
    seed: int = 0
    chunk: int = 1
    method: str = "grid"
    points: int = 0
    sample_seed: int = 0
    axes: tuple[Axis, ...] = ()
    linked: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    objectives: dict[str, str] = field(default_factory=dict)
    description: str = ""
    kind: ClassVar[str] = "chip"

    def metric_columns(self) -> tuple[str, ...]:
        """Result columns of every point (after the parameters)."""
        return METRIC_COLUMNS

    def default_objectives(self) -> dict[str, str]:
        """Pareto objectives when the file names none: those of DEFAULT_OBJECTIVES this
        sweep's mode produces."""
        numeric = self.numeric_columns()
        return {k: v for k, v in DEFAULT_OBJECTIVES.items() if k in numeric}

    def setting_line(self) -> str:
        """The fixed settings, as the report's first line."""
        return (
            f"- chip `{self.chip}`, workload `{self.workload}`, mode {self.mode}, "
            f"{self.samples} samples, seed {self.seed}, t = "
            + ", ".join(f"{t:g} s" for t in self.t_inference_s)
        )

    @property
    def parameter_keys(self) -> tuple[str, ...]:
        """Every swept key, in file order (parameters, then linked)."""
        return tuple(a.key for a in self.axes) + tuple(k for k, _ in self.linked)

    def time_columns(self) -> list[str]:
        """Result columns of the accuracy, agreement and output similarity at each time (none
        in timing mode)."""
        if self.mode == "timing":
            return []
        return [
            f"{what}_t{time_label(t)}"
            for what in ("accuracy", "agreement", "similarity")
            for t in self.t_inference_s
        ]

    def numeric_columns(self) -> list[str]:
        """Result columns this sweep's mode fills with numbers: the possible objectives."""
        cols = [c for c in METRIC_COLUMNS if c != "bottleneck"]
        if self.mode == "timing":
            cols = [c for c in cols if c not in _FUNCTIONAL_COLUMNS]
        if self.mode == "functional":
            cols = [c for c in cols if c not in _TIMED_COLUMNS]
        return cols + self.time_columns()

    def settings_digest(self) -> str:
        """A digest of everything but the parameters: results made under another digest are
        not comparable (another workload, sample count, seed, ...)."""
        settings = {
            "chip": self.chip,
            "workload": self.workload,
            "mode": self.mode,
            "samples": self.samples,
            "t": list(self.t_inference_s),
            "seed": self.seed,
            "chunk": self.chunk,
        }
        return _digest(settings)


def time_label(t: float) -> str:
    """A time in seconds as it appears in column names: 31536000, not 3.1536e+07."""
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def point_id(params: dict[str, Any]) -> str:
    """A stable identifier of one parameter combination."""
    return _digest(params)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file.

    Raises:
        ConfigError: malformed TOML, unknown or mistyped keys, empty value lists, bad ranges;
            the message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such sweep file")
    raw = read_toml(path)
    where = str(path)

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {message}")

    kind = raw.get("kind", "chip")
    if kind not in KINDS:
        raise fail("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "moe":
        from archsim.sweep.moe import moe_sweep_from_table

        return moe_sweep_from_table(raw, path, fail)
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    name = sweep_name(raw, path, fail)
    for key in ("chip", "workload"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise fail(key, "expected the name of a preset / workload or a file path")
    mode = raw.get("mode", "full")
    if mode not in MODES:
        raise fail("mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
    method = sweep_method(raw, fail)
    ints = {
        key: _integer(raw, key, default, low, fail)
        for key, default, low in (
            ("samples", 64, 1),
            ("seed", 0, 0),
            ("chunk", 1, 1),
            ("sample_seed", 0, 0),
        )
    }
    ints["points"] = random_points(raw, method, fail)
    times = raw.get("t_inference_s", [1.0])
    if isinstance(times, int | float) and not isinstance(times, bool):
        times = [times]
    if (
        not isinstance(times, list)
        or not times
        or not all(isinstance(t, int | float) and not isinstance(t, bool) and t >= 0 for t in times)
    ):
        raise fail("t_inference_s", f"expected seconds >= 0 (a number or a list), got {times!r}")

    axes, linked = swept_keys(raw, method, ints["points"], fail, '"adc.bits" = [6, 8]')
    if mode != "functional":
        try:
            STREAM_SAMPLES.check("samples", ints["samples"])
        except SpecError as e:
            raise fail(e.key, e.message) from None
    objectives = objective_senses(raw, fail)
    base = path.parent
    spec = SweepSpec(
        path=path,
        name=name,
        chip=_relative(raw["chip"], base),
        workload=_relative(raw["workload"], base),
        mode=mode,
        samples=ints["samples"],
        t_inference_s=tuple(float(t) for t in times),
        seed=ints["seed"],
        chunk=ints["chunk"],
        method=method,
        points=ints["points"],
        sample_seed=ints["sample_seed"],
        axes=axes,
        linked=linked,
        objectives=objectives,
        description=str(raw.get("description", "")),
    )
    _check_values(spec, fail)
    numeric = spec.numeric_columns()
    for key in objectives:
        if key not in numeric:
            raise fail(
                f"objectives.{key}",
                f"not a numeric result of a {mode} sweep (choose from: {', '.join(numeric)})",
            )
    return spec


def sweep_name(raw: dict, path: Path, fail) -> str:
    """The sweep's name (default: the file's stem), a plain name for reports/sweep-NAME."""
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not plain_name(name):
        raise fail(
            "name",
            "expected a plain name for reports/sweep-NAME (no '/', '\\', "
            f"leading '.' or control characters), got {name!r}",
        )
    return name


def sweep_method(raw: dict, fail) -> str:
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise fail("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    return method


def random_points(raw: dict, method: str, fail) -> int:
    """The draws of a random sweep (0 for a grid, which must not name any)."""
    points = _integer(raw, "points", 0, 1, fail) if "points" in raw else 0
    if method == "random" and not points:
        raise fail("points", "a random sweep needs points = N (the number of draws)")
    if method == "grid" and "points" in raw:
        raise fail("points", "only a random sweep draws points; remove it or set method")
    return points


def swept_keys(
    raw: dict, method: str, points: int, fail, example: str
) -> tuple[tuple[Axis, ...], tuple[tuple[str, tuple[Any, ...]], ...]]:
    """The [parameters] axes and [linked] lists of a sweep file, checked, with the point count
    bounded before any value list is built (`example` shows a swept key in the message)."""
    axes = tuple(_axis(k, v, method, fail) for k, v in _table(raw, "parameters", fail).items())
    linked_raw = _table(raw, "linked", fail)
    linked = []
    for key, values in linked_raw.items():
        if not isinstance(values, list) or not values:
            raise fail(f'linked."{key}"', "expected a non-empty list of values")
        linked.append((key, tuple(_freeze(v) for v in values)))
    lengths = {len(v) for _, v in linked}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in linked)
        raise fail("linked", f"expected lists of equal length, got {sizes}")
    keys = [a.key for a in axes] + [k for k, _ in linked]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise fail(f'linked."{dup[0]}"', "is also under [parameters]; list it once")
    if not keys:
        raise fail("parameters", f"expected at least one swept key (e.g. {example})")
    n_linked = len(linked[0][1]) if linked else 1
    grid = math.prod(len(a.values) or a.steps or 1 for a in axes) * n_linked
    try:
        SWEEP_POINTS.check("points", points if method == "random" else grid)
    except SpecError as e:
        raise fail(e.key, e.message) from None
    return axes, tuple(linked)


def objective_senses(raw: dict, fail) -> dict[str, str]:
    """The [objectives] table: result column -> "min" | "max"."""
    objectives = _table(raw, "objectives", fail)
    for key, sense in objectives.items():
        if sense not in ("min", "max"):
            raise fail(f"objectives.{key}", f'expected "min" or "max", got {sense!r}')
    return dict(objectives)


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The parameter combinations of a sweep, in a fixed order (duplicates dropped)."""
    n_linked = len(spec.linked[0][1]) if spec.linked else 1
    if spec.method == "grid":
        axes = [a.grid_values() for a in spec.axes]
        combos = itertools.product(*axes, range(n_linked))
        points = []
        for combo in combos:
            p = {a.key: v for a, v in zip(spec.axes, combo[:-1], strict=True)}
            p.update({k: vals[combo[-1]] for k, vals in spec.linked})
            points.append(p)
    else:
        rng = np.random.default_rng(spec.sample_seed)
        points = []
        for _ in range(spec.points):
            p = {a.key: a.draw(rng) for a in spec.axes}
            j = int(rng.integers(n_linked))
            p.update({k: vals[j] for k, vals in spec.linked})
            points.append(p)
    unique = {point_id(p): p for p in points}
    return list(unique.values())


def _check_values(spec: SweepSpec, fail) -> None:
    """Refuse a value the chip rejects on its own, for its own key (e.g. a 1-bit ADC): it would
    fail in every combination. Values that only clash with others (adc.count > crossbar.cols)
    stay per-point errors of the run. A range is checked at its ends."""
    from archsim.config import load_chip
    from archsim.sweep.runner import chip_overrides

    groups = []
    for a in spec.axes:
        values = a.values or (a._cast(a.low), a._cast(a.high))
        groups.append((f'parameters."{a.key}"', [{a.key: v} for v in values]))
    if spec.linked:
        n = len(spec.linked[0][1])
        groups.append(("linked", [{k: vals[i] for k, vals in spec.linked} for i in range(n)]))
    devices = set()
    for where, settings in groups:
        for setting in settings:
            try:
                devices.add(load_chip(spec.chip, chip_overrides(setting)).device)
            except ConfigError as e:
                if any(f": {key}: " in str(e) for key in setting):
                    raise fail(where, f"refused on its own: {e}") from None
    for device in devices if spec.mode != "timing" else ():  # read at every time
        try:
            device.check_times(spec.t_inference_s, key="t_inference_s")
        except ArchsimError as e:
            raise ConfigError(f"{spec.path}: {e}") from None


def _axis(key: str, value: Any, method: str, fail) -> Axis:
    where = f'parameters."{key}"'
    if isinstance(value, list):
        if not value:
            raise fail(where, "expected a non-empty list of values")
        return Axis(key, values=tuple(_freeze(v) for v in value))
    if not isinstance(value, dict):
        raise fail(where, "expected a list of values or a range {min, max, steps, scale}")
    unknown = sorted(set(value) - _RANGE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_RANGE_KEYS))
        raise fail(f"{where}.{unknown[0]}", f"unknown key (allowed: {allowed})")
    for bound in ("min", "max"):
        v = value.get(bound)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise fail(f"{where}.{bound}", f"expected a number, got {v!r}")
    low, high = float(value["min"]), float(value["max"])
    if high < low:
        raise fail(where, f"expected min <= max, got {low:g} > {high:g}")
    scale = value.get("scale", "linear")
    if scale not in ("linear", "log"):
        raise fail(f"{where}.scale", f'expected "linear" or "log", got {scale!r}')
    if scale == "log" and low <= 0:
        raise fail(f"{where}.min", f"a log range needs min > 0, got {low:g}")
    integer = value.get("integer", False)
    if not isinstance(integer, bool):
        raise fail(f"{where}.integer", f"expected true or false, got {integer!r}")
    steps = value.get("steps")
    if steps is None and method == "grid":
        raise fail(f"{where}.steps", "a grid sweep over a range needs steps = N")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise fail(f"{where}.steps", f"expected an integer >= 1, got {steps!r}")
    return Axis(key, low=low, high=high, steps=steps, log=scale == "log", integer=integer)


def _integer(raw: dict, key: str, default: int, low: int, fail) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise fail(key, f"expected an integer >= {low}, got {value!r}")
    return value


def _table(raw: dict, key: str, fail) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise fail(key, "expected a table")
    return value


def _freeze(v: Any) -> Any:
    """TOML values as hashable, JSON-stable values (lists become tuples)."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _relative(name: str, base: Path) -> str:
    """A file path relative to the sweep file; preset and zoo names are kept."""
    if name.endswith((".toml", ".onnx")) or "/" in name:
        p = Path(name)
        return str(p if p.is_absolute() else base / p)
    return name


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=list, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
