"""The IEDM-2024 heterogeneous NPU presets (BOY24): structure and sources, the run's MAC basis
on a shortened MobileBERT, the node-count ordering, the fit, and (slow) the three published
inferences/s rows at seq 384."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from archsim.api import default_stream, simulate
from archsim.config import load_chip
from archsim.run_report import format_metrics
from archsim.workload.catalog import load_workload
from archsim.workload.mobilebert import mobilebert_edgetpu_xs

PRESETS = {"npu-iedm2024-2da": 2, "npu-iedm2024-3da": 3, "npu-iedm2024-5da": 5}
PUBLISHED = {"npu-iedm2024-2da": 15.3, "npu-iedm2024-3da": 29.3, "npu-iedm2024-5da": 51.6}
"""BOY24 inferences/s of MobileBERT-EdgeTPU-XS-quant (LG25 slides)."""
BLOCK_WEIGHTS = 2_818_048


def _short(seq: int = 32, blocks: int = 1):
    return mobilebert_edgetpu_xs(np.random.default_rng(0), seq=seq, blocks=blocks)


def _fit_module():
    path = Path(__file__).resolve().parents[1] / "tools" / "fit_npu.py"
    spec = importlib.util.spec_from_file_location("fit_npu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_with_sources(name):
    chip = load_chip(name)
    assert chip.cores.count == 16 and chip.digital_node_count == PRESETS[name]
    xb = chip.crossbar
    assert (xb.rows, xb.cols, xb.weight_sets, xb.devices_per_weight) == (512, 512, 8, 2)
    assert chip.weight_capacity == 33_554_432  # TSAI25's 33 M PCM weights [D]
    assert chip.gdpu.count == 0 and chip.mapping.digital_policy == "rows"
    node = chip.digital_nodes[0]
    assert node.kind == "mac-array" and node.clock_ghz == 0.5
    # the class rates are tied to the fitted MAC rate: vector lanes = macs / 2
    assert node.elementwise_per_cycle == pytest.approx(node.macs_per_cycle / 2, rel=1e-9)
    assert node.norm_per_cycle == pytest.approx(node.macs_per_cycle / 4, rel=1e-9)
    assert node.softmax_per_cycle == pytest.approx(node.macs_per_cycle / 8, rel=1e-9)
    sources = dict(chip.sources)
    for key in ("chip", "cores", "crossbar", "input", "adc", "ldpu", "gdpu", "fabric", "memory"):
        assert sources[key].strip(), key
    assert "digital_nodes[0]" in sources and "published_workloads[0]" in sources
    (row,) = chip.published_workloads
    assert (row.workload, row.metric, row.value) == (
        "mobilebert-edgetpu-xs",
        "inferences_per_s",
        PUBLISHED[name],
    )
    assert row.basis == ("fitted" if name.endswith("3da") else "predicted")


def test_derived_presets_change_only_the_node_count():
    """-2da and -5da take every constant from -3da (`base`, arrays of tables merged by kind)."""
    three = load_chip("npu-iedm2024-3da")
    for name in ("npu-iedm2024-2da", "npu-iedm2024-5da"):
        chip = load_chip(name)
        assert chip.digital_nodes[0].macs_per_cycle == three.digital_nodes[0].macs_per_cycle
        assert chip.digital_nodes[0].sram_bytes == three.digital_nodes[0].sram_bytes
        assert (chip.crossbar, chip.adc, chip.fabric) == (three.crossbar, three.adc, three.fabric)
    # compute area: 16 AIMC nodes of 1 mm2 plus 2 mm2 per digital node
    assert [load_chip(n).compute_area_mm2 for n in PRESETS] == [20.0, 22.0, 26.0]


def test_short_mobilebert_counts_every_mac_and_is_digital_bound():
    """One block at seq 32: the run's MACs are the static-weight MVMs (block, embedding
    projection, head) plus the attention products QK^T and A.V (2 x seq^2 x 256), the TOPS
    basis; the digital nodes are the busiest kind."""
    seq = 32
    run = simulate(load_chip("npu-iedm2024-3da"), _short(seq), mode="timing", samples=1)
    m = run.metrics
    static = BLOCK_WEIGHTS * seq + seq * 384 * 512 + seq * 512 * 2
    attention = 2 * seq**2 * 256
    assert m.digital_macs == attention and m.macs == static + attention
    assert m.ops_per_sample == 2.0 * (static + attention)
    assert m.effective_tops == pytest.approx(m.ops_per_sample / m.period_ns / 1e3, rel=1e-12)
    assert m.resource_kinds[0].kind == "digital mac-array" and m.resource_kinds[0].units == 3
    assert m.inferences_per_s == pytest.approx(1e9 / m.latency_ns, rel=1e-12)
    text = format_metrics(m)
    assert "single stream (1 / latency of one inference alone on the chip)" in text
    assert "bottleneck                digital mac-array:" in text
    assert (m.area_mm2, m.die_area_mm2) == (22.0, 30.0)
    assert "        22 mm2 of compute units" in text and "on a 30 mm2 die" in text


def test_more_digital_nodes_run_faster():
    """Short MobileBERT (2 blocks, seq 64): 2 < 3 < 5 nodes in inferences/s, and less than
    proportionally (the AIMC and the dependencies between ops do not scale with the nodes)."""
    w = _short(64, 2)
    rate = {
        n: simulate(load_chip(name), w, mode="timing", samples=1).metrics.inferences_per_s
        for name, n in PRESETS.items()
    }
    assert rate[2] < rate[3] < rate[5]
    assert rate[3] / rate[2] < 1.5 and rate[5] / rate[3] < 5 / 3


def test_default_run_of_mobilebert_is_small():
    """`archsim run` defaults: one timed inference of MobileBERT (71,424 crossbar MVMs of
    512 x 512 > 120,000 / 2) and 25 random inputs (8.73 G static MACs each, 2.2e11 budget);
    the zoo's small networks keep 16 and 1000."""
    from archsim.run_report import random_weights
    from archsim.workload.catalog import random_samples

    xs = load_workload("mobilebert-edgetpu-xs")
    assert default_stream(xs, load_chip("npu-iedm2024-3da")) == 1
    assert default_stream(load_workload("mlp"), load_chip("hermes")) == 16
    assert random_samples(xs) == 25 and random_samples(load_workload("resnet9")) == 1000
    assert random_weights(xs)  # its report shows the cosine, not top-1 agreement


def test_fit_finds_the_rate_of_a_target():
    """The fit script's bisection on a short model: a target 1.2x the preset's rate is met
    within its tolerance by scaling every class rate by the same factor; a rate the digital
    nodes cannot reach (the AIMC layers take longer alone) is refused."""
    fit = _fit_module()
    chip = load_chip("npu-iedm2024-3da")
    w = _short(48)
    base = fit.inferences_per_s(chip, w)
    scale, got = fit.fit(chip, w, 1.2 * base, 0.002)
    assert abs(got / (1.2 * base) - 1) <= 0.002 and scale > 1.0
    node = fit.scaled(chip, scale).digital_nodes[0]
    assert node.softmax_per_cycle / node.macs_per_cycle == pytest.approx(1 / 8, rel=1e-9)
    with pytest.raises(ValueError, match="not reachable"):
        fit.fit(chip, w, 1e6 * base, 0.002)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_published_inferences_per_s_at_seq_384(name):
    """The fitted row within 1 %, the predicted rows at their measured values (see the README
    NPU table), and the full MobileBERT MAC count 9.337 G on the run's TOPS basis."""
    m = simulate(
        load_chip(name), load_workload("mobilebert-edgetpu-xs"), mode="timing", samples=1
    ).metrics
    assert m.macs == 9_336_913_920 and m.digital_macs == 603_979_776
    assert m.resource_kinds[0].kind == "digital mac-array"
    if name.endswith("3da"):
        assert abs(m.inferences_per_s / PUBLISHED[name] - 1) <= 0.01
    else:
        assert m.inferences_per_s == pytest.approx(MEASURED[name], rel=0.01)


MEASURED = {"npu-iedm2024-2da": 20.17, "npu-iedm2024-5da": 45.81}
"""Simulated inferences/s of the predicted rows (timing mode, one inference, seq 384)."""


def test_attention_rows_stream_and_share_the_nodes():
    """A row of Q.K^T (and of A.V) waits for its own row of the first operand and for all of the
    second; with policy "rows" the three nodes take the query rows in turn (seq 30: 10 each)."""
    from archsim.mapping import map_workload
    from archsim.sim.plan import build_plan, rows_needed

    seq = 30
    chip = load_chip("npu-iedm2024-3da")
    mapping = map_workload(_short(seq), chip)
    plan = build_plan(mapping)
    for name in ("block0.qk", "block0.av"):
        node = plan[name]
        first, second = (plan[p] for p in node.inputs)
        assert [rows_needed(node, first, r) for r in (0, 7)] == [1, 8]
        assert rows_needed(node, second, 0) == second.rows
    placement = mapping.digital_placement()
    assert placement.units_of("block0.qk") == (0, 1, 2)
    run = simulate(chip, _short(seq), mode="timing", samples=1, mapping=mapping)
    rows = run.sim.recorder.to_frame().query("layer == 'block0.qk' and op == 'matmul'")
    assert rows.groupby("component").size().to_dict() == {f"mac-array{i}": 10 for i in range(3)}
    assert rows.qty.sum() == 4 * seq * seq * 64  # every MAC once
