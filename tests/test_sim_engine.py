"""The timed run of whole networks: conservation, determinism, chunking, both answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.api import simulate
from archsim.mapping import map_workload
from archsim.sim.engine import Engine, SimSettings
from archsim.sim.metrics import compute_metrics
from archsim.workload.catalog import load_workload

LINEAR_1024 = """
[[layer]]
id = "input"
op = "input"
shape = [1024]

[[layer]]
id = "fc"
op = "linear"
out_features = 256
"""


def _run(chip, workload, samples=2, chunk=1):
    mapping = map_workload(workload, chip)
    run = Engine(chip, mapping, SimSettings(samples=samples, chunk=chunk)).run()
    return mapping, run, compute_metrics(run, mapping, 0.2)


@pytest.mark.parametrize("name", ["digits-cnn", "resnet9", "lstm"])
def test_every_mvm_is_counted_once(hermes, name):
    """Recorded MVMs and MACs equal the mapping's totals times the samples (conversions are
    counted by hand in test_engine_timing.py and test_adc_energy_follows_the_bit_width)."""
    w = load_workload(name)
    mapping, run, m = _run(hermes, w, samples=3)
    frame = run.recorder.to_frame()
    per_layer = frame[frame.op == "mvm"].groupby("layer").qty.sum()
    for lm in mapping.layers:
        assert per_layer[lm.name] == 3 * lm.matrix.mvms_per_sample * lm.blocks_per_replica
    assert m.macs == 3 * sum(lm.matrix.macs_per_sample for lm in mapping.layers)
    x = w.op(w.inputs[0])
    assert frame.loc[frame.op == "offchip_in", "qty"].sum() == 3 * x.size
    out = sum(w.op(o).size for o in w.outputs)
    assert frame.loc[frame.op == "offchip_out", "qty"].sum() == 3 * out
    assert all(t > 0 for t in run.sample_end_ns)


def test_partial_sum_bytes_and_hops(hermes, tmp_path):
    """A 1024 x 256 layer splits into 4 K-blocks: each MVM sends 3 x 256 FP16 partial sums from
    the farthest block to the lead, one link record per hop."""
    path = tmp_path / "lin.toml"
    path.write_text(LINEAR_1024)
    mapping, run, _ = _run(hermes, load_workload(str(path)), samples=2)
    lm = mapping.layers[0]
    assert (lm.row_blocks, lm.replicas) == (4, 1)
    blocks = {b.row_block: b.core for b in lm.blocks}
    far = max(
        blocks.values(), key=lambda c: abs(c // 8 - blocks[0] // 8) + abs(c % 8 - blocks[0] % 8)
    )
    hops = abs(far // 8 - blocks[0] // 8) + abs(far % 8 - blocks[0] % 8)
    frame = run.recorder.to_frame()
    psum = frame[(frame.op == "link") & (frame.layer == "fc psum")].qty.sum()
    assert psum == 2 * 3 * 256 * 2 * hops


def test_same_run_same_events(hermes):
    w = load_workload("resnet9")
    a = _run(hermes, w)[1].recorder.to_frame()
    b = _run(hermes, w)[1].recorder.to_frame()
    assert a.equals(b)


def test_chunking_keeps_latency_and_energy(hermes):
    """ResNet-9, 8 images: chunk 4 and 16 within 2% of chunk 1 in latency, period, energy."""
    w = load_workload("resnet9")
    base = _run(hermes, w, samples=8)[2]
    for chunk in (4, 16):
        m = _run(hermes, w, samples=8, chunk=chunk)[2]
        for field in ("latency_ns", "period_ns", "energy_per_sample_pj"):
            assert abs(getattr(m, field) / getattr(base, field) - 1) < 0.02, (chunk, field)
        assert m.macs == base.macs


def test_full_run_outputs_equal_functional_run(hermes):
    w = load_workload("digits-cnn")
    full = simulate(hermes, w, mode="full", samples=32, seed=5)
    func = simulate(hermes, w, mode="functional", samples=32, seed=5)
    timing = simulate(hermes, w, mode="timing", samples=4, seed=5)
    np.testing.assert_array_equal(full.outputs, func.outputs)
    assert full.metrics is not None and func.metrics is None
    assert timing.accuracy is None and timing.outputs is None
    assert full.accuracy.points[0].accuracy == func.accuracy.points[0].accuracy
    assert set(full.activity) == {lm.name for lm in full.mapping.layers}
    assert all(0 < a < 1 for a in full.activity.values())


def test_steady_state_is_bound_by_the_slowest_stage(hermes):
    """The period is at least the MVMs per copy of the slowest layer x 133 ns."""
    w = load_workload("digits-cnn")
    mapping, _, m = _run(hermes, w, samples=12)
    slowest = max(mapping.layers, key=lambda lm: lm.mvms_per_sample_per_replica)
    assert m.period_ns >= slowest.mvms_per_sample_per_replica * 133.0 * 0.99
    assert m.latency_ns > m.period_ns


def test_lstm_steps_wait_for_the_previous_step(hermes):
    """32 recurrent steps: one sample takes at least 32 x 133 ns on the first layer alone."""
    _, _, m = _run(hermes, load_workload("lstm"), samples=1)
    assert m.latency_ns >= 32 * 133.0


def test_small_sram_back_pressures_or_grows(hermes):
    """With 1 KB of SRAM per core the receptive fields do not fit: the engine grows the
    buffers it must (and says so) and the run is slower, not stuck. The LDPU is made fast
    (2 ops/cycle) so that the buffers, not post-processing, set the pace."""
    hermes = dataclasses.replace(hermes, ldpu=dataclasses.replace(hermes.ldpu, ops_per_cycle=2.0))
    memory = dataclasses.replace(hermes.memory, sram_bytes_per_core=1024)
    small = dataclasses.replace(hermes, memory=memory)
    w = load_workload("resnet9")
    _, run, m = _run(small, w, samples=4)
    _, _, base = _run(hermes, w, samples=4)
    assert run.enlarged_buffers
    assert all(t > 0 for t in run.sample_end_ns)
    assert m.latency_ns >= base.latency_ns


def test_resnet18_runs_on_the_256_core_preset():
    from archsim.config import load_chip

    chip = load_chip("hermes-256")
    mapping, run, m = _run(chip, load_workload("resnet18"), samples=1)
    assert mapping.cores_used <= 256
    assert m.macs == sum(lm.matrix.macs_per_sample for lm in mapping.layers)
    assert run.sample_end_ns[0] > 0


def test_column_blocks_post_process_on_their_own_cores(hermes, tmp_path):
    """A 256 x 1024 layer has four column lanes, each with its own LDPU: the copy does one MVM
    per max(133 ns array, one lane's 256 outputs on its LDPU: 512 ns at 0.5 ops/ns), not per
    4 x 512 ns."""
    path = tmp_path / "wide.toml"
    path.write_text(
        LINEAR_1024.replace("shape = [1024]", "shape = [256]").replace(
            "out_features = 256", "out_features = 1024"
        )
    )
    mapping, _, m = _run(hermes, load_workload(str(path)), samples=12)
    assert mapping.layers[0].col_blocks == 4
    lane_ns = 256 / (hermes.ldpu.ops_per_cycle * hermes.ldpu.clock_ghz)
    assert m.period_ns == pytest.approx(max(133.0, lane_ns), rel=0.05)
    ldpu = m.utilisation[m.utilisation.op == "ldpu"]
    assert len(ldpu) == 4


def test_rows_nobody_reads_do_not_stall_the_pipeline(hermes, tmp_path):
    """A 1x1 stride-2 convolution never reads the odd rows of its 32-row input; 12 samples
    all finish (they used to fill its SRAM and stop the run)."""
    path = tmp_path / "s2.toml"
    path.write_text(
        '[[layer]]\nid = "input"\nop = "input"\nshape = [8, 32, 32]\n\n'
        '[[layer]]\nid = "c1"\nop = "conv2d"\nout_channels = 16\nkernel = 3\npadding = 1\n\n'
        '[[layer]]\nid = "c2"\nop = "conv2d"\nout_channels = 16\nkernel = 1\nstride = 2\n'
    )
    _, run, m = _run(hermes, load_workload(str(path)), samples=12)
    assert all(t > 0 for t in run.sample_end_ns)
    assert m.steady_state


def test_layernorm_over_the_streamed_rows_waits_for_all_rows(hermes):
    """A layer norm over (H, W) of a (C, H, W) map cannot start before its last row exists."""
    from archsim.sim.plan import Node, rows_needed
    from archsim.workload import ir

    prod = Node("p", "analog", ir.Input("p", (), (4, 8, 8)), rows=8, row_bytes=32)
    for axis, want in ((1, 8), (2, 1)):
        op = ir.LayerNorm("n", ("p",), (4, 8, 8), axis=axis)
        assert rows_needed(Node("n", "gdpu", op, rows=8, row_bytes=32), prod, 0) == want
    soft = ir.Softmax("s", ("p",), (4, 8, 8), axis=1)
    assert rows_needed(Node("s", "gdpu", soft, rows=8, row_bytes=32), prod, 0) == 8


def test_weight_reloads_run_big_networks_in_segments(hermes):
    """ResNet-18 on HERMES with reloads: segments of at most 64 cores, every MAC counted once,
    each of its 11,678,912 weights programmed once per batch (no copies): 4 devices at 150 pJ
    and one byte in through the off-chip interface at 1.6 pJ."""
    from archsim.mapping.segments import split_workload

    policy = dataclasses.replace(hermes.mapping, weight_reload=True)
    chip = dataclasses.replace(hermes, mapping=policy)
    w = load_workload("resnet18")
    parts = split_workload(w, chip)
    assert len(parts) >= 4
    assert {op.name for p in parts for op in p.analog_ops()} == {op.name for op in w.analog_ops()}
    r = simulate(chip, w, mode="timing", samples=2)
    assert len(r.segments) == len(parts)
    assert all(seg.cores_used <= 64 for seg in r.segments)
    assert r.metrics.macs == 2 * sum(lm.matrix.macs_per_sample for lm in r.mapping.layers)
    weights = sum(op.weight.size for op in w.analog_ops())
    assert weights == 11_678_912
    want = weights * (4 * 150.0 + 1.6)  # per weight: 4 devices x 150 pJ, 1 B x 1.6 pJ off-chip
    assert r.metrics.energy_breakdown_pj["reload"] * 2 == pytest.approx(want, rel=1e-12)
    assert not r.metrics.steady_state
    assert r.metrics.period_ns * 2 == pytest.approx(r.metrics.total_ns)


def test_segmented_functional_run_is_exact_when_ideal(hermes, ideal):
    """digits-cnn on a 2-core chip: two segments; ideal device and converters give float."""
    chip = dataclasses.replace(
        hermes,
        cores=dataclasses.replace(hermes.cores, count=2, grid=(1, 2)),
        fabric=dataclasses.replace(hermes.fabric, dims=(1, 2)),
        input=dataclasses.replace(hermes.input, bits=0),
        adc=dataclasses.replace(hermes.adc, bits=0),
        ldpu=dataclasses.replace(hermes.ldpu, precision="fp32"),
        die_area_mm2=2.0,
        mapping=dataclasses.replace(hermes.mapping, weight_reload=True),
    )
    r = simulate(
        chip, load_workload("digits-cnn"), mode="full", samples=64, device=ideal, t_inference_s=0.0
    )
    assert len(r.segments) == 2
    assert r.accuracy.points[0].agreement == 1.0
    assert all(t > 0 for t in r.sim.sample_end_ns)


@pytest.mark.parametrize("scaling, pj_at_6_bits", [("walden", 7.85), ("fixed", 31.4)])
def test_adc_energy_follows_the_bit_width(hermes, scaling, pj_at_6_bits):
    """digits-mlp converts 128 + 10 = 138 columns per sample (fc1 64 x 128 and fc2 128 x 10,
    one block each, one phase). HERMES's ADC costs 31.4 pJ per conversion at 8 bits: 4333.2 pJ
    per sample. At 6 bits Walden scaling (energy ~ 2**bits) gives 31.4 / 4 = 7.85 pJ per
    conversion, 1083.3 pJ per sample; fixed scaling keeps 31.4 pJ."""
    w = load_workload("digits-mlp")
    for bits, pj in ((8, 31.4), (6, pj_at_6_bits)):
        adc = dataclasses.replace(hermes.adc, bits=bits, energy_scaling=scaling)
        *_, m = _run(dataclasses.replace(hermes, adc=adc), w, samples=2)
        assert m.conversions == 2 * 138
        assert m.energy_breakdown_pj["adc"] == pytest.approx(138 * pj, rel=1e-12)


def test_progress_reporting_run_is_the_same_run(hermes, monkeypatch):
    """Stepping with status lines gives the same events and times as env.run()."""
    import archsim.sim.stepping as stepping

    w = load_workload("resnet9")
    mapping = map_workload(w, hermes)
    plain = Engine(hermes, mapping, SimSettings(samples=2)).run()
    clock = iter(range(10**9))  # a fake clock that is always 1 s later: report at every check
    monkeypatch.setattr(stepping.time, "perf_counter", lambda: float(next(clock)))
    lines = []
    stepped = Engine(hermes, mapping, SimSettings(samples=2)).run(progress=lines.append)
    assert stepped.events == plain.events
    assert stepped.sample_end_ns == plain.sample_end_ns
    assert lines, "the fake clock makes every check report"
    assert len(lines) <= plain.events // stepping.REPORT_EVERY
    assert lines[-1].startswith("resnet9: ") and "samples done" in lines[-1]


def test_layer_timeline_explains_latency_and_period(hermes):
    """The first sample's layer spans end at its latency (less the off-chip delivery of its
    output); the busiest per-layer resource per
    sample is the reported bottleneck and close to the steady-state period (8 samples)."""
    from archsim.sim.timeline import layer_spans, stage_times

    r = simulate(hermes, load_workload("resnet9"), mode="timing", samples=8)
    frame = r.sim.recorder.to_frame()
    spans = layer_spans(frame, 0)
    delivery = hermes.memory.offchip_latency_ns
    assert spans.end_ns.max() + delivery == pytest.approx(r.metrics.latency_ns, rel=1e-9)
    assert spans.iloc[0].layer == "input" and (spans.end_ns >= spans.start_ns).all()
    stages = stage_times(frame, 8).set_index("layer")
    slowest = stages.busy_ns.idxmax()
    assert f"({slowest})" in r.metrics.bottleneck
    assert stages.resource[slowest].split()[0] in r.metrics.bottleneck
    assert stages.busy_ns.max() == pytest.approx(r.metrics.period_ns, rel=0.05)
