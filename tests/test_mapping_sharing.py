"""Layers sharing crossbars when a network needs more cores than there are."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from archsim.api import simulate
from archsim.errors import MappingError
from archsim.mapping import map_workload
from archsim.mapping.sharing import shelf_pack
from tests.nets import grouped_net, shufflenet


@pytest.fixture(scope="module")
def tiny(hermes):
    """HERMES with 32 x 32 crossbars and 9 cores: the small network needs 11 blocks."""
    return dataclasses.replace(
        hermes,
        crossbar=dataclasses.replace(hermes.crossbar, rows=32, cols=32),
        adc=dataclasses.replace(hermes.adc, count=32),
        cores=dataclasses.replace(hermes.cores, count=9, grid=(3, 3)),
        fabric=dataclasses.replace(hermes.fabric, dims=(3, 3)),
        die_area_mm2=9.0,
    )


def _overlaps(m) -> list:
    """Pairs of blocks on one core whose cells overlap."""
    by_core: dict[int, list] = {}
    for lm in m.layers:
        for b in lm.blocks:
            by_core.setdefault(b.core, []).append(b)
    bad = []
    for blocks in by_core.values():
        for i, a in enumerate(blocks):
            for b in blocks[i + 1 :]:
                if (
                    a.row0 < b.row0 + b.rows
                    and b.row0 < a.row0 + a.rows
                    and a.col0 < b.col0 + b.cols
                    and b.col0 < a.col0 + a.cols
                ):
                    bad.append((a, b))
    return bad


def test_shelf_packing_keeps_blocks_apart_and_inside():
    blocks = [
        (i, r, c)
        for i, (r, c) in enumerate(
            [(200, 100), (100, 200), (56, 56), (256, 10), (30, 250), (200, 100), (20, 20)]
        )
    ]
    spot = shelf_pack(blocks, 256, 256)
    cells = {}
    for key, r, c in blocks:
        x, r0, c0 = spot[key]
        assert r0 + r <= 256 and c0 + c <= 256
        grid = cells.setdefault(x, np.zeros((256, 256), dtype=int))
        grid[r0 : r0 + r, c0 : c0 + c] += 1
    assert all(g.max() == 1 for g in cells.values())
    assert len(cells) < len(blocks)
    with pytest.raises(ValueError, match="larger than"):
        shelf_pack([("big", 257, 1)], 256, 256)


def test_shufflenet_fits_hermes_when_layers_share_crossbars(hermes):
    """79 crossbars of packed groups; with layers sharing crossbars, 58 of HERMES's 64 cores."""
    w = shufflenet()
    with pytest.raises(MappingError, match="needs 79 cores"):
        map_workload(w, hermes)
    m = map_workload(w, hermes, share=True)
    assert m.cores_used == 58
    assert m.replication == "none"
    assert not _overlaps(m)


def test_sharing_is_refused_when_even_shared_crossbars_do_not_fit(tiny):
    small = dataclasses.replace(
        tiny,
        cores=dataclasses.replace(tiny.cores, count=1, grid=(1, 1)),
        fabric=dataclasses.replace(tiny.fabric, dims=(1, 1)),
    )
    with pytest.raises(MappingError, match=r"needs 11 cores .*, \d+ with layers sharing"):
        map_workload(grouped_net(), small, share=True)


def test_shared_crossbars_give_the_same_numbers_and_take_turns(tiny, hermes):
    """The small network on 9 cores shares crossbars: same outputs (ideal, no converters), same
    MACs and MVMs as on a chip where every block has its own core, and no faster."""
    w = grouped_net()
    shared = map_workload(w, tiny, share=True)
    assert shared.cores_used <= 9 and not _overlaps(shared)
    roomy = dataclasses.replace(
        tiny,
        cores=dataclasses.replace(tiny.cores, count=16, grid=(4, 4)),
        fabric=dataclasses.replace(tiny.fabric, dims=(4, 4)),
        die_area_mm2=16.0,
    )
    alone = map_workload(w, roomy, replication="none")
    runs = {}
    for name, chip, m in (("shared", tiny, shared), ("alone", roomy, alone)):
        runs[name] = simulate(chip, w, mode="timing", samples=4, mapping=m).metrics
    assert runs["shared"].macs == runs["alone"].macs
    assert runs["shared"].block_mvms == runs["alone"].block_mvms
    assert runs["shared"].total_ns >= runs["alone"].total_ns


def test_cli_share_puts_66_small_layers_on_2_cores(cli, tmp_path):
    """66 linear layers of 32 x 32 need 66 crossbars one per core; shared, 64 fit on one
    256 x 256 crossbar (8 shelves of 8)."""
    text = 'name = "deep"\n\n[[layer]]\nid = "input"\nop = "input"\nshape = [32]\n'
    for i in range(66):
        text += f'\n[[layer]]\nid = "fc{i}"\nop = "linear"\nout_features = 32\n'
    path = tmp_path / "deep.toml"
    path.write_text(text)
    cli.refused("map", "--workload", path, match="deep needs 66 cores")
    code, out, err = cli("map", "--workload", path, "--share", "--out", tmp_path / "m")
    assert code == 0, err
    assert "2 of 64 cores (66 blocks, layers sharing crossbars)" in out
    assert (tmp_path / "m" / "mapping.png").is_file()
    code, out, err = cli(
        "simulate", "--workload", path, "--share", "--mode", "timing", "--stream", "2"
    )
    assert code == 0, err
    assert "2 of 64 cores" in out and "nan" not in out.lower()
