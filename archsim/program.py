"""The program step: a mapped network's weights written into the chip's devices, once.

Every analog layer of the mapping is converted to target conductances with the chip's crossbar
tiling and weight scaling and programmed with the device's programming noise, once per replica
and convolution group (each copy with its own noise, as each copy sits on its own devices). The
result, a `ProgrammedChip`, is the chip right after programming: the functional half reads it at
each inference time (drift and read noise are drawn when it is read, `crossbar.read_state`), and
the timed half runs its chip and mapping.

Simplifications: the DAC and ADC ranges are not part of it. They are calibrated on data, on the
network's own analog activations at the first evaluated time (`archsim.evaluate`), so they need a
data set and a read time, which programming does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from archsim.crossbar import ProgrammedMatrix, program_matrix
from archsim.footprint import check_footprint, evaluate_bytes
from archsim.mapping import Mapping, map_workload
from archsim.spec import ChipSpec, DeviceSpec
from archsim.workload import ir


@dataclass(frozen=True, slots=True)
class RunSeeds:
    """The three independent random streams of one run seed (`SeedSequence(seed).spawn(3)`)."""

    program: np.random.SeedSequence
    """Programming noise: one child per analog layer, then one per replica."""
    read: np.random.SeedSequence
    """Drift and read noise of the conductance state: one child per evaluated time."""
    mvm: np.random.SeedSequence
    """Fresh per-MVM noise keys."""


def run_seeds(seed: int) -> RunSeeds:
    """The random streams of run seed `seed`; the same seed gives the same streams."""
    return RunSeeds(*np.random.SeedSequence(seed).spawn(3))


@dataclass(frozen=True, slots=True)
class ProgrammedLayer:
    """The programmed copies of one analog layer."""

    name: str
    copies: tuple[tuple[ProgrammedMatrix, ...], ...]
    """[replica][group]: each replica of the mapping holds every convolution group's matrix."""


@dataclass(frozen=True, slots=True)
class ProgrammedChip:
    """A chip with a mapped network's weights programmed into its devices (time 0)."""

    chip: ChipSpec
    device: DeviceSpec
    """The device the weights are stored in (the chip's own unless overridden)."""
    workload: str
    """Name of the workload whose weights these are."""
    mapping: Mapping = field(repr=False)
    seed: int
    """Run seed the programming noise was drawn from (`run_seeds(seed).program`)."""
    layers: tuple[ProgrammedLayer, ...] = field(repr=False)
    """Every analog layer, in the mapping's order."""


def program(
    chip: ChipSpec,
    workload: ir.Workload,
    mapping: Mapping | None = None,
    *,
    device: DeviceSpec | None = None,
    seed: int = 0,
) -> ProgrammedChip:
    """Program every replica and group of every analog layer of `workload`, each with its own
    programming noise drawn from `seed`.

    Args:
        chip: the chip (crossbar size, weight scaling, default device).
        workload: the network whose weights are programmed.
        mapping: the network on the chip (default: `map_workload(workload, chip)`).
        device: a device other than the chip's.
        seed: run seed; `evaluate` and `simulate` with the same seed read the chip with the
            other streams of the same seed.

    Raises:
        MappingError: the workload does not fit on the chip.
        ArchsimError: weights that are not finite, a device fitted for another cell, or more
            memory than the machine has (`archsim.footprint`).
    """
    device = device or chip.device
    mapping = mapping or map_workload(workload, chip)
    check_footprint(f"programming {workload.name} on {chip.name}", evaluate_bytes(mapping))
    layers = []
    lms = mapping.layers
    for lm, ss in zip(lms, run_seeds(seed).program.spawn(len(lms)), strict=True):
        mats = ir.matrices(workload.op(lm.name))
        rngs = [np.random.default_rng(s) for s in ss.spawn(lm.replicas)]
        copies = tuple(
            tuple(
                program_matrix(
                    m, chip.crossbar, device, rng, weight_scaling=chip.mapping.weight_scaling
                )
                for m in mats
            )
            for rng in rngs
        )
        layers.append(ProgrammedLayer(lm.name, copies))
    return ProgrammedChip(chip, device, workload.name, mapping, seed, tuple(layers))
