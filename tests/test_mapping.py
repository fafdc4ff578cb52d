"""Mapping invariants: every weight placed once per replica, blocks fit, cores not shared."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.cli import main
from archsim.errors import MappingError
from archsim.mapping import map_workload
from archsim.mapping.policies import hops
from archsim.workload.catalog import load_workload

WORKLOADS = ["resnet9", "digits-cnn", "lstm", "bert", "mlp"]


@pytest.mark.parametrize("name", WORKLOADS)
@pytest.mark.parametrize("placement", ["sequential", "greedy"])
def test_mapping_invariants(hermes, name, placement):
    w = load_workload(name)
    m = map_workload(w, hermes, placement=placement)
    rows, cols = hermes.crossbar.rows, hermes.crossbar.cols
    cores = [b.core for lm in m.layers for b in lm.blocks]
    assert len(cores) == len(set(cores)), "a core holds two blocks"
    assert all(0 <= c < hermes.cores.count for c in cores)
    assert m.cores_used <= hermes.cores.count
    for lm in m.layers:
        mx = lm.matrix
        for rep in range(lm.replicas):
            blocks = [b for b in lm.blocks if b.replica == rep]
            assert all(0 < b.rows <= rows and 0 < b.cols <= cols for b in blocks)
            for g in range(mx.groups):
                cover = np.zeros((mx.k, mx.n), dtype=int)
                for b in blocks:
                    if b.group == g:
                        r0, c0 = b.row_block * rows, b.col_block * cols
                        cover[r0 : r0 + b.rows, c0 : c0 + b.cols] += 1
                assert np.all(cover == 1), f"{lm.name} replica {rep}: weights not placed once"


def test_resnet9_needs_40_cores_and_is_replicated_into_the_rest(hermes):
    """1,866,536 weights tile into 40 crossbars, as on HERMES (LG25: "40 cores")."""
    w = load_workload("resnet9")
    assert w.weight_count() == 1_866_536
    plain = map_workload(w, hermes, replication="none")
    assert plain.cores_used == 40
    balanced = map_workload(w, hermes, replication="balanced")
    assert 40 < balanced.cores_used <= 64

    def slowest(m):
        return max(lm.mvms_per_sample_per_replica for lm in m.layers)

    assert slowest(balanced) < slowest(plain)


def test_greedy_placement_is_no_worse_than_sequential(hermes):
    for name in WORKLOADS:
        w = load_workload(name)
        seq = map_workload(w, hermes, placement="sequential")
        greedy = map_workload(w, hermes, placement="greedy")
        assert greedy.bytes_hops_per_sample <= seq.bytes_hops_per_sample + 1e-6


def test_hops_are_manhattan_on_the_grid():
    assert hops(0, 63, (8, 8)) == 14
    assert hops(9, 10, (8, 8)) == 1
    assert hops(3, 3, (8, 8)) == 0


def test_resnet18_does_not_fit_hermes(hermes):
    with pytest.raises(MappingError, match=r"resnet18 needs 201 cores .* hermes has 64 available"):
        map_workload(load_workload("resnet18"), hermes)


def test_smaller_core_budget(hermes):
    w = load_workload("resnet9")
    assert map_workload(w, hermes, max_cores=48).cores_used <= 48
    with pytest.raises(MappingError, match="needs 40 cores"):
        map_workload(w, hermes, max_cores=39)


def test_bigger_crossbars_need_fewer_cores(hermes):
    big = dataclasses.replace(hermes, crossbar=dataclasses.replace(hermes.crossbar, rows=512))
    w = load_workload("resnet9")
    assert map_workload(w, big, replication="none").cores_used < 40


def test_cli_map_resnet9_and_resnet18(tmp_path, capsys):
    out = tmp_path / "map"
    assert main(["map", "--workload", "resnet9", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "64 of 64 cores" in text and "res3b" in text
    assert (out / "mapping.png").stat().st_size > 0
    assert main(["map", "--workload", "resnet18", "--out", str(tmp_path / "r18")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs 201 cores" in err and "64 available" in err


def test_mapping_does_not_depend_on_string_hashing():
    """The same network maps onto the same cores in processes with different hash seeds (set
    order of layer names once changed the float sums the placement search compares)."""
    import os
    import subprocess
    import sys

    code = (
        "from archsim.config import load_chip\n"
        "from archsim.mapping import map_workload\n"
        "from archsim.workload.catalog import load_workload\n"
        "m = map_workload(load_workload('resnet18'), load_chip('hermes-256'))\n"
        "print(repr(m.bytes_hops_per_sample), [b.core for lm in m.layers for b in lm.blocks])\n"
    )
    outs = set()
    for seed in ("0", "1", "7"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(done.stdout)
    assert len(outs) == 1
