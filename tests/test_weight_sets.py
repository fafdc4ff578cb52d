"""Weight sets (slots): arrays holding several weight matrices, one active per MVM.

The timed scenarios use tests/data/tiny-chip.toml (constants in tests/test_engine_timing.py):
array A = 39 ns, the other ADC rounds C = 15 ns, LDPU 2 ops/ns (32 columns: 16 ns), off-chip
8 B/ns then 100 ns latency, the off-chip interface at router 0.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from archsim.api import simulate
from archsim.config import load_chip, load_device
from archsim.errors import MappingError, SpecError
from archsim.mapping import map_workload
from archsim.mapping.mapper import crossbars
from archsim.mapping.report import format_mapping, mapping_rows
from archsim.run_report import chip_figures
from archsim.sim.engine import Engine, SimSettings
from archsim.sim.metrics import compute_metrics
from archsim.workload.catalog import load_dataset, load_workload
from tests import reference as ref
from tests.nets import mlp

DATA = Path(__file__).parent / "data"
SWITCH_NS = 10.0
SWITCH_PJ = 3.0


@pytest.fixture(scope="module")
def tiny():
    return load_chip(DATA / "tiny-chip.toml")


def _sets(chip, sets: int, cores: int | None = None):
    """`chip` with `sets` weight sets per array (switch: 10 ns, 3 pJ), optionally fewer cores
    (on a 1 x cores grid)."""
    out = dataclasses.replace(
        chip,
        crossbar=dataclasses.replace(
            chip.crossbar,
            weight_sets=sets,
            set_switch_ns=SWITCH_NS,
            set_switch_energy_pj=SWITCH_PJ,
        ),
    )
    if cores is None:
        return out
    return dataclasses.replace(
        out,
        cores=dataclasses.replace(chip.cores, count=cores, grid=(1, cores)),
        fabric=dataclasses.replace(chip.fabric, dims=(1, cores)),
    )


def _places(m) -> list[tuple[int, int]]:
    return [(b.core, b.slot) for lm in m.layers for b in lm.blocks]


# -- spec -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("weight_sets", 0, "weight_sets"),
        ("weight_sets", 1025, "weight_sets"),
        ("set_switch_ns", -1.0, "set_switch_ns"),
        ("set_switch_energy_pj", -0.5, "set_switch_energy_pj"),
    ],
)
def test_crossbar_refuses_bad_weight_set_fields(tiny, field, value, match):
    with pytest.raises(SpecError, match=match):
        dataclasses.replace(tiny.crossbar, **{field: value})


def test_capacity_counts_every_set_and_the_area_bound_their_devices(tiny):
    """4 cores x 32 x 32 x 8 sets = 32,768 weights. A core of 1.6 mm^2 holds at most
    1.6 / 4e-10 = 4.0e9 devices (4F^2 at F = 10 nm): 1024 x 1024 weights x 4 devices x 1024
    sets = 4.29e9 do not fit (1.72 mm^2), 900 sets (3.77e9, 1.51 mm^2) do."""
    assert _sets(tiny, 8).weight_capacity == 4 * 32 * 32 * 8
    assert tiny.weight_capacity == 4 * 32 * 32
    figures = dict(chip_figures(_sets(tiny, 8)))
    assert figures["weights on chip"] == "32,768"
    assert figures["crossbar"].endswith("8 weight sets (switch 10 ns, 3 pJ)")
    xb = dataclasses.replace(tiny.crossbar, rows=1024, cols=1024)
    cores = dataclasses.replace(tiny.cores, area_mm2=1.6)

    def chip(sets: int):
        crossbar = dataclasses.replace(xb, weight_sets=sets)
        return dataclasses.replace(tiny, crossbar=crossbar, cores=cores, die_area_mm2=10.0)

    with pytest.raises(SpecError, match=r"1024 weight sets\): 4,294,967,296 devices need .*1.72"):
        chip(1024)
    assert chip(900).weight_capacity == 4 * 1024 * 1024 * 900


def test_toml_weight_sets_load_and_bad_values_are_refused(cli, tmp_path):
    text = (DATA / "tiny-chip.toml").read_text()
    head = "[crossbar]\n"
    assert head in text
    good = tmp_path / "sets.toml"
    good.write_text(
        text.replace(
            head, head + "weight_sets = 4\nset_switch_ns = 2.5\nset_switch_energy_pj = 0.5\n"
        )
    )
    chip = load_chip(good)
    assert (chip.crossbar.weight_sets, chip.crossbar.set_switch_ns) == (4, 2.5)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(head, head + "weight_sets = 2000\n"))
    cli.refused("map", "--chip", bad, "--workload", "mlp-small", match="crossbar.weight_sets")
    net = 'name = "deep"\n[[layer]]\nid = "input"\nop = "input"\nshape = [32]\n'
    for i in range(12):
        net += f'[[layer]]\nid = "fc{i}"\nop = "linear"\nout_features = 32\n'
    (tmp_path / "deep.toml").write_text(net)
    code, out, err = cli("map", "--chip", good, "--workload", tmp_path / "deep.toml")
    assert code == 0, err
    assert "4 of 4 cores, 12 of 16 weight slots" in out
    assert out.splitlines()[0].split()[-1] == "slots"
    code, out, err = cli(
        "simulate",
        "--chip",
        good,
        "--workload",
        tmp_path / "deep.toml",
        "--mode",
        "full",
        "--stream",
        "2",
    )
    assert code == 0, err
    assert "set_switch" in out and "nan" not in out.lower()


# -- mapping ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("layers", "sets", "cores"), [(8, 2, 4), (7, 2, 4), (10, 4, 3)])
def test_blocks_beyond_the_cores_take_distinct_slots(tiny, layers, sets, cores):
    """N full 32 x 32 blocks (one per layer) on ceil(N / sets) cores: every block its own
    (core, slot), slots 0.. on each core, consecutive layers on different cores."""
    w = mlp((32,) * (layers + 1))
    chip = _sets(tiny, sets, cores=cores)
    m = map_workload(w, chip, placement="sequential")
    places = _places(m)
    assert len(places) == len(set(places)) == layers
    assert m.cores_used == math.ceil(layers / sets) == cores
    assert m.slots_used == layers and m.slots_available == cores * sets
    assert m.replication == "none"
    by_core: dict[int, list[int]] = {}
    for core, slot in places:
        by_core.setdefault(core, []).append(slot)
    assert all(sorted(s) == list(range(len(s))) for s in by_core.values())
    cores_in_order = [lm.blocks[0].core for lm in m.layers]
    assert all(a != b for a, b in itertools.pairwise(cores_in_order))


def test_one_set_keeps_refusing_and_too_few_slots_name_needed_and_available(tiny):
    w = mlp((32,) * 10)  # 9 blocks
    with pytest.raises(MappingError, match=r"needs 9 cores .* but tiny has 4 available"):
        map_workload(w, tiny)
    with pytest.raises(
        MappingError,
        match=r"needs 9 cores .*9 with layers sharing crossbars.*4 cores x 2 "
        r"weight sets = 8 slots available",
    ):
        map_workload(w, _sets(tiny, 2))
    assert map_workload(w, _sets(tiny, 3)).slots_used == 9


def test_small_matrices_reading_one_input_share_a_slot(tiny, tmp_path):
    """Two 16 x 16 layers reading the same 16 inputs (as MobileBERT's Q and K read s) are
    shelf-packed side by side into one 32 x 32 slot (rows 0..15, columns 0..15 and 16..31),
    next to 6 full blocks: 7 slots used of 4 cores x 2 sets."""
    text = 'name = "qk"\n[[layer]]\nid = "input"\nop = "input"\nshape = [16]\n'
    text += '[[layer]]\nid = "q"\nop = "linear"\nout_features = 16\ninputs = ["input"]\n'
    text += '[[layer]]\nid = "k"\nop = "linear"\nout_features = 16\ninputs = ["input"]\n'
    text += '[[layer]]\nid = "cat"\nop = "concat"\ninputs = ["q", "k"]\n'
    prev = "cat"
    for i in range(6):
        text += f'[[layer]]\nid = "fc{i}"\nop = "linear"\nout_features = 32\ninputs = ["{prev}"]\n'
        prev = f"fc{i}"
    (tmp_path / "qk.toml").write_text(text)
    w = load_workload(str(tmp_path / "qk.toml"))
    m = map_workload(w, _sets(tiny, 2))
    q, k = m.layer("q").blocks[0], m.layer("k").blocks[0]
    assert (q.core, q.slot) == (k.core, k.slot)
    assert {(q.row0, q.col0), (k.row0, k.col0)} == {(0, 0), (0, 16)}
    assert m.slots_used == 7
    rows = {r["layer"]: r for r in mapping_rows(m)}
    assert rows["q"]["slots"] == rows["k"]["slots"] == str(q.slot)
    assert "7 of 8 weight slots" in format_mapping(m)


def test_mobilebert_xs_fits_16_nodes_of_8_sets():
    """MobileBERT-EdgeTPU-XS on 16 cores of 512 x 512 with 8 sets: one crossbar per block
    needs 186 > 128 slots; its weights are 86.75 crossbars' worth; shelf packing (co-packing
    [W_bi | W_kq] and Q, K, O side by side) uses 88 slots, every core holds some."""
    hermes = load_chip("hermes")
    chip = dataclasses.replace(
        hermes,
        crossbar=dataclasses.replace(hermes.crossbar, rows=512, cols=512, weight_sets=8),
        cores=dataclasses.replace(hermes.cores, count=16, grid=(4, 4), area_mm2=1.0),
        fabric=dataclasses.replace(hermes.fabric, dims=(4, 4)),
        die_area_mm2=30.0,
    )
    w = load_workload("mobilebert-edgetpu-xs", seed=0)
    m = map_workload(w, chip)
    per_block = sum(crossbars(lm.matrix, 512, 512) for lm in m.layers)
    assert per_block == 186 > 16 * 8
    assert sum(lm.matrix.weights for lm in m.layers) / 512**2 == pytest.approx(86.75, abs=0.01)
    assert m.slots_used == 88 <= m.slots_available == 128
    assert m.cores_used == 16
    assert len(set(_places(m))) == m.slots_used


# -- timing -----------------------------------------------------------------------------------
def _two_layers_one_core(tiny, tmp_path):
    text = 'name = "two"\n[[layer]]\nid = "input"\nop = "input"\nshape = [32]\n'
    text += '[[layer]]\nid = "fc1"\nop = "linear"\nout_features = 32\n'
    text += '[[layer]]\nid = "fc2"\nop = "linear"\nout_features = 32\n'
    (tmp_path / "two.toml").write_text(text)
    w = load_workload(str(tmp_path / "two.toml"))
    chip = _sets(tiny, 2, cores=1)
    return chip, map_workload(w, chip)


def test_two_layers_on_two_sets_of_one_core_take_turns_and_pay_each_switch(tiny, tmp_path):
    """fc1 (set 0) and fc2 (set 1) on core 0, 3 samples, switch S = 10 ns. Inputs arrive at
    104, 108, 112 (4 ns reads, 100 ns latency). fc1 s0: 104-143 (array starts on set 0), ADC
    143-158, LDPU 158-174: fc2 s0 asks for the array at 174. fc1 s1 took it at 143: 143-182
    (ADC -197, LDPU -213). At 182 fc2 s0 (asked first) switches to set 1: 182-192-231, ADC
    231-246, LDPU 246-262, out 262-266 + 100 = 366. fc1 s2 switches back: 231-241-280 (ADC
    -295, LDPU -311). fc2 s1 (ready at 213) switches: 280-290-329, ADC -344, LDPU -360, out
    360-364 + 100 = 464. fc2 s2 (ready 311) stays on set 1: 329-368, ADC -383, LDPU -399,
    out 399-403 + 100 = 503. Three switches: 9 pJ, 3 pJ per sample; six MVMs."""
    chip, m = _two_layers_one_core(tiny, tmp_path)
    assert [(lm.name, _places_of(lm)) for lm in m.layers] == [
        ("fc1", [(0, 0)]),
        ("fc2", [(0, 1)]),
    ]
    run = Engine(chip, m, SimSettings(samples=3)).run()
    assert run.sample_end_ns == [366.0, 464.0, 503.0]
    df = run.recorder.to_frame()
    sw = df[df.op == "set_switch"]
    assert list(zip(sw.t0_ns, sw.t1_ns, sw.layer, sw.qty, strict=True)) == [
        (182.0, 192.0, "fc2", 1.0),
        (231.0, 241.0, "fc1", 1.0),
        (280.0, 290.0, "fc2", 1.0),
    ]
    met = compute_metrics(run, m, 1.0)
    assert met.energy_breakdown_pj["set_switch"] == pytest.approx(3 * SWITCH_PJ / 3, rel=1e-12)
    assert met.block_mvms == 6


def _places_of(lm) -> list[tuple[int, int]]:
    return [(b.core, b.slot) for b in lm.blocks]


def test_free_switches_only_take_turns(tiny, tmp_path):
    """The same run with S = 0: the layers still take turns on the array, nothing else.
    fc1 s0 104-143 (ADC -158, LDPU -174), s1 143-182; fc2 s0 182-221, ADC -236, LDPU -252,
    out -256 + 100 = 356; fc1 s2 221-260 (ADC -275, LDPU -291); fc2 s1 260-299, ADC -314,
    LDPU -330, out -334 + 100 = 434; fc2 s2 299-338, ADC -353, LDPU -369, out -373 + 100 = 473.
    The switches are still counted (3), at no time and, with no energy per switch, no energy."""
    chip, m = _two_layers_one_core(tiny, tmp_path)
    xb = dataclasses.replace(chip.crossbar, set_switch_ns=0.0, set_switch_energy_pj=0.0)
    free = dataclasses.replace(chip, crossbar=xb)
    m = dataclasses.replace(m, chip=free)
    run = Engine(free, m, SimSettings(samples=3)).run()
    assert run.sample_end_ns == [356.0, 434.0, 473.0]
    df = run.recorder.to_frame()
    assert df.loc[df.op == "set_switch", "qty"].sum() == 3
    assert compute_metrics(run, m, 1.0).energy_breakdown_pj["set_switch"] == 0.0


def test_a_chunk_pays_the_same_switches_as_single_mvms(tiny, tmp_path):
    """A 1x1 convolution 32 -> 64 channels (two 32 x 32 column blocks) on a 1-core, 2-set chip:
    both blocks of its one copy sit on core 0, sets 0 and 1, so every position takes one pass
    on each set. The array starts on set 0 and runs consecutive positions' sets in alternating
    order (0 1 | 1 0 | 0 1 ...): one switch per position, 2 samples x 2 x 4 positions = 16,
    whether the 4 positions of an output row go one at a time (chunk 1) or as one event (chunk
    4); 32 block MVMs either way."""
    text = 'name = "wide"\n[[layer]]\nid = "input"\nop = "input"\nshape = [32, 2, 4]\n'
    text += '[[layer]]\nid = "conv"\nop = "conv2d"\nout_channels = 64\nkernel = [1, 1]\n'
    (tmp_path / "wide.toml").write_text(text)
    w = load_workload(str(tmp_path / "wide.toml"))
    chip = _sets(tiny, 2, cores=1)
    m = map_workload(w, chip)
    assert sorted(_places(m)) == [(0, 0), (0, 1)]
    counts, events = {}, {}
    for chunk in (1, 4):
        run = Engine(chip, m, SimSettings(samples=2, chunk=chunk)).run()
        df = run.recorder.to_frame()
        switches = df[df.op == "set_switch"]
        counts[chunk], events[chunk] = switches.qty.sum(), len(switches)
        assert df.loc[df.op == "mvm", "qty"].sum() == 2 * 8 * 2
    assert counts == {1: 16.0, 4: 16.0}
    assert events == {1: 16, 4: 4}


# -- one set: nothing changes -------------------------------------------------------------------
def test_one_set_has_no_switch_rows_and_no_switch_energy(tiny):
    w = mlp((32, 32, 32))
    m = map_workload(w, tiny, placement="sequential", replication="none")
    run = Engine(tiny, m, SimSettings(samples=2)).run()
    assert "set_switch" not in set(run.recorder.to_frame().op)
    assert "set_switch" not in compute_metrics(run, m, 1.0).energy_breakdown_pj
    assert "slots" not in mapping_rows(m)[0]


# -- functional -----------------------------------------------------------------------------------
def _float_mlp(w, x: np.ndarray) -> np.ndarray:
    y = x.astype(np.float64)
    names = [op.name for op in w.analog_ops()]
    for i, name in enumerate(names):
        op = w.op(name)
        y = y @ op.weight.astype(np.float64) + op.bias
        if i < len(names) - 1:
            y = np.maximum(y, 0.0)
    return y


def test_full_run_on_slots_gives_the_float_network(tiny):
    """8 layers of 32 x 32 on 4 cores of 2 sets (every slot used): with an ideal device, ideal
    converters and FP32 digital units the outputs are the float network's; with the PCM
    device and 6/7-bit converters within 15 % NRMSE of it, each block with its own noise."""
    w = mlp((32,) * 9)
    chip = _sets(tiny, 2)
    data = load_dataset(w, 8, seed=0)
    want = _float_mlp(w, data.x)
    exact = simulate(
        ref.exact_chip(chip),
        w,
        mode="full",
        samples=8,
        dataset=data,
        device=load_device("ideal"),
    )
    assert exact.mapping.slots_used == 8 and exact.mapping.cores_used == 4
    np.testing.assert_allclose(exact.outputs, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    noisy = simulate(chip, w, mode="full", samples=8, dataset=data)
    err = np.sqrt(np.mean((noisy.outputs - want) ** 2)) / np.std(want)
    assert 0.0 < err < 0.15
    assert noisy.metrics.block_mvms == 8 * 8


def test_weight_reloads_fill_every_set_before_a_new_segment(tiny):
    """12 blocks of 32 x 32 on 4 cores x 2 sets with weight reloads: segments of 8 and 4
    blocks. Reprogramming the first: 8 x 1024 weights at 8 B/ns = 1024 ns, then each core
    programs its two sets one after another, 2 x 32 rows x 3750 ns = 240,000 ns: 241,024 ns;
    the second (one set per core): 512 + 32 x 3750 = 120,512 ns."""
    from archsim.mapping.segments import map_segments, reload_cost

    chip = _sets(tiny, 2)
    chip = dataclasses.replace(chip, mapping=dataclasses.replace(chip.mapping, weight_reload=True))
    parts = map_segments(mlp((32,) * 13), chip, replication="none")
    assert [sum(len(lm.blocks) for lm in p.layers) for p in parts] == [8, 4]
    assert [p.slots_used for p in parts] == [8, 4]
    assert [reload_cost(p).time_ns for p in parts] == [241_024.0, 120_512.0]
