"""The GPU roofline baseline (archsim/baseline/, `archsim baseline`): hand-derived numbers on one
Linear layer, the A100 preset (NV20, BUE25 via notes) and refusals of bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from archsim.baseline.gpu import GpuSpec, gpu_presets, load_gpu
from archsim.baseline.roofline import roofline
from archsim.errors import ConfigError, SpecError
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder

# A round-number GPU: 1 TFLOP/s, 1 GB/s, 100 W, 10 mm², 1 byte per weight.
TOY = GpuSpec(
    matmul_tflops=1.0,
    vector_tflops=0.5,
    bandwidth_gb_s=1.0,
    power_w=100.0,
    area_mm2=10.0,
    weight_bytes=1.0,
)


def one_linear(positions: int, k: int = 100, n: int = 50):
    g = GraphBuilder("one-linear")
    x = L.input_(g, "input", (positions, k))
    L.linear(g, "fc", x, np.ones((k, n), np.float32))
    return g.build()


def test_memory_bound_linear_is_timed_by_the_weight_fetch():
    # 5,000 weights x 1 B / 1e9 B/s = 5 us; 2 x 1 x 5,000 x 4 FLOPs / 1e12 = 0.04 us
    r = roofline(one_linear(1), TOY, batch=4)
    (fc,) = [op for op in r.ops if op.name == "fc"]
    assert fc.flops == 40_000
    assert fc.weight_bytes == 5_000
    assert fc.memory_s == pytest.approx(5e-6, rel=1e-12)
    assert fc.compute_s == pytest.approx(4e-8, rel=1e-12)
    assert fc.bound == "memory"
    assert r.latency_s == pytest.approx(5e-6, rel=1e-12)
    assert r.throughput == pytest.approx(4 / 5e-6, rel=1e-12)
    assert r.throughput_per_mm2 == pytest.approx(4 / 5e-6 / 10, rel=1e-12)
    assert r.energy_per_inference_j == pytest.approx(100 * 5e-6 / 4, rel=1e-12)
    assert r.bound_share("memory") == 1.0


def test_compute_bound_linear_is_timed_by_the_flops():
    # 2 x 1,000 positions x 5,000 weights x 2 samples = 2e7 FLOPs -> 20 us > 5 us of fetch
    r = roofline(one_linear(1000), TOY, batch=2)
    (fc,) = [op for op in r.ops if op.name == "fc"]
    assert fc.flops == 2e7
    assert fc.bound == "compute"
    assert r.latency_s == pytest.approx(2e-5, rel=1e-12)
    assert r.energy_per_inference_j == pytest.approx(100 * 2e-5 / 2, rel=1e-12)


def test_activations_through_dram_add_their_bytes():
    # 2 B per value: (10 x 100 in + 10 x 50 out) x 3 samples x 2 B = 9,000 B, + 5,000 B weights
    gpu = GpuSpec(**{**_fields(TOY), "activation_bytes": 2.0})
    (fc,) = [op for op in roofline(one_linear(10), gpu, batch=3).ops if op.name == "fc"]
    assert fc.activation_bytes == 9_000
    assert fc.memory_s == pytest.approx(14_000 / 1e9, rel=1e-12)


def _fields(spec: GpuSpec) -> dict:
    return {k: getattr(spec, k) for k in spec.__slots__}


def test_the_a100_preset_holds_the_sourced_numbers():
    gpu = load_gpu("a100")
    assert "a100" in gpu_presets()
    assert (gpu.matmul_tflops, gpu.bandwidth_gb_s, gpu.power_w, gpu.area_mm2) == (
        312.0,
        1555.0,
        400.0,
        826.0,
    )
    assert gpu.weight_bytes == 0.625 and gpu.activation_bytes == 0.0
    assert "NV20" in gpu.source and "BUE25" in gpu.source


def test_the_a100_ridge_sits_at_201_flops_per_byte():
    # 312e12 / 1555e9 = 200.6 FLOP/B; a weight used by b vectors gives 2b / 0.625 FLOP/B, so one
    # Linear turns compute-bound between b = 62 (198.4 FLOP/B) and b = 63 (201.6 FLOP/B)
    gpu = load_gpu("a100")
    w = one_linear(1, 512, 512)
    assert [op.bound for op in roofline(w, gpu, 62).ops if op.name == "fc"] == ["memory"]
    assert [op.bound for op in roofline(w, gpu, 63).ops if op.name == "fc"] == ["compute"]
    per_pass = roofline(w, gpu, 1).latency_s
    assert per_pass == pytest.approx(512 * 512 * 0.625 / 1555e9, rel=1e-12)


def test_bad_presets_are_refused_naming_file_and_key(tmp_path):
    cases = {
        "unknown key": (
            '[gpu]\nsource = "x"\nmatmul_tflops = 1\nvector_tflops = 1\n'
            "bandwidth_gb_s = 1\npower_w = 1\narea_mm2 = 1\nweight_bytes = 1\n"
            "clock_ghz = 1.4\n",
            "gpu.clock_ghz: unknown key",
        ),
        "bad value": (
            '[gpu]\nsource = "x"\nmatmul_tflops = -1\nvector_tflops = 1\n'
            "bandwidth_gb_s = 1\npower_w = 1\narea_mm2 = 1\nweight_bytes = 1\n",
            "gpu.matmul_tflops: expected > 0",
        ),
        "wrong type": (
            '[gpu]\nsource = "x"\nmatmul_tflops = "fast"\nvector_tflops = 1\n'
            "bandwidth_gb_s = 1\npower_w = 1\narea_mm2 = 1\nweight_bytes = 1\n",
            "gpu.matmul_tflops: expected a number",
        ),
        "no source": ("[gpu]\nmatmul_tflops = 1\n", "gpu.source: missing required key"),
        "no table": ("[cpu]\n", "cpu: unknown key"),
        "missing key": (
            '[gpu]\nsource = "x"\nmatmul_tflops = 1\n',
            "gpu.vector_tflops: missing required key",
        ),
    }
    for case, (text, match) in cases.items():
        path = tmp_path / f"{case.replace(' ', '-')}.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=match) as e:
            load_gpu(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value), case


def test_a_batch_below_one_is_refused():
    with pytest.raises(SpecError, match="batch"):
        roofline(one_linear(1), TOY, batch=0)


def test_cli_prints_the_table_and_writes_the_csv(cli):
    code, out, _ = cli("baseline", "--gpu", "a100", "--workload", "bert", "--csv", "a100.csv")
    assert code == 0
    assert "layer0.ffn1" in out and "compute" in out and "inferences/s" in out
    assert "nan" not in out.lower()
    with open(cli.workdir / "a100.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["bound"] for r in rows} >= {"compute", "none"}
    assert rows[0].keys() >= {"op", "flops", "weight_bytes", "time_s", "bound"}


def test_cli_lists_the_preset_and_refuses_bad_input(cli, tmp_path):
    code, out, _ = cli("presets")
    assert code == 0 and "GPU baseline presets" in out and "a100" in out
    cli.refused("baseline", "--gpu", "h100", "--workload", "bert", match="unknown GPU baseline")
    cli.refused("baseline", "--workload", "bert", "--batch", "0", match="--batch")
    cli.refused("baseline", "--workload", "bert", "--csv", "x.txt", match="--csv")
    cli.refused("baseline", "--workload", "nosuchnet", match="nosuchnet")
    bad = tmp_path / "bad.toml"
    bad.write_text('[gpu]\nsource = "x"\nmatmul_tflops = 0\n')
    cli.refused("baseline", "--gpu", str(bad), "--workload", "bert", match="bad.toml")


def test_the_a100_fetches_bue25s_largest_moe_in_20_7_ms():
    """BUE25's largest MoE (d 1024, 128 experts, 48 layers, d_ff 4096: 51.5 G expert weights)
    at 0.625 B per weight: 51.54e9 x 0.625 / 1555e9 = 20.7 ms and 8.3 J per decode iteration
    at 400 W. One Linear of that many weights (a broadcast view, nothing allocated) stands in."""
    from archsim.workload import ir

    g = GraphBuilder("moe-weights")
    x = L.input_(g, "input", (1, 1024))
    weight = np.broadcast_to(np.float32(0), (1024, 2 * 4096 * 128 * 48))
    g.add(ir.Linear("experts", (x,), (1, weight.shape[1]), weight, None))
    r = roofline(g.build(), load_gpu("a100"))
    assert r.latency_s == pytest.approx(20.7e-3, abs=0.05e-3)
    assert r.energy_per_inference_j == pytest.approx(8.3, abs=0.05)
    assert r.bound_share("memory") == 1.0


def test_an_embedding_reads_the_rows_its_indices_name_per_sample():
    # 5 indices x 8 columns x 3 samples x 1 B = 120 B (not the 800-B table), no FLOPs
    g = GraphBuilder("embed")
    x = L.input_(g, "input", (5,))
    L.embedding(g, "emb", x, np.zeros((100, 8), np.float32))
    (emb,) = [op for op in roofline(g.build(), TOY, batch=3).ops if op.name == "emb"]
    assert (emb.flops, emb.weight_bytes, emb.bound) == (0.0, 120.0, "memory")
