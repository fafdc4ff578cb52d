"""What a chip needs to be timed for on-chip (pulsed) training: the optional `[training]` table.

The forward, backward and row-read MVMs are the chip's inference MVMs (`CoreTiming.of`, the
array/DAC/ADC energies); this table adds what only training uses: the update pulses on the
arrays and the digital unit that accumulates the gradient read from them (H, P, choppers,
mixed precision's chi). Timed and costed by `archsim.sim.training`.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsim.checks import in_range, non_negative, one_of, positive

TRAINING_PRECISIONS = ("fp8", "fp16", "fp32")
"""Arithmetic of the training digital unit; it names what `digital_flops_per_ns` and
`digital_energy_pj_per_flop` were given for (the functional model of training runs float32)."""


@dataclass(frozen=True, slots=True)
class TrainingSpec:
    """Update pulses and the digital training unit of a chip."""

    pulse_ns: float
    """Duration of one update pulse slot: a pulse train of l slots on an array takes l x
    pulse_ns, all lines of all arrays in parallel; > 0."""
    digital_flops_per_ns: float
    """Throughput of one digital training unit (1 TFLOP/s = 1000 FLOP/ns); > 0."""
    arrays_per_digital_unit: int
    """Crossbar tiles that share one digital unit (contend for it when they read together);
    >= 1."""
    energy_pj_per_device_pulse: float = 0.0
    """Energy of one pulse (coincidence) at one device; >= 0."""
    energy_pj_per_line_pulse: float = 0.0
    """Driver energy of one pulse slot on one line (word or bit line); >= 0."""
    digital_energy_pj_per_flop: float = 0.0
    """Energy of one FLOP of the digital training unit; >= 0."""
    digital_precision: str = "fp8"
    """Arithmetic the unit's throughput and energy are for: one of TRAINING_PRECISIONS."""

    def __post_init__(self) -> None:
        positive("pulse_ns", self.pulse_ns)
        positive("digital_flops_per_ns", self.digital_flops_per_ns)
        in_range("arrays_per_digital_unit", self.arrays_per_digital_unit, 1, 1 << 16)
        non_negative("energy_pj_per_device_pulse", self.energy_pj_per_device_pulse)
        non_negative("energy_pj_per_line_pulse", self.energy_pj_per_line_pulse)
        non_negative("digital_energy_pj_per_flop", self.digital_energy_pj_per_flop)
        one_of("digital_precision", self.digital_precision, TRAINING_PRECISIONS)
