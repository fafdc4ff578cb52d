"""Frozen specs of the hardware and devices archsim models."""

from archsim.spec.chip import (
    AdcSpec,
    ChipSpec,
    CoresSpec,
    CrossbarSpec,
    FabricSpec,
    GdpuSpec,
    InputSpec,
    LdpuSpec,
    MappingSpec,
    MemorySpec,
    ReadModeSpec,
)
from archsim.spec.device import DeviceSpec, MvmNoiseSpec
from archsim.spec.digital import DigitalNodeSpec
from archsim.spec.published import PublishedSpec, PublishedWorkloadSpec
from archsim.spec.training import TrainingSpec

__all__ = [
    "AdcSpec",
    "ChipSpec",
    "CoresSpec",
    "CrossbarSpec",
    "DeviceSpec",
    "DigitalNodeSpec",
    "FabricSpec",
    "GdpuSpec",
    "InputSpec",
    "LdpuSpec",
    "MappingSpec",
    "MemorySpec",
    "MvmNoiseSpec",
    "PublishedSpec",
    "PublishedWorkloadSpec",
    "ReadModeSpec",
    "TrainingSpec",
]
