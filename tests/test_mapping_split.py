"""Layers larger than the whole chip: cut into parts over segments, partial sums added."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.api import simulate
from archsim.errors import MappingError
from archsim.mapping.segments import map_segments, merged_mapping, plan_segments
from archsim.workload.execute import run
from tests.nets import mlp


@pytest.fixture(scope="module")
def two_cores(hermes):
    """HERMES cut to 2 cores, weight reloads on, converters off, FP32 digital units."""
    return dataclasses.replace(
        hermes,
        cores=dataclasses.replace(hermes.cores, count=2, grid=(1, 2)),
        fabric=dataclasses.replace(hermes.fabric, dims=(1, 2)),
        input=dataclasses.replace(hermes.input, bits=0),
        adc=dataclasses.replace(hermes.adc, bits=0),
        ldpu=dataclasses.replace(hermes.ldpu, precision="fp32"),
        die_area_mm2=2.0,
        mapping=dataclasses.replace(hermes.mapping, weight_reload=True),
    )


def _chain(plan, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the segments one after another in float, as the chip does: every tensor a segment
    outputs goes to memory; a segment reads its inputs (or slices of them) from there."""
    memory = {"input": x}
    for seg in plan.segments:
        feed = {}
        for name in seg.inputs:
            if name in plan.slices:
                src, a, b = plan.slices[name]
                feed[name] = memory[src][..., a:b] if memory[src].ndim == 2 else memory[src][:, a:b]
            else:
                feed[name] = memory[name]
        memory.update(run(seg, feed, keep=True))
    return memory


def test_a_layer_three_times_the_chip_runs_in_three_segments(two_cores, ideal):
    """fc0 (1500 x 200) needs 6 crossbars of 256 rows on a 2-core chip: three K parts of 512
    rows, one segment each; the last adds the partial sums. Chained in float, the segments give
    the exact product; the full run (ideal device, no converters) gives the float outputs."""
    w = mlp((1500, 200, 10))
    plan = plan_segments(w, two_cores)
    assert plan.part_of == {f"fc0.k{i}n0": "fc0" for i in range(3)}
    homes = [[op.name for op in s.analog_ops()] for s in plan.segments]
    assert homes == [["fc0.k0n0"], ["fc0.k1n0"], ["fc0.k2n0"], ["fc1"]]
    assert plan.slices == {
        f"fc0.in{i}": ("input", 512 * i, min(512 * (i + 1), 1500)) for i in range(3)
    }
    x = np.random.default_rng(1).standard_normal((4, 1500)).astype(np.float32)
    exact = x.astype(np.float64) @ w.op("fc0").weight + w.op("fc0").bias
    chained = _chain(plan, x)
    np.testing.assert_allclose(chained["fc0"], exact, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(chained["fc1"], run(w, x)["fc1"], rtol=1e-5, atol=1e-4)

    r = simulate(two_cores, w, mode="full", samples=8, device=ideal, t_inference_s=0.0)
    assert len(r.segments) == 4
    np.testing.assert_allclose(r.outputs, r.accuracy.reference, rtol=1e-5, atol=1e-4)
    assert r.mapping.layer("fc0").parts == 3
    assert len(r.mapping.layer("fc0").blocks) == 6
    macs = 1500 * 200 + 200 * 10
    assert r.metrics.macs == 8 * macs
    assert all(t > 0 for t in r.sim.sample_end_ns)


def test_column_and_row_cuts_of_a_linear_layer(two_cores):
    """A 1100 x 700 layer (5 x 3 crossbars) on 2 cores: K cut in 512 + 512 + 76 rows (2, 2, 1
    crossbars), N cut in 256-column slices: 9 parts whose pieces cover every weight once."""
    w = mlp((1100, 700))
    parts = map_segments(w, two_cores, replication="none")
    merged = merged_mapping(w, parts)
    lm = merged.layer("fc0")
    assert lm.parts == 9
    cover = np.zeros((1100, 700), dtype=int)
    plan = plan_segments(w, two_cores)
    for seg in plan.segments:
        for op in seg.analog_ops():
            _, k0, k1 = plan.slices[op.inputs[0]]
            n0 = int(op.name.split("n")[-1]) * 256
            cover[k0:k1, n0 : n0 + op.weight.shape[1]] += 1
            np.testing.assert_array_equal(op.weight, w.op("fc0").weight[k0:k1, n0 : n0 + 256])
    assert np.all(cover == 1)
    out = _chain(plan, np.ones((2, 1100), dtype=np.float32))["fc0"]
    np.testing.assert_allclose(
        out, run(w, np.ones((2, 1100), dtype=np.float32))["fc0"], rtol=1e-5, atol=1e-3
    )


def test_an_lstm_larger_than_the_chip_is_refused(two_cores):
    from archsim.workload import layers as L
    from archsim.workload.ir import GraphBuilder

    g = GraphBuilder("big-lstm")
    x = L.input_(g, "input", (3, 600))
    rng = np.random.default_rng(0)
    L.lstm(g, "lstm", x, rng.standard_normal((800, 600)), rng.standard_normal((800, 200)))
    with pytest.raises(MappingError, match="layer lstm alone needs more than the 2 cores"):
        plan_segments(g.build(), two_cores)


def test_map_report_shows_split_layers(two_cores):
    from archsim.mapping.report import format_mapping

    w = mlp((1500, 200, 10))
    parts = map_segments(w, two_cores, replication="none")
    text = format_mapping(merged_mapping(w, parts))
    assert "4 segments with weight reloads" in text
    assert "split over segments: fc0 in 3 parts" in text
    assert "fc0.k1n0" in format_mapping(parts[1])


def test_a_convolution_larger_than_the_chip_is_cut_at_channel_boundaries(two_cores):
    """A 3x3 convolution 96 -> 300 channels (K = 864: 4 x 2 crossbars) on 2 cores: K cut at
    56 channels (504 rows, 2 crossbars), N in 256-channel slices; chained in float, the
    segments give the layer's output (partial sums added, channel slices concatenated)."""
    from archsim.workload import layers as L
    from archsim.workload.ir import GraphBuilder

    rng = np.random.default_rng(3)
    g = GraphBuilder("big-conv")
    x = L.input_(g, "input", (96, 6, 6))
    wt = rng.standard_normal((300, 96, 3, 3)).astype(np.float32)
    y = L.conv2d(g, "conv", x, wt, rng.standard_normal(300), (1, 1), (1, 1, 1, 1))
    L.act(g, "relu", y, "relu")
    w = g.build()
    plan = plan_segments(w, two_cores)
    assert sorted({v for v in plan.slices.values()}) == [("input", 0, 56), ("input", 56, 96)]
    assert len(plan.part_of) == 4
    data = rng.standard_normal((2, 96, 6, 6)).astype(np.float32)
    chained = _chain(plan, data)
    np.testing.assert_allclose(chained["relu"], run(w, data)["relu"], rtol=1e-4, atol=1e-3)
    r = simulate(two_cores, w, mode="timing", samples=2)
    assert r.metrics.macs == 2 * 864 * 300 * 36


def test_cli_map_and_timing_run_a_layer_larger_than_hermes(cli, tmp_path):
    """A 4096 x 4096 linear layer (256 crossbars) on HERMES's 64 cores: refused without
    --reload, 4 column parts with it, and the timed run finishes."""
    path = tmp_path / "wide.toml"
    path.write_text(
        'name = "wide"\n\n[[layer]]\nid = "input"\nop = "input"\nshape = [4096]\n\n'
        '[[layer]]\nid = "fc"\nop = "linear"\nout_features = 4096\n'
    )
    cli.refused("map", "--workload", path, match="wide needs 256 cores")
    code, out, err = cli("map", "--workload", path, "--reload", "--out", tmp_path / "m")
    assert code == 0, err
    assert "4 segments with weight reloads" in out and "fc in 4 parts" in out
    code, out, err = cli(
        "simulate", "--workload", path, "--reload", "--mode", "timing", "--stream", "1"
    )
    assert code == 0, err
    assert "period" in out and "nan" not in out.lower()
