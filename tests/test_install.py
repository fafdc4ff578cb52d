"""A built wheel carries the presets, their sources and the trained weights, and an installed
copy finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """archsim's wheel, built from this tree (pip's build isolation, no dependencies)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{done.stderr[-2000:]}")
    (path,) = out.glob("archsim-*.whl")
    return path


def test_wheel_ships_every_preset_and_zoo_weight_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        *ROOT.glob("models/**/*.toml"),  # chips, devices, training, onchip, baselines
        *ROOT.glob("workloads/*.npz"),
        *ROOT.glob("workloads/moe/*.toml"),  # MoE models of `archsim moe`
        *ROOT.glob("docs/*.md"),  # docs/sources.md: the citations the presets use
    ]
    assert len(shipped) >= 10
    assert ROOT / "models" / "baselines" / "a100.toml" in shipped
    data = {n for n in names if n.startswith("archsim/_data/")}
    assert data == {f"archsim/_data/{src.relative_to(ROOT).as_posix()}" for src in shipped}
    assert not any(n.startswith(("models/", "workloads/", "tests/")) for n in names)


def test_installed_wheel_finds_its_data_outside_the_source_tree(wheel, tmp_path):
    """Unpacked into a bare directory and imported from elsewhere: presets and weights come
    from archsim/_data, not from the repository."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import archsim.config as c, archsim.workload.zoo as z;"
        "assert c.models_dir().is_relative_to(sys.argv[1]), c.models_dir();"
        "assert z.workloads_dir().is_relative_to(sys.argv[1]), z.workloads_dir();"
        "print(','.join(c.chip_presets()), ','.join(c.device_presets()));"
        "print(sorted(z._npz('digits-cnn.npz'))[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(site)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    chips, devices = done.stdout.splitlines()[0].split()
    assert "hermes" in chips.split(",") and "pcm" in devices.split(",")
    assert done.stdout.splitlines()[1] == "conv1.bias"
