"""`archsim compare` and the MoE sweep kind: a 3D-AIMC MoE run against the A100 roofline on the
same token stream, and a tier sweep with its Pareto front."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from archsim.baseline.compare import compare_moe
from archsim.baseline.gpu import load_gpu
from archsim.errors import ConfigError
from archsim.moe.model import TokenStream, load_moe
from archsim.moe.sizing import fewest_tiles, tiers_needed
from archsim.moe.spec import load_system
from archsim.sweep import load_sweep, run_sweep, write_sweep_report

# moe-small on the A100: 5,244,928 weights x 0.625 B / 1,555 GB/s = 2.1081 us per iteration.
SMALL_FETCH_S = 5_244_928 * 0.625 / 1555e9


def test_moe_small_needs_46_tiers():
    """d 256 fits one 512 x 512 tier per projection: 2 blocks x (4 projections + 1 router
    + 4 experts x (1 x 2 + 2 x 1) tiers) = 2 x 21 = 42, + embedding and head (1024 x 256 and
    256 x 1024: 2 tiers each) = 46; at 16 tiers per tile, 3 tiles."""
    system, model = load_system("bue25-3d", tiers=16), load_moe("moe-small")
    assert tiers_needed(model, system) == 46
    assert fewest_tiles(model, system) == 3


def test_comparison_rows_are_the_two_runs_side_by_side():
    system, model = load_system("bue25-3d", tiles=4), load_moe("moe-small")
    stream = TokenStream(2, 3, 1)
    c = compare_moe(system, model, stream, load_gpu("a100"))
    rows = {r["metric"]: r for r in c.rows()}
    tput, energy = rows["throughput per area"], rows["energy per token"]
    assert tput["gpu"] == pytest.approx(6 / (3 * SMALL_FETCH_S) / 826, rel=1e-12)
    assert tput["3d_aimc"] == c.aimc.tokens_per_s_per_mm2
    assert tput["advantage_3d"] == pytest.approx(tput["3d_aimc"] / tput["gpu"], rel=1e-12)
    assert energy["gpu"] == pytest.approx(400 * SMALL_FETCH_S / 2, rel=1e-12)
    assert energy["advantage_3d"] == pytest.approx(energy["gpu"] / energy["3d_aimc"], rel=1e-12)
    assert rows["area"]["3d_aimc"] == 4 * 1.0 + 4 * 1.25 + 1 * 5.0
    power = rows["average power"]["3d_aimc"]
    assert power == pytest.approx(c.aimc.energy_j / (c.aimc.makespan_ns * 1e-9), rel=1e-12)
    # power above the passive floor, below passive + every unit and tile busy at once
    assert system.passive_power_w < power < system.passive_power_w + 10


def test_cli_compare_writes_the_report(cli):
    code, out, _ = cli(
        "compare",
        "--model",
        "moe-small",
        "--sequences",
        "2",
        "--tokens",
        "2",
        "--tiles",
        "fit",
        "--out",
        "cmp",
    )
    assert code == 0
    assert "throughput per area" in out and "energy per token" in out and "nan" not in out
    assert "memory (weight fetch)" in out
    files = set(cli.files())
    assert {"cmp/compare.md", "cmp/compare.csv", "cmp/compare.png", "cmp/compare.json"} <= files
    with open(cli.workdir / "cmp" / "compare.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["metric"] for r in rows][:3] == [
        "throughput",
        "throughput per area",
        "energy per token",
    ]
    # --tiles fit: moe-small's 46 tiers on one tile of 1024: 1 + 4 x 1.25 + 5 = 11 mm²
    assert float(rows[3]["3d_aimc"]) == 11.0
    assert "set by" in (cli.workdir / "cmp" / "compare.md").read_text()


def test_cli_compare_refusals(cli, tmp_path):
    cli.refused("compare", "--model", "moe-small", "--tiles", "0", match="--tiles")
    cli.refused("compare", "--model", "moe-small", "--sequences", "0", match="--sequences")
    cli.refused("compare", "--model", "moe-small", "--gpu", "h100", match="unknown GPU baseline")
    cli.refused("compare", "--model", "nosuchmoe", match="nosuchmoe")
    cli.refused("compare", "--model", "moe-small", "--tiles", "1", "--tiers", "8", match="tiers")
    other = cli.workdir / "notes"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    cli.refused("compare", "--model", "moe-small", "--out", "notes", match="other files")


SWEEP = """kind = "moe"
name = "tiny-tiers"
system = "bue25-3d"
model = "moe-small"
sequences = 2
tokens = 2
seed = 0

[parameters]
tiers = [16, 64]

[objectives]
tokens_per_s_per_mm2 = "max"
energy_per_token_j = "min"
"""


def test_a_two_point_tier_sweep_sizes_the_tiles_and_draws_the_front(tmp_path):
    """tiles = fit: 46 tiers take 3 tiles of 16 (area 3 + 5 + 5 = 13 mm²) or 1 of 64 (11 mm²)."""
    path = tmp_path / "tiny.toml"
    path.write_text(SWEEP)
    spec = load_sweep(path)
    lines = []
    results = run_sweep(spec, tmp_path / "out", executor="serial", progress=lines.append)
    assert list(results["status"]) == ["ok", "ok"]
    by_tiers = results.set_index("tiers")
    assert by_tiers.loc[16, "system_tiles"] == 3 and by_tiers.loc[64, "system_tiles"] == 1
    assert by_tiers.loc[16, "area_mm2"] == 13.0 and by_tiers.loc[64, "area_mm2"] == 11.0
    assert (results["advantage_energy"] > 1).all()
    assert any("tiers=16" in line and "tokens/s" in line for line in lines)
    front, objectives = write_sweep_report(spec, results, tmp_path / "out")
    assert objectives == {"tokens_per_s_per_mm2": "max", "energy_per_token_j": "min"}
    assert front["pareto"].any()
    assert (tmp_path / "out" / "pareto.png").is_file()
    assert "system `bue25-3d`" in (tmp_path / "out" / "summary.md").read_text()
    again = run_sweep(spec, tmp_path / "out", executor="serial")  # resumed: nothing to run
    pd.testing.assert_frame_equal(again, results)


@pytest.mark.parametrize(
    "change, match",
    [
        (("tiers = [16, 64]", "tierz = [16]"), 'parameters."tierz": not a 3D system field'),
        (("tiers = [16, 64]", "tiers = [0, 16]"), 'parameters."tiers": refused on its own'),
        (('model = "moe-small"', 'model = "nosuch"'), "nosuch"),
        (("sequences = 2", "sequences = 0"), "sequences: expected an integer >= 1"),
        (("seed = 0", 'granularity = "token"'), "granularity: expected one of tier, matrix"),
        (("[objectives]", "[objectives]\naccuracy = 'max'"), "objectives.accuracy"),
        (("seed = 0", "samples = 4"), "samples: unknown key"),
        (('kind = "moe"', 'kind = "gpu"'), "kind: expected one of chip, moe"),
    ],
)
def test_bad_moe_sweep_files_are_refused(tmp_path, change, match):
    path = tmp_path / "bad.toml"
    path.write_text(SWEEP.replace(*change))
    with pytest.raises(ConfigError, match=match) as e:
        load_sweep(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
