"""Device models, keyed by the `model` string of a device preset."""

from archsim.devices.base import DeviceModel, ProgrammedDevices
from archsim.devices.hermes import HermesPcmDevice
from archsim.devices.ideal import IdealDevice
from archsim.devices.pcm import PcmLikeDevice
from archsim.devices.reram import ReramCmoDevice, ReramWan2022Device

DEVICE_MODELS: dict[str, type] = {
    "ideal": IdealDevice,
    "pcm_like": PcmLikeDevice,
    "hermes_pcm": HermesPcmDevice,
    "reram_wan2022": ReramWan2022Device,
    "reram_cmo": ReramCmoDevice,
}
"""Registry of device models: the `model` key of a device preset names one of these."""

__all__ = [
    "DEVICE_MODELS",
    "DeviceModel",
    "HermesPcmDevice",
    "IdealDevice",
    "PcmLikeDevice",
    "ProgrammedDevices",
    "ReramCmoDevice",
    "ReramWan2022Device",
]
