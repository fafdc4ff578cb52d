"""Which kind of resource limits a run: busy fractions per resource kind.

A resource is a component of the recorder, split by op for a core (its array, ADC bank and
LDPU are three resources) and the off-chip port; its kind is the component's name without its
index (and the op, for those split). A kind's busy fraction is the busy time of all
its units over (units x span), so an idle unit counts: 16 AIMC arrays of which one works all
the time are 1/16 busy as a kind (the busiest unit is reported beside it).

Simplifications: the units of a kind are the chip's count where the chip says it (cores, GDPUs,
digital nodes) and otherwise the units that recorded work (fabric links, the off-chip port);
zero-time rows (SRAM accesses) are not work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

KIND_NAMES = {
    ("core", "mvm"): "AIMC arrays",
    ("core", "adc"): "ADCs",
    ("core", "ldpu"): "LDPUs",
    ("link", ""): "fabric links",
    ("offchip", "offchip_in"): "off-chip in",
    ("offchip", "offchip_out"): "off-chip out",
    ("gdpu", ""): "GDPUs",
}
"""Readable names of the resource kinds the engine records; any other kind is shown as
"<component> <op>" (a digital node flavour: "digital <kind>")."""


@dataclass(frozen=True, slots=True)
class KindBusy:
    """Busy fraction of one resource kind."""

    kind: str
    units: int
    busy: float
    """Busy time of all units over units x span; 0..1."""
    busiest_unit: str
    busiest: float
    """Busy fraction of the busiest unit; 0..1."""


def kind_of(component: str) -> str:
    """A component's name without its index: core12 -> core, link4-12 -> link."""
    return re.sub(r"[\d-]+$", "", component)


def kind_busy(utilisation: pd.DataFrame, units: dict[str, int]) -> list[KindBusy]:
    """Busy fraction per resource kind, busiest first.

    Args:
        utilisation: busy fraction per (component, op, layer) (`Metrics.utilisation`).
        units: units of a component kind on the chip ("core": 16, "mac-array": 3); kinds not
            in it count the units that recorded work.
    """
    if not len(utilisation):
        return []
    df = utilisation.assign(stem=utilisation.component.map(kind_of))
    # a core has three resources (array, ADC bank, LDPU), the off-chip port two directions;
    # any other component is one resource whatever op classes it runs
    df["resource"] = df.op.where(df.stem.isin(SPLIT_BY_OP), "")
    per_unit = df.groupby(["stem", "resource", "component"]).busy.sum().clip(upper=1.0)
    out = []
    for (stem, resource), group in per_unit.groupby(level=[0, 1]):
        n = max(units.get(stem, 0), len(group))
        name = KIND_NAMES.get((stem, resource)) or _name(stem, units)
        top = group.droplevel([0, 1]).idxmax()
        out.append(KindBusy(name, n, float(group.sum()) / n, top, float(group.max())))
    return sorted(out, key=lambda k: -k.busy)


SPLIT_BY_OP = ("core", "offchip")
"""Component kinds whose ops use different resources of the component."""


def _name(stem: str, units: dict[str, int]) -> str:
    if stem in ("gdpu", "link"):
        return KIND_NAMES[(stem, "")]
    return f"digital {stem}" if stem in units else stem


def describe(kinds: list[KindBusy], shown: int = 4) -> str:
    """The bottleneck kind and the next ones, one line."""
    if not kinds:
        return "-"
    head = kinds[0]
    text = (
        f"{head.kind}: {head.busy:.0%} busy over {head.units} unit(s) "
        f"(busiest {head.busiest_unit} {head.busiest:.0%})"
    )
    rest = ", ".join(f"{k.kind} {k.busy:.0%}" for k in kinds[1:shown])
    return text + (f"; then {rest}" if rest else "")
