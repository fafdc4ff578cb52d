"""Everything the timed run did, as plain rows converted to a DataFrame once at the end.

A row is (t0_ns, t1_ns, component, op, layer, sample, qty): `component` names the resource
("core12", "link3-4", "gdpu0", "mac-array0", "offchip"), `op` what happened ("mvm", "adc",
"ldpu", "gdpu", a digital node's op class "matmul" / "softmax" / "norm" / "elementwise", "link",
"offchip_in", "offchip_out", "spill", "sram_read", "sram_write"), `qty` how much (block-MVMs,
MACs, element ops or bytes). Energy, utilisation and the trace are all computed from these rows.
"""

from __future__ import annotations

import pandas as pd

from archsim.spec.digital import OP_CLASSES

COLUMNS = ("t0_ns", "t1_ns", "component", "op", "layer", "sample", "qty")

RESOURCE_OF_OP = {
    "mvm": "array",
    "adc": "ADC bank",
    "ldpu": "LDPU",
    "gdpu": "unit",
    **dict.fromkeys(OP_CLASSES, "unit"),  # a digital node runs one op at a time, any class
    "spill": "port",
    "link": "port",
    "offchip_in": "port",
    "offchip_out": "port",
    "weights_in": "port",
    "program": "programming",
    "sram_read": "SRAM",
    "sram_write": "SRAM",
}
"""Which resource of its component an op's row holds: a core's array, ADC bank and LDPU are
separate SimPy resources (capacity 1 each), so rows of one (component, resource) never
overlap in time, while a core's "mvm" and "ldpu" rows do (post-processing of one MVM runs
while the next integrates)."""


class Recorder:
    """Appends event rows; `to_frame` builds the table once."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def record(
        self, t0: float, t1: float, component: str, op: str, layer: str, sample: int, qty: float
    ) -> None:
        self.rows.append((t0, t1, component, op, layer, sample, qty))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.rows, columns=COLUMNS)
