"""The HERMES image-captioning LSTM and the per-step metrics of recurrent workloads."""

from __future__ import annotations

import re

import pytest

from archsim.api import simulate
from archsim.mapping import map_workload
from archsim.workload.catalog import load_workload

PUBLISHED_WEIGHTS = 4_080_384  # LG25 "Image caption generation"


def test_caption_lstm_maps_on_all_64_hermes_cores(hermes):
    mapping = map_workload(load_workload("caption-lstm"), hermes)
    weights = sum(lm.matrix.weights for lm in mapping.layers)
    assert abs(weights - PUBLISHED_WEIGHTS) / PUBLISHED_WEIGHTS < 1e-4
    assert {lm.matrix.kind for lm in mapping.layers} == {"lstm", "linear"}
    assert len({b.core for lm in mapping.layers for b in lm.blocks}) == hermes.cores.count == 64


def test_step_metrics_share_the_sample_over_its_steps(hermes):
    m = simulate(hermes, load_workload("lstm"), mode="timing", samples=2).metrics
    assert m.steps_per_sample == 32
    assert m.step_energy_pj == pytest.approx(m.energy_per_sample_pj / 32)
    assert m.step_latency_ns == pytest.approx(m.latency_ns / 32)
    assert m.step_period_ns == pytest.approx(m.period_ns / 32)
    ff = simulate(hermes, load_workload("digits-mlp"), mode="timing", samples=2).metrics
    assert ff.steps_per_sample == 0 and ff.step_energy_pj is None


def test_simulate_prints_per_step_latency_and_energy(cli):
    code, out, _ = cli(
        "simulate", "--workload", "caption-lstm", "--mode", "timing", "--stream", "2"
    )
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("per time step"))
    latency_us, period_us, energy_uj = map(float, re.findall(r"([\d.]+) u[sJ]", line))
    assert "16 recurrent steps per sample" in line
    # never below one MVM of the recurrent chain per step, never below ops / peak efficiency
    ops_per_step = 2 * 4_080_128
    assert latency_us * 1e3 >= 133.0 and period_us > 0
    assert energy_uj * 1e6 >= ops_per_step / 9.76
    assert "64 of 64 cores" in out
