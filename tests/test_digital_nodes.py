"""Digital accelerator nodes and heterogeneous placement (`archsim.spec.digital`,
`archsim.mapping.hetero`, `archsim.sim.digital`).

The test chip tests/data/tiny-digital.toml has 4 AIMC cores, no GDPU and two digital nodes at
1 GHz on routers 4 and 5: mac-array0 (2 MAC, 1 softmax element, 1 norm element, 2 element
operations per cycle; 0.5 pJ/MAC, 0.25 pJ/op) and vector0 (no MACs; 2 softmax, 2 norm, 4
element-wise per cycle; 0.125 pJ/op), 64 KiB SRAM each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import simpy

from archsim.config import load_chip
from archsim.errors import ConfigError, MappingError
from archsim.mapping import map_workload
from archsim.mapping.hetero import POLICIES, Work, gdpu_ops
from archsim.sim.digital import DigitalUnit
from archsim.sim.engine import Engine, SimSettings
from archsim.sim.metrics import compute_metrics
from archsim.sim.recorder import Recorder
from archsim.spec.digital import DIGITAL_POLICIES, digital_units
from archsim.workload import layers as L
from archsim.workload.ir import GraphBuilder

DATA = Path(__file__).parent / "data"
CHIP = DATA / "tiny-digital.toml"


@pytest.fixture(scope="module")
def chip():
    return load_chip(CHIP)


def one_node(chip, **changes):
    """The test chip with only its mac-array node (fields replaced by `changes`)."""
    node = dataclasses.replace(chip.digital_nodes[0], **changes)
    return dataclasses.replace(chip, digital_nodes=(node,))


def attention(heads: int = 1):
    """x (4 x 8) -> q = x Wq (analog); per head qk_h = q @ x^T (4 x 4, 4 x 4 x 8 = 128 MACs),
    softmax sm_h over its 16 elements; the heads' outputs are the network's outputs."""
    rng = np.random.default_rng(3)
    g = GraphBuilder("attn")
    x = L.input_(g, "x", (4, 8))
    q = L.linear(g, "q", x, rng.standard_normal((8, 8)).astype(np.float32))
    kt = L.transpose(g, "kt", x, (1, 0))
    for h in range(heads):
        L.softmax(g, f"sm{h}", L.matmul(g, f"qk{h}", q, kt), -1)
    return g.build()


def run(chip, workload, samples=2, **kw):
    mapping = map_workload(workload, chip, **kw)
    sim = Engine(chip, mapping, SimSettings(samples=samples)).run()
    return mapping, sim, sim.recorder.to_frame()


# -- spec -----------------------------------------------------------------------------------


def test_digital_nodes_load_with_routers_area_and_static_power(chip):
    """Nodes sit on routers cores.count + i; their area and static power are the chip's."""
    units = digital_units(chip)
    assert [(u.name, u.kind, u.router) for u in units] == [
        ("mac-array0", "mac-array", 4),
        ("vector0", "vector", 5),
    ]
    assert chip.compute_area_mm2 == pytest.approx(4 * 0.05 + 0.03 + 0.02)
    assert chip.static_power_mw == pytest.approx(4 * 1.0 + 0.5 + 0.25)
    assert ("digital_nodes[0]", "estimate: round test numbers") in chip.sources


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            ("macs_per_cycle = 2.0", "macs_per_cycle = -1.0"),
            "digital_nodes[0].macs_per_cycle: expected >= 0",
        ),
        (('kind = "vector"', 'kind = "mac-array"'), "digital_nodes[1].kind: 'mac-array' is used"),
        (('kind = "vector"', 'kind = "static"'), "digital_nodes[1].kind: 'static' names another"),
        (
            ("sram_bytes = 65536\narea_mm2 = 0.03", "area_mm2 = 0.03"),
            "digital_nodes[0].sram_bytes: missing",
        ),
        (
            ("count = 1\nclock_ghz = 1.0\nmacs", "count = 1\nclock_ghz = 1.0\nspeed = 3\nmacs"),
            "digital_nodes[0].speed: unknown key",
        ),
        (("grid = [2, 3]", "grid = [2, 2]"), "digital_nodes: 2 digital nodes need routers"),
        (
            ('source = "estimate: round test numbers"\n', ""),
            "digital_nodes[0].source: missing required key",
        ),
        (
            ("weight_reload = false", 'weight_reload = false\ndigital_policy = "fastest"'),
            "mapping.digital_policy: expected one of",
        ),
    ],
)
def test_bad_digital_node_tables_are_refused(tmp_path, edit, match):
    text = CHIP.read_text()
    assert edit[0] in text
    text = text.replace(edit[0], edit[1], 1)
    if "grid = [2, 2]" in text:
        text = text.replace("dims = [2, 3]", "dims = [2, 2]")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{path}: ") as e:
        load_chip(path)
    assert match in str(e.value)


def test_policy_registry_matches_the_spec_names():
    assert tuple(POLICIES) == DIGITAL_POLICIES


# -- timing -----------------------------------------------------------------------------------


def test_unit_times_matmul_then_softmax_exactly(chip):
    """mac-array0 at 1 GHz: a 2 x (4x8)@(8x4) product (2 x 128 = 256 MACs) at 2 MAC/cycle takes
    128 ns; then a softmax over 16 elements (48 element operations) at 1 element/cycle, 16 ns:
    they end at 128 and 144 ns, one op at a time."""
    env = simpy.Environment()
    rec = Recorder()
    unit = DigitalUnit(env, digital_units(chip)[0], rec)
    log = []

    def job(name, work):
        yield env.process(unit.run(work, work.ops, name, 0))
        log.append((name, env.now))

    env.process(job("qk", Work("matmul", 256.0, 256.0)))
    env.process(job("sm", Work("softmax", 48.0, 16.0)))
    env.run()
    assert log == [("qk", 128.0), ("sm", 144.0)]
    assert [(r[2], r[3], r[6]) for r in rec.rows] == [
        ("mac-array0", "matmul", 256.0),
        ("mac-array0", "softmax", 48.0),
    ]


def test_engine_runs_matmul_and_softmax_rows_at_the_node_rates(chip):
    """One node: qk0 streams in 4 rows of 4 x 8 = 32 MACs, 16 ns each at 2 MAC/cycle; sm0 in 4
    rows of 4 elements (12 operations), 4 ns each at 1 element/cycle."""
    _, _, df = run(one_node(chip), attention())
    qk = df[(df.layer == "qk0") & (df.op == "matmul")]
    sm = df[(df.layer == "sm0") & (df.op == "softmax")]
    assert set(qk.component) == set(sm.component) == {"mac-array0"}
    assert list(qk.t1_ns - qk.t0_ns) == [16.0] * 8 and list(qk.qty) == [32.0] * 8
    assert list(sm.t1_ns - sm.t0_ns) == [4.0] * 8 and list(sm.qty) == [12.0] * 8


def test_balanced_spreads_equal_ops_and_respects_rate_zero(chip):
    """Two mac-array nodes: the two equal products go one to each. With the test chip's
    vector node (0 MAC/cycle), both products go to mac-array0 whatever its load, under either
    policy; the softmaxes go where they finish first (vector0: 16 elements at 2/cycle = 8 ns
    against 16 ns)."""
    two = one_node(chip, count=2)
    m = map_workload(attention(2), two)
    assert m.digital.policy == "balanced"
    assert {m.digital.unit("qk0").name, m.digital.unit("qk1").name} == {"mac-array0", "mac-array1"}
    for policy in DIGITAL_POLICIES:
        m = map_workload(attention(2), chip, digital_policy=policy)
        assert m.digital.unit("qk0").name == m.digital.unit("qk1").name == "mac-array0"
    m = map_workload(attention(2), chip)
    assert m.digital.unit("sm0").name == "vector0"
    assert m.digital.load_ns()[0] == 2 * 64.0  # two products of 128 MACs at 2 MAC/ns


def test_op_no_unit_can_run_is_a_mapping_error(chip):
    vector_only = dataclasses.replace(chip, digital_nodes=chip.digital_nodes[1:])
    with pytest.raises(MappingError, match=r"op 'qk0' \(MatMul, class matmul\) has no digital"):
        map_workload(attention(), vector_only)


def test_chips_without_digital_nodes_keep_the_name_spread(hermes):
    """HERMES (8 GDPUs): every digital op on GDPU sum(name bytes) % 8, as before."""
    m = map_workload(attention(3), hermes)
    assert m.digital.policy == "spread"
    assert m.digital.unit_of and all(
        m.digital.units[i].name == f"gdpu{sum(n.encode()) % 8}"
        for n, i in m.digital.unit_of.items()
    )


# -- energy and spill -------------------------------------------------------------------------


def test_digital_energy_counts_every_mac_and_op_once(chip):
    """Per sample: 2 products x 128 MACs x 0.5 pJ on mac-array0 and 2 softmaxes x 48 operations
    x 0.125 pJ on vector0; the recorded MACs equal the ops' analytic MACs."""
    w = attention(2)
    mapping, sim, df = run(chip, w, samples=4)
    macs = df[df.op == "matmul"].qty.sum()
    assert macs == 4 * sum(gdpu_ops(w.op(f"qk{h}"), w) for h in range(2)) == 4 * 256
    m = compute_metrics(sim, mapping)
    assert m.energy_breakdown_pj["mac-array"] == pytest.approx(256 * 0.5)
    assert m.energy_breakdown_pj["vector"] == pytest.approx(2 * 48 * 0.125)
    assert m.energy_breakdown_pj["spill"] == 0.0
    static = chip.static_power_mw * sim.end_ns / sim.end_ns * m.period_ns
    assert m.energy_breakdown_pj["static"] == pytest.approx(static)


def test_an_op_larger_than_sram_spills_through_the_off_chip_interface(chip):
    """sram_bytes = 64: qk0 reads q (32 B) and x^T (32 B) and writes 16 B at 1 B/value, 16 B
    more than fit; per row 4 B cross the off-chip port (8 B/ns: 0.5 ns) at 1.6 pJ/B."""
    small = one_node(chip, sram_bytes=64)
    mapping, sim, df = run(small, attention(), samples=2)
    spill = df[df.op == "spill"]
    assert set(spill.layer) == {"qk0"}  # sm0: 16 + 16 B fit
    assert list(spill.qty) == [4.0] * 8
    assert list(spill.t1_ns - spill.t0_ns) == [0.5] * 8
    m = compute_metrics(sim, mapping)
    assert m.energy_breakdown_pj["spill"] == pytest.approx(16 * 1.6)
    _, roomy, _ = run(one_node(chip), attention(), samples=2)
    assert sim.end_ns > roomy.end_ns  # the spill takes time


# -- static-weight layers on digital nodes ----------------------------------------------------


def two_branches():
    """x (4 x 8) -> d = x Wd + b (8 -> 6, the first output) and a = x Wa (8 -> 5)."""
    rng = np.random.default_rng(5)
    g = GraphBuilder("branches")
    x = L.input_(g, "x", (4, 8))
    wd = rng.standard_normal((8, 6)).astype(np.float32)
    d = L.linear(g, "d", x, wd, rng.standard_normal(6).astype(np.float32))
    a = L.linear(g, "a", x, rng.standard_normal((8, 5)).astype(np.float32))
    g.output(d)
    g.output(a)
    return g.build()


def test_a_layer_forced_digital_runs_at_the_matmul_rate(chip):
    """d on mac-array0: 4 rows of 6 x 8 = 48 MACs, 24 ns each at 2 MAC/cycle; its 48 weights
    sit in the node's SRAM; a stays on AIMC."""
    w = two_branches()
    mapping, _, df = run(chip, w, digital_layers=("d",))
    assert [lm.name for lm in mapping.layers] == ["a"]
    assert mapping.digital.layer_weights == {"d": 48}
    rows = df[(df.layer == "d") & (df.op == "matmul")]
    assert set(rows.component) == {"mac-array0"}
    assert list(rows.t1_ns - rows.t0_ns) == [24.0] * 8


def test_a_layer_forced_digital_counts_its_macs_once_as_digital(chip):
    """MACs per sample: a on AIMC 4 x 8 x 5 = 160, d on the node 4 x 8 x 6 = 192; over 2
    samples 704, of them 384 digital; the same total as with both on AIMC."""
    w = two_branches()
    mapping, sim, _ = run(chip, w, digital_layers=("d",))
    m = compute_metrics(sim, mapping)
    assert (m.macs, m.digital_macs) == (704, 384)
    mapping, sim, _ = run(chip, w)
    m = compute_metrics(sim, mapping)
    assert (m.macs, m.digital_macs) == (704, 0)


def test_a_layer_forced_digital_computes_the_float_product(chip):
    """Its outputs are x Wd + b rounded to FP16 (the chip's digital precision), exactly."""
    from archsim.evaluate import evaluate
    from archsim.workload.catalog import load_dataset
    from archsim.workload.execute import float_matmul, fp16_round
    from archsim.workload.execute import run as forward

    w = two_branches()
    data = load_dataset(w, 16, seed=0)
    mapping = map_workload(w, chip, digital_layers=("d",))
    result = evaluate(chip, w, data, (1.0,), mapping=mapping, keep_outputs=True)
    expected = forward(w, data.x, float_matmul, digital=fp16_round)["d"]
    np.testing.assert_array_equal(result.outputs[0], expected)


def test_unknown_digital_layer_is_refused(chip):
    with pytest.raises(MappingError, match=r"digital layer 'z' .*linear layers: d, a"):
        map_workload(two_branches(), chip, digital_layers=("z",))


# -- command line -----------------------------------------------------------------------------


def test_cli_refuses_unknown_policy_and_layer(cli):
    args = ("map", "--chip", CHIP, "--workload", DATA / "tiny-net.toml")
    cli.refused(*args, "--digital-policy", "fastest", match="--digital-policy: invalid choice")
    cli.refused(*args, "--digital-layer", "conv", match="digital layer 'conv'")


def test_cli_map_shows_node_kinds_and_digital_layers(cli):
    code, out, err = cli(
        "map",
        "--chip",
        CHIP,
        "--workload",
        DATA / "tiny-net.toml",
        "--digital-layer",
        "fc",
        "--digital-policy",
        "spread",
        "--out",
        "m",
    )
    assert code == 0, err
    assert "mac-array0" in out and "fc (matmul, 640 weights in SRAM)" in out
    assert "digital placement spread" in out
    assert (cli.workdir / "m" / "mapping.png").stat().st_size > 0


def test_hermes_presets_unchanged_by_the_node_fields(hermes):
    assert hermes.digital_nodes == () and hermes.mapping.digital_policy == ""
    assert hermes.compute_area_mm2 == hermes.cores.count * hermes.cores.area_mm2 + (
        hermes.gdpu.count * hermes.gdpu.area_mm2
    )


def test_run_report_names_digital_units_by_kind(cli):
    """nodes.csv lists the 4 cores and both nodes with kind and router; components.csv and the
    energy breakdown name the node that ran the pooling (vector0: 4 x 4 x 4 x 4 = 256
    element operations at 4 per cycle, the earliest finish) by its kind."""
    import csv

    code, out, err = cli(
        "run",
        "--chip",
        CHIP,
        "--workload",
        DATA / "tiny-net.toml",
        "--stream",
        "4",
        "--times",
        "1",
        "--out",
        "r",
    )
    assert code == 0, err
    with (cli.workdir / "r" / "nodes.csv").open() as fh:
        nodes = [(r["node"], r["kind"], r["router"]) for r in csv.DictReader(fh)]
    assert nodes[4:] == [("mac-array0", "mac-array", "4"), ("vector0", "vector", "5")]
    assert [k for _, k, _ in nodes[:4]] == ["aimc core"] * 4
    with (cli.workdir / "r" / "components.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["component"], r["kind"], r["op"]) for r in rows if r["layer"] == "pool"} >= {
        ("vector0", "vector", "elementwise")
    }
    assert "vector " in out  # its energy part
