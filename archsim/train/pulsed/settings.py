"""On-chip (pulsed) training settings: an `[onchip]` table of a TOML preset.

Presets live in `models/onchip/<name>.toml`, one per algorithm set-up (aihwkit's
`build_config`-style ttv2 / cttv2 / agad, its mixed-precision and analog-SGD presets, and the
AGAD set-up of Falcone et al. for the CMO/HfOx device), each with an `[onchip]` table and
optional `[onchip.pulse]`, `[onchip.transfer_pulse]` and `[onchip.io]` sub-tables. A key left
out takes the default below; the defaults are aihwkit's `ChoppedTransferCompound` /
`DynamicTransferCompound` / `PresetIOParameters` values (aihwkit at 4545f11, compounds.py and
presets/utils.py; RA24). Unknown keys, wrong types and out-of-range values raise ConfigError
naming the file and the key path.

Units: learning rates are aihwkit's (count_lr in pulses of size epsilon, GV16); `transfer_every`
counts mat-vec updates (samples) for the transfer family and mini-batches for mixed precision
(aihwkit's `units_in_mbatch` True there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from archsim.checks import in_range, non_negative, positive
from archsim.config import _build, models_dir
from archsim.errors import SpecError
from archsim.kernels.pulse import PulseSettings
from archsim.single_presets import load_single, pop_source, single_table

METHODS = ("analog-sgd", "mp", "ttv2", "cttv2", "agad")
"""The on-chip training algorithms."""

TRANSFER_METHODS = ("ttv2", "cttv2", "agad")
"""The methods with a gradient array A, a digital buffer H and transfers to W."""


@dataclass(frozen=True, slots=True)
class IoSettings:
    """The periphery of an analog read (forward, backward and, with management off, the
    transfer read of A): noise management, DAC, output noise, ADC with bound management.

    Defaults: aihwkit `PresetIOParameters` (presets/utils.py): inp_res 1/126, out_res 1/510,
    out_bound 20, out_noise 0.1, bound management ITERATIVE, noise management ABS_MAX (its
    `build_config` presets use `IOParameters`: out_bound 12, out_noise 0.06).
    """

    enable: bool = True
    """False: exact x @ w (no quantisation, noise or bounds)."""
    dac_steps: int = 126
    """Input quantisation steps over [-1, 1] after noise management (aihwkit inp_res =
    1/dac_steps; 126 = 7-bit DAC); 0 = none."""
    adc_steps: int = 510
    """Output quantisation steps over [-out_bound, out_bound] (aihwkit out_res = 1/adc_steps;
    510 = 9-bit ADC); 0 = none."""
    out_bound: float = 20.0
    """Output saturation, in units of a full-scale input row times one weight unit; 0 = none."""
    out_noise: float = 0.1
    """Std of the Gaussian added to every output before the ADC (same units as out_bound)."""
    noise_management: bool = True
    """ABS_MAX: divide each input row by its max |x| before the DAC, multiply back after."""
    bound_management: bool = True
    """ITERATIVE: halve the inputs of rows whose outputs saturate and read them again (forward
    reads only, as aihwkit)."""
    max_bm_iters: int = 10
    """Bound-management re-reads per row at most (estimate: aihwkit's max_bm_factor 1000 is
    about 2**10)."""

    def __post_init__(self) -> None:
        in_range("dac_steps", self.dac_steps, 0, 1 << 20)
        in_range("adc_steps", self.adc_steps, 0, 1 << 20)
        non_negative("out_bound", self.out_bound)
        non_negative("out_noise", self.out_noise)
        in_range("max_bm_iters", self.max_bm_iters, 0, 30)
        if self.adc_steps and not self.out_bound:
            raise SpecError("out_bound", "expected > 0 when adc_steps is set (the ADC's range)")

    def off(self) -> IoSettings:
        """The same periphery with noise and bound management off (aihwkit's transfer read)."""
        return dataclasses.replace(self, noise_management=False, bound_management=False)


@dataclass(frozen=True, slots=True)
class OnChipSettings:
    """Everything an AnalogTile's algorithm and periphery need (RA24, aihwkit compounds)."""

    method: str = "agad"
    """One of METHODS."""
    fast_lr: float = 0.1
    """count_lr onto A (the transfer family; analog SGD pulses W at the optimiser's lr). aihwkit
    build_config agad/c-ttv2: 0.1."""
    auto_scale: bool = True
    """count_lr = fast_lr * BL * eps_A / (m_x m_d) with EMAs m_x, m_d of max |x|, |d| (aihwkit);
    build_config c-ttv2 and agad: True."""
    auto_momentum: float = 0.99
    """EMA momentum of m_x, m_d over a mini-batch (tau = (1 - auto_momentum) / batch per
    sample); aihwkit default 0.99."""
    scale_fast_lr: bool = False
    """Multiply count_lr by the optimiser's lr (aihwkit Chopped/Dynamic default False)."""
    transfer_lr: float = 1.0
    """lr_T = transfer_lr (* lr if scale_transfer_lr); aihwkit default 1.0."""
    scale_transfer_lr: bool = True
    """aihwkit default True."""
    transfer_every: int = 1
    """n_s: one row read of A every n_s samples (mp: a transfer every n_s mini-batches);
    aihwkit default 1."""
    buffer_granularity: float = 1.0
    """H threshold in units of eps_A (aihwkit default 1.0)."""
    auto_granularity: float = 0.0
    """> 0: the threshold is buffer_granularity * eps_A * auto_granularity / (K * n_s)
    (aihwkit default 0: off)."""
    momentum: float = 0.0
    """H after a threshold crossing: momentum * H (forget_buffer) or H - (1 - momentum) n."""
    forget_buffer: bool = True
    """aihwkit default True."""
    transfer_bl: int = 1
    """Largest pulse count written to one W device per transfer (aihwkit transfer_update BL 1)."""
    step: float = 1.0
    """W pulses per unit of n (aihwkit `step` 1.0; only 1.0 is modelled)."""
    in_chop_prob: float = 0.1
    """Input chopper flip probability per read (cttv2, agad; ttv2: 0). aihwkit default 0.1."""
    in_chop_random: bool = False
    """Flip at random with in_chop_prob (cttv2 default True); False: every n_cp reads."""
    out_chop_prob: float = 0.0
    """Output chopper flip probability per sweep over the rows (aihwkit default 0)."""
    tail_weightening: float = 5.0
    """AGAD: beta = min(tail_weightening / n_cp, 1) of the P EMA (aihwkit default 5)."""
    a_reference_std: float | None = None
    """Reference-offset spread of A's devices (reference_std, in device units; RA24 sigma_r);
    None = the device's own. The weight-programming benchmark sweeps it."""
    a_reference_mean: float | None = None
    """Mean reference offset of A's devices; None = the device's own."""
    lr: float | None = None
    """The optimiser learning rate of the preset's set-up (the CLI's default for --lr)."""
    batch_size: int | None = None
    """The mini-batch size of the preset's set-up (the CLI's default for --batch-size)."""
    pulse: PulseSettings = field(default_factory=PulseSettings)
    """Pulse trains of the gradient update (onto A; onto W for analog-sgd, mp)."""
    io: IoSettings = field(default_factory=IoSettings)
    """Forward and backward periphery (the transfer read uses `io.off()`)."""
    name: str = "default"
    description: str = ""
    source: str = ""
    """Where the preset's numbers come from (docs/sources.md keys)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SpecError("method", f"expected one of {', '.join(METHODS)}, got {self.method!r}")
        positive("fast_lr", self.fast_lr)
        in_range("auto_momentum", self.auto_momentum, 0.0, 1.0)
        positive("transfer_lr", self.transfer_lr)
        in_range("transfer_every", self.transfer_every, 1, 1 << 30)
        positive("buffer_granularity", self.buffer_granularity)
        non_negative("auto_granularity", self.auto_granularity)
        in_range("momentum", self.momentum, 0.0, 1.0)
        in_range("transfer_bl", self.transfer_bl, 1, 1 << 15)
        if self.step != 1.0:
            raise SpecError("step", f"only 1.0 is modelled, got {self.step}")
        in_range("in_chop_prob", self.in_chop_prob, 0.0, 1.0)
        in_range("out_chop_prob", self.out_chop_prob, 0.0, 1.0)
        non_negative("tail_weightening", self.tail_weightening)
        for key in ("a_reference_std", "a_reference_mean"):
            if getattr(self, key) is not None:
                in_range(key, getattr(self, key))
        if self.a_reference_std is not None:
            non_negative("a_reference_std", self.a_reference_std)
        if self.lr is not None:
            positive("lr", self.lr)
        if self.batch_size is not None:
            in_range("batch_size", self.batch_size, 1)

    @property
    def n_cp(self) -> int:
        """Reads of a row between two chopper flips: max(ceil(1/in_chop_prob), 2) (aihwkit)."""
        if self.in_chop_prob <= 0:
            return 0
        return max(-int(-1 // self.in_chop_prob), 2)


def onchip_presets() -> list[str]:
    """Names of the shipped on-chip training presets (`models/onchip/*.toml`)."""
    return sorted(p.stem for p in (models_dir() / "onchip").glob("*.toml"))


def load_onchip(name_or_path: str | Path) -> OnChipSettings:
    """Read the `[onchip]` table of an on-chip training preset, by name or path.

    Raises:
        ConfigError: missing or malformed file, or a key that is unknown, mistyped or out of
            range; the message names the file and the key path.
    """
    directory = models_dir() / "onchip"
    kind = "on-chip training"
    return load_single(name_or_path, directory, kind, onchip_presets(), onchip_from_table)


def onchip_from_table(raw: dict, default_name: str = "default") -> OnChipSettings:
    """OnChipSettings from a parsed TOML document holding an `[onchip]` table.

    Raises:
        SpecError: as `load_onchip`, with the key path only.
    """
    table = single_table(raw, "onchip")
    source = pop_source(table, "onchip")
    table.setdefault("name", default_name)
    settings = _build(OnChipSettings, table, "onchip", [])
    return dataclasses.replace(settings, source=source)
