"""MVM error of a device preset against floating point, over time since programming.

The experiment: weights W ~ N(0, 1) clipped to [-1, 1] (so max |w| = 1 maps to g_max), inputs
x ~ U[-1, 1]; W is programmed once per seed, read at each time, and a batch of MVMs is run
through DAC, crossbar and ADC. The DAC and ADC ranges are calibrated right after programming on
a separate calibration batch and then kept, as a chip would be calibrated once: at the earliest
time the device model is defined for (`earliest_s`: 0 for PCM, the first fitted time for ReRAM).

Two error figures per (device, time, compensation), averaged over seeds:
- nrmse: RMSE / std of the exact outputs;
- rmse: RMSE in units of one full-scale input on one full-scale weight (max|x| * max|w| = 1),
  the normalisation of the MVM RMSE reported by Falcone et al. 2025 (their weights and inputs
  are normalised to [-1, 1]).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from archsim.checks import converter_bits, require_finite
from archsim.crossbar import program_matrix, read_state
from archsim.errors import ArchsimError, ConfigError
from archsim.footprint import check_footprint, device_error_bytes
from archsim.mvm import Converters, analog_mvm, calibrate, noise_key
from archsim.spec import CrossbarSpec, DeviceSpec

DEFAULT_TIMES_S = (1.0, 3600.0, 86400.0, 31536000.0, 315360000.0)
"""1 s, 1 hour, 1 day, 1 year, 10 years."""


@dataclass(frozen=True, slots=True)
class DeviceErrorSetup:
    """What the experiment runs: array size, converters, repetitions."""

    rows: int = 256
    """Rows (inputs) of the weight matrix, one crossbar tall."""
    cols: int = 256
    """Columns (outputs) of the weight matrix."""
    input_bits: int = 8
    """DAC bits incl. sign; 0 = no input quantization."""
    adc_bits: int = 8
    """ADC bits incl. sign; 0 = no output quantization (and no ADC clipping)."""
    devices_per_weight: int = 2
    """Devices per weight: 2 = one per polarity, 1 = single device against a reference."""
    mid_reference: str = "column"
    """Single device: "column" (an aged reference column) or "digital" (nominal g_mid), as
    `CrossbarSpec.mid_reference`."""
    vectors: int = 1000
    """Input vectors per seed and time."""
    seeds: int = 3
    """Independent weight matrices (and programming draws) to average over."""
    ir_drop: bool = False
    """Apply the IR-drop model with `wire_resistance_ohm`."""
    wire_resistance_ohm: float = 0.35
    """Wire resistance per cell segment for IR drop (Falcone et al. 2025 use 0.35 ohm)."""
    inputs: str = "uniform"
    """Input distribution: "uniform" on [-1, 1], or "normal": N(0, 1) clipped to [-1, 1] (the
    inputs of Falcone et al. 2025)."""

    def __post_init__(self) -> None:
        if self.inputs not in ("uniform", "normal"):
            raise ArchsimError(f"inputs: expected 'uniform' or 'normal', got {self.inputs!r}")
        if self.mid_reference not in ("column", "digital"):
            raise ArchsimError(
                f"mid_reference: expected 'column' or 'digital', got {self.mid_reference!r}"
            )
        for name in ("rows", "cols", "vectors", "seeds"):
            if getattr(self, name) < 1:
                raise ArchsimError(f"{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("input_bits", "adc_bits"):
            converter_bits(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class DeviceErrorRow:
    """MVM error of one device at one time, averaged over seeds."""

    device: str
    t_s: float
    compensation: bool
    nrmse: float
    """RMSE / std of the exact outputs."""
    rmse: float
    """RMSE in units of a full-scale input on a full-scale weight."""
    nrmse_std: float
    """Spread of nrmse over seeds (0 for one seed)."""


def device_error(
    device: DeviceSpec,
    setup: DeviceErrorSetup,
    times_s: Sequence[float] = DEFAULT_TIMES_S,
    *,
    compensation: bool | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[DeviceErrorRow]:
    """MVM error of `device` at each time in `times_s`.

    Args:
        device: the device preset.
        setup: array size, converters and repetitions.
        times_s: times since programming (s), each >= 0.
        compensation: global drift compensation; None = the preset's choice.
        seed: run seed; seeds 0..setup.seeds-1 are spawned from it.
        progress: called with a short status line as each (seed, time) finishes.

    Raises:
        ArchsimError: bad setup or times.
        DeviceModelError: a time outside the range the device model is defined for.
    """
    times = [float(t) for t in times_s]
    if not times or any(not np.isfinite(t) or t < 0 for t in times):
        raise ArchsimError(f"times: expected times >= 0 s, got {list(times_s)}")
    device.check_times(times)
    comp = device.drift_compensation if compensation is None else compensation
    crossbar = CrossbarSpec(
        rows=setup.rows,
        cols=setup.cols,
        devices_per_weight=setup.devices_per_weight,
        mid_reference=setup.mid_reference,
        wire_resistance_ohm=setup.wire_resistance_ohm if setup.ir_drop else 0.0,
        ir_drop=setup.ir_drop,
    )
    size = f"the device-error study of {setup.rows}x{setup.cols} weights, {setup.vectors} vectors"
    check_footprint(
        size,
        device_error_bytes(
            setup.rows, setup.cols, setup.devices_per_weight, setup.vectors, setup.seeds, len(times)
        ),
    )
    device = replace(device, drift_compensation=comp)
    nrmse = np.empty((setup.seeds, len(times)))
    rmse = np.empty_like(nrmse)
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(setup.seeds)):
        data_rng, prog_rng, read_rng, noise_rng = (np.random.default_rng(s) for s in ss.spawn(4))
        w = np.clip(data_rng.standard_normal((setup.rows, setup.cols)), -1.0, 1.0)
        x_cal = _inputs(data_rng, setup)
        x = _inputs(data_rng, setup)
        exact = x @ w
        prog = program_matrix(w, crossbar, device, prog_rng)
        conv = _calibrate_at_programming(prog, x_cal, setup, read_rng)
        scale = float(np.abs(w).max()) * conv.input_range
        for j, t in enumerate(times):
            state = read_state(prog, t, read_rng)
            y = analog_mvm(x, state, conv, key=noise_key(noise_rng)).y
            err = float(np.sqrt(np.mean((y - exact) ** 2)))
            nrmse[i, j] = require_finite("nrmse", err / float(np.std(exact)))
            rmse[i, j] = require_finite("rmse", err / scale)
            if progress:
                progress(f"{device.name}: seed {i + 1}/{setup.seeds}, t = {t:g} s")
    return [
        DeviceErrorRow(
            device=device.name,
            t_s=t,
            compensation=comp,
            nrmse=float(nrmse[:, j].mean()),
            rmse=float(rmse[:, j].mean()),
            nrmse_std=float(nrmse[:, j].std()),
        )
        for j, t in enumerate(times)
    ]


def _inputs(rng: np.random.Generator, setup: DeviceErrorSetup) -> np.ndarray:
    """A batch of input vectors of the setup's distribution, all within [-1, 1]."""
    shape = (setup.vectors, setup.rows)
    if setup.inputs == "normal":
        return np.clip(rng.standard_normal(shape), -1.0, 1.0)
    return rng.uniform(-1.0, 1.0, shape)


def _calibrate_at_programming(prog, x_cal, setup: DeviceErrorSetup, rng) -> Converters:
    """DAC/ADC ranges set on the chip at the earliest time its device model is defined for
    (right after programming where the model allows t = 0), then kept."""
    state0 = read_state(prog, prog.device.model.earliest_s, rng)
    return calibrate(state0, x_cal, input_bits=setup.input_bits, adc_bits=setup.adc_bits)


def format_table(rows: Sequence[DeviceErrorRow]) -> str:
    """The rows as an aligned text table."""
    lines = [f"{'device':<14} {'t_s':>12} {'comp':>5} {'nrmse':>8} {'rmse':>8}"]
    for r in rows:
        comp = "on" if r.compensation else "off"
        lines.append(f"{r.device:<14} {r.t_s:>12g} {comp:>5} {r.nrmse:>8.4f} {r.rmse:>8.4f}")
    return "\n".join(lines)


def stderr_progress(message: str) -> None:
    """Progress on one overwritten line of stderr, when stderr is a terminal."""
    if sys.stderr.isatty():
        print(f"\r{message:<60}", end="", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class PublishedError:
    """An MVM error a device paper publishes, with the experiment that produced it."""

    t_s: float
    """Time after programming (s)."""
    rmse: float
    """Published RMSE in units of a full-scale input on a full-scale weight."""
    basis: str
    """"fitted" (a device constant was derived from this figure) or "predicted"."""
    tolerance: float
    """Accepted relative deviation of the prediction, e.g. 0.25."""
    setup: DeviceErrorSetup
    """The paper's experiment: array, converters, devices per weight, inputs, IR drop."""
    compensation: bool
    """Global drift compensation in the paper's experiment."""
    model_overrides: tuple[tuple[str, float], ...]
    """Device-model settings of the paper's experiment (e.g. read noise left out)."""
    source: str
    note: str = ""
    """Why a prediction misses, component by component, or a dispute."""


@dataclass(frozen=True, slots=True)
class ErrorCheckRow:
    """One published device error against archsim's prediction of it."""

    device: str
    t_s: float
    published: float
    predicted: float
    basis: str
    tolerance: float
    note: str

    @property
    def ratio(self) -> float:
        return self.predicted / self.published

    @property
    def passed(self) -> bool:
        return abs(self.ratio - 1) <= self.tolerance


_ENTRY_KEYS = ("t_s", "rmse", "basis", "tolerance", "compensation", "source", "note")


def published_errors(device: DeviceSpec, path: Path) -> tuple[PublishedError, ...]:
    """The `[[published_error]]` entries of the device preset file `path` (for `device`).

    Each entry holds t_s, rmse, basis, tolerance, compensation, source, an optional note, the
    keys of `DeviceErrorSetup` that describe the paper's experiment, and keys of the device
    model that the experiment set (e.g. read_noise_scale = 0 where the paper leaves read noise
    out). Raises ConfigError naming the file and the entry's key on anything else.
    """
    from archsim.config import read_toml

    entries = read_toml(path).get("published_error", [])
    setup_keys = {f.name for f in dataclasses.fields(DeviceErrorSetup)}
    model_keys = {f.name for f in dataclasses.fields(device.model)}
    out = []
    for i, raw in enumerate(entries if isinstance(entries, list) else [entries]):
        where = f"{path}: published_error[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        for key in raw:
            if key not in setup_keys | model_keys | set(_ENTRY_KEYS):
                raise ConfigError(f"{where}.{key}: unknown key")
        for key in ("t_s", "rmse", "tolerance"):
            v = raw.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"{where}.{key}: expected a number >= 0, got {v!r}")
        if raw.get("basis") not in ("fitted", "predicted"):
            raise ConfigError(f"{where}.basis: expected 'fitted' or 'predicted'")
        if not isinstance(raw.get("source"), str) or not raw["source"].strip():
            raise ConfigError(f"{where}.source: expected the figure's source")
        if not isinstance(raw.get("compensation", False), bool):
            raise ConfigError(f"{where}.compensation: expected true or false")
        try:
            setup = DeviceErrorSetup(**{k: v for k, v in raw.items() if k in setup_keys})
            overrides = tuple((k, v) for k, v in raw.items() if k in model_keys)
            replace(device.model, **dict(overrides))
        except (ArchsimError, TypeError) as e:
            raise ConfigError(f"{where}: {e}") from None
        out.append(
            PublishedError(
                float(raw["t_s"]),
                float(raw["rmse"]),
                raw["basis"],
                float(raw["tolerance"]),
                setup,
                raw.get("compensation", False),
                overrides,
                raw["source"],
                str(raw.get("note", "")),
            )
        )
    return tuple(out)


def load_published_errors(
    name_or_path: str | Path,
) -> tuple[DeviceSpec, tuple[PublishedError, ...]]:
    """A device preset (by name or path) and its `[[published_error]]` entries."""
    from archsim.config import _resolve, device_presets, load_device, models_dir

    path = _resolve(name_or_path, models_dir() / "devices", "device", device_presets())
    device = load_device(path)
    return device, published_errors(device, path)


def check_published(
    device: DeviceSpec, entries: Sequence[PublishedError], *, seed: int = 0
) -> list[ErrorCheckRow]:
    """Run each published experiment on `device` and compare with the published RMSE.

    Entries with the same setup share one run (all their times at once), so the times of one
    experiment see the same programmed matrices, as in the paper.
    """
    groups: dict[tuple, list[PublishedError]] = {}
    for e in entries:
        groups.setdefault((e.setup, e.compensation, e.model_overrides), []).append(e)
    rows = []
    for (setup, comp, overrides), group in groups.items():
        dev = replace(device, model=replace(device.model, **dict(overrides)))
        res = device_error(dev, setup, [e.t_s for e in group], compensation=comp, seed=seed)
        for e, r in zip(group, res, strict=True):
            rows.append(
                ErrorCheckRow(device.name, e.t_s, e.rmse, r.rmse, e.basis, e.tolerance, e.note)
            )
    return rows


def format_checks(rows: Sequence[ErrorCheckRow]) -> str:
    """The checks as an aligned table, notes below it."""
    lines = [
        f"{'device':<14} {'t_s':>10} {'published':>9} {'archsim':>8} {'ratio':>6} "
        f"{'basis':<9} status"
    ]
    notes = []
    for r in rows:
        status = "ok" if r.passed else f"off by more than {r.tolerance:.0%}"
        if r.note:
            notes.append(r.note)
            status += f" (note {len(notes)})"
        lines.append(
            f"{r.device:<14} {r.t_s:>10g} {r.published:>9.3g} {r.predicted:>8.3g} "
            f"{r.ratio:>6.2f} {r.basis:<9} {status}"
        )
    lines += [f"note {i}: {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(lines)
