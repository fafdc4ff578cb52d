"""Shared fixtures: seeded generators, presets, small crossbars."""

from __future__ import annotations

import numpy as np
import pytest

from archsim.config import load_chip, load_device
from archsim.spec import CrossbarSpec


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed for each test."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def hermes():
    return load_chip("hermes")


@pytest.fixture(scope="session")
def ideal():
    return load_device("ideal")


@pytest.fixture(scope="session")
def pcm():
    return load_device("pcm")


@pytest.fixture
def small_xbar() -> CrossbarSpec:
    """A crossbar small enough that test matrices span several blocks."""
    return CrossbarSpec(rows=32, cols=16, devices_per_weight=2)


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files in tests/data/golden/ from this run (then review the diff)",
    )


@pytest.fixture
def update_golden(request) -> bool:
    """True when the run was asked to rewrite the golden files instead of comparing."""
    return bool(request.config.getoption("--update-golden"))


class CliRun:
    """Runs `archsim` in this process inside an empty working directory, capturing its output."""

    def __init__(self, workdir, capsys) -> None:
        self.workdir = workdir
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of `archsim *argv`."""
        from archsim.cli import main

        self.capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse exits for option errors
            code = e.code if isinstance(e.code, int) else 1
        out, err = self.capsys.readouterr()
        return code, out, err

    def files(self) -> list[str]:
        """Everything now under the working directory, relative paths, sorted."""
        return sorted(str(p.relative_to(self.workdir)) for p in self.workdir.rglob("*"))

    def refused(self, *argv: str, match: str = "") -> str:
        """Assert that `archsim *argv` is refused the way every bad input must be: exit 2, one
        line `archsim: error: ...` on stderr (containing `match`), nothing on stdout, no
        traceback, and nothing written into the working directory. Returns the line."""
        before = self.files()
        code, out, err = self(*argv)
        lines = err.strip().splitlines()
        assert code == 2, f"exit {code}, stderr: {err!r}"
        assert len(lines) == 1 and lines[0].startswith("archsim: error: "), err
        assert "Traceback" not in err and out == "", (out, err)
        assert match in lines[0], lines[0]
        assert self.files() == before, f"wrote {sorted(set(self.files()) - set(before))}"
        return lines[0]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys) -> CliRun:
    """`cli(*argv)` runs archsim in an empty directory; `cli.refused(*argv)` checks a refusal."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return CliRun(work, capsys)
