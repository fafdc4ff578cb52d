"""Packing convolution groups several to a crossbar: placement, counts, same numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.api import simulate
from archsim.mapping import map_workload
from archsim.mapping.lowering import lower
from archsim.mapping.mapper import crossbars, packing
from archsim.mapping.segments import map_segments
from tests.nets import grouped_net, shufflenet


@pytest.fixture(scope="module")
def small_chip(hermes):
    """HERMES with 32 x 32 crossbars, so the small network's groups pack and also fit unpacked."""
    xb = dataclasses.replace(hermes.crossbar, rows=32, cols=32)
    return dataclasses.replace(hermes, crossbar=xb, adc=dataclasses.replace(hermes.adc, count=32))


@pytest.fixture(scope="module")
def exact_chip(small_chip):
    """The small chip with converters off and FP32 digital units: an ideal device gives float."""
    return dataclasses.replace(
        small_chip,
        input=dataclasses.replace(small_chip.input, bits=0),
        adc=dataclasses.replace(small_chip.adc, bits=0),
        ldpu=dataclasses.replace(small_chip.ldpu, precision="fp32"),
    )


def test_every_group_is_placed_once_in_slots_that_fit(small_chip):
    """Packed blocks cover each replica's groups exactly once; a block's slots fit the crossbar
    and its MVMs are its groups over the groups one diagonal computes."""
    w = grouped_net()
    m = map_workload(w, small_chip, replication="balanced")
    for lm in m.layers:
        mx = lm.matrix
        if lm.groups_per_crossbar == 1:
            continue
        for rep in range(lm.replicas):
            seen = np.zeros(mx.groups, dtype=int)
            for b in (b for b in lm.blocks if b.replica == rep):
                seen[b.group : b.group + b.groups] += 1
                assert b.rows <= 32 and b.cols <= 32
                assert b.rows * b.cols >= b.groups * mx.k * mx.n / b.mvms
                assert b.mvms == -(-b.groups // lm.groups_per_mvm)
            assert np.all(seen == 1), lm.name
    dw = m.layer("dw")
    assert dw.groups_per_crossbar == 24 and dw.groups_per_mvm == 3  # 3 x 32 slots of 9 x 1
    assert m.layer("gc2").groups_per_crossbar == 1  # 108 x 16 groups span 4 crossbars each


def test_shufflenet_needs_fewer_than_100_crossbars(hermes):
    """The light_shufflenet shapes: 4,605 crossbars one group each, 79 packed (depthwise 3x3:
    28 x 256 slots of 9 x 1; 68 x 68 groups: 3 x 3 slots; 136 x 136 groups: one per crossbar)."""
    w = shufflenet()
    assert w.weight_count() == 1_365_464
    ms = lower(w)
    assert sum(crossbars(m, 256, 256) for m in ms) == 4605
    assert sum(crossbars(m, 256, 256, packing(m, 256, 256)[0]) for m in ms) == 79
    reload = dataclasses.replace(
        hermes, mapping=dataclasses.replace(hermes.mapping, weight_reload=True)
    )
    parts = map_segments(w, reload, replication="none")
    assert sum(p.cores_used for p in parts) == 79
    assert len(parts) == 2


def test_packed_outputs_equal_unpacked_outputs_with_noise_off(exact_chip, ideal):
    """Cells outside a packed group's slot hold no weight, so packing changes no number."""
    w = grouped_net()
    outs = []
    for pack in (True, False):
        m = map_workload(w, exact_chip, replication="none", pack=pack)
        r = simulate(
            exact_chip, w, mode="functional", samples=8, device=ideal, t_inference_s=0.0, mapping=m
        )
        outs.append(r.outputs)
    assert np.array_equal(outs[0], outs[1])
    assert np.allclose(outs[0], r.accuracy.reference, rtol=1e-4, atol=1e-5)


def test_packing_conserves_work_and_energy(small_chip):
    """Same MACs, driven rows, conversions and array/DAC/ADC energy packed or not; the crossbar
    MVMs drop from one per group to one per diagonal of packed groups."""
    w = grouped_net()
    runs = {}
    for pack in (True, False):
        m = map_workload(w, small_chip, replication="none", pack=pack)
        runs[pack] = (m, simulate(small_chip, w, mode="timing", samples=2, mapping=m).metrics)
    (mp, packed), (mu, plain) = runs[True], runs[False]
    assert packed.macs == plain.macs
    assert packed.conversions == plain.conversions
    for part in ("array", "dac", "adc"):
        assert packed.energy_breakdown_pj[part] == pytest.approx(plain.energy_breakdown_pj[part])
    want = {True: 0, False: 0}
    for pack, m in ((True, mp), (False, mu)):
        want[pack] = 2 * sum(lm.matrix.mvms_per_sample * lm.mvms_per_position for lm in m.layers)
    assert packed.block_mvms == want[True] < plain.block_mvms == want[False]
    # gc1: 4 groups, 1 MVM instead of 4; dw: 24 groups, 8 MVMs (3 per diagonal) instead of 24
    assert mp.layer("dw").mvms_per_position == 8 and mu.layer("dw").mvms_per_position == 24


def test_map_report_shows_packed_groups(small_chip):
    from archsim.mapping.report import format_mapping, mapping_rows

    m = map_workload(grouped_net(), small_chip, replication="none")
    rows = {r["layer"]: r for r in mapping_rows(m)}
    assert rows["dw"]["packed"] == "24/xbar 3/MVM" and rows["dw"]["cores"] == 1
    assert rows["gc2"]["packed"] == "-"
    text = format_mapping(m)
    assert "groups packed" in text.splitlines()[0]
    assert "2 grouped layers packed: 2 crossbars instead of 28 (one per group)" in text


@pytest.mark.parametrize(
    "n, r, c, want",
    [
        (4, 3, 3, (3, 3)),
        (112, 28, 256, (28, 28)),
        (1000, 28, 256, (28, 36)),
        (4, 10, 2, (2, 2)),
        (2, 28, 256, (2, 2)),
    ],
)
def test_slots_used_hold_the_diagonals(n, r, c, want):
    """n groups on r x c slots: d = min(n, shorter side) groups per diagonal, ceil(n / d)
    diagonals as cyclic shifts in a d x max(d, ceil(n / d)) corner of the grid."""
    from archsim.mapping.mapper import _slots_used

    a, b = _slots_used(n, r, c)
    assert (a, b) == want
    assert a * b >= n and a <= r and b <= c
