"""Energy stays physical: no run without data beats the chip's published peak efficiency, and
static power is part of every run's energy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from archsim.api import simulate
from archsim.config import load_chip, models_dir
from archsim.errors import MappingError
from archsim.mapping import map_workload
from archsim.sim.metrics import ASSUMED_ACTIVITY
from archsim.validate import peak_figures
from archsim.workload.catalog import catalog, load_workload
from archsim.workload.zoo import mlp


def _in_mode(chip, mode):
    return dataclasses.replace(chip, input=dataclasses.replace(chip.input, read_mode=mode))


def _published(chip, metric, mode):
    return next(
        p.value
        for p in chip.published
        if p.metric == metric and (p.read_mode or chip.input.read_mode) == mode
    )


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


def test_every_preset_has_a_sourced_static_power():
    for path in sorted(models_dir().glob("*.toml")):
        chip = load_chip(path.stem)
        assert chip.cores.static_power_mw > 0, path.name
        assert "static power" in dict(chip.sources)["cores"], path.name


def test_one_mvm_on_the_tiny_chip_costs_what_the_preset_says():
    """One sample of a 32 x 32 linear layer on tests/data/tiny-chip.toml, timed with
    full-scale inputs, by hand from the preset:
    time: 32 B in at 8 B/ns (4 ns) + 100 ns off-chip latency = 104; MVM: 32 LSB x 1 ns + 2 ns
    overhead + 4 ADC rounds x 5 ns = 54 -> 158; LDPU: 32 ops at 2 ops/ns = 16 -> 174; 32 B out
    (4 ns) + 100 ns = 278 ns.
    energy (pJ): array and drivers 32 rows x 31 LSB x 0.0824 = 81.7408 each; ADC 32 x 31.4 =
    1004.8; LDPU 32 x 0.21 = 6.72; SRAM (32 + 32) B x 0.18 = 11.52; off-chip (32 + 32) B x
    1.6 = 102.4; static 4 cores x 1 mW x 278 ns = 1112; total 2400.9216."""
    chip = load_chip(str(Path(__file__).parent / "data" / "tiny-chip.toml"))
    net = mlp(np.random.default_rng(0), sizes=(32, 32))
    m = simulate(chip, net, mode="timing", samples=1).metrics
    assert m.latency_ns == pytest.approx(278.0, rel=1e-12)
    want = {
        "array": 81.7408,
        "dac": 81.7408,
        "adc": 1004.8,
        "ldpu": 6.72,
        "sram": 11.52,
        "offchip": 102.4,
        "static": 1112.0,
    }
    got = {k: v for k, v in m.energy_breakdown_pj.items() if v}
    assert got == pytest.approx(want, rel=1e-9)
    assert m.energy_per_sample_pj == pytest.approx(2400.9216, rel=1e-9)


def test_energy_is_dynamic_plus_static_power_times_time(hermes):
    """Static power runs on every core for the whole run: doubling it doubles the static
    part, leaves the dynamic part alone and adds exactly cores x power x run time to the
    run's energy (average power x run time)."""
    workload = load_workload("digits-mlp")
    runs = {}
    for mw in (hermes.cores.static_power_mw, 2 * hermes.cores.static_power_mw):
        cores = dataclasses.replace(hermes.cores, static_power_mw=mw)
        chip = dataclasses.replace(hermes, cores=cores)
        runs[mw] = simulate(chip, workload, mode="timing", samples=8).metrics
    (p1, m1), (p2, _) = runs.items()
    assert p1 > 0
    static = {p: m.energy_breakdown_pj["static"] for p, m in runs.items()}
    assert static[p1] > 0
    assert static[p2] == pytest.approx(2 * static[p1])
    dynamic = {p: m.energy_per_sample_pj - static[p] for p, m in runs.items()}
    assert dynamic[p1] == pytest.approx(dynamic[p2])
    total = {p: m.average_power_w * m.total_ns * 1e3 for p, m in runs.items()}  # W x ns -> pJ
    assert total[p2] - total[p1] == pytest.approx(hermes.cores.count * p1 * m1.total_ns)
