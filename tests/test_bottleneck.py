"""Busy fraction per resource kind: the bottleneck line of every run report."""

from __future__ import annotations

import pandas as pd

from archsim.config import load_chip
from archsim.run_report import format_metrics
from archsim.sim.bottleneck import describe, kind_busy, kind_of


def _util(rows):
    return pd.DataFrame(rows, columns=["component", "op", "layer", "busy"])


def test_kind_busy_counts_idle_units_and_splits_core_resources():
    """Two cores, one array busy 100 %: AIMC arrays 50 %; core0's LDPU 30 % over two layers
    (0.1 + 0.2) is its own resource; two digital nodes busy 60 % and 80 % over two op classes:
    70 %, the bottleneck kind; one link seen at 10 %."""
    util = _util(
        [
            ("core0", "mvm", "a", 1.0),
            ("core0", "ldpu", "a", 0.1),
            ("core0", "ldpu", "b", 0.2),
            ("mac-array0", "matmul", "qk", 0.5),
            ("mac-array0", "softmax", "sm", 0.1),
            ("mac-array1", "matmul", "av", 0.8),
            ("link0-1", "link", "a", 0.1),
        ]
    )
    kinds = {k.kind: k for k in kind_busy(util, {"core": 2, "mac-array": 2})}
    assert list(kinds) == ["digital mac-array", "AIMC arrays", "LDPUs", "fabric links"]
    head = kinds["digital mac-array"]
    assert (head.units, head.busiest_unit) == (2, "mac-array1")
    assert abs(head.busy - 0.7) < 1e-12 and abs(head.busiest - 0.8) < 1e-12
    assert kinds["AIMC arrays"].busy == 0.5 and kinds["AIMC arrays"].busiest == 1.0
    assert abs(kinds["LDPUs"].busy - 0.15) < 1e-12
    assert kinds["fabric links"].units == 1
    assert describe(list(kinds.values())).startswith(
        "digital mac-array: 70% busy over 2 unit(s) (busiest mac-array1 80%); then AIMC"
    )


def test_kind_of_strips_indices():
    assert [kind_of(c) for c in ("core12", "link4-12", "mac-array3", "offchip")] == [
        "core",
        "link",
        "mac-array",
        "offchip",
    ]


def test_run_report_names_the_bottleneck_kind():
    """A GDPU-bound transformer on HERMES: the kinds line names GDPUs first."""
    from archsim.api import simulate
    from archsim.workload.catalog import load_workload

    m = simulate(load_chip("hermes"), load_workload("bert"), mode="timing", samples=1).metrics
    assert m.resource_kinds[0].kind == "GDPUs" and m.resource_kinds[0].units == 8
    assert all(0 <= k.busy <= 1 for k in m.resource_kinds)
    assert "bottleneck                GDPUs:" in format_metrics(m)
