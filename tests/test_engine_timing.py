"""Exact times of whole timed runs: tiny mapped networks whose latency and period are derived by
hand in each docstring (integrate, convert, post-process, fabric hops, chunking).

The chip is tests/data/tiny-chip.toml (2 x 2 cores of 32 x 32 crossbars), whose constants give:
- array A = 6-bit PWM window 2**5 x 1 ns + 2 ns overhead + one 5 ns conversion round = 39 ns;
- 8 ADCs for 32 columns: 4 columns share one, so C = 3 more rounds x 5 ns = 15 ns on the bank;
- LDPU: 2 ops/cycle at 1 GHz = 2 ops/ns (one pass per output column);
- off-chip: 8 B/ns on one port (inputs and outputs share it), then 100 ns latency;
- links: 4 B/ns, 1 ns flight per hop, cut-through; core i sits at router i = (i // 2, i % 2),
  the off-chip interface at router 0.
Activations are 1 B per value, partial sums 2 B. Placement is sequential (layer blocks on
cores 0, 1, ...), one copy per layer unless a test says otherwise; each test first checks the
placement its derivation assumes.
Latency is sample 0's first input byte to last output byte; the period is the steady-state
spacing of sample ends (8 samples: the last three gaps).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from archsim.config import load_chip
from archsim.mapping import map_workload
from archsim.sim.engine import Engine, SimSettings
from archsim.sim.metrics import compute_metrics
from archsim.workload.catalog import load_workload

DATA = Path(__file__).parent / "data"


def _layers(*layers: str) -> str:
    """A TOML layer list; each argument is the body of one [[layer]] table."""
    return "\n".join(f"[[layer]]\n{body}\n" for body in layers)


INPUT = 'id = "input"\nop = "input"\nshape = {shape}'


@pytest.fixture(scope="module")
def tiny():
    return load_chip(DATA / "tiny-chip.toml")


@pytest.fixture(scope="module")
def slow_ldpu(tiny):
    """The tiny chip with an LDPU of 0.5 ops/ns: 32 columns take 64 ns > A = 39 ns."""
    return dataclasses.replace(tiny, ldpu=dataclasses.replace(tiny.ldpu, ops_per_cycle=0.5))


def _run(chip, text: str, tmp_path, samples: int = 8, chunk: int = 1, replication="none"):
    path = tmp_path / "net.toml"
    path.write_text(text)
    mapping = map_workload(
        load_workload(str(path)), chip, placement="sequential", replication=replication
    )
    run = Engine(chip, mapping, SimSettings(samples=samples, chunk=chunk)).run()
    return mapping, run, compute_metrics(run, mapping, 1.0)


def _cores(mapping) -> dict[str, list[int]]:
    return {lm.name: [b.core for b in lm.blocks] for lm in mapping.layers}


def test_one_layer_on_one_core(tiny, tmp_path):
    """input (32) -> fc (32 x 32) on core 0, next to the off-chip port (no hops).

    Sample 0: read 32 B: 4 ns, + 100 ns latency = 104; array A: 143; the other ADC rounds C:
    158; LDPU 32 columns at 2 ops/ns: 16 ns, 174; write 32 B: 4 ns, 178; + 100 ns = 278 ns.
    Period: the array, 39 ns per sample, is the busiest resource (ADC bank 15, LDPU 16,
    off-chip port 4 + 4 ns); all inputs are read by 32 ns, so nothing else waits: sample n ends
    at 278 + 39 n. Ops per sample 2 x 32 x 32 = 2048: 2048 / 39 ns = 0.0525 TOPS.
    Energy per sample (full-scale inputs): array and DAC each 32 rows x 31 LSB x 0.0824 pJ =
    81.7408 pJ; 32 conversions x 31.4 pJ (7 bits, their own reference) = 1004.8 pJ; LDPU
    32 ops x 0.21 pJ = 6.72 pJ; SRAM 32 B written + 32 B read x 0.18 pJ = 11.52 pJ; off-chip
    64 B x 1.6 pJ = 102.4 pJ; static 4 cores x 1 mW x 39 ns = 156 pJ; no fabric (no hops).
    Total 1444.9216 pJ: 2048 / 1444.9216 = 1.417 TOPS/W.
    """
    mapping, run, m = _run(
        tiny,
        _layers(INPUT.format(shape=[32]), 'id = "fc"\nop = "linear"\nout_features = 32'),
        tmp_path,
    )
    assert _cores(mapping) == {"fc": [0]}
    assert run.sample_end_ns == [278.0 + 39.0 * n for n in range(8)]
    assert m.latency_ns == 278.0
    assert m.period_ns == 39.0
    assert m.ops_per_sample == 2048.0
    assert m.effective_tops == pytest.approx(2048 / 39.0 / 1e3, rel=1e-12)
    want = {"array": 81.7408, "dac": 81.7408, "adc": 1004.8, "ldpu": 6.72, "sram": 11.52}
    want |= {"offchip": 102.4, "static": 156.0, "gdpu": 0.0, "fabric": 0.0, "reload": 0.0}
    assert m.energy_breakdown_pj == pytest.approx(want, rel=1e-12)
    assert m.energy_per_sample_pj == pytest.approx(1444.9216, rel=1e-12)
    assert m.tops_per_w == pytest.approx(2048 / 1444.9216, rel=1e-12)


def test_two_layer_pipeline_runs_at_its_slower_stage(slow_ldpu, tmp_path):
    """input (32) -> fc1 (32 x 16, core 0) -> fc2 (16 x 32, core 1), LDPU 0.5 ops/ns.

    Sample 0: read 4 + 100 = 104; fc1: A 39, C 15, LDPU 16 columns 32 ns: 190; 16 B to core 1
    over one hop: 4 + 1 = 5 ns, 195; fc2: A 39, C 15, LDPU 32 columns 64 ns: 313; write 32 B
    4 + 100: latency 417 ns.
    Period: per sample fc1 needs 39 ns of array and 32 ns of LDPU, fc2 39 ns of array and 64 ns
    of LDPU; fc2's LDPU is the slowest stage, rows queue for it (its 2 KB output SRAM holds
    all eight), so samples end 64 ns apart: 417 + 64 n.
    """
    text = _layers(
        INPUT.format(shape=[32]),
        'id = "fc1"\nop = "linear"\nout_features = 16',
        'id = "fc2"\nop = "linear"\nout_features = 32',
    )
    mapping, run, m = _run(slow_ldpu, text, tmp_path)
    assert _cores(mapping) == {"fc1": [0], "fc2": [1]}
    assert run.sample_end_ns == [417.0 + 64.0 * n for n in range(8)]
    assert (m.latency_ns, m.period_ns) == (417.0, 64.0)
    assert "(fc2)" in m.bottleneck and "ldpu" in m.bottleneck


def test_k_split_layer_gathers_its_partial_sums(tiny, tmp_path):
    """input (64) -> fc (64 x 32): two row blocks, block 0 (the lead) on core 0, block 1 on
    core 1.

    Sample 0: read 64 B: 8 ns, + 100 = 108; each block gets its 32 B: core 0 at once, core 1
    over one hop, 32 / 4 + 1 = 9 ns: 117; array A: 156; the lead's other ADC rounds C: 171;
    block 1 sends 32 partial sums x 2 B = 64 B to the lead: 16 + 1 = 17 ns, 188; the lead's
    LDPU adds them and scales: 2 passes over 32 columns = 64 ops at 2 ops/ns, 32 ns: 220;
    write 32 B 4 + 100: latency 324 ns.
    Period: the array (39 ns) again; the busiest other resources are the LDPU (32 ns) and the
    link 1 -> 0 (16 ns); samples end 324 + 39 n. Conversions: 32 columns x 2 blocks = 64 per
    sample.
    """
    text = _layers(INPUT.format(shape=[64]), 'id = "fc"\nop = "linear"\nout_features = 32')
    mapping, run, m = _run(tiny, text, tmp_path)
    assert [(b.core, b.row_block) for b in mapping.layers[0].blocks] == [(0, 0), (1, 1)]
    assert run.sample_end_ns == [324.0 + 39.0 * n for n in range(8)]
    assert (m.latency_ns, m.period_ns) == (324.0, 39.0)
    assert m.conversions == 8 * 64
    frame = run.recorder.to_frame()
    psum = frame[frame.layer == "fc psum"]
    assert set(psum.component) == {"link1-0"} and psum.qty.sum() == 8 * 64


@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_chunked_row_ends_when_its_last_mvm_would(slow_ldpu, tmp_path, chunk):
    """input (32, 1, 4) -> 1 x 1 conv to 32 channels on core 0: one row of 4 positions, LDPU
    P = 32 columns at 0.5 ops/ns = 64 ns per MVM, slower than the array (39) and the ADC (15).

    MVM by MVM (chunk 1), from the row's arrival t0 = 128 B / 8 + 100 = 116: the first MVM
    leaves the array at t0 + A, its conversions at t0 + A + C, then the LDPU takes the four in
    a row: the row is done at t0 + A + C + 4 P = 116 + 39 + 15 + 256 = 426; write 128 B:
    16 + 100 ns, latency 542. A chunk of k MVMs ends no earlier than its last MVM would have,
    so chunks of 2 and 4 give the same times. Period: 4 P = 256 ns of LDPU per sample.
    """
    text = _layers(
        INPUT.format(shape=[32, 1, 4]),
        'id = "conv"\nop = "conv2d"\nout_channels = 32\nkernel = 1',
    )
    mapping, run, m = _run(slow_ldpu, text, tmp_path, chunk=chunk)
    assert _cores(mapping) == {"conv": [0]}
    assert mapping.layers[0].matrix.mvms_per_sample == 4
    assert run.sample_end_ns == [542.0 + 256.0 * n for n in range(8)]
    assert (m.latency_ns, m.period_ns) == (542.0, 256.0)


@pytest.mark.parametrize(
    "replication, cores, latency_ns, period_ns",
    [("none", [0], 398.0, 128.0), ("balanced", [0, 1], 351.0, 64.0)],
)
def test_two_copies_share_a_row(slow_ldpu, tmp_path, replication, cores, latency_ns, period_ns):
    """input (32, 1, 2) -> 1 x 1 conv to 32 channels: one row of 2 positions, LDPU P = 64 ns
    per MVM (0.5 ops/ns). The row arrives at t0 = 64 B / 8 + 100 = 108.

    One copy (core 0) does both: arrays 108-147 and 147-186, conversions end 162 and 201, the
    LDPU 162-226 and 226-290; write 64 B 8 + 100: latency 398. Period 2 P = 128 ns.
    Two copies (balanced: position p of every sample on copy p, cores 0 and 1): the row also
    goes to core 1, 64 B over one hop: 16 + 1 ns, 125; both integrate 125-164, convert until
    179, post-process until 243; latency 243 + 108 = 351. Period P = 64 ns (each copy does one
    MVM per sample; the link 0 -> 1 carries 16 ns, the off-chip port 16 ns).
    """
    text = _layers(
        INPUT.format(shape=[32, 1, 2]),
        'id = "conv"\nop = "conv2d"\nout_channels = 32\nkernel = 1',
    )
    mapping, run, m = _run(slow_ldpu, text, tmp_path, replication=replication)
    assert [b.core for b in mapping.layers[0].blocks] == cores
    assert [b.replica for b in mapping.layers[0].blocks] == list(range(len(cores)))
    assert run.sample_end_ns == [latency_ns + period_ns * n for n in range(8)]
    assert (m.latency_ns, m.period_ns) == (latency_ns, period_ns)


def test_a_consumer_reading_a_row_twice_gets_it_once(tiny, tmp_path):
    """input (32) -> fc (32 x 32, core 0) -> sq = fc * fc on the GDPU, which sits at router
    int(0.5 x 4 routers / 1 GDPU) = 2, one hop below core 0.

    Sample 0: fc's row is done at 104 + A + C + 16 = 174 (as in test_one_layer_on_one_core);
    32 B to router 2: 8 + 1 ns, 183; 32 products at 4 ops/ns: 8 ns, 191; write 32 B 4 + 100:
    latency 295. Period: fc's array, 39 ns. 80 samples are more rows than fc's 2 KB output
    SRAM holds (64): each row must cross the link once (32 B x 80 on link 0-2) and then free
    its SRAM, or the run stalls (it did at sample 64, waiting for a second delivery).
    """
    text = _layers(
        INPUT.format(shape=[32]),
        'id = "fc"\nop = "linear"\nout_features = 32',
        'id = "sq"\nop = "mul"\ninputs = ["fc", "fc"]',
    )
    mapping, run, m = _run(tiny, text, tmp_path, samples=80)
    assert _cores(mapping) == {"fc": [0]}
    assert all(t > 0 for t in run.sample_end_ns)
    assert (m.latency_ns, m.period_ns) == (295.0, 39.0)
    frame = run.recorder.to_frame()
    rows = frame[(frame.op == "link") & (frame.layer == "sq")]
    assert set(rows.component) == {"link0-2"} and rows.qty.sum() == 80 * 32
