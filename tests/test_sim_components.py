"""Tiny exact-time SimPy scenarios, the closed form in each docstring: components, and the
back-pressure of a full SRAM in a whole run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import simpy

from archsim.config import load_chip
from archsim.mapping import map_workload
from archsim.sim.core import Core, CoreTiming
from archsim.sim.engine import Engine, SimSettings
from archsim.sim.fabric import Fabric, OffChip
from archsim.sim.metrics import compute_metrics
from archsim.sim.recorder import Recorder
from archsim.workload.catalog import load_workload

DATA = Path(__file__).parent / "data"


@pytest.fixture
def env():
    return simpy.Environment()


@pytest.fixture
def log():
    return []


def _core(env, chip, rec=None):
    return Core(env, CoreTiming.of(chip), 0, chip.memory.sram_bytes_per_core, rec or Recorder())


def test_one_mvm_hermes(env, log, hermes):
    """8-bit PWM at 1 ns/LSB: window 128 ns, conversion 5 ns -> array 133 ns; LDPU 256 outputs
    at 0.5 ops/ns (FERRO24, models/hermes.toml) -> 512 ns; the MVM ends at 133 + 512 = 645 ns."""
    core = _core(env, hermes)

    def job():
        yield env.process(core.mvm("L", 0, cols=256))
        log.append(("a", env.now))

    env.process(job())
    env.run()
    assert CoreTiming.of(hermes).mvm_latency_ns == 133.0
    assert CoreTiming.of(hermes).ops_per_ns == 0.5
    assert log == [("a", 645.0)]


def test_four_phase_mode_is_four_windows(hermes):
    """4-phase read: 4 x 128 + 5 = 517 ns of array time."""
    chip = dataclasses.replace(hermes, input=dataclasses.replace(hermes.input, read_mode="4-phase"))
    assert CoreTiming.of(chip).array_ns == 517.0


def test_two_mvms_sharing_adcs(env, log, hermes):
    """8 columns per ADC, conversion C = 40 ns: array A = 128 + C = 168, the other 7 rounds
    R = 280 on the bank. a: array 0-168, bank 168-448. b: array 168-336, bank waits for a:
    448-728. No LDPU work (cols = 0)."""
    chip = dataclasses.replace(
        hermes, adc=dataclasses.replace(hermes.adc, count=32, conversion_ns=40.0)
    )
    core = _core(env, chip)

    def job(name):
        yield env.process(core.mvm("L", 0, cols=0))
        log.append((name, env.now))

    for name in ("a", "b"):
        env.process(job(name))
    env.run()
    assert log == [("a", 448.0), ("b", 728.0)]


def test_one_link_latency_and_bandwidth(env, log, hermes):
    """64 B over one hop at 16 B/ns plus 1 ns flight: 4 + 1 = 5 ns; over 3 hops (0 -> 3, XY)
    cut-through: 4 ns serialisation + 3 x 1 ns flight = 7 ns."""
    fabric = Fabric(env, hermes.fabric, Recorder())

    def go(name, dst):
        yield env.process(fabric.transfer(0, dst, 64))
        log.append((name, env.now))

    env.process(go("one", 1))
    env.run()
    env2 = simpy.Environment()
    fabric2 = Fabric(env2, hermes.fabric, Recorder())
    assert fabric2.route(0, 3) == [(0, 1), (1, 2), (2, 3)]
    assert fabric2.route(9, 0) == [(9, 8), (8, 0)]

    def go2():
        yield env2.process(fabric2.transfer(0, 3, 64))
        log.append(("three", env2.now))

    env2.process(go2())
    env2.run()
    assert log == [("one", 5.0), ("three", 7.0)]


def test_two_transfers_contend_for_a_link(env, log, hermes):
    """Both start at 0 on link 0->1: a serialises 0-4 and lands at 5; b waits, 4-8, lands 9."""
    fabric = Fabric(env, hermes.fabric, Recorder())

    def go(name):
        yield env.process(fabric.transfer(0, 1, 64))
        log.append((name, env.now))

    for name in ("a", "b"):
        env.process(go(name))
    env.run()
    assert log == [("a", 5.0), ("b", 9.0)]


def test_cut_through_packets_share_links_in_turn(env, log, hermes):
    """a: 0 -> 2 claims link 0-1 at t = 0; b: 1 -> 2 claims link 1-2 at t = 0 before a asks for
    it, streams 64 B in 4 ns and lands at 4 + 1 = 5. a gets link 1-2 at 4, streams 4-8 and
    lands at 8 + 2 x 1 = 10 (it held link 0-1 meanwhile: wormhole)."""
    fabric = Fabric(env, hermes.fabric, Recorder())

    def go(name, src, dst):
        yield env.process(fabric.transfer(src, dst, 64))
        log.append((name, env.now))

    env.process(go("a", 0, 2))
    env.process(go("b", 1, 2))
    env.run()
    assert log == [("b", 5.0), ("a", 10.0)]


def test_full_output_sram_holds_the_layer_back(tmp_path):
    """input (32) -> fc (32 x 32) on core 0 of tests/data/tiny-chip.toml with 64 B of SRAM per
    core (32 B per buffer). The engine grows both of fc's buffers to the least that cannot
    deadlock, 3 rows of 32 B (one row's window + one copy + one arriving; one row's outputs
    + 2), and says so.

    A row's output SRAM is reserved before it integrates and freed when its output has left
    the chip: array 39 + ADC 15 + LDPU 16 + write 4 + latency 100 = 174 ns. Rows arrive every
    4 ns from t = 104 and the array takes one per 39 ns, but only 3 rows fit: reservations at
    104, 143, 182, then each waits for the row three back to leave, 174 ns after its own
    reservation: 278, 317, 356, 452, ... Samples end 174 ns after their reservation, three per
    174 ns: the period is 174 / 3 = 58 ns, not the array's 39.
    """
    tiny = load_chip(DATA / "tiny-chip.toml")
    chip = dataclasses.replace(
        tiny, memory=dataclasses.replace(tiny.memory, sram_bytes_per_core=64)
    )
    path = tmp_path / "fc.toml"
    path.write_text(
        '[[layer]]\nid = "input"\nop = "input"\nshape = [32]\n\n'
        '[[layer]]\nid = "fc"\nop = "linear"\nout_features = 32\n'
    )
    mapping = map_workload(load_workload(str(path)), chip, placement="sequential")
    run = Engine(chip, mapping, SimSettings(samples=8)).run()
    assert run.enlarged_buffers == [
        "core0 input SRAM for fc: 96 B",
        "core0 output SRAM for fc: 96 B",
    ]
    assert run.sample_end_ns == [278.0, 317.0, 356.0, 452.0, 491.0, 530.0, 626.0, 665.0]
    assert compute_metrics(run, mapping).period_ns == 58.0


def test_offchip_interface(env, log, hermes):
    """784 B at 8 B/ns = 98 ns, then 100 ns latency: done at 198 ns."""
    rec = Recorder()
    port = OffChip(env, hermes.memory, 0, rec)

    def go():
        yield env.process(port.move(784, "offchip_in", "input", 0))
        log.append(("in", env.now))

    env.process(go())
    env.run()
    assert log == [("in", 198.0)]
    assert rec.rows == [(0, 98.0, "offchip", "offchip_in", "input", 0, 784)]
