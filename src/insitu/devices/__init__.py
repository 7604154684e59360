"""One memory element's physics: parameters, pulse response, noise, variation, drift.

Knows nothing of arrays or learning.
"""

from insitu.devices.params import DeviceParams, NoiseMode, ResponseModel
from insitu.devices.presets import device_names, get_device
from insitu.devices.response import (
    DeviceArray,
    apply_pulses,
    apply_stuck,
    initial_conductance,
    nominal_device_array,
    quantize,
    read_conductance,
    relax,
    sample_device_array,
    step_size,
)

__all__ = [
    "DeviceArray",
    "DeviceParams",
    "NoiseMode",
    "ResponseModel",
    "apply_pulses",
    "apply_stuck",
    "device_names",
    "get_device",
    "initial_conductance",
    "nominal_device_array",
    "quantize",
    "read_conductance",
    "relax",
    "sample_device_array",
    "step_size",
]
