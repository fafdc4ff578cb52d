"""A MoE decode on the GPU roofline (archsim/baseline/moe.py): hand-derived numbers on moe-small
and BUE25's largest MoE on the A100 preset (NV20, BUE25 via notes)."""

from __future__ import annotations

import dataclasses

import pytest

from archsim.baseline.gpu import GpuSpec, load_gpu
from archsim.baseline.moe import compute_bound_batch, gpu_moe_decode
from archsim.moe.model import TokenStream, load_moe

# 1 TFLOP/s, 1 GB/s, 100 W, 10 mm², 1 byte per weight.
TOY = GpuSpec(
    matmul_tflops=1.0,
    vector_tflops=0.5,
    bandwidth_gb_s=1.0,
    power_w=100.0,
    area_mm2=10.0,
    weight_bytes=1.0,
)

# moe-small: d 256, 2 blocks, 4 experts top-2, d_ff 1024, vocabulary 1024.
# Stored: 2 x (4 x 256² + 256 x 4 + 4 x 2 x 256 x 1024) + 2 x 1024 x 256 = 5,244,928 weights.
# One token at context c: 2 x 4 x 256² + 2 x (256 x 4 + 2 x 2 x 256 x 1024) + 256 x 1024
# = 2,885,632 weight MACs, + 2 blocks x 2 x c x 256 = 1,024 c attention MACs.
SMALL_WEIGHTS = 5_244_928


def small_macs(context: int) -> int:
    return 2_885_632 + 1_024 * context


def test_small_model_counts_match_the_hand_arithmetic():
    model = load_moe("moe-small")
    assert model.weights_total == SMALL_WEIGHTS
    assert model.macs_per_token(7) == small_macs(7)


def test_memory_bound_decode_fetches_every_weight_once_per_iteration():
    """2 sequences x 3 tokens after a 4-token prompt: contexts 5, 6, 7. Each iteration fetches
    5,244,928 B at 1 GB/s = 5.244928 ms; its FLOPs (2 x 2 x 2.89 M = 11.6 MFLOP at 1 TFLOP/s
    = 11.6 us) hide under the fetch. 6 tokens in 15.73 ms at 100 W."""
    run = gpu_moe_decode(load_moe("moe-small"), TokenStream(2, 3, 4), TOY)
    step_s = SMALL_WEIGHTS / 1e9
    assert run.tokens == 6
    assert [s.flops for s in run.steps] == [4.0 * small_macs(c) for c in (5, 6, 7)]
    assert all(s.bound == "memory" for s in run.steps)
    assert run.time_s == pytest.approx(3 * step_s, rel=1e-12)
    assert run.tokens_per_s == pytest.approx(6 / (3 * step_s), rel=1e-12)
    assert run.tokens_per_s_per_mm2 == pytest.approx(6 / (3 * step_s) / 10, rel=1e-12)
    assert run.energy_per_token_j == pytest.approx(100 * 3 * step_s / 6, rel=1e-12)
    assert run.bound == "memory (weight fetch)"


def test_compute_bound_decode_is_timed_by_the_batch_flops():
    """At 1e6 GB/s the fetch takes 5.24 us; 2 sequences at context 5 need
    2 x 2 x (2,885,632 + 5,120) = 11,563,008 FLOPs = 11.563008 us at 1 TFLOP/s."""
    gpu = dataclasses.replace(TOY, bandwidth_gb_s=1e6)
    run = gpu_moe_decode(load_moe("moe-small"), TokenStream(2, 1, 4), gpu)
    (step,) = run.steps
    assert step.bound == "compute"
    assert run.time_s == pytest.approx(11_563_008 / 1e12, rel=1e-12)
    assert run.bound == "compute"


def test_kv_cache_traffic_counts_at_the_activation_bytes():
    """activation_bytes 2: at context 5, K and V of 2 blocks x 256 values x 5 positions
    (4 read, 1 written) = 5,120 values per sequence, x 2 sequences x 2 B = 20,480 B."""
    gpu = dataclasses.replace(TOY, activation_bytes=2.0)
    (step,) = gpu_moe_decode(load_moe("moe-small"), TokenStream(2, 1, 4), gpu).steps
    assert step.activation_bytes == 20_480
    assert step.memory_s == pytest.approx((SMALL_WEIGHTS + 20_480) / 1e9, rel=1e-12)


def test_the_a100_decodes_bue25s_largest_moe_in_20_8_ms_per_iteration():
    """BUE25's largest MoE stores 2 x 1024 x 4096 x 128 x 48 = 51,539,607,552 expert weights
    + 48 x 4 x 1024² attention + 48 x 1024 x 128 router + 2 x 50257 x 1024 embedding and head
    = 51,850,151,936 weights; x 0.625 B / 1,555 GB/s = 20.84 ms and 8.34 J at 400 W per decode
    iteration: BUE25's 20.7 ms / 8.3 J (experts only) plus 0.6 % for the dense parts. A batch
    of 32 still hides its FLOPs under the fetch, so 32 tokens share that time."""
    model = load_moe("bue25-largest")
    assert model.weights_total == 51_850_151_936
    run = gpu_moe_decode(model, TokenStream(1, 1, 0), load_gpu("a100"))
    assert run.time_s == pytest.approx(51_850_151_936 * 0.625 / 1555e9, rel=1e-12)
    assert run.time_s == pytest.approx(20.7e-3, rel=0.01)
    assert run.energy_per_token_j == pytest.approx(8.3, rel=0.01)
    assert run.area_mm2 == 826.0 and run.average_power_w == 400.0
    batch = gpu_moe_decode(model, TokenStream(32, 1, 0), load_gpu("a100"))
    assert batch.time_s == run.time_s
    assert batch.energy_per_token_j == pytest.approx(run.energy_per_token_j / 32, rel=1e-12)


def test_the_a100_turns_compute_bound_at_the_ridge_batch():
    """moe-small at context 1: 2 x 2,886,656 FLOPs per token against 5,244,928 x 0.625 B; the
    A100's ridge 312e12 / 1555e9 = 200.64 FLOP/B puts the balance at
    200.64 x 3,278,080 / 5,773,312 = 113.9 sequences: 113 are memory-bound, 114 compute-bound."""
    model, gpu = load_moe("moe-small"), load_gpu("a100")
    n = compute_bound_batch(model, TokenStream(1, 1), gpu)
    assert n == pytest.approx(312e12 / 1555e9 * SMALL_WEIGHTS * 0.625 / (2 * small_macs(1)))
    assert 113 < n < 114
    assert gpu_moe_decode(model, TokenStream(113, 1), gpu).bound == "memory (weight fetch)"
    assert gpu_moe_decode(model, TokenStream(114, 1), gpu).bound == "compute"
