"""Tiny exact-time SimPy scenarios, the closed form in each docstring."""

from __future__ import annotations

import dataclasses

import pytest
import simpy

from archsim.sim.core import Core, CoreTiming
from archsim.sim.fabric import Fabric, OffChip
from archsim.sim.recorder import Recorder


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


def test_full_buffer_back_pressures_the_producer(env, log, hermes):
    """Input SRAM of 256 B, rows of 100 B: rows 0 and 1 enter at t = 0, row 2 waits until the
    consumer frees row 0 at t = 50, row 3 until row 1 is freed at t = 100."""
    memory = dataclasses.replace(hermes.memory, sram_bytes_per_core=256)
    chip = dataclasses.replace(hermes, memory=memory)
    core = _core(env, chip)

    def producer():
        for i in range(4):
            yield core.inbuf.put(100)
            log.append((f"row{i}", env.now))

    def consumer():
        for _ in range(4):
            yield env.timeout(50)
            yield core.inbuf.get(100)

    env.process(producer())
    env.process(consumer())
    env.run()
    assert log == [("row0", 0), ("row1", 0), ("row2", 50), ("row3", 100)]


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
