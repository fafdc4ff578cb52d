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

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from archsim.checks import converter_bits, require_finite
from archsim.crossbar import program_matrix, read_state
from archsim.errors import ArchsimError
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
    vectors: int = 1000
    """Input vectors per seed and time."""
    seeds: int = 3
    """Independent weight matrices (and programming draws) to average over."""
    ir_drop: bool = False
    """Apply the IR-drop model with `wire_resistance_ohm`."""
    wire_resistance_ohm: float = 0.35
    """Wire resistance per cell segment for IR drop (Falcone et al. 2025 use 0.35 ohm)."""

    def __post_init__(self) -> None:
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
        wire_resistance_ohm=setup.wire_resistance_ohm if setup.ir_drop else 0.0,
        ir_drop=setup.ir_drop,
    )
    size = f"the device-error study of {setup.rows}x{setup.cols} weights, {setup.vectors} vectors"
    check_footprint(size, device_error_bytes(setup.rows, setup.cols, setup.devices_per_weight,
                                             setup.vectors, setup.seeds, len(times)))  # fmt: skip
    device = replace(device, drift_compensation=comp)
    nrmse = np.empty((setup.seeds, len(times)))
    rmse = np.empty_like(nrmse)
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(setup.seeds)):
        data_rng, prog_rng, read_rng, noise_rng = (np.random.default_rng(s) for s in ss.spawn(4))
        w = np.clip(data_rng.standard_normal((setup.rows, setup.cols)), -1.0, 1.0)
        x_cal = data_rng.uniform(-1.0, 1.0, (setup.vectors, setup.rows))
        x = data_rng.uniform(-1.0, 1.0, (setup.vectors, setup.rows))
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
