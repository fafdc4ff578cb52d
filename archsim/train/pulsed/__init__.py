"""On-chip (pulsed) training: device update models, device arrays and, in
`archsim.kernels.pulse`, the stochastic pulsed-update kernels (issue 12)."""

from archsim.train.pulsed.device_array import ARRAY_FIELDS, DeviceArray
from archsim.train.pulsed.update_model import UPDATE_RULES, UpdateModel

__all__ = ["ARRAY_FIELDS", "UPDATE_RULES", "DeviceArray", "UpdateModel"]
