"""Hardware-aware (HWA) training settings: a `[training]` table of a TOML preset.

Presets live in `models/training/<name>.toml` (one per device family; `hermes` for the PCM of
the HERMES chip, `reram-wan2022` for a noisier ReRAM), each with a single `[training]` table and an
optional `[training.input_range]` sub-table. A key left out takes the default below, and every
default names its source: aihwkit's `StandardHWATrainingPreset` (the RA23 recipe), AIHWKIT-
Lightning (BU24) or the HERMES training notes (LG25), or says "estimate". Unknown keys, wrong
types and out-of-range values raise `ConfigError` naming the file and the key path, e.g.
`models/training/hermes.toml: training.dac_bits: expected 0 (ideal, no quantization) or 2..16`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from archsim.checks import converter_bits, in_range, non_negative, positive
from archsim.config import (
    _build,
    _resolve,
    _source,
    _unknown,
    models_dir,
    override_table,
    read_toml,
)
from archsim.errors import ConfigError, SpecError
from archsim.single_presets import single_table
from archsim.spec import ChipSpec

Scope = Literal["tensor", "column"]
"""Over what a weight maximum or standard deviation is taken: the whole matrix (of one crossbar
block, for max |w|) or each output column separately."""


@dataclass(frozen=True, slots=True)
class InputRangeSettings:
    """Learned input range beta per crossbar block: inputs are clamped to +-beta before the DAC.

    Defaults: AIHWKIT-Lightning's `InputRangeParameter` (BU24), which aihwkit's
    StandardHWATrainingPreset also uses (decay 0.001, input_min_percentage 0.95, init 3.0 from
    100 batches).
    """

    enable: bool = True
    """Learn beta (init from data, gradient, decay). False: beta is max |x| of each block and
    batch (no clipping, no gradient), as aihwkit's ABS_MAX noise management. Default on: the
    StandardHWATrainingPreset learns input ranges."""
    init_value: float = 3.0
    """beta before any data is seen, in input units; > 0. BU24 default."""
    init_from_data: int = 100
    """Forward calls per block whose inputs set beta as a running mean of init_std_alpha x
    std(x); >= 0. BU24 default (StandardHWATrainingPreset: 100 batches)."""
    init_std_alpha: float = 3.0
    """Multiple of the input std that beta starts at; > 0. BU24 default."""
    decay: float = 0.001
    """Gradient pull on beta towards 0 (times beta) while fewer than 1 - input_min_percentage of
    the block's inputs clip; >= 0. BU24 default, as StandardHWATrainingPreset."""
    input_min_percentage: float = 0.95
    """Fraction of unclipped inputs above which the decay acts; 0..1. BU24 default."""

    def __post_init__(self) -> None:
        positive("init_value", self.init_value)
        in_range("init_from_data", self.init_from_data, 0)
        positive("init_std_alpha", self.init_std_alpha)
        non_negative("decay", self.decay)
        in_range("input_min_percentage", self.input_min_percentage, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class HwaSettings:
    """What the HWA forward pass injects (archsim.train.hwa.HwaProduct), per crossbar block.

    Units: weight noise relative to max |w| of the block; output noise and the ADC bound relative
    to beta x w_max, the output of one full-scale row at the largest weight.
    """

    weight_noise: float = 0.0175
    """Std of the Gaussian added to every weight in each training forward, relative to max |w|
    (per `weight_noise_scope`); >= 0. aihwkit StandardHWATrainingPreset w_noise 0.0175 (there of
    PCM_READ type, here additive; the scale is kept)."""
    weight_noise_scope: Scope = "tensor"
    """max |w| of the whole block ("tensor") or of each column. BU24 ADD_NORMAL: per tensor."""
    output_noise: float = 0.04
    """Std of the Gaussian added to each block's outputs in training, relative to beta x w_max;
    >= 0. aihwkit StandardHWATrainingPreset out_noise 0.04. Lightning divides it by
    sqrt(blocks); here each block keeps its own noise, as each crossbar adds its own."""
    input_range: InputRangeSettings = field(default_factory=InputRangeSettings)
    """Learned input ranges (BU24)."""
    clip_sigma: float = 2.5
    """After every optimizer step, clamp weights to +-clip_sigma x std(w) (per `clip_scope`);
    0 = no clipping. BU24 App. B: 2.5 per tensor (typical 2.0-3.5)."""
    clip_scope: Scope = "tensor"
    """std over the whole weight or per output column; also sets whether w_max of the output
    noise and the ADC bound is per block or per column (as Lightning ties them). BU24 App. B:
    per tensor."""
    dac_bits: int = 8
    """Input DAC width including the sign (2**(bits-1) - 1 levels per polarity over +-beta),
    straight-through gradient; 0 = no quantisation. StandardHWATrainingPreset inp_res 254 =
    8 bits."""
    adc_bits: int = 8
    """Output ADC width including the sign over +-out_bound x beta x w_max, straight-through
    gradient; 0 = none (needs out_bound > 0 otherwise). StandardHWATrainingPreset out_res 254 =
    8 bits."""
    out_bound: float = 10.0
    """ADC range in units of beta x w_max; outputs beyond it saturate (zero gradient); 0 = no
    bound. StandardHWATrainingPreset out_bound 10."""
    tile_rows: int | None = None
    """Rows of one crossbar block (the K extent of one input range); None = the chip's crossbar
    rows (`rows_for`). StandardHWATrainingPreset maps to 512-row tiles; archsim follows the chip."""
    name: str = "default"
    """Preset name (the file stem)."""
    description: str = ""
    sources: tuple[tuple[str, str], ...] = ()
    """(table, source string) pairs read from the preset."""

    def __post_init__(self) -> None:
        non_negative("weight_noise", self.weight_noise)
        non_negative("output_noise", self.output_noise)
        non_negative("clip_sigma", self.clip_sigma)
        converter_bits("dac_bits", self.dac_bits)
        converter_bits("adc_bits", self.adc_bits)
        non_negative("out_bound", self.out_bound)
        if self.adc_bits and not self.out_bound:
            raise SpecError("out_bound", "expected > 0 when adc_bits is set (the ADC's range)")
        if self.tile_rows is not None:
            in_range("tile_rows", self.tile_rows, 1)

    def rows_for(self, chip: ChipSpec) -> int:
        """Rows of one crossbar block: `tile_rows`, else the chip's crossbar rows."""
        return self.tile_rows if self.tile_rows is not None else chip.crossbar.rows

    def without_noise(self) -> HwaSettings:
        """The same settings with weight and output noise off (quantisers and ranges kept)."""
        return dataclasses.replace(self, weight_noise=0.0, output_noise=0.0)


_META = ("name", "description")


def training_presets() -> list[str]:
    """Names of the shipped training presets (`models/training/*.toml`)."""
    return sorted(p.stem for p in (models_dir() / "training").glob("*.toml"))


def load_training(
    name_or_path: str | Path, overrides: Mapping[str, Any] | None = None
) -> HwaSettings:
    """Read the `[training]` table of a training preset, by name or path.

    `overrides` replace values by dotted key path as written in the file, as for
    `archsim.config.load_chip`: {"training.weight_noise": 0.05, "training.input_range.decay": 0}.

    Raises:
        ConfigError: missing or malformed file, a table other than [training], or a key that is
            unknown, mistyped or out of range; the message names the file and the key path (and
            the overrides, if any).
    """
    path = _resolve(name_or_path, models_dir() / "training", "training", training_presets())
    raw = read_toml(path)
    given = ""
    if overrides:
        given = " (with " + ", ".join(f"{k} = {v!r}" for k, v in overrides.items()) + ")"
        try:
            raw = override_table(raw, overrides)
        except SpecError as e:
            raise ConfigError(f"{path}: override {e}") from None
    try:
        return settings_from_table(raw, path.stem)
    except SpecError as e:
        raise ConfigError(f"{path}: {e}{given}") from None


def settings_from_table(raw: dict, default_name: str = "default") -> HwaSettings:
    """HwaSettings from a parsed TOML document holding a `[training]` table.

    Raises:
        SpecError: as `load_training`, with the key path only.
    """
    table = single_table(raw, "training")
    sources: list[tuple[str, str]] = []
    meta = {k: table.pop(k) for k in _META if k in table}
    for key, value in meta.items():
        if not isinstance(value, str):
            raise SpecError(f"training.{key}", f"expected a string, got {value!r}")
    allowed = _allowed()
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise _unknown("training", unknown[0], allowed)
    if "source" in table:
        sources.append(("training", _source(table.pop("source"), "training.source")))
    settings = _build(HwaSettings, table, "training", sources)
    meta.setdefault("name", default_name)
    return dataclasses.replace(settings, **meta, sources=tuple(sources))


def _allowed() -> list[str]:
    names = {f.name for f in dataclasses.fields(HwaSettings)} - {"sources"}
    return sorted(names | {"source"})
