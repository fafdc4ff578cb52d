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
