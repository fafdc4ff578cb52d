"""Figures a chip's sources publish, for `archsim validate` to compare with the simulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archsim.checks import one_of, positive
from archsim.errors import SpecError

BASES = ("fitted", "predicted")
"""How a published figure relates to the preset's constants (see `PublishedSpec.basis`)."""

SINGLE_STREAM = ("inferences_per_s",)
"""Workload metrics of one inference alone: `archsim validate` times one sample for them."""


@dataclass(frozen=True, slots=True)
class PublishedSpec:
    """A figure the chip's source publishes, for `archsim validate` to check."""

    metric: Literal["peak_tops", "tops_per_w", "tops_per_mm2", "mvm_latency_ns"]
    """peak_tops: all cores doing back-to-back MVMs; tops_per_w: the same over the MVM-path
    energy (array, input drivers, ADCs); tops_per_mm2: peak over total core area;
    mvm_latency_ns: one MVM from input to converted output."""
    value: float
    """The published number in the metric's unit; > 0."""
    basis: Literal["fitted", "predicted"]
    """"fitted": a constant of the preset was derived from this figure, so the row is only a
    consistency check; "predicted": no constant was derived from it, so the row tests the model
    (`archsim validate` exits 1 only when a predicted row fails)."""
    read_mode: str = ""
    """Read mode it was measured in ("" = the preset's)."""
    tolerance: float = 0.05
    """Accepted relative deviation of the simulation; > 0."""
    note: str = ""
    """Explains a gap between simulation and figure, or a dispute about the figure."""

    def __post_init__(self) -> None:
        one_of("metric", self.metric, ("peak_tops", "tops_per_w", "tops_per_mm2", "mvm_latency_ns"))
        one_of("basis", self.basis, BASES)
        positive("value", self.value)
        positive("tolerance", self.tolerance)


@dataclass(frozen=True, slots=True)
class PublishedWorkloadSpec:
    """A whole-network figure published for this chip, compared with a timing-mode run.

    A `disputed` figure is reported with its ratio but never passes or fails (its `note` says
    why); `archsim validate` also checks every such workload against the physical bounds
    ops / peak TOPS and ops / peak TOPS/W."""

    workload: str
    """Zoo name of the network."""
    metric: Literal["period_ns", "latency_ns", "energy_per_sample_pj", "inferences_per_s"]
    """Steady-state time per sample, latency of one sample, energy per sample, or single-
    stream inferences per second (1 / latency of one inference run alone, `SINGLE_STREAM`)."""
    value: float
    """The published number; > 0."""
    basis: Literal["fitted", "predicted"]
    """As `PublishedSpec.basis`."""
    read_mode: str = ""
    """Read mode the figure was measured in ("" = the preset's)."""
    tolerance: float = 0.25
    """Accepted relative deviation of the simulation; > 0 (whole-network figures depend on
    schedules the sources rarely give, hence wider than the peak figures' 5 %)."""
    disputed: bool = False
    """The figure is doubtful (e.g. physically impossible on the chip): shown, never gated."""
    note: str = ""
    """Explains a gap between simulation and figure, or the dispute (with the arithmetic)."""

    def __post_init__(self) -> None:
        one_of(
            "metric",
            self.metric,
            ("period_ns", "latency_ns", "energy_per_sample_pj", "inferences_per_s"),
        )
        one_of("basis", self.basis, BASES)
        positive("value", self.value)
        positive("tolerance", self.tolerance)
        if self.disputed and not self.note:
            raise SpecError("note", "a disputed figure needs a note saying why")
