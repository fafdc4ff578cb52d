"""MoE sweeps (`kind = "moe"`): a 3D-AIMC system running one MoE token stream per point.

    kind = "moe"
    name = "moe-tiers"
    system = "bue25-3d"          # 3D system preset (models/systems/) or path
    model = "moe-12x32"          # MoE model preset (workloads/moe/) or path
    gpu = "a100"                 # GPU baseline each point is compared with (models/baselines/)
    sequences = 16               # the token stream: sequences x tokens after a prompt
    tokens = 32
    prompt = 0
    tiles = "fit"                # "fit": the fewest tiles that hold the model at the point's
                                 # tiers; or a fixed count
    granularity = "matrix"       # tier | matrix (archsim.moe.api.simulate_moe)
    strategy = "greedy"          # tier mapping strategy
    seed = 0

    [parameters]                 # Tile3dSpec fields ("tiers", "mha_units", ...) or model sizes
    tiers = [64, 128, 256, 512, 1024]       # ("model.experts", "model.top_k", ...)

    [objectives]
    tokens_per_s_per_mm2 = "max"
    energy_per_token_j = "min"

method, points, sample_seed and [linked] work as in chip sweeps (archsim.sweep.spec). Each point
is `archsim.baseline.compare.compare_moe`: the 3D run plus the GPU roofline on the same stream.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from archsim.errors import ArchsimError, ConfigError
from archsim.sweep.spec import (
    Axis,
    _integer,
    _relative,
    objective_senses,
    point_id,
    random_points,
    sweep_method,
    sweep_name,
    swept_keys,
)

_SETTINGS = (
    "system",
    "model",
    "gpu",
    "sequences",
    "tokens",
    "prompt",
    "tiles",
    "granularity",
    "strategy",
    "seed",
)
"""The fixed settings of a MoE sweep: the digest that guards a resume covers exactly these."""
_TOP_KEYS = {
    "kind",
    "name",
    "description",
    *_SETTINGS,
    "method",
    "points",
    "sample_seed",
    "parameters",
    "linked",
    "objectives",
}
MOE_COLUMNS = (
    "system_tiles",
    "system_tiers",
    "tiles_used",
    "tiers_used",
    "area_mm2",
    "tokens",
    "makespan_ns",
    "tokens_per_s",
    "tokens_per_s_per_mm2",
    "energy_per_token_j",
    "average_power_w",
    "events",
    "bottleneck",
    "gpu_tokens_per_s_per_mm2",
    "gpu_energy_per_token_j",
    "advantage_per_area",
    "advantage_energy",
)
"""Result columns of every point: the 3D system as sized, its run, and the GPU beside it."""
DEFAULT_MOE_OBJECTIVES = {"tokens_per_s_per_mm2": "max", "energy_per_token_j": "min"}
MODEL_PREFIX = "model."


@dataclass(frozen=True, slots=True)
class MoeSweepSpec:
    """A MoE sweep file, checked."""

    path: Path
    name: str
    system: str
    model: str
    gpu: str = "a100"
    sequences: int = 16
    tokens: int = 32
    prompt: int = 0
    tiles: int | str = "fit"
    granularity: str = "matrix"
    strategy: str = "greedy"
    seed: int = 0
    method: str = "grid"
    points: int = 0
    sample_seed: int = 0
    axes: tuple[Axis, ...] = ()
    linked: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    objectives: dict[str, str] = field(default_factory=dict)
    description: str = ""
    kind: ClassVar[str] = "moe"

    @property
    def parameter_keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.axes) + tuple(k for k, _ in self.linked)

    def metric_columns(self) -> tuple[str, ...]:
        return MOE_COLUMNS

    def time_columns(self) -> list[str]:
        return []

    def numeric_columns(self) -> list[str]:
        return [c for c in MOE_COLUMNS if c != "bottleneck"]

    def default_objectives(self) -> dict[str, str]:
        return dict(DEFAULT_MOE_OBJECTIVES)

    def settings_digest(self) -> str:
        settings = {k: getattr(self, k) for k in _SETTINGS}
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    def setting_line(self) -> str:
        """The fixed settings, as the report's first line."""
        return (
            f"- system `{self.system}` (tiles {self.tiles}), model `{self.model}` against "
            f"`{self.gpu}`, {self.sequences} sequences x {self.tokens} tokens (prompt "
            f"{self.prompt}), {self.granularity} granularity, {self.strategy} mapping, seed "
            f"{self.seed}"
        )

    def inputs(self, params: dict[str, Any]):
        """(system, model) of one point, the system sized as `tiles` says.

        Raises:
            ArchsimError: a parameter the system or model refuses (SpecError), a preset that
                does not load (ConfigError).
        """
        from archsim.moe.model import load_moe, with_sizes
        from archsim.moe.sizing import fewest_tiles
        from archsim.moe.spec import load_system

        sizes = {k[len(MODEL_PREFIX) :]: v for k, v in params.items() if _is_model(k)}
        fields = {k: v for k, v in params.items() if not _is_model(k)}
        model = with_sizes(load_moe(self.model), **sizes) if sizes else load_moe(self.model)
        system = load_system(self.system)
        system = dataclasses.replace(system, **fields) if fields else system
        if "tiles" not in fields:
            tiles = fewest_tiles(model, system) if self.tiles == "fit" else self.tiles
            system = dataclasses.replace(system, tiles=tiles)
        return system, model


def _is_model(key: str) -> bool:
    return key.startswith(MODEL_PREFIX)


def moe_sweep_from_table(raw: dict, path: Path, fail) -> MoeSweepSpec:
    """Check a parsed `kind = "moe"` sweep file (see the module docstring).

    Raises:
        ConfigError: unknown or mistyped keys, a swept key that is no system field or model
            size, a value the system or model refuses on its own; names the file and the key.
    """
    from archsim.moe.api import GRANULARITIES
    from archsim.moe.mapping import STRATEGIES

    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    name = sweep_name(raw, path, fail)
    texts = {}
    for key, default in (("system", None), ("model", None), ("gpu", "a100")):
        value = raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise fail(key, "expected the name of a preset or a file path")
        texts[key] = _relative(value, path.parent)
    for key, allowed in (("granularity", GRANULARITIES), ("strategy", tuple(STRATEGIES))):
        value = raw.get(key, allowed[0] if key == "strategy" else "matrix")
        if value not in allowed:
            raise fail(key, f"expected one of {', '.join(allowed)}, got {value!r}")
        texts[key] = value
    tiles = raw.get("tiles", "fit")
    if tiles != "fit":
        tiles = _integer(raw, "tiles", 1, 1, fail)
    method = sweep_method(raw, fail)
    ints = {
        key: _integer(raw, key, default, low, fail)
        for key, default, low in (
            ("sequences", 16, 1),
            ("tokens", 32, 1),
            ("prompt", 0, 0),
            ("seed", 0, 0),
            ("sample_seed", 0, 0),
        )
    }
    points = random_points(raw, method, fail)
    axes, linked = swept_keys(raw, method, points, fail, "tiers = [256, 1024]")
    objectives = objective_senses(raw, fail)
    spec = MoeSweepSpec(
        path=path,
        name=name,
        tiles=tiles,
        method=method,
        points=points,
        axes=axes,
        linked=linked,
        objectives=objectives,
        description=str(raw.get("description", "")),
        **texts,
        **ints,
    )
    for key in objectives:
        if key not in spec.numeric_columns():
            raise fail(
                f"objectives.{key}",
                f"not a numeric result of a MoE sweep (choose from: "
                f"{', '.join(spec.numeric_columns())})",
            )
    _check_values(spec, fail)
    return spec


def _check_values(spec: MoeSweepSpec, fail) -> None:
    """Refuse a swept key that names nothing, and a value refused on its own (tiers = 0); the
    presets themselves must load. A range is checked at its ends."""
    from archsim.baseline.gpu import load_gpu
    from archsim.moe.model import MoeModel
    from archsim.moe.spec import Tile3dSpec

    try:
        spec.inputs({})
        load_gpu(spec.gpu)
    except ArchsimError as e:
        raise ConfigError(f"{spec.path}: {e}") from None
    system_fields = {f.name for f in dataclasses.fields(Tile3dSpec)} - {"name", "description"}
    model_fields = {f.name for f in dataclasses.fields(MoeModel)} - {
        "name",
        "description",
        "source",
    }
    groups = []
    for a in spec.axes:
        values = a.values or (a._cast(a.low), a._cast(a.high))
        groups.append((f'parameters."{a.key}"', a.key, [{a.key: v} for v in values]))
    for key, values in spec.linked:
        groups.append((f'linked."{key}"', key, [{key: v} for v in values]))
    for where, key, settings in groups:
        known = model_fields if _is_model(key) else system_fields
        bare = key[len(MODEL_PREFIX) :] if _is_model(key) else key
        if bare not in known:
            raise fail(
                where,
                f"not a 3D system field or model size (system: {', '.join(sorted(system_fields))}"
                f"; model: {', '.join(MODEL_PREFIX + f for f in sorted(model_fields))})",
            )
        for setting in settings:
            try:
                spec.inputs(setting)
            except ArchsimError as e:
                if bare in str(e):
                    raise fail(where, f"refused on its own: {e}") from None


def run_moe_point(spec: MoeSweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Run one point (3D system and GPU on the same stream); never raises: a failure is a row
    with status "error"."""
    from archsim.baseline.compare import compare_moe
    from archsim.baseline.gpu import load_gpu
    from archsim.moe.model import TokenStream
    from archsim.sweep.runner import _cell

    t0 = time.perf_counter()
    row: dict[str, Any] = {"point": point_id(params)}
    row.update({k: _cell(v) for k, v in params.items()})
    try:
        system, model = spec.inputs(params)
        stream = TokenStream(spec.sequences, spec.tokens, spec.prompt)
        c = compare_moe(
            system,
            model,
            stream,
            load_gpu(spec.gpu),
            seed=spec.seed,
            granularity=spec.granularity,
            strategy=spec.strategy,
        )
        run, gpu = c.aimc, c.gpu
        name, share = c.aimc_bottleneck()
        row.update(
            system_tiles=system.tiles,
            system_tiers=system.tiers,
            tiles_used=run.tiles_used,
            tiers_used=run.tiers_used,
            area_mm2=run.area_mm2,
            tokens=run.tokens,
            makespan_ns=run.makespan_ns,
            tokens_per_s=run.tokens_per_s,
            tokens_per_s_per_mm2=run.tokens_per_s_per_mm2,
            energy_per_token_j=run.energy_per_token_j,
            average_power_w=c.aimc_power_w,
            events=run.events,
            bottleneck=f"{name} {share:.0%}",
            gpu_tokens_per_s_per_mm2=gpu.tokens_per_s_per_mm2,
            gpu_energy_per_token_j=gpu.energy_per_token_j,
            advantage_per_area=run.tokens_per_s_per_mm2 / gpu.tokens_per_s_per_mm2,
            advantage_energy=gpu.energy_per_token_j / run.energy_per_token_j,
            status="ok",
        )
    except ArchsimError as e:
        row.update(status="error", error=str(e))
    except Exception as e:  # a bug in one point must not end the sweep; the row keeps it
        row.update(status="error", error=f"{type(e).__name__}: {e}")
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def check_moe_points(spec: MoeSweepSpec, points: list[dict]) -> tuple[list, list]:
    """Split points into (params, error) pairs whose system or model is invalid, and the
    runnable params (checked before any point runs)."""
    invalid, ok = [], []
    for p in points:
        try:
            spec.inputs(p)
        except ArchsimError as e:
            invalid.append((p, str(e)))
        else:
            ok.append(p)
    return invalid, ok


def moe_progress(row: dict) -> list[str]:
    """The figures of one finished point's progress line."""
    return [
        f"{row['wall_s']:.1f} s",
        f"{row['system_tiles']} tiles",
        f"{row['tokens_per_s']:.4g} tokens/s",
        f"{row['energy_per_token_j'] * 1e3:.4g} mJ/token",
        f"bottleneck {row['bottleneck']}",
    ]
