"""Energy stays physical: no run without data beats the chip's published peak efficiency, and
static power is part of every run's energy."""

from __future__ import annotations

import dataclasses

import pytest

from archsim.api import simulate
from archsim.errors import MappingError
from archsim.mapping import map_workload
from archsim.sim.metrics import ASSUMED_ACTIVITY
from archsim.validate import peak_figures
from archsim.workload.catalog import catalog, load_workload


def _in_mode(chip, mode):
    return dataclasses.replace(chip, input=dataclasses.replace(chip.input, read_mode=mode))


def _published(chip, metric, mode):
    return next(p.value for p in chip.published if p.metric == metric and
                (p.read_mode or chip.input.read_mode) == mode)  # fmt: skip


def _fitting(chip):
    """The zoo workloads that map on `chip` without weight reloads."""
    out = []
    for name in sorted(catalog()):
        workload = load_workload(name)
        try:
            map_workload(workload, chip)
        except MappingError:
            continue
        out.append(workload)
    return out


@pytest.mark.parametrize("mode", ["1-phase", "4-phase"])
def test_timed_efficiency_never_beats_the_published_peak(hermes, mode):
    """Without data the energy assumes full-scale inputs, the condition under which the
    preset's energies give the published peak: every zoo workload that fits stays below it
    (and below the model's own peak), in both read modes."""
    chip = _in_mode(hermes, mode)
    published = _published(chip, "tops_per_w", mode)
    model_peak = peak_figures(chip).tops_per_w
    workloads = _fitting(chip)
    assert {"resnet9", "lstm", "mlp"} <= {w.name for w in workloads}
    for workload in workloads:
        m = simulate(chip, workload, mode="timing", samples=2).metrics
        assert m.tops_per_w <= published * 1.001, (workload.name, m.tops_per_w)
        assert m.tops_per_w <= model_peak * 1.0001, (workload.name, m.tops_per_w)
        assert "assumed 1.00" in m.activity_basis


def test_assumed_activity_is_the_peak_condition(hermes):
    """One owner of the default, at full scale: the model's peak TOPS/W is reached at it."""
    assert ASSUMED_ACTIVITY == 1.0
    peak = peak_figures(hermes).tops_per_w
    assert abs(peak / _published(hermes, "tops_per_w", "1-phase") - 1) < 0.01


def test_measured_activity_is_reported_as_measured(hermes):
    result = simulate(hermes, load_workload("digits-mlp"), mode="full", samples=4)
    assert result.metrics.activity_basis.startswith("measured on data for 2 layers")
